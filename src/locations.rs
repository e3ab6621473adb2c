//! Where credentials live: libvirt's default files, QEMU's x509 directory, and the tree of the
//! certificate-management proposal.
//!
//! libvirt's rules (src/rpc/virnettlsconfig.c and virnettlscontext.c):
//!
//! | set | CA | CRL | certificate | key |
//! |---|---|---|---|---|
//! | system (root) | /etc/pki/CA/cacert.pem | /etc/pki/CA/cacrl.pem | /etc/pki/libvirt/{server,client}cert.pem | /etc/pki/libvirt/private/{server,client}key.pem |
//! | user (non-root) | ~/.pki/libvirt/cacert.pem | ~/.pki/libvirt/cacrl.pem | ~/.pki/libvirt/{server,client}cert.pem | ~/.pki/libvirt/{server,client}key.pem |
//! | `pkipath=DIR` | DIR/cacert.pem | DIR/cacrl.pem | DIR/{server,client}cert.pem | DIR/{server,client}key.pem |
//!
//! A non-root process tries the user files first: the CA and the CRL each fall back to the
//! system file on their own, the certificate and key as a pair. Root uses the system files only.
//! Under `pkipath` the CA must be in DIR, but a missing CRL or certificate/key pair falls back
//! to the system files (what libvirt's code does, although its documentation says otherwise).
//! The CA is required; the CRL is optional; a daemon needs its certificate and key, a client
//! may go without.
//!
//! libvirt reads one identity per role: no numbered identity files (QEMU 10.2's
//! `server-cert-N.pem`) are known for libvirt's own TLS, so none are located here; several
//! identities come from a QEMU directory ([`qemu_dir`]) or are added one by one.
//!
//! Nothing here reads the files: [`Environment`] fixes the root directory, home directory and
//! user id, so that tests (and `virtpki install --root`) never touch the real /etc/pki.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::data_type::CertDataType;
use crate::role::Role;

/// Why a file is the one used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// libvirt's system-wide location.
    System,
    /// The user's `~/.pki/libvirt`.
    User,
    /// The system file, because the user or pkipath file is missing.
    SystemFallback,
    /// The directory given as `pkipath`.
    PkiPath,
    /// A QEMU x509 directory (`ca-cert.pem`, ...).
    QemuDir,
    /// The certificate-management proposal's tree (`ca/cert.pem`, ...).
    ProposalTree,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::System => "system location",
            Origin::User => "user location",
            Origin::SystemFallback => "system location (fallback)",
            Origin::PkiPath => "pkipath",
            Origin::QemuDir => "QEMU x509 directory",
            Origin::ProposalTree => "certificate tree",
        })
    }
}

/// One credential file to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// What the file holds, which also decides where it goes in a context.
    pub ty: CertDataType,
    /// The file to load.
    pub path: PathBuf,
    /// Why this path, for messages.
    pub origin: Origin,
    /// Whether a missing file is an error (else the item is skipped).
    pub required: bool,
}

/// The files of one role, in load order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialFiles {
    /// The role whose files these are.
    pub role: Role,
    /// Each file with its type, in the order they are loaded.
    pub files: Vec<Located>,
    /// Further identities a QEMU directory holds (`server-cert-N.pem` and its key), which a
    /// context does not load but the sanity check can look at.
    pub extra_identities: Vec<(PathBuf, PathBuf)>,
}

impl CredentialFiles {
    /// The file chosen for `ty`, if any.
    pub fn get(&self, ty: CertDataType) -> Option<&Located> {
        self.files.iter().find(|f| f.ty == ty)
    }
}

/// The facts of the running process that libvirt's rules depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Prefix of the system paths: `/` normally, a temporary tree in tests.
    pub root: PathBuf,
    /// The home directory (`$HOME`, as GLib's g_get_home_dir() uses it).
    pub home: Option<PathBuf>,
    /// The effective user id: 0 uses the system files only.
    pub uid: u32,
}

impl Environment {
    /// This process: root `/`, `$HOME` (else the password database), the effective uid.
    pub fn current() -> Environment {
        Environment {
            root: PathBuf::from("/"),
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(home_from_passwd),
            // SAFETY: geteuid has no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
        }
    }

    fn system(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// libvirt's system file for `ty`.
    pub fn system_file(&self, ty: CertDataType) -> PathBuf {
        self.system(match ty {
            CertDataType::CaCert => "/etc/pki/CA/cacert.pem",
            CertDataType::CaCrl => "/etc/pki/CA/cacrl.pem",
            CertDataType::ClientCert => "/etc/pki/libvirt/clientcert.pem",
            CertDataType::ClientKey => "/etc/pki/libvirt/private/clientkey.pem",
            CertDataType::ServerCert => "/etc/pki/libvirt/servercert.pem",
            CertDataType::ServerKey => "/etc/pki/libvirt/private/serverkey.pem",
            CertDataType::ServerTrusted => "/etc/pki/libvirt/trusted.pem",
        })
    }

    /// The user's libvirt PKI directory, `~/.pki/libvirt`.
    pub fn user_dir(&self) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(".pki/libvirt"))
    }
}

