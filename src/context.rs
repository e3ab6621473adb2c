//! The credential context: what is loaded, for which role, and the policy flags.
//!
//! Credentials are kept as an immutable snapshot ([`Credentials`]) behind a lock that is held
//! only to swap it: a verification takes the current snapshot and works without the lock, and
//! an addition parses and checks its input completely, then installs a new snapshot. That gives
//! all-or-nothing additions and lets threads verify while another one adds CRLs.
//!
//! Every addition is also recorded, in order, so that [`Context::reload`] can read
//! the files again and build a whole new snapshot the same way, then swap it in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use zeroize::Zeroizing;

use crate::credentials::{Credentials, Identity};
use crate::data_type::CertDataType;
use crate::dn_match::AllowedDnList;
use crate::error::{Error, ErrorKind, Result};
use crate::known::{KnownServers, KnownServersStore};
use crate::locations::{self, CredentialFiles, Environment, Located, Origin};
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

/// Which file each item of a load came from, and what could not be loaded.
///
/// Not `Clone` or `PartialEq`: a failure keeps its [`Error`], with the cause.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Items loaded: type, file, why that file.
    pub loaded: Vec<(CertDataType, PathBuf, Origin)>,
    /// Optional items whose file does not exist.
    pub absent: Vec<(CertDataType, PathBuf)>,
    /// Items a tolerant load ([`Context::load_files_tolerant`]) could not load, in file order:
    /// a required file that does not exist (its error's [`source`](std::error::Error::source)
    /// is an [`std::io::Error`] of kind `NotFound`), or one that cannot be read or parsed.
    /// Always empty after [`Context::load_files`], which fails instead.
    pub failed: Vec<(CertDataType, PathBuf, Error)>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (ty, path, origin) in &self.loaded {
            writeln!(f, "{ty}: {} ({origin})", path.display())?;
        }
        for (ty, path) in &self.absent {
            writeln!(f, "{ty}: none ({} does not exist)", path.display())?;
        }
        for (ty, path, error) in &self.failed {
            writeln!(f, "{ty}: not loaded from {}: {error}", path.display())?;
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
    /// Days ahead the sanity check warns of expiry; `None`: the default.
    expiry_horizon: RwLock<Option<u32>>,
    validator: RwLock<Option<Arc<dyn CertificateValidator>>>,
    known_servers: RwLock<Option<Arc<dyn KnownServersStore>>>,
    allowed_dns: RwLock<Option<Arc<AllowedDnList>>>,
    /// What was added, in order, for [`Context::reload`]. Its lock is taken before the
    /// credentials' lock by every change, so the record's order is the order the changes
    /// were applied in, and a reload (which holds it throughout) never misses an addition.
    loads: Mutex<Vec<Load>>,
}

/// One addition as [`Context::reload`] replays it. Not `Debug`: text may be a private key.
enum Load {
    /// PEM text ([`Context::add_pem`]): kept as it was (parsed again, with the same result);
    /// wiped when dropped, as it may be a private key.
    Text(CertDataType, Zeroizing<String>),
    /// One file ([`Context::add_file`], [`Context::add_file_data`]): read again.
    File(CertDataType, PathBuf),
    /// A list of files ([`Context::load_files`]): the same list read again, by its rules
    /// (a required file must be there, an optional one is loaded if it is); with `true`, a
    /// QEMU directory's identities are found again by QEMU's rules (not after a tolerant
    /// load, whose failed files stay left out).
    Files(CredentialFiles, bool),
    /// A further identity ([`Context::add_identity`], [`Context::add_identity_files`]): its
    /// certificate and key read again (text kept, files re-read) and added after the others.
    Identity { role: Role, cert: Piece, key: Piece },
    /// libvirt's default files ([`Context::load_default`]): located again by libvirt's rules
    /// (a user file that appeared since is chosen over the system one, as libvirt would).
    Default {
        env: Environment,
        role: Role,
        pkipath: Option<PathBuf>,
        /// The types a later addition replaced: left out when the files are located again.
        superseded: Vec<CertDataType>,
    },
}

/// One half of a recorded identity.
enum Piece {
    /// PEM text, wiped when dropped.
    Text(Zeroizing<String>),
    /// A file, read again.
    File(PathBuf),
}

impl Piece {
    fn parse(&self, ty: CertDataType) -> Result<Parsed> {
        match self {
            Piece::Text(text) => pem::parse(ty, text.as_bytes(), &Source::Data),
            Piece::File(path) => read_and_parse(ty, path),
        }
    }
}

/// Whether an addition of `ty` replaces what an earlier one of `ty` set (an identity's
/// certificate or key), rather than adding to it (CAs, trusted servers, CRLs).
fn replaces(ty: CertDataType) -> bool {
    matches!(
        ty,
        CertDataType::ClientCert
            | CertDataType::ServerCert
            | CertDataType::ClientKey
            | CertDataType::ServerKey
    )
}

