//! `virtpki ca init`, `virtpki issue server|client`, `virtpki crl revoke`: certificates as
//! libvirt's TLS documentation issues them with certtool, checked with libvirt's own load-time
//! rules before they are written.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use virtpki::display::shell_path;
use virtpki::generate::{
    self, CaParams, CertificateAuthority, ClientParams, Issued, KeyType, ServerDnParams,
    SubjectName, Validity,
};
use virtpki::pem;
use virtpki::{timefmt, CertDataType, Certificate, Context, ContextFlags, Role};

use crate::fail;
use crate::files::{self, Replace};
use crate::ui::{escape, CliError, CmdResult, Status, Ui};

/// The key algorithm, as the options spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyTypeArg {
    /// RSA (3072 bits unless --rsa-bits): what every libvirt, VNC and SPICE client reads.
    Rsa,
    /// ECDSA P-256: small and fast; libvirt 9 accepts it with keyEncipherment, which is written.
    Ecdsa,
    /// Ed25519: needs GnuTLS 3.6 or later at both ends.
    Ed25519,
}

/// Key options shared by every issuing command.
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// The key algorithm.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Rsa)]
    pub key_type: KeyTypeArg,
    /// The RSA modulus size, with --key-type rsa: 2048, 3072 or 4096, the sizes virtpki can
    /// sign with [default: 3072].
    #[arg(long, value_name = "BITS")]
    pub rsa_bits: Option<usize>,
}

impl KeyArgs {
    /// The key type asked for, checked by the library before anything is loaded or made.
    pub(crate) fn key_type(&self) -> Result<KeyType, CliError> {
        let key_type = match (self.key_type, self.rsa_bits) {
            (KeyTypeArg::Rsa, bits) => KeyType::Rsa {
                bits: bits.unwrap_or(KeyType::DEFAULT_RSA_BITS),
            },
            (_, Some(_)) => {
                return Err(CliError("--rsa-bits goes with --key-type rsa only".into()))
            }
            (KeyTypeArg::Ecdsa, None) => KeyType::EcdsaP256,
            (KeyTypeArg::Ed25519, None) => KeyType::Ed25519,
        };
        key_type
            .check()
            .map_err(|e| CliError(format!("--rsa-bits: {e}")))?;
        Ok(key_type)
    }
}

/// Days a new CA lives unless told (`ca init`, `ca renew`).
pub const DEFAULT_CA_DAYS: u32 = 3650;

/// Days a new server or client certificate lives unless told (`issue`, `renew`).
pub const DEFAULT_LEAF_DAYS: u32 = 365;