fn home_from_passwd() -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: `passwd` is a C struct of integers and pointers, for which all zeroes is a
    // valid value (null pointers); getpwuid_r fills it in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer length is its real size.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_dir points to a NUL-terminated string in `buf`.
    let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

/// The file name libvirt uses for `ty` inside a user or pkipath directory.
pub fn libvirt_file_name(ty: CertDataType) -> &'static str {
    match ty {
        CertDataType::CaCert => "cacert.pem",
        CertDataType::CaCrl => "cacrl.pem",
        CertDataType::ClientCert => "clientcert.pem",
        CertDataType::ClientKey => "clientkey.pem",
        CertDataType::ServerCert => "servercert.pem",
        CertDataType::ServerKey => "serverkey.pem",
        CertDataType::ServerTrusted => "trusted.pem",
    }
}

/// libvirt's files for `role`: `pkipath` if given, else by the process's user id.
pub fn libvirt(env: &Environment, role: Role, pkipath: Option<&Path>) -> CredentialFiles {
    let (cert_ty, key_ty) = (role.cert_type(), role.key_type());
    let identity_required = role == Role::Server;
    let system = |ty, origin| Located {
        ty,
        path: env.system_file(ty),
        origin,
        required: match ty {
            CertDataType::CaCert => true,
            CertDataType::CaCrl => false,
            _ => identity_required,
        },
    };
    let own_dir = match pkipath {
        Some(dir) => Some((dir.to_path_buf(), Origin::PkiPath)),
        None if env.uid != 0 => env.user_dir().map(|d| (d, Origin::User)),
        None => None,
    };
    let Some((dir, origin)) = own_dir else {
        return CredentialFiles {
            role,
            files: [CertDataType::CaCert, CertDataType::CaCrl, cert_ty, key_ty]
                .into_iter()
                .map(|ty| system(ty, Origin::System))
                .collect(),
            extra_identities: Vec::new(),
        };
    };
    let own = |ty| Located {
        path: dir.join(libvirt_file_name(ty)),
        origin,
        ..system(ty, origin)
    };
    let mut files = Vec::new();
    let ca = own(CertDataType::CaCert);
    // Under pkipath the CA must be there; a user directory falls back to the system CA.
    files.push(if origin == Origin::PkiPath || ca.path.exists() {
        ca
    } else {
        system(CertDataType::CaCert, Origin::SystemFallback)
    });
    let crl = own(CertDataType::CaCrl);
    files.push(if crl.path.exists() {
        crl
    } else {
        system(CertDataType::CaCrl, Origin::SystemFallback)
    });
    let (cert, key) = (own(cert_ty), own(key_ty));
    if cert.path.exists() && key.path.exists() {
        files.push(cert);
        files.push(key);
    } else {
        files.push(system(cert_ty, Origin::SystemFallback));
        files.push(system(key_ty, Origin::SystemFallback));
    }
    CredentialFiles {
        role,
        files,
        extra_identities: Vec::new(),
    }
}

/// QEMU's x509 directory (`tls-creds-x509,dir=...`, e.g. /etc/pki/qemu, /etc/pki/libvirt-vnc).
///
/// Every identity is listed by QEMU 10.2's rules (crypto/tlscredsx509.c, "support upto 5
/// parallel certificate identities"): the unnumbered pair (`server-cert.pem`,
/// `server-key.pem`; `client-…` for a client) first, then `-0` … `-3`, stopping at the first
/// number whose certificate and key are both absent; a half pair is an error (both its files
/// are required, so the load fails naming the missing one); files numbered 4 and above are
/// never read. The first identity found is the context's first identity, the others go in
/// `extra_identities`. [`qemu_identity_notes`] says what QEMU will not read, and that QEMU
/// before 10.2 reads only the unnumbered pair.
pub fn qemu_dir(dir: &Path, role: Role) -> CredentialFiles {
    let at = |ty, path: &Path, required| Located {
        ty,
        path: path.to_path_buf(),
        origin: Origin::QemuDir,
        required,
    };
    let mut files = vec![
        at(CertDataType::CaCert, &dir.join("ca-cert.pem"), true),
        at(CertDataType::CaCrl, &dir.join("ca-crl.pem"), false),
    ];
    let scan = scan_qemu(dir, role);
    let mut pairs = scan.pairs.into_iter();
    match pairs.next() {
        Some((cert, key)) => {
            files.push(at(role.cert_type(), &cert, true));
            files.push(at(role.key_type(), &key, true));
        }
        None => {
            // A server needs one; a client may go without (an anonymous client).
            let (cert, key) = unnumbered(dir, role);
            let required = role == Role::Server;
            files.push(at(role.cert_type(), &cert, required));
            files.push(at(role.key_type(), &key, required));
        }
    }
    CredentialFiles {
        role,
        files,
        extra_identities: pairs.collect(),
    }
}