/// Drops from the record what a new addition of `ty` replaced, as the addition replaced it in
/// the credentials: a reload reads only the file that is in use, not one replaced since (which
/// may be gone: a reload then failed on it), and the record does not grow with each
/// replacement. A list of files keeps its other files; libvirt's default files are located
/// again without `ty`.
fn supersede(loads: &mut Vec<Load>, ty: CertDataType) {
    if !replaces(ty) {
        return;
    }
    loads.retain_mut(|load| match load {
        Load::Text(t, _) | Load::File(t, _) => *t != ty,
        // Further identities add up; only the first one is replaced.
        Load::Identity { .. } => true,
        Load::Files(files, _) => {
            files.files.retain(|f| f.ty != ty);
            true
        }
        Load::Default { superseded, .. } => {
            if !superseded.contains(&ty) {
                superseded.push(ty);
            }
            true
        }
    });
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

/// `path` made absolute against the current directory now, without resolving links: a reload
/// reads the same name even after the process changed directory, and follows a link that
/// rotation swapped.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `files` with every path made [`absolute`].
fn absolute_files(files: &CredentialFiles) -> CredentialFiles {
    let mut files = files.clone();
    for item in &mut files.files {
        item.path = absolute(&item.path);
    }
    for (cert, key) in &mut files.extra_identities {
        *cert = absolute(cert);
        *key = absolute(key);
    }
    files
}

/// Reads a lock's value even if a thread panicked while holding it (the values are plain data).
fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Locks a mutex even if a thread panicked while holding it (changes are all or nothing).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
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
        self.update_recorded(Load::Text(ty, Zeroizing::new(pem.to_owned())), &[ty], |c| {
            c.apply(ty, parsed)
        })
    }

    /// Adds a PEM or DER file of type `ty` (`virConnectAddCertDataFile`).
    pub fn add_file(&self, ty: CertDataType, path: &Path) -> Result<()> {
        let parsed = read_and_parse(ty, path)?;
        self.update_recorded(Load::File(ty, absolute(path)), &[ty], |c| {
            c.apply(ty, parsed)
        })
    }

    /// Adds the bytes of a file the caller has read itself (with [`pem::read_file_as`]),
    /// parsed and named as [`add_file`](Self::add_file) would: a caller that checks files and
    /// then installs them checks the very bytes it writes, read once. A
    /// [`reload`](Self::reload) reads `path` again.
    pub fn add_file_data(
        &self,
        ty: CertDataType,
        path: &Path,
        bytes: &[u8],
        mode: u32,
    ) -> Result<()> {
        let parsed = parse_file_data(ty, path, bytes, mode)?;
        self.update_recorded(Load::File(ty, absolute(path)), &[ty], |c| {
            c.apply(ty, parsed)
        })
    }

    /// Adds a further identity of `role` from PEM text: a certificate (its chain may follow
    /// it) and its private key, checked as a pair (`KeyMismatch` names both). The first
    /// identity, which [`add_pem`](Self::add_pem) of a certificate or key type replaces, stays
    /// as it is; identities are offered to peers in the order added, after the first
    /// (see [`crate::tls`]). All or nothing; a [`reload`](Self::reload) parses the text again.
    pub fn add_identity(&self, role: Role, cert_pem: &str, key_pem: &str) -> Result<()> {
        let load = Load::Identity {
            role,
            cert: Piece::Text(Zeroizing::new(cert_pem.to_owned())),
            key: Piece::Text(Zeroizing::new(key_pem.to_owned())),
        };
        self.add_identity_as(role, load)
    }

    /// [`add_identity`](Self::add_identity) from a certificate file and a key file (PEM or
    /// DER); a [`reload`](Self::reload) reads both again.
    pub fn add_identity_files(&self, role: Role, cert: &Path, key: &Path) -> Result<()> {
        let load = Load::Identity {
            role,
            cert: Piece::File(absolute(cert)),
            key: Piece::File(absolute(key)),
        };
        self.add_identity_as(role, load)
    }

    fn add_identity_as(&self, role: Role, load: Load) -> Result<()> {
        let Load::Identity { cert, key, .. } = &load else {
            return Err(Error::new(ErrorKind::Internal, "not an identity"));
        };
        let identity =
            Identity::checked_pair(cert.parse(role.cert_type())?, key.parse(role.key_type())?)?;
        self.update_recorded(load, &[], |c| {
            c.push_identity(role, identity);
            Ok(())
        })
    }

    /// Loads the files of `files` (all or nothing), then runs the sanity check for its role
    /// unless the context has [`ContextFlags::NO_SANITY`]; errors found fail the load, as they
    /// make libvirt refuse to start.
    ///
    /// Its further identities (`extra_identities`, QEMU's numbered files) are added after the
    /// ones already loaded, as [`add_identity_files`](Self::add_identity_files) adds them.
    pub fn load_files(&self, files: &CredentialFiles) -> Result<LoadReport> {
        self.load_files_as(files, Load::Files(absolute_files(files), true))
    }

    /// [`load_files`](Self::load_files), recorded as `load` for a reload.
    fn load_files_as(&self, files: &CredentialFiles, load: Load) -> Result<LoadReport> {
        // The files are read and parsed outside the lock; what they hold is applied to the
        // snapshot current at install time, so an add made meanwhile by another thread is
        // kept (a copy taken before reading and put back after would drop it).
        let (mut report, parsed, extra) = read_files(files, Walk::StopAtFailure);
        if !report.failed.is_empty() {
            return Err(report.failed.swap_remove(0).2);
        }
        // Only the listed types replace what earlier loads set; further identities add up.
        let types: Vec<CertDataType> = parsed.iter().map(|(item, _)| item.ty).collect();
        report.loaded = parsed
            .iter()
            .map(|(item, _)| (item.ty, item.path.clone(), item.origin))
            .chain(extra.iter().flat_map(|e| e.loaded()))
            .collect();
        let sanity = (!self.flags.contains(ContextFlags::NO_SANITY)).then(|| self.now());
        let horizon = self.expiry_horizon();
        self.update_recorded(load, &types, |c| {
            let mut next = c.clone();
            for (item, parsed) in parsed {
                next.apply(item.ty, parsed)?;
            }
            for e in extra {
                next.push_identity(files.role, e.identity);
            }
            if let Some(now) = sanity {
                // Only errors fail the load: an expiry warning never does.
                sanity::check_with_horizon(&next, files.role, now, horizon).into_result()?;
            }
            *c = next;
            Ok(())
        })?;
        Ok(report)
    }

    /// Loads whatever of `files` can be loaded and reports the rest in
    /// [`LoadReport::failed`], for a tool that shows what is wrong with each file
    /// (`virtpki probe`) rather than a program that needs its credentials whole.
    ///
    /// Not all or nothing, and no sanity check runs, whatever the context's flags: what is
    /// loaded may be incomplete or inconsistent. Run [`check`](Self::check) before relying
    /// on it.
    ///
    /// A [`reload`](Self::reload) reads again the files that loaded here, all or nothing (and
    /// looks again for the optional ones that were absent); the files that failed are left out.
    pub fn load_files_tolerant(&self, files: &CredentialFiles) -> LoadReport {
        let (mut report, parsed, extra) = read_files(files, Walk::Tolerant);
        let mut loads = lock(&self.loads);
        let mut types = Vec::new();
        self.update(|c| {
            for (item, parsed) in parsed {
                // apply fails only before changing anything: the others still go in.
                match c.apply(item.ty, parsed) {
                    Ok(()) => {
                        types.push(item.ty);
                        report
                            .loaded
                            .push((item.ty, item.path.clone(), item.origin))
                    }
                    Err(e) => report.failed.push((item.ty, item.path.clone(), e)),
                }
            }
            for e in extra {
                report.loaded.extend(e.loaded());
                c.push_identity(files.role, e.identity);
            }
        });
        let failed = |path: &Path| report.failed.iter().any(|(_, p, _)| p == path);
        let kept = files
            .files
            .iter()
            .filter(|f| !failed(&f.path))
            .cloned()
            .collect();
        let kept_extra = files
            .extra_identities
            .iter()
            .filter(|(c, k)| !failed(c) && !failed(k))
            .cloned()
            .collect();
        for ty in types {
            supersede(&mut loads, ty);
        }
        loads.push(Load::Files(
            absolute_files(&CredentialFiles {
                files: kept,
                extra_identities: kept_extra,
                ..files.clone()
            }),
            false,
        ));
        report
    }

    /// Loads libvirt's default files for `role` (`virPKIContextLoadDefault`): `pkipath`, or
    /// the user's and system locations by this process's user id.
    pub fn load_default(&self, role: Role, pkipath: Option<&Path>) -> Result<LoadReport> {
        let env = Environment::current();
        let files = locations::libvirt(&env, role, pkipath);
        let load = Load::Default {
            env,
            role,
            pkipath: pkipath.map(absolute),
            superseded: Vec::new(),
        };
        self.load_files_as(&files, load)
    }

    /// Reads again every file the context loaded ([`add_file`](Self::add_file),
    /// [`load_files`](Self::load_files), [`load_default`](Self::load_default), ...) and
    /// replaces the credentials with what they hold now, all or nothing (libvirt's
    /// `virt-admin server-update-tls`).
    ///
    /// The additions are made again in their order on empty credentials, so a later addition
    /// of a type replaces or extends an earlier one as it did the first time; PEM text added
    /// with [`add_pem`](Self::add_pem) is kept as it was; a QEMU directory loaded with
    /// [`load_files`](Self::load_files) has its numbered identities found again by QEMU's
    /// rules (one added since is taken, one removed since dropped). Unless the context has
    /// [`ContextFlags::NO_SANITY`], the new set is checked for the role of each load (and of
    /// each identity it holds; the client's when nothing says which) and refused on an error
    /// finding the credentials in use do not have, naming the file and the finding: a reload
    /// never makes them worse, and is not refused for what they always lacked (a pinned server
    /// without a CA). On any failure the old credentials stay. Paths are recorded absolute when added,
    /// so a process that changes its directory afterwards reloads the same files. An addition
    /// of a certificate or key that replaced an earlier one of its type also replaces it in
    /// the record: a reload reads only the file in use, and the record does not grow.
    ///
    /// On success the new snapshot replaces the old one at once: a verification or handshake
    /// under way, and every established session, keeps the snapshot it started with; every
    /// later one takes the new set. An addition made while a reload runs waits for it and is
    /// applied to the new set. A context with nothing added has nothing to reload: `Ok`.
    pub fn reload(&self) -> Result<()> {
        let loads = lock(&self.loads);
        if loads.is_empty() {
            return Ok(());
        }
        let refused = |e: Error| {
            Error::new(
                e.kind(),
                format!(
                    "reload refused, the credentials loaded before stay: {}",
                    e.message()
                ),
            )
            .with_source(e)
        };
        let mut next = Credentials::default();
        let mut roles = Vec::new();
        for load in loads.iter() {
            match load {
                Load::Text(ty, text) => {
                    let parsed =
                        pem::parse(*ty, text.as_bytes(), &Source::Data).map_err(refused)?;
                    next.apply(*ty, parsed).map_err(refused)?;
                }
                Load::File(ty, path) => {
                    let parsed = read_and_parse(*ty, path).map_err(refused)?;
                    next.apply(*ty, parsed).map_err(refused)?;
                }
                Load::Files(files, rescan) => {
                    replay_files(&mut next, files, *rescan).map_err(refused)?;
                    roles.push(files.role);
                }
                Load::Identity { role, cert, key } => {
                    let identity = cert
                        .parse(role.cert_type())
                        .and_then(|c| Identity::checked_pair(c, key.parse(role.key_type())?))
                        .map_err(refused)?;
                    next.push_identity(*role, identity);
                    roles.push(*role);
                }
                Load::Default {
                    env,
                    role,
                    pkipath,
                    superseded,
                } => {
                    let mut files = locations::libvirt(env, *role, pkipath.as_deref());
                    files.files.retain(|f| !superseded.contains(&f.ty));
                    replay_files(&mut next, &files, false).map_err(refused)?;
                    roles.push(*role);
                }
            }
        }
        if !self.flags.contains(ContextFlags::NO_SANITY) {
            for role in [Role::Client, Role::Server] {
                if next.identities(role).next().is_some() {
                    roles.push(role);
                }
            }
            if roles.is_empty() {
                roles.push(Role::Client);
            }
            roles.sort_by_key(|r| r.name());
            roles.dedup();
            let (now, horizon) = (self.now(), self.expiry_horizon());
            let current = self.credentials();
            for role in roles {
                let before = sanity::check_with_horizon(&current, role, now, horizon);
                let after = sanity::check_with_horizon(&next, role, now, horizon);
                refuse_new_errors(&before, &after)?;
            }
        }
        replace(&self.credentials, Arc::new(next));
        Ok(())
    }

    /// The sanity check of what the context holds for `role`, as libvirt runs it at load time.
    pub fn check(&self, role: Role) -> Report {
        sanity::check_with_horizon(&self.credentials(), role, self.now(), self.expiry_horizon())
    }

    /// Verifies at `time` (seconds since the epoch) instead of the system clock; `None` resets.
    pub fn set_verify_time(&self, time: Option<UnixSeconds>) {
        replace(&self.verify_time, time);
    }

    /// The time verifications use: the one set, else the system clock.
    pub fn now(&self) -> UnixSeconds {
        read(&self.verify_time).unwrap_or_else(timefmt::now)
    }

    /// The sanity check ([`check`](Self::check), and the one [`load_files`](Self::load_files)
    /// runs) warns of every certificate and CRL that expires within `days` of
    /// [`now`](Self::now) ([`Rule::ExpiresSoon`](crate::Rule::ExpiresSoon)); 0 turns the
    /// warning off (what has expired stays an error). More than
    /// [`sanity::MAX_EXPIRY_HORIZON_DAYS`] is refused (`InvalidArg`), the horizon unchanged.
    pub fn set_expiry_horizon(&self, days: u32) -> Result<()> {
        if days > sanity::MAX_EXPIRY_HORIZON_DAYS {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "an expiry horizon of {days} days is more than the {} days (ten years) \
                     allowed",
                    sanity::MAX_EXPIRY_HORIZON_DAYS
                ),
            ));
        }
        replace(&self.expiry_horizon, Some(days));
        Ok(())
    }

    /// The expiry horizon in days: the one set, else
    /// [`sanity::DEFAULT_EXPIRY_HORIZON_DAYS`] (30).
    pub fn expiry_horizon(&self) -> u32 {
        read(&self.expiry_horizon).unwrap_or(sanity::DEFAULT_EXPIRY_HORIZON_DAYS)
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

    /// [`update`](Self::update), recording `load` for a reload when `change` succeeds; the
    /// earlier records of the `set` types it replaces are dropped ([`supersede`]).
    fn update_recorded(
        &self,
        load: Load,
        set: &[CertDataType],
        change: impl FnOnce(&mut Credentials) -> Result<()>,
    ) -> Result<()> {
        let mut loads = lock(&self.loads);
        self.update(change)?;
        for ty in set {
            supersede(&mut loads, *ty);
        }
        loads.push(load);
        Ok(())
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
    /// [`Credentials::apply`] does), so the snapshot stays as it was; a tolerant load's
    /// `change` applies what it can and records the rest. The snapshot is changed
    /// where it lies in the lock (the lock's reference counts as the one owner), never taken
    /// out, so not even a panic in `change` can leave the context empty.
    fn update<T>(&self, change: impl FnOnce(&mut Credentials) -> T) -> T {
        let mut guard = match self.credentials.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(Arc::make_mut(&mut *guard))
    }
}

/// Reads `files` again into `next` for a reload: the first file that cannot be read fails it.
fn replay_files(next: &mut Credentials, files: &CredentialFiles, rescan: bool) -> Result<()> {
    let again = rescan.then(|| qemu_dir_again(files)).flatten();
    let files = again.as_ref().unwrap_or(files);
    let (mut report, parsed, extra) = read_files(files, Walk::StopAtFailure);
    if !report.failed.is_empty() {
        return Err(report.failed.swap_remove(0).2);
    }
    for (item, parsed) in parsed {
        next.apply(item.ty, parsed)?;
    }
    for e in extra {
        next.push_identity(files.role, e.identity);
    }
    Ok(())
}

/// The files of a QEMU directory ([`locations::qemu_dir`]) as QEMU finds them now, for a
/// reload: QEMU scans its numbered identities again whenever it loads the directory, so one
/// added since is taken and one removed since dropped (a fixed list would refuse every reload
/// after an identity was retired). A type an addition replaced since stays left out. `None`
/// for any other list of files.
fn qemu_dir_again(files: &CredentialFiles) -> Option<CredentialFiles> {
    if !files.files.iter().all(|f| f.origin == Origin::QemuDir) {
        return None;
    }
    let ca = files.get(CertDataType::CaCert)?;
    let mut again = locations::qemu_dir(ca.path.parent()?, files.role);
    again
        .files
        .retain(|f| files.files.iter().any(|kept| kept.ty == f.ty));
    Some(again)
}

/// A reload's refusal of a set with error findings: each named with its file, the old
/// credentials kept.
/// Refuses `after` for an error finding `before` (the credentials in use) does not have: a
/// reload never makes the credentials worse, and is not refused for what they always lacked (a
/// pinned server without a CA has "no CA" before and after).
fn refuse_new_errors(before: &Report, after: &Report) -> Result<()> {
    let known = |f: &sanity::Finding| {
        before
            .errors()
            .any(|b| b.rule == f.rule && b.message == f.message)
    };
    let errors: Vec<&sanity::Finding> = after.errors().filter(|f| !known(f)).collect();
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let text: Vec<String> = errors
        .iter()
        .map(|f| match &f.source {
            Source::File(path) => format!("{}: {}", path.display(), f.detail()),
            _ => f.detail(),
        })
        .collect();
    Err(Error::new(
        first.kind,
        format!(
            "reload refused, the credentials loaded before stay: {}",
            text.join("; ")
        ),
    ))
}

/// Whether [`read_files`] goes on after a file that cannot be loaded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    StopAtFailure,
    Tolerant,
}