#[derive(clap::Subcommand, Debug)]
pub enum CaCommand {
    /// Create a CA: DIR/cacert.pem and DIR/cakey.pem (0600).
    Init {
        /// The CA's directory (created 0700 if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The CA's common name [default: "virtpki CA HOST XXXXXXXX", unique: two CAs with one
        /// name make verifiers mistake one for the other].
        #[arg(long, value_name = "NAME")]
        cn: Option<String>,
        /// The CA's organization (O).
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        /// Days until the CA expires.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_CA_DAYS)]
        days: u32,
        #[command(flatten)]
        key: KeyArgs,
        /// Replace an existing CA (every certificate it issued stops being trusted).
        #[arg(long)]
        force: bool,
    },
    /// Re-issue the CA certificate with the same key and name, so that every certificate it
    /// issued stays valid: DIR/cacert.pem (the old one kept as cacert.pem.bak-TIME).
    Renew {
        /// The CA's directory, made by `virtpki ca init`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Days until the renewed CA expires.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_CA_DAYS)]
        days: u32,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What every issued leaf takes: its CA, lifetime, key and destination.
#[derive(clap::Args, Debug)]
pub struct LeafArgs {
    /// The CA made by `virtpki ca init`.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Days until it expires.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LEAF_DAYS)]
    pub days: u32,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Where to write the certificate and key (created if missing).
    #[arg(long, value_name = "OUT")]
    pub out_dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// What names a server: its subject and the names and addresses it is reached by, for
/// `issue server` and `request server` alike.
#[derive(clap::Args, Debug)]
pub struct ServerNames {
    /// The host name clients use; also written as a DNS SAN, as libvirt's docs require (as
    /// an IP SAN when it is an address).
    #[arg(long, value_name = "NAME", required_unless_present = "dn")]
    pub cn: Option<String>,
    /// The whole subject instead of --cn and --org, as libvirt's server template writes it,
    /// e.g. "C=GB,ST=London,L=London,O=Example,CN=host1.example.com": its CN is the host
    /// name, written also as a SAN.
    #[arg(long, value_name = "DN", conflicts_with_all = ["cn", "org"])]
    pub dn: Option<String>,
    /// Another name the host is reached by (repeat for more).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// An address the host is reached by (repeat for more).
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// The organization (O).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
}

impl ServerNames {
    /// The subject: --dn, or O (--org) and CN (--cn); clap requires --cn without --dn.
    pub fn subject(&self) -> Result<SubjectName, CliError> {
        Ok(match &self.dn {
            Some(dn) => SubjectName::parse(dn)?,
            None => SubjectName::host(self.cn.as_deref().unwrap_or_default(), self.org.as_deref())?,
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum IssueCommand {
    /// A server certificate: OUT/servercert.pem, OUT/serverkey.pem (0600).
    Server {
        #[command(flatten)]
        names: ServerNames,
        #[command(flatten)]
        leaf: LeafArgs,
    },
    /// A client certificate: OUT/clientcert.pem, OUT/clientkey.pem (0600).
    Client {
        /// The subject in libvirt's order, e.g. "C=GB,O=Org,CN=client1": the string the
        /// daemon's tls_allowed_dn_list is matched against. Attributes are separated by
        /// commas (`\,` in a value); a CN is required.
        #[arg(long, value_name = "DN")]
        dn: String,
        #[command(flatten)]
        leaf: LeafArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum CrlCommand {
    /// Add certificates to the CA's CRL, DIR/cacrl.pem (made if missing, next CRL number).
    Revoke {
        /// The CA made by `virtpki ca init`.
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        /// Days until the CRL's next update (libvirt applies a stale CRL; virtpki validate
        /// warns about it).
        #[arg(long, value_name = "N", default_value_t = 365)]
        days: u32,
        /// The certificate files to revoke (the first certificate of each).
        #[arg(required = true, value_name = "CERT")]
        certs: Vec<PathBuf>,
    },
}

pub(crate) fn replace(force: bool) -> Replace {
    if force {
        Replace::Allowed
    } else {
        Replace::Never
    }
}

pub fn run_ca(cmd: CaCommand, ui: Ui) -> CmdResult {
    let (dir, cn, org, days, key, force) = match cmd {
        CaCommand::Init {
            dir,
            cn,
            org,
            days,
            key,
            force,
        } => (dir, cn, org, days, key, force),
        CaCommand::Renew { dir, days, json } => return crate::renew::run_ca(&dir, days, json, ui),
    };
    // A key type that cannot be made is said before anything is read or made.
    let key_type = key.key_type()?;
    let cert_path = CertificateAuthority::cert_path(&dir);
    let key_path = CertificateAuthority::key_path(&dir);
    files::check_free(&[&cert_path, &key_path], replace(force))?;
    let ca = generate::create_ca(&CaParams {
        common_name: match cn {
            Some(cn) => cn,
            None => {
                generate::unique_ca_name(&virtpki::machine_names::host_name().unwrap_or_default())?
            }
        },
        organization: org,
        validity: Validity::days_from_now(days),
        key_type,
    })?;
    // Not file_audit's modes: a CA directory is no libvirt location (virt-pki-validate never
    // looks at one); it holds the CA's key, so it is its owner's alone.
    files::create_dir(&dir, 0o700)?;
    // The key first: a CA certificate without its key would be useless.
    files::write_atomic(&key_path, ca.key_pem.as_bytes(), 0o600, replace(force))?;
    files::write_atomic(&cert_path, ca.cert_pem.as_bytes(), 0o644, replace(force))?;
    println!(
        "{} {}",
        ui.pass("Created CA"),
        escape(ca.certificate.subject())
    );
    print_written(&[(&cert_path, "0644"), (&key_path, "0600")]);
    print_summary(&ca.certificate);
    println!(
        "\nNext: virtpki issue server --ca-dir {d} --cn HOST --out-dir DIR, \
         virtpki issue client --ca-dir {d} --dn DN --out-dir DIR.\n\
         Keep {} secret: whoever has it can make certificates every libvirt host of this CA \
         accepts.",
        key_path.display(),
        d = shell_path(&dir)
    );
    Ok(Status::Ok)
}

pub fn run_issue(cmd: IssueCommand, ui: Ui) -> CmdResult {
    // A key type that cannot be made is said before anything is read.
    match &cmd {
        IssueCommand::Server { leaf, .. } | IssueCommand::Client { leaf, .. } => {
            leaf.key.key_type()?;
        }
    }
    match cmd {
        IssueCommand::Server { names, leaf } => {
            let dn = names.subject()?;
            let ca = CertificateAuthority::load_dir(&leaf.ca_dir)?;
            check_leaf_free(&leaf, Role::Server)?;
            let issued = ca.issue_server_dn(&ServerDnParams {
                dn,
                dns_names: names.dns,
                ip_addresses: names.ip,
                validity: Validity::days_from_now(leaf.days),
                key_type: leaf.key.key_type()?,
            })?;
            write_leaf(&ca, &issued, Role::Server, &leaf, ui)?;
            println!(
                "\nNext: virtpki install --role server --ca-dir {} --from {}, then restart \
                 libvirtd with listen_tls = 1 (or enable libvirtd-tls.socket).",
                shell_path(&leaf.ca_dir),
                shell_path(&leaf.out_dir)
            );
            Ok(Status::Ok)
        }
        IssueCommand::Client { dn, leaf } => {
            let ca = CertificateAuthority::load_dir(&leaf.ca_dir)?;
            let subject = SubjectName::parse(&dn)?;
            check_leaf_free(&leaf, Role::Client)?;
            let issued = ca.issue_client(&ClientParams {
                dn: subject,
                validity: Validity::days_from_now(leaf.days),
                key_type: leaf.key.key_type()?,
            })?;
            write_leaf(&ca, &issued, Role::Client, &leaf, ui)?;
            println!(
                "\nFor the daemon's libvirtd.conf: tls_allowed_dn_list = [\"{}\"]",
                escape(issued.certificate.subject())
            );
            println!(
                "Next: virtpki install --role client --ca-dir {} --from {}",
                shell_path(&leaf.ca_dir),
                shell_path(&leaf.out_dir)
            );
            Ok(Status::Ok)
        }
    }
}

/// Refuses early, before a key is generated, when the files exist and may not be replaced.
fn check_leaf_free(leaf: &LeafArgs, role: Role) -> Result<(), CliError> {
    let (cert_path, key_path) = leaf_paths(&leaf.out_dir, role);
    files::check_free(&[&cert_path, &key_path], replace(leaf.force))
}

fn leaf_paths(out_dir: &Path, role: Role) -> (PathBuf, PathBuf) {
    (
        out_dir.join(format!("{}cert.pem", role.name())),
        out_dir.join(format!("{}key.pem", role.name())),
    )
}

/// Checks the new certificate with libvirt's load-time rules, then writes it and its key.
fn write_leaf(
    ca: &CertificateAuthority,
    issued: &Issued,
    role: Role,
    leaf: &LeafArgs,
    ui: Ui,
) -> Result<(), CliError> {
    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(CertDataType::CaCert, &ca.certificate().to_pem())?;
    ctx.add_pem(role.cert_type(), &issued.cert_pem)?;
    ctx.add_pem(role.key_type(), &issued.key_pem)?;
    let report = ctx.check(role);
    if !report.is_ok() {
        return Err(CliError(format!(
            "the new {} certificate fails libvirt's checks; nothing was written:\n{}",
            role.name(),
            report.to_text()
        )));
    }
    let (cert_path, key_path) = leaf_paths(&leaf.out_dir, role);
    files::check_free(&[&cert_path, &key_path], replace(leaf.force))?;
    // A staging directory for `virtpki install`, no libvirt location: the key in it is 0600.
    files::create_dir(&leaf.out_dir, 0o755)?;
    files::write_atomic(
        &key_path,
        issued.key_pem.as_bytes(),
        0o600,
        replace(leaf.force),
    )?;
    files::write_atomic(
        &cert_path,
        issued.cert_pem.as_bytes(),
        0o644,
        replace(leaf.force),
    )?;
    println!(
        "{} {} certificate {}",
        ui.pass("Issued"),
        role.name(),
        escape(issued.certificate.subject())
    );
    print_written(&[(&cert_path, "0644"), (&key_path, "0600")]);
    print_summary(&issued.certificate);
    for warning in report.warnings() {
        println!("{} {}", ui.warn("warning:"), warning.detail());
    }
    Ok(())
}

pub(crate) fn print_written(paths: &[(&PathBuf, &str)]) {
    for (path, mode) in paths {
        println!("  wrote {} (mode {mode})", path.display());
    }
}

pub(crate) fn print_summary(cert: &Certificate) {
    println!("  DN (libvirt's format): {}", escape(cert.subject()));
    if !cert.subject_alt_names().is_empty() {
        let names: Vec<String> = cert
            .subject_alt_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        println!("  subject alternative names: {}", escape(&names.join(", ")));
    }
    if let Some(warning) = virtpki::generate::wildcard_warning(cert) {
        println!("  warning: {}", escape(&warning));
    }
    println!("  public key: {}", cert.key_algorithm());
    println!(
        "  valid: {} to {}",
        timefmt::utc(cert.not_before()),
        timefmt::utc(cert.not_after())
    );
    println!("  serial: {}", cert.serial_hex());
    println!("  fingerprint: {}", cert.fingerprint_string());
}

pub fn run_crl(cmd: CrlCommand, ui: Ui) -> CmdResult {
    let CrlCommand::Revoke {
        ca_dir,
        days,
        certs,
    } = cmd;
    let ca = CertificateAuthority::load_dir(&ca_dir)?;
    let crl_path = CertificateAuthority::crl_path(&ca_dir);
    // Two revocations at once must not each write a CRL without the other's entry.
    let _lock = files::lock_dir(&ca_dir)?;
    let previous = read_previous_crl(&crl_path)?;
    let mut to_revoke = Vec::new();
    for path in &certs {
        to_revoke.push(crate::inspect::first_certificate(
            path,
            "certificate to revoke",
        )?);
    }
    let result = ca.revoke(
        previous.as_deref(),
        &to_revoke,
        &Validity::days_from_now(days),
    )?;
    record_revoked(&ca_dir, &to_revoke, &result.newly_revoked)?;
    files::write_atomic(&crl_path, result.pem.as_bytes(), 0o644, Replace::Allowed)?;
    for (cert, path) in to_revoke.iter().zip(&certs) {
        let newly = result
            .newly_revoked
            .iter()
            .any(|s| s.as_slice() == cert.raw_serial());
        println!(
            "{} {} ({}, serial {})",
            if newly {
                ui.pass("Revoked")
            } else {
                ui.dim("Already revoked")
            },
            escape(cert.subject()),
            path.display(),
            cert.serial_hex()
        );
    }
    println!(
        "  wrote {} (CRL number {}, {} revoked in all, next update in {})",
        crl_path.display(),
        result.crl_number,
        result.total,
        crate::ui::count(days as usize, "day", "days")
    );
    println!(
        "\nNext: on every host, install it with that host's files (install takes the CA \
         directory's cacrl.pem along):\n  virtpki install --role server --ca-dir {d} --from \
         DIR\n  virtpki install --role client --ca-dir {d} --from DIR\n(install replaces an \
         older CRL of this CA, keeping it as cacrl.pem.bak-TIME); on a server, add --reload to \
         the first, or run virtpki reload, so that the running libvirtd reads the new CRL \
         without a restart.",
        d = shell_path(&ca_dir)
    );
    Ok(Status::Ok)
}

/// Keeps a copy of each newly revoked certificate in the CA directory's `revoked/`, so that
/// `virtpki show` can name the subjects of the CRL's serials.
fn record_revoked(
    ca_dir: &Path,
    revoked: &[Certificate],
    newly: &[Vec<u8>],
) -> Result<(), CliError> {
    let dir = CertificateAuthority::revoked_dir(ca_dir);
    for cert in revoked {
        if !newly.iter().any(|s| s.as_slice() == cert.raw_serial()) {
            continue;
        }
        files::create_dir(&dir, 0o700)?;
        let name = format!("{}.pem", cert.serial_hex().replace(':', ""));
        files::write_atomic(
            &dir.join(name),
            cert.to_pem().as_bytes(),
            0o644,
            Replace::Allowed,
        )?;
    }
    Ok(())
}

/// The CA's current CRL, if there is one (DER).
fn read_previous_crl(path: &Path) -> Result<Option<Vec<u8>>, CliError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => fail!("{}: cannot stat: {e}", path.display()),
        Ok(_) if !path.exists() => fail!(
            "{}: is a link to nothing; point it at the CA's CRL, or remove it to start a new \
             CRL (its number then starts again at 1)",
            path.display()
        ),
        Ok(_) => {}
    }
    match pem::read_crls(path) {
        Ok(crls) if crls.len() == 1 => Ok(Some(crls[0].der().to_vec())),
        Ok(crls) => fail!(
            "{}: holds {} CRLs; a CA directory holds one, its own",
            path.display(),
            crls.len()
        ),
        Err(e) => fail!(
            "{e} (the current CRL cannot be read, so revoking now would lose its entries: \
             move it away to start a new CRL, whose number then starts again at 1)"
        ),
    }
}
