//! The credential context: what is loaded, for which role, and the policy flags.
//!
//! Credentials are kept as an immutable snapshot ([`Credentials`]) behind a lock that is held
//! only to swap it: a verification takes the current snapshot and works without the lock, and
//! an addition parses and checks its input completely, then installs a new snapshot. That gives
//! all-or-nothing additions and lets threads verify while another one adds CRLs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::credentials::Credentials;
use crate::data_type::CertDataType;
use crate::dn_match::AllowedDnList;
use crate::error::{Error, ErrorKind, Result};
use crate::known::{KnownServers, KnownServersStore};
use crate::locations::{self, CredentialFiles, Environment, Origin};
use crate::pem::{self, Parsed};
use crate::role::Role;
use crate::sanity::{self, Report};
use crate::source::Source;
use crate::timefmt::{self, UnixSeconds};
use crate::validator::CertificateValidator;

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
#[derive(Default)]
pub struct Context {
    flags: ContextFlags,
    credentials: RwLock<Arc<Credentials>>,
    verify_time: RwLock<Option<UnixSeconds>>,
    validator: RwLock<Option<Arc<dyn CertificateValidator>>>,
    known_servers: RwLock<Option<Arc<dyn KnownServersStore>>>,
    allowed_dns: RwLock<Option<Arc<AllowedDnList>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("flags", &self.flags)
            .field("credentials", &self.credentials())
            .field("validator", &self.validator().is_some())
            .field("known_servers", &self.known_servers().is_some())
            .field("allowed_dns", &self.allowed_dn_list().map(|l| l.len()))
            .finish()
    }
}