/// A further identity read from its two files.
struct ExtraIdentity {
    ty: (CertDataType, CertDataType),
    paths: (PathBuf, PathBuf),
    origin: Origin,
    identity: Identity,
}

impl ExtraIdentity {
    /// Its two files as [`LoadReport::loaded`] lists them.
    fn loaded(&self) -> [(CertDataType, PathBuf, Origin); 2] {
        [
            (self.ty.0, self.paths.0.clone(), self.origin),
            (self.ty.1, self.paths.1.clone(), self.origin),
        ]
    }
}

/// The parsed items of a [`read_files`], in file order.
type ParsedItems<'a> = Vec<(&'a Located, Parsed)>;

/// Reads and parses the files of `files` in order, then its further identities (both files
/// of each required, as QEMU refuses a half pair): the report's absent and failed items, and
/// what was parsed, to be applied by the caller.
fn read_files(
    files: &CredentialFiles,
    walk: Walk,
) -> (LoadReport, ParsedItems<'_>, Vec<ExtraIdentity>) {
    let mut report = LoadReport::default();
    let mut parsed = Vec::with_capacity(files.files.len());
    let mut extra = Vec::new();
    let role = files.role;
    let origin = files
        .get(role.cert_type())
        .map_or(Origin::QemuDir, |f| f.origin);
    let extras = files.extra_identities.iter().map(|(cert, key)| {
        [(role.cert_type(), cert), (role.key_type(), key)].map(|(ty, path)| Located {
            ty,
            path: path.clone(),
            origin,
            required: true,
        })
    });
    for item in &files.files {
        let read = if item.path.exists() {
            read_and_parse(item.ty, &item.path)
        } else if item.required {
            Err(missing(item))
        } else {
            report.absent.push((item.ty, item.path.clone()));
            continue;
        };
        match read {
            Ok(p) => parsed.push((item, p)),
            Err(e) => {
                report.failed.push((item.ty, item.path.clone(), e));
                if walk == Walk::StopAtFailure {
                    return (report, parsed, extra);
                }
            }
        }
    }
    for [cert, key] in extras {
        let read = |item: &Located| {
            if item.path.exists() {
                read_and_parse(item.ty, &item.path)
            } else {
                Err(missing(item))
            }
        };
        let (c, k) = (read(&cert), read(&key));
        match (c, k) {
            (Ok(c), Ok(k)) => match Identity::from_parsed(c, k) {
                Ok(identity) => extra.push(ExtraIdentity {
                    ty: (cert.ty, key.ty),
                    paths: (cert.path, key.path),
                    origin,
                    identity,
                }),
                Err(e) => report.failed.push((cert.ty, cert.path, e)),
            },
            (c, k) => {
                for (item, result) in [(cert, c.err()), (key, k.err())] {
                    if let Some(e) = result {
                        report.failed.push((item.ty, item.path, e));
                    }
                }
            }
        }
        if walk == Walk::StopAtFailure && !report.failed.is_empty() {
            break;
        }
    }
    (report, parsed, extra)
}

