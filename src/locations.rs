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
/// QEMU 10.2 added `server-cert-N.pem`/`server-key-N.pem` (N = 0..3) for several identities;
/// the first present identity is the one loaded, the others are listed in `extra_identities`.
pub fn qemu_dir(dir: &Path, role: Role) -> CredentialFiles {
    let at = |ty, name: &str, required| Located {
        ty,
        path: dir.join(name),
        origin: Origin::QemuDir,
        required,
    };
    let mut files = vec![
        at(CertDataType::CaCert, "ca-cert.pem", true),
        at(CertDataType::CaCrl, "ca-crl.pem", false),
    ];
    let mut pairs: Vec<(String, String)> = vec![(
        format!("{}-cert.pem", role.name()),
        format!("{}-key.pem", role.name()),
    )];
    if role == Role::Server {
        pairs.extend((0..4).map(|n| {
            (
                format!("server-cert-{n}.pem"),
                format!("server-key-{n}.pem"),
            )
        }));
    }
    let mut present = pairs
        .into_iter()
        .filter(|(c, k)| dir.join(c).exists() && dir.join(k).exists());
    let required = role == Role::Server;
    match present.next() {
        Some((c, k)) => {
            files.push(at(role.cert_type(), &c, required));
            files.push(at(role.key_type(), &k, required));
        }
        None => {
            let (c, k) = (
                format!("{}-cert.pem", role.name()),
                format!("{}-key.pem", role.name()),
            );
            files.push(at(role.cert_type(), &c, required));
            files.push(at(role.key_type(), &k, required));
        }
    }
    let extra_identities = present.map(|(c, k)| (dir.join(c), dir.join(k))).collect();
    CredentialFiles {
        role,
        files,
        extra_identities,
    }
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
