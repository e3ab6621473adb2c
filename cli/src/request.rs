//! `virtpki request server|client` and `virtpki sign server|client`: the key is made where it
//! is used and never leaves that host; the CA sees only a PKCS#10 request and returns a
//! certificate made by the same template as `virtpki issue`.

use std::path::{Path, PathBuf};

use virtpki::display::shell_path;
use virtpki::generate::{self, CertificateAuthority, Request, ServerRequestParams, SubjectName};
use virtpki::Role;

use crate::files;
use crate::issue::{print_summary, print_written, replace, KeyArgs, ServerNames};
use crate::ui::{escape, kind_name, CliError, CmdResult, Status, Ui};

/// Where a request and its key go.
#[derive(clap::Args, Debug)]
pub struct RequestOut {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Where to write the key (0600) and the request (created if missing).
    #[arg(long, value_name = "OUT")]
    pub out_dir: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum RequestCommand {
    /// A key and a server certificate request: OUT/serverkey.pem (0600), OUT/serverreq.pem.
    Server {
        #[command(flatten)]
        names: ServerNames,
        #[command(flatten)]
        out: RequestOut,
    },
    /// A key and a client certificate request: OUT/clientkey.pem (0600), OUT/clientreq.pem.
    Client {
        /// The subject in libvirt's order, e.g. "C=GB,O=Org,CN=client1" (a CN is required).
        #[arg(long, value_name = "DN")]
        dn: String,
        #[command(flatten)]
        out: RequestOut,
    },
}

/// What signing takes: the CA, the request, lifetime and destination; never a key.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The CA made by `virtpki ca init`.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// The request made by `virtpki request` (PEM, PKCS#10).
    #[arg(long, value_name = "REQ")]
    pub request: PathBuf,
    /// Days until it expires.
    #[arg(long, value_name = "N", default_value_t = crate::issue::DEFAULT_LEAF_DAYS)]
    pub days: u32,
    /// Where to write the certificate (created if missing).
    #[arg(long, value_name = "OUT")]
    pub out_dir: PathBuf,
    /// Replace an existing certificate.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum SignCommand {
    /// Sign a server request: OUT/servercert.pem.
    Server(SignArgs),
    /// Sign a client request: OUT/clientcert.pem.
    Client(SignArgs),
}

impl SignCommand {
    pub fn args(&self) -> &SignArgs {
        match self {
            SignCommand::Server(a) | SignCommand::Client(a) => a,
        }
    }
}

pub fn run_request(cmd: RequestCommand, ui: Ui) -> CmdResult {
    let (role, out) = match &cmd {
        RequestCommand::Server { out, .. } => (Role::Server, out),
        RequestCommand::Client { out, .. } => (Role::Client, out),
    };
    let key_type = out.key.key_type()?;
    let key_path = out.out_dir.join(format!("{}key.pem", role.name()));
    let req_path = out.out_dir.join(format!("{}req.pem", role.name()));
    let request: Request = match &cmd {
        RequestCommand::Server { names, .. } => {
            let dn = names.subject()?;
            files::check_free(&[&key_path, &req_path], replace(out.force))?;
            generate::request_server(&ServerRequestParams {
                dn,
                dns_names: names.dns.clone(),
                ip_addresses: names.ip.clone(),
                key_type,
            })?
        }
        RequestCommand::Client { dn, .. } => {
            let dn = SubjectName::parse(dn)?;
            files::check_free(&[&key_path, &req_path], replace(out.force))?;
            generate::request_client(&dn, key_type)?
        }
    };
    files::create_dir(&out.out_dir, 0o755)?;
    // The key first: a request whose key was lost could never be used.
    files::write_atomic(
        &key_path,
        request.key_pem.as_bytes(),
        0o600,
        replace(out.force),
    )?;
    files::write_atomic(
        &req_path,
        request.csr_pem.as_bytes(),
        0o644,
        replace(out.force),
    )?;
    println!(
        "{} {} key ({key_type}) and certificate request",
        ui.pass("Made"),
        role.name()
    );
    print_written(&[(&key_path, "0600"), (&req_path, "0644")]);
    println!(
        "\nNext: send {} (not the key) to the CA's host and run there:\n  virtpki sign {} \
         --ca-dir CA --request {} --out-dir DIR\nthen put DIR/{}cert.pem back into {} here.",
        req_path.display(),
        role.name(),
        shell_path(&req_path),
        role.name(),
        shell_path(&out.out_dir)
    );
    Ok(Status::Ok)
}

pub fn run_sign(cmd: SignCommand, ui: Ui) -> CmdResult {
    let role = match cmd {
        SignCommand::Server(_) => Role::Server,
        SignCommand::Client(_) => Role::Client,
    };
    let args = cmd.args();
    let ca = CertificateAuthority::load_dir(&args.ca_dir)?;
    let cert_path = args.out_dir.join(format!("{}cert.pem", role.name()));
    files::check_free(&[&cert_path], replace(args.force))?;
    let csr = read_request(&args.request)?;
    let signed = ca
        .sign_request(role, &csr, &generate::Validity::days_from_now(args.days))
        .map_err(|e| in_file(&args.request, e))?;
    files::create_dir(&args.out_dir, 0o755)?;
    files::write_atomic(
        &cert_path,
        signed.cert_pem.as_bytes(),
        0o644,
        replace(args.force),
    )?;
    println!(
        "{} {} certificate {}",
        ui.pass("Signed"),
        role.name(),
        escape(signed.certificate.subject())
    );
    print_written(&[(&cert_path, "0644")]);
    print_summary(&signed.certificate);
    if !signed.ignored.is_empty() {
        println!(
            "  {} the request also asked for {}: not copied, libvirt's template decides them",
            ui.warn("ignored:"),
            escape(&signed.ignored.join(", "))
        );
    }
    if role == Role::Client {
        println!(
            "\nFor the daemon's libvirtd.conf: tls_allowed_dn_list = [\"{}\"]",
            escape(signed.certificate.subject())
        );
    }
    println!(
        "\nNext: put {} next to {}key.pem on the host that made the request, then there: \
         virtpki install --role {} --ca-dir DIR-WITH-CACERT --from THAT-DIR",
        cert_path.display(),
        role.name(),
        role.name()
    );
    Ok(Status::Ok)
}

/// The request file as text, its errors naming it as a certificate request.
fn read_request(path: &Path) -> Result<String, CliError> {
    generate::read_request_file(path).map_err(|e| in_file(path, e))
}

/// A library error about the request, with the file's name in front when it lacks it.
fn in_file(path: &Path, e: virtpki::Error) -> CliError {
    let shown = path.display().to_string();
    let message = if e.message().contains(&shown) {
        e.message().to_owned()
    } else {
        format!("{shown}: {}", e.message())
    };
    CliError(message)
        .with_kind(kind_name(e.kind()))
        .with_file(path)
}
