//! The credential context: what is loaded, for which role, and the policy flags.
//!
//! Credentials are kept as an immutable snapshot ([`Credentials`]) behind a lock that is held
//! only to swap it: a verification takes the current snapshot and works without the lock, and
//! an addition parses and checks its input completely, then installs a new snapshot. That gives
//! all-or-nothing additions and lets threads verify while another one adds CRLs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::cert::{Certificate, UnixSeconds};
use crate::crl::Crl;
use crate::error::{Error, ErrorKind, Result};
use crate::locations::{self, CredentialFiles, Environment, Origin, Role};
use crate::pem::{self, CertDataType, Parsed, PrivateKey};
use crate::sanity::{self, Report};
use crate::source::Source;
use crate::timefmt;

/// Policy flags of a context; the values are the C API's `VIR_PKI_CONTEXT_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextFlags(u32);

impl ContextFlags {
    /// No Common Name fallback for host names.
    pub const REQUIRE_SAN: ContextFlags = ContextFlags(1 << 0);
    /// Also ask the validator about certificates that failed CA validation.
    pub const PROMPT_UNVERIFIED: ContextFlags = ContextFlags(1 << 1);
    /// Skip load-time sanity checks (libvirt's `tls_no_sanity_certificate`).
    pub const NO_SANITY: ContextFlags = ContextFlags(1 << 2);
    const ALL: u32 = 0b111;

    /// The flags for C bits, or `None` if an unknown bit is set.
    pub fn from_bits(bits: u32) -> Option<ContextFlags> {
        (bits & !Self::ALL == 0).then_some(ContextFlags(bits))
    }

    /// The C bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: ContextFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ContextFlags {
    type Output = ContextFlags;
    fn bitor(self, rhs: ContextFlags) -> ContextFlags {
        ContextFlags(self.0 | rhs.0)
    }
}

/// A certificate (with the intermediates that follow it) and its private key.
///
/// The two halves are added separately, so either may be missing for a while; a key that does
/// not belong to the certificate is reported by the sanity check (`KEY_MISMATCH`).
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub chain: Vec<Certificate>,
    pub key: Option<Arc<PrivateKey>>,
}

impl Identity {
    /// The leaf certificate.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.chain.first()
    }

    /// Whether neither half is loaded.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty() && self.key.is_none()
    }
}

/// One snapshot of everything a context holds.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub ca_certs: Vec<Certificate>,
    pub crls: Vec<Arc<Crl>>,
    pub trusted_servers: Vec<Certificate>,
    pub client: Identity,
    pub server: Identity,
}

impl Credentials {
    /// The identity of `role`.
    pub fn identity(&self, role: Role) -> &Identity {
        match role {
            Role::Client => &self.client,
            Role::Server => &self.server,
        }
    }

    /// Applies one parsed input of type `ty`: lists accumulate, identity halves replace.
    fn apply(&mut self, ty: CertDataType, parsed: Parsed) -> Result<()> {
        match (ty, parsed) {
            (CertDataType::CaCert, Parsed::Certificates(c)) => self.ca_certs.extend(c),
            (CertDataType::ServerTrusted, Parsed::Certificates(c)) => {
                self.trusted_servers.extend(c)
            }
            (CertDataType::ClientCert, Parsed::Certificates(c)) => self.client.chain = c,
            (CertDataType::ServerCert, Parsed::Certificates(c)) => self.server.chain = c,
            (CertDataType::CaCrl, Parsed::Crls(c)) => self.crls.extend(c.into_iter().map(Arc::new)),
            (CertDataType::ClientKey, Parsed::PrivateKey(k)) => self.client.key = Some(Arc::new(k)),
            (CertDataType::ServerKey, Parsed::PrivateKey(k)) => self.server.key = Some(Arc::new(k)),
            (ty, _) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("parsed data does not fit the {ty} slot"),
                ))
            }
        }
        Ok(())
    }
}

/// Which file each item of a default load came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Items loaded: type, file, why that file.
    pub loaded: Vec<(CertDataType, std::path::PathBuf, Origin)>,
    /// Optional items whose file does not exist.
    pub absent: Vec<(CertDataType, std::path::PathBuf)>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (ty, path, origin) in &self.loaded {
            writeln!(f, "{ty}: {} ({origin})", path.display())?;
        }
        for (ty, path) in &self.absent {
            writeln!(f, "{ty}: none ({} does not exist)", path.display())?;
        }
        Ok(())
    }
}