/// The most numbered identities QEMU reads (`-0` … `-3`).
pub const QEMU_NUMBERED_IDENTITIES: usize = 4;

/// What [`qemu_identity_notes`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QemuIdentityNoteKind {
    /// A certificate without its key or a key without its certificate: QEMU 10.2 refuses
    /// the directory (QEMU before 10.2 ignores a lone unnumbered client half).
    HalfPair,
    /// A numbered file after a missing number: never read.
    Gap,
    /// A file numbered 4 or above: never read.
    BeyondMax,
    /// Numbered identities are read from QEMU 10.2 on only.
    NeedsQemu10_2,
    /// A number written with a leading zero (`server-cert-01.pem`): QEMU forms its names
    /// without one, so the file is never read.
    LeadingZero,
}

/// A finding about the identity files of a QEMU directory, with its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuIdentityNote {
    /// What kind of finding.
    pub kind: QemuIdentityNoteKind,
    /// Error: QEMU refuses the directory; warning: a file is not used as intended.
    pub severity: crate::severity::Severity,
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// What QEMU will make of the identity files of `dir` for `role` that loading them does not
/// show: half pairs, numbered files it never reads (a gap, a number above 3), and that QEMU
/// before 10.2 reads only the unnumbered pair. Empty for a directory with one unnumbered pair.
pub fn qemu_identity_notes(dir: &Path, role: Role) -> Vec<QemuIdentityNote> {
    scan_qemu(dir, role).notes
}

fn unnumbered(dir: &Path, role: Role) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{}-cert.pem", role.name())),
        dir.join(format!("{}-key.pem", role.name())),
    )
}

fn numbered(dir: &Path, role: Role, n: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{}-cert-{n}.pem", role.name())),
        dir.join(format!("{}-key-{n}.pem", role.name())),
    )
}

/// The identity pairs QEMU 10.2 loads from `dir`, in its order, and the notes.
struct QemuScan {
    pairs: Vec<(PathBuf, PathBuf)>,
    notes: Vec<QemuIdentityNote>,
}