/// The error for a required file that does not exist.
fn missing(item: &Located) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "Cannot read {} '{}': No such file or directory ({})",
            item.ty,
            item.path.display(),
            item.origin
        ),
    )
    .with_source(std::io::Error::from(std::io::ErrorKind::NotFound))
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

    #[test]
    fn a_file_is_recorded_by_its_absolute_path_so_a_reload_after_chdir_reads_it_again() {
        let dir = std::env::current_dir().unwrap();
        let tmp = tempfile::tempdir_in(&dir).unwrap();
        std::fs::write(tmp.path().join("ca.pem"), ca_pem("Recorded CA")).unwrap();
        let relative = tmp.path().strip_prefix(&dir).unwrap().join("ca.pem");
        assert!(relative.is_relative());
        let ctx = Context::new(ContextFlags::NO_SANITY);
        ctx.add_file(CertDataType::CaCert, &relative).unwrap();
        let pkipath = relative.parent().unwrap();
        ctx.load_default(Role::Client, Some(pkipath)).ok();
        let loads = lock(&ctx.loads);
        let recorded: Vec<&Path> = loads
            .iter()
            .flat_map(|l| match l {
                Load::File(_, path) => vec![path.as_path()],
                Load::Default { pkipath, .. } => pkipath.iter().map(PathBuf::as_path).collect(),
                _ => vec![],
            })
            .collect();
        assert!(!recorded.is_empty());
        for path in recorded {
            assert!(path.is_absolute(), "{}", path.display());
            assert!(path.starts_with(&dir), "{}", path.display());
        }
    }

    /// A CA and two server certificates and keys of it, in `dir`: `ca.pem`, `s1.pem`,
    /// `k1.pem`, `s2.pem`, `k2.pem`.
    fn two_servers(dir: &Path) {
        use crate::generate::Validity;
        use crate::generate::{create_ca, CaParams, CertificateAuthority, KeyType, ServerParams};
        let ca = create_ca(&CaParams {
            common_name: "Record CA".into(),
            organization: None,
            validity: Validity::days_from_now(30),
            key_type: KeyType::EcdsaP256,
        })
        .unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
        let authority = CertificateAuthority::from_issued(&ca).unwrap();
        for n in 1..=2 {
            let s = authority
                .issue_server(&ServerParams {
                    common_name: format!("host{n}.example.com"),
                    dns_names: vec![],
                    ip_addresses: vec![],
                    organization: None,
                    validity: Validity::days_from_now(30),
                    key_type: KeyType::EcdsaP256,
                })
                .unwrap();
            std::fs::write(dir.join(format!("s{n}.pem")), &s.cert_pem).unwrap();
            let key = dir.join(format!("k{n}.pem"));
            std::fs::write(&key, s.key_pem.as_bytes()).unwrap();
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
    }

    /// The server certificate in use: its subject.
    fn server_subject(ctx: &Context) -> String {
        ctx.credentials().server.chain[0].subject().to_owned()
    }

    /// A second add of a certificate or key replaces the first in the record as in the
    /// credentials: the first file may then go, the reload reads only the second (it read
    /// both, and failed on the one deleted), and the record does not grow with repeats.
    #[test]
    fn a_replaced_file_is_not_read_again_by_a_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        two_servers(d);
        let ctx = Context::new(ContextFlags::default());
        ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
            .unwrap();
        for n in 1..=2 {
            ctx.add_file(CertDataType::ServerCert, &d.join(format!("s{n}.pem")))
                .unwrap();
            ctx.add_file(CertDataType::ServerKey, &d.join(format!("k{n}.pem")))
                .unwrap();
        }
        std::fs::remove_file(d.join("s1.pem")).unwrap();
        std::fs::remove_file(d.join("k1.pem")).unwrap();
        ctx.reload().unwrap();
        assert_eq!(server_subject(&ctx), "CN=host2.example.com");
        for _ in 0..100 {
            ctx.add_file(CertDataType::ServerCert, &d.join("s2.pem"))
                .unwrap();
            ctx.add_pem(
                CertDataType::ServerKey,
                &std::fs::read_to_string(d.join("k2.pem")).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(lock(&ctx.loads).len(), 3, "CA, certificate, key");
        ctx.reload().unwrap();
        // CAs add up: both stay recorded.
        ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
            .unwrap();
        assert_eq!(lock(&ctx.loads).len(), 4);
        ctx.reload().unwrap();
    }

    /// A certificate and key added after libvirt's default files replace the defaults' in the
    /// record: the default ones may go, and files loaded later replace earlier single adds.
    #[test]
    fn an_add_after_the_default_files_replaces_theirs_in_the_record() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        two_servers(d);
        let pki = d.join("pki");
        std::fs::create_dir(&pki).unwrap();
        for (from, to) in [
            ("ca.pem", "cacert.pem"),
            ("s1.pem", "servercert.pem"),
            ("k1.pem", "serverkey.pem"),
        ] {
            std::fs::copy(d.join(from), pki.join(to)).unwrap();
        }
        let ctx = Context::new(ContextFlags::default());
        ctx.load_default(Role::Server, Some(&pki)).unwrap();
        ctx.add_file(CertDataType::ServerCert, &d.join("s2.pem"))
            .unwrap();
        ctx.add_file(CertDataType::ServerKey, &d.join("k2.pem"))
            .unwrap();
        std::fs::remove_file(pki.join("servercert.pem")).unwrap();
        std::fs::remove_file(pki.join("serverkey.pem")).unwrap();
        ctx.reload().unwrap();
        assert_eq!(server_subject(&ctx), "CN=host2.example.com");

        // The other way round: the files loaded later replace the single adds.
        std::fs::copy(d.join("s1.pem"), pki.join("servercert.pem")).unwrap();
        std::fs::copy(d.join("k1.pem"), pki.join("serverkey.pem")).unwrap();
        let ctx = Context::new(ContextFlags::default());
        ctx.add_file(CertDataType::ServerCert, &d.join("s2.pem"))
            .unwrap();
        ctx.add_file(CertDataType::ServerKey, &d.join("k2.pem"))
            .unwrap();
        ctx.load_default(Role::Server, Some(&pki)).unwrap();
        std::fs::remove_file(d.join("s2.pem")).unwrap();
        ctx.reload().unwrap();
        assert_eq!(server_subject(&ctx), "CN=host1.example.com");
    }

    /// File A, then text, then file B, all of one identity type: the record holds B only (the
    /// text and A went with their replacement), and a reload reads B again. Of a type that adds
    /// up (CA certificates) all three stay, as in the credentials.
    #[test]
    fn file_text_file_of_one_type_leaves_the_last_in_the_record() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        two_servers(d);
        let ctx = Context::new(ContextFlags::NO_SANITY);
        ctx.add_file(CertDataType::ServerCert, &d.join("s1.pem"))
            .unwrap();
        let text = std::fs::read_to_string(d.join("s2.pem")).unwrap();
        ctx.add_pem(CertDataType::ServerCert, &text).unwrap();
        ctx.add_file(CertDataType::ServerCert, &d.join("s2.pem"))
            .unwrap();
        assert_eq!(lock(&ctx.loads).len(), 1);
        std::fs::remove_file(d.join("s1.pem")).unwrap();
        // B is rewritten with A's successor: the reload takes it.
        std::fs::write(d.join("s2.pem"), &text).unwrap();
        ctx.reload().unwrap();
        assert_eq!(server_subject(&ctx), "CN=host2.example.com");
        let ca = std::fs::read_to_string(d.join("ca.pem")).unwrap();
        ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
            .unwrap();
        ctx.add_pem(CertDataType::CaCert, &ca).unwrap();
        ctx.add_file(CertDataType::CaCert, &d.join("ca.pem"))
            .unwrap();
        assert_eq!(lock(&ctx.loads).len(), 4);
        ctx.reload().unwrap();
        assert_eq!(ctx.credentials().ca_certs.len(), 3);
    }

    fn ca_pem(name: &str) -> String {
        crate::generate::create_ca(&crate::generate::CaParams {
            common_name: name.into(),
            organization: None,
            validity: crate::generate::Validity::days_from_now(30),
            key_type: crate::generate::KeyType::EcdsaP256,
        })
        .unwrap()
        .cert_pem
    }

    /// A tolerant load loads the good file and names each other one with its path and error;
    /// the strict load of the same files fails on the first and loads nothing.
    #[test]
    fn a_tolerant_load_loads_what_it_can_and_reports_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("cacert.pem");
        std::fs::write(&good, ca_pem("Tolerant CA")).unwrap();
        let broken = dir.path().join("clientcert.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
        let missing = dir.path().join("clientkey.pem");
        let absent = dir.path().join("cacrl.pem");
        let item = |ty, path: &PathBuf, required| Located {
            ty,
            path: path.clone(),
            origin: Origin::PkiPath,
            required,
        };
        let files = CredentialFiles {
            role: Role::Client,
            files: vec![
                item(CertDataType::CaCert, &good, true),
                item(CertDataType::CaCrl, &absent, false),
                item(CertDataType::ClientKey, &missing, true),
                item(CertDataType::ClientCert, &broken, true),
            ],
            extra_identities: Vec::new(),
        };

        let strict = Context::new(ContextFlags::NO_SANITY);
        let err = strict.load_files(&files).unwrap_err();
        assert!(err.message().contains("clientkey.pem"), "{err}");
        assert!(strict.credentials().ca_certs.is_empty());

        // Sanity checks on: a tolerant load runs none (no identity here would be an error).
        let ctx = Context::new(ContextFlags::default());
        let report = ctx.load_files_tolerant(&files);
        assert_eq!(
            report.loaded,
            [(CertDataType::CaCert, good.clone(), Origin::PkiPath)]
        );
        assert_eq!(report.absent, [(CertDataType::CaCrl, absent.clone())]);
        let failed: Vec<_> = report
            .failed
            .iter()
            .map(|(ty, path, e)| (*ty, path.clone(), e.kind()))
            .collect();
        assert_eq!(
            failed,
            [
                (CertDataType::ClientKey, missing.clone(), ErrorKind::Io),
                (CertDataType::ClientCert, broken.clone(), ErrorKind::Parse),
            ]
        );
        let (_, _, not_found) = &report.failed[0];
        assert!(not_found.message().contains("clientkey.pem"), "{not_found}");
        let cause = std::error::Error::source(not_found)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(std::io::Error::kind);
        assert_eq!(cause, Some(std::io::ErrorKind::NotFound));
        let (_, _, unparsable) = &report.failed[1];
        assert!(
            unparsable.message().contains("clientcert.pem"),
            "{unparsable}"
        );
        assert_eq!(ctx.credentials().ca_certs.len(), 1);
        assert!(ctx.credentials().client.is_empty());
        let text = report.to_string();
        assert!(
            text.contains("client private key: not loaded from ")
                && text.contains("clientkey.pem: Cannot read client private key"),
            "{text}"
        );
    }

    /// A panic while a change is made (caught, as the C boundary does) leaves the credentials
    /// that were there; the snapshot used to be taken out of the lock and lost.
    #[test]
    fn a_panic_during_an_update_keeps_the_credentials() {
        let ctx = Context::new(ContextFlags::default());
        let pem = ca_pem("Update CA");
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