/// Reads a lock's value even if a thread panicked while holding it (the values are plain data).
fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Replaces a lock's value, returning the old one.
fn replace<T>(lock: &RwLock<T>, value: T) -> T {
    match lock.write() {
        Ok(mut g) => std::mem::replace(&mut *g, value),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), value),
    }
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
        read(&self.credentials)
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

    /// Adds the bytes of a file the caller has read itself (with [`pem::read_file_as`]),
    /// parsed and named as [`add_file`](Self::add_file) would: a caller that checks files and
    /// then installs them checks the very bytes it writes, read once.
    pub fn add_file_data(
        &self,
        ty: CertDataType,
        path: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> Result<()> {
        let parsed = parse_file_data(ty, path, bytes, mode)?;
        self.update(|c| c.apply(ty, parsed))
    }

    /// Loads the files of `files` (all or nothing), then runs the sanity check for its role
    /// unless the context has [`ContextFlags::NO_SANITY`]; errors found fail the load, as they
    /// make libvirt refuse to start.
    pub fn load_files(&self, files: &CredentialFiles) -> Result<LoadReport> {
        let mut report = LoadReport::default();
        // The files are read and parsed outside the lock; what they hold is applied to the
        // snapshot current at install time, so an add made meanwhile by another thread is
        // kept (a copy taken before reading and put back after would drop it).
        let mut parsed = Vec::with_capacity(files.files.len());
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
            parsed.push((item.ty, read_and_parse(item.ty, &item.path)?));
            report
                .loaded
                .push((item.ty, item.path.clone(), item.origin));
        }
        let sanity = (!self.flags.contains(ContextFlags::NO_SANITY)).then(|| self.now());
        self.update(|c| {
            let mut next = c.clone();
            for (ty, parsed) in parsed {
                next.apply(ty, parsed)?;
            }
            if let Some(now) = sanity {
                sanity::check(&next, files.role, now).into_result()?;
            }
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
        replace(&self.verify_time, time);
    }

    /// The time verifications use: the one set, else the system clock.
    pub fn now(&self) -> UnixSeconds {
        read(&self.verify_time).unwrap_or_else(timefmt::now)
    }

    /// Sets the application's certificate validator; returns the previous one, so that a
    /// caller can release what it holds (verifications under way keep their own reference).
    pub fn set_validator(
        &self,
        validator: Option<Arc<dyn CertificateValidator>>,
    ) -> Option<Arc<dyn CertificateValidator>> {
        replace(&self.validator, validator)
    }

    /// The validator, if one is set.
    pub fn validator(&self) -> Option<Arc<dyn CertificateValidator>> {
        read(&self.validator)
    }

    /// Keeps accepted-always certificates in `store` and consults it on every verification.
    pub fn set_known_servers(&self, store: Option<Arc<dyn KnownServersStore>>) {
        replace(&self.known_servers, store);
    }

    /// Opens the known-servers file at `path` (created on first use) and uses it.
    pub fn set_known_servers_file(&self, path: &Path) -> Result<()> {
        let store = KnownServers::open(path)?;
        self.set_known_servers(Some(Arc::new(store)));
        Ok(())
    }

    /// The known-servers store, if one is set.
    pub fn known_servers(&self) -> Option<Arc<dyn KnownServersStore>> {
        read(&self.known_servers)
    }

    /// Daemon role: `tls_allowed_dn_list`. `None`: no DN check; an empty list: nobody.
    pub fn set_allowed_dn_list<S: AsRef<str>>(&self, patterns: Option<&[S]>) -> Result<()> {
        let list = patterns.map(AllowedDnList::new).transpose()?.map(Arc::new);
        replace(&self.allowed_dns, list);
        Ok(())
    }

    /// The allowed-DN list, if one is set.
    pub fn allowed_dn_list(&self) -> Option<Arc<AllowedDnList>> {
        read(&self.allowed_dns)
    }

    /// Installs a new snapshot made by `change`, all or nothing.
    ///
    /// Copy on write: when no one else holds the current snapshot (no verification under way
    /// took it), it is changed in place, so adding certificates one at a time costs what is
    /// added, not what is loaded; otherwise it is cloned first, which copies reference counts
    /// ([`Certificate`](crate::cert::Certificate) and [`Crl`](crate::crl::Crl) share
    /// their contents).
    ///
    /// All or nothing: `change` fails only before it has changed anything (as
    /// [`Credentials::apply`] does), so the snapshot stays as it was. The snapshot is changed
    /// where it lies in the lock (the lock's reference counts as the one owner), never taken
    /// out, so not even a panic in `change` can leave the context empty.
    fn update(&self, change: impl FnOnce(&mut Credentials) -> Result<()>) -> Result<()> {
        let mut guard = match self.credentials.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(Arc::make_mut(&mut *guard))
    }
}

/// Reads and parses one file, remembering a key file's mode for the sanity check.
fn read_and_parse(ty: CertDataType, path: &Path) -> Result<Parsed> {
    let (bytes, mode) = pem::read_file(path, ty)?;
    parse_file_data(ty, path, &bytes, mode)
}

/// Parses the bytes of the file `path` (mode `mode`).
fn parse_file_data(ty: CertDataType, path: &Path, bytes: &[u8], mode: u32) -> Result<Parsed> {
    let mut parsed = pem::parse(ty, bytes, &Source::File(path.to_path_buf()))?;
    if let Parsed::PrivateKey(key) = &mut parsed {
        key.set_file_mode(mode);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while a change is made (caught, as the C boundary does) leaves the credentials
    /// that were there; the snapshot used to be taken out of the lock and lost.
    #[test]
    fn a_panic_during_an_update_keeps_the_credentials() {
        let ctx = Context::new(ContextFlags::default());
        let pem = crate::generate::create_ca(&crate::generate::CaParams {
            common_name: "Update CA".into(),
            organization: None,
            validity: crate::generate::Validity::days_from_now(30),
            key_type: crate::generate::KeyType::EcdsaP256,
        })
        .unwrap()
        .cert_pem;
        ctx.add_pem(CertDataType::CaCert, &pem).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.update(|_| panic!("in the middle of a change"))
        }));
        assert!(caught.is_err());
        assert_eq!(ctx.credentials().ca_certs.len(), 1);
        ctx.add_pem(CertDataType::CaCert, &pem).unwrap();
        assert_eq!(ctx.credentials().ca_certs.len(), 2);
    }
}