fn scan_qemu(dir: &Path, role: Role) -> QemuScan {
    use crate::severity::Severity;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut pairs = Vec::new();
    let mut notes = Vec::new();
    let half = |cert: &Path, key: &Path, notes: &mut Vec<QemuIdentityNote>| {
        let (lone, other) = if cert.exists() {
            (cert, key)
        } else {
            (key, cert)
        };
        notes.push(QemuIdentityNote {
            kind: QemuIdentityNoteKind::HalfPair,
            severity: Severity::Error,
            path: lone.to_path_buf(),
            message: format!(
                "{} is there but not {}: QEMU 10.2 refuses the directory (\"Cert '…' without \
                 corresponding key '…'\")",
                lone.display(),
                name(other)
            ),
            fix: format!(
                "install {} next to it, or remove {}",
                name(other),
                lone.display()
            ),
        });
    };
    let (cert, key) = unnumbered(dir, role);
    match (cert.exists(), key.exists()) {
        (true, true) => pairs.push((cert.clone(), key.clone())),
        (false, false) => {}
        _ => {
            half(&cert, &key, &mut notes);
            pairs.push((cert.clone(), key.clone()));
        }
    }
    let has_unnumbered = cert.exists() || key.exists();
    let mut first_missing = None;
    let mut loaded_numbered = Vec::new();
    for n in 0..QEMU_NUMBERED_IDENTITIES {
        let (c, k) = numbered(dir, role, n);
        match (c.exists(), k.exists()) {
            (false, false) => {
                first_missing = Some(n);
                break;
            }
            (true, true) => {}
            _ => half(&c, &k, &mut notes),
        }
        loaded_numbered.push(name(&c));
        pairs.push((c, k));
    }
    // Every numbered file QEMU does not read: after the first missing number, above 3 (a
    // number too long to count is above 3 too), or written with a leading zero (QEMU forms
    // its names with "%zu").
    let mut unread: Vec<(usize, bool, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let digits = [
                format!("{}-cert-", role.name()),
                format!("{}-key-", role.name()),
            ]
            .iter()
            .find_map(|prefix| file.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.strip_suffix(".pem"))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))?;
            let padded = digits.len() > 1 && digits.starts_with('0');
            let n = digits.parse::<usize>().unwrap_or(usize::MAX);
            let read =
                !padded && n < QEMU_NUMBERED_IDENTITIES && first_missing.is_none_or(|m| n < m);
            (!read).then(|| (n, padded, entry.path()))
        })
        .collect();
    unread.sort();
    for (n, padded, path) in unread {
        let note = if padded {
            let (cert, key) = numbered(dir, role, n);
            let unpadded = if name(&path).starts_with(&format!("{}-cert-", role.name())) {
                cert
            } else {
                key
            };
            QemuIdentityNote {
                kind: QemuIdentityNoteKind::LeadingZero,
                severity: Severity::Warning,
                message: format!(
                    "{} is never read: QEMU writes its numbers without a leading zero",
                    path.display(),
                ),
                fix: format!(
                    "rename it to {} (numbered without a gap from 0 to 3), or remove it",
                    name(&unpadded)
                ),
                path,
            }
        } else if n >= QEMU_NUMBERED_IDENTITIES {
            QemuIdentityNote {
                kind: QemuIdentityNoteKind::BeyondMax,
                severity: Severity::Warning,
                message: format!(
                    "{} is never read: QEMU reads at most {r}-cert-0.pem … {r}-cert-3.pem \
                     (four identities after {r}-cert.pem)",
                    path.display(),
                    r = role.name()
                ),
                fix: format!(
                    "keep at most five {} identities, numbered without a gap from 0 to 3",
                    role.name()
                ),
                path,
            }
        } else {
            let m = first_missing.unwrap_or(0);
            QemuIdentityNote {
                kind: QemuIdentityNoteKind::Gap,
                severity: Severity::Warning,
                message: format!(
                    "{} is never read: {}-cert-{m}.pem is missing, and QEMU stops at the \
                     first missing number",
                    path.display(),
                    role.name()
                ),
                fix: format!(
                    "number the {} identities without a gap from 0: rename it to {}",
                    role.name(),
                    name(&path).replace(&format!("-{n}.pem"), &format!("-{m}.pem"))
                ),
                path,
            }
        };
        notes.push(note);
    }
    if !loaded_numbered.is_empty() {
        let (needed, fix) = if !has_unnumbered && role == Role::Client {
            (
                format!(
                    "QEMU before 10.2 ignores {} and connects without a client certificate",
                    loaded_numbered.join(", ")
                ),
                "install the identity every QEMU must present as client-cert.pem and \
                 client-key.pem"
                    .to_owned(),
            )
        } else if has_unnumbered {
            (
                format!(
                    "QEMU before 10.2 ignores {} and uses only {}-cert.pem",
                    loaded_numbered.join(", "),
                    role.name()
                ),
                format!(
                    "keep the identity every QEMU must accept in {}-cert.pem and \
                     {}-key.pem; the numbered ones take effect with QEMU 10.2",
                    role.name(),
                    role.name()
                ),
            )
        } else {
            (
                format!(
                    "QEMU before 10.2 ignores {} and refuses to start without \
                     server-cert.pem and server-key.pem",
                    loaded_numbered.join(", ")
                ),
                "install the identity every QEMU must accept as server-cert.pem and \
                 server-key.pem"
                    .to_owned(),
            )
        };
        notes.push(QemuIdentityNote {
            kind: QemuIdentityNoteKind::NeedsQemu10_2,
            severity: Severity::Warning,
            path: numbered(dir, role, 0).0,
            message: needed,
            fix,
        });
    }
    QemuScan { pairs, notes }
}

/// The tree suggested by the certificate-management proposal, shared by all applications:
/// `ca/cert.pem`, `ca/ca-crl.pem`, `client/cert.pem`, `client/key.pem`, `server/trusted.pem`.
/// Only the CA is required.
pub fn proposal_tree(dir: &Path) -> CredentialFiles {
    let at = |ty, name: &str| Located {
        ty,
        path: dir.join(name),
        origin: Origin::ProposalTree,
        required: ty == CertDataType::CaCert,
    };
    CredentialFiles {
        role: Role::Client,
        files: vec![
            at(CertDataType::CaCert, "ca/cert.pem"),
            at(CertDataType::CaCrl, "ca/ca-crl.pem"),
            at(CertDataType::ClientCert, "client/cert.pem"),
            at(CertDataType::ClientKey, "client/key.pem"),
            at(CertDataType::ServerTrusted, "server/trusted.pem"),
        ],
        extra_identities: Vec::new(),
    }
}