/// Credentials and policy for one kind of connection; cheap to share between threads.
#[derive(Debug, Default)]
pub struct Context {
    flags: ContextFlags,
    credentials: RwLock<Arc<Credentials>>,
    verify_time: RwLock<Option<UnixSeconds>>,
}

impl Context {
    /// An empty context with these policy flags.
    pub fn new(flags: ContextFlags) -> Context {
        Context {
            flags,
            ..Context::default()
        }
    }

    /// The policy flags.
    pub fn flags(&self) -> ContextFlags {
        self.flags
    }

    /// The current snapshot of the credentials.
    pub fn credentials(&self) -> Arc<Credentials> {
        match self.credentials.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Adds PEM text of type `ty` (`virConnectAddCertData`).
    pub fn add_pem(&self, ty: CertDataType, pem: &str) -> Result<()> {
        let parsed = pem::parse(ty, pem.as_bytes(), &Source::Data)?;
        self.update(|c| c.apply(ty, parsed))
    }

    /// Adds a PEM or DER file of type `ty` (`virConnectAddCertDataFile`).
    pub fn add_file(&self, ty: CertDataType, path: &Path) -> Result<()> {
        let parsed = read_and_parse(ty, path)?;
        self.update(|c| c.apply(ty, parsed))
    }

    /// Loads the files of `files` (all or nothing), then runs the sanity check for its role
    /// unless the context has [`ContextFlags::NO_SANITY`]; errors found fail the load, as they
    /// make libvirt refuse to start.
    pub fn load_files(&self, files: &CredentialFiles) -> Result<LoadReport> {
        let mut report = LoadReport::default();
        let mut next = Credentials::clone(&self.credentials());
        for item in &files.files {
            if !item.path.exists() {
                if item.required {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "Cannot read {} '{}': No such file or directory ({})",
                            item.ty,
                            item.path.display(),
                            item.origin
                        ),
                    ));
                }
                report.absent.push((item.ty, item.path.clone()));
                continue;
            }
            next.apply(item.ty, read_and_parse(item.ty, &item.path)?)?;
            report
                .loaded
                .push((item.ty, item.path.clone(), item.origin));
        }
        if !self.flags.contains(ContextFlags::NO_SANITY) {
            sanity::check(&next, files.role, self.now()).into_result()?;
        }
        self.update(|c| {
            *c = next;
            Ok(())
        })?;
        Ok(report)
    }

    /// Loads libvirt's default files for `role` (`virPKIContextLoadDefault`): `pkipath`, or
    /// the user's and system locations by this process's user id.
    pub fn load_default(&self, role: Role, pkipath: Option<&Path>) -> Result<LoadReport> {
        self.load_files(&locations::libvirt(&Environment::current(), role, pkipath))
    }

    /// The sanity check of what the context holds for `role`, as libvirt runs it at load time.
    pub fn check(&self, role: Role) -> Report {
        sanity::check(&self.credentials(), role, self.now())
    }

    /// Verifies at `time` (seconds since the epoch) instead of the system clock; `None` resets.
    pub fn set_verify_time(&self, time: Option<UnixSeconds>) {
        match self.verify_time.write() {
            Ok(mut t) => *t = time,
            Err(poisoned) => *poisoned.into_inner() = time,
        }
    }

    /// The time verifications use: the one set, else the system clock.
    pub fn now(&self) -> UnixSeconds {
        let set = match self.verify_time.read() {
            Ok(t) => *t,
            Err(poisoned) => *poisoned.into_inner(),
        };
        set.unwrap_or_else(timefmt::now)
    }

    fn update(&self, change: impl FnOnce(&mut Credentials) -> Result<()>) -> Result<()> {
        let mut guard = match self.credentials.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = Credentials::clone(&guard);
        change(&mut next)?;
        *guard = Arc::new(next);
        Ok(())
    }
}

/// Reads and parses one file, remembering a key file's mode for the sanity check.
fn read_and_parse(ty: CertDataType, path: &Path) -> Result<Parsed> {
    let (bytes, mode) = pem::read_file(path, ty)?;
    let mut parsed = pem::parse(ty, &bytes, &Source::File(path.to_path_buf()))?;
    if let Parsed::PrivateKey(key) = &mut parsed {
        key.set_file_mode(mode);
    }
    Ok(parsed)
}
