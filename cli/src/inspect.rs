//! `virtpki show FILE` and `virtpki dn FILE...`: what a file holds, for people and for scripts.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use virtpki::cert::KeyAlgorithm;
use virtpki::generate::CertificateAuthority;
use virtpki::pem::{self, Parsed};
use virtpki::{timefmt, CertDataType, Certificate, Crl, Source};

use crate::ui::{json_time, print_json, CliError, CmdResult, Status, Ui};

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// A PEM or DER file: certificates, a CRL or a private key (whose secret is not shown).
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DnArgs {
    /// PEM or DER certificate files; the DN of each file's first certificate is printed, one a
    /// line (the strings a tls_allowed_dn_list takes).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print a JSON array of {"file", "dn"} instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a file turned out to hold.
enum Contents {
    Certificates(Vec<Certificate>),
    Crls(Vec<Crl>),
    Key(virtpki::PrivateKey),
}

/// Reads `path` as certificates, else as CRLs, else as a private key; the error of the
/// certificate reading is the one reported when nothing fits.
fn read_any(path: &Path) -> Result<Contents, CliError> {
    let source = Source::File(path.to_owned());
    // The largest cap of the three kinds (a CRL's); each parse applies its own.
    let (bytes, _) =
        pem::read_file(path, CertDataType::CaCrl).map_err(|e| CliError::from(e).with_file(path))?;
    let first = match pem::parse(CertDataType::CaCert, &bytes, &source) {
        Ok(Parsed::Certificates(certs)) if !certs.is_empty() => {
            return Ok(Contents::Certificates(certs))
        }
        Ok(_) => virtpki::Error::new(
            virtpki::ErrorKind::Parse,
            format!("{}: holds no certificate", path.display()),
        ),
        Err(e) => e,
    };
    if let Ok(Parsed::Crls(crls)) = pem::parse(CertDataType::CaCrl, &bytes, &source) {
        return Ok(Contents::Crls(crls));
    }
    if let Ok(Parsed::PrivateKey(key)) = pem::parse(CertDataType::ClientKey, &bytes, &source) {
        return Ok(Contents::Key(key));
    }
    Err(CliError::from(first).with_file(path))
}

pub fn run_show(args: ShowArgs, ui: Ui) -> CmdResult {
    let contents = read_any(&args.file)?;
    if args.json {
        print_json(&match &contents {
            Contents::Certificates(certs) => {
                json!({ "certificates": certs.iter().map(cert_json).collect::<Vec<_>>() })
            }
            Contents::Crls(crls) => {
                let known = known_certificates(&args.file);
                json!({ "crls": crls.iter().map(|c| crl_json(c, &known)).collect::<Vec<_>>() })
            }
            Contents::Key(key) => json!({ "private_key": key_json(key) }),
        });
        return Ok(Status::Ok);
    }
    match contents {
        Contents::Certificates(certs) => {
            for (i, cert) in certs.iter().enumerate() {
                if certs.len() > 1 {
                    println!(
                        "{}",
                        ui.bold(&format!("Certificate {} of {}", i + 1, certs.len()))
                    );
                }
                print!("{}", cert.describe());
                if i + 1 < certs.len() {
                    println!();
                }
            }
        }
        Contents::Crls(crls) => {
            let known = known_certificates(&args.file);
            for crl in &crls {
                println!("{}", ui.bold("Certificate revocation list"));
                println!("Issuer: {}", crate::ui::escape(crl.issuer()));
                println!("CRL number: {}", crl.number());
                println!("This update: {}", timefmt::utc(crl.this_update()));
                match crl.next_update() {
                    Some(t) => println!("Next update: {}", timefmt::utc(t)),
                    None => println!("Next update: none given"),
                }
                println!("Revoked certificates: {}", crl.revoked_count());
                for entry in crl.revoked() {
                    let subject = known
                        .iter()
                        .find(|c| crl.entry_is(&entry, c))
                        .map(|c| format!(" {}", crate::ui::escape(c.subject())))
                        .unwrap_or_default();
                    println!(
                        "  serial {} (revoked {}){subject}",
                        entry.serial_hex(),
                        timefmt::utc(entry.revoked_at)
                    );
                }
            }
        }
        Contents::Key(key) => {
            println!("{}", ui.bold("Private key (not shown)"));
            println!(
                "Public key: {}",
                KeyAlgorithm::of_spki_der(key.public_key_der())
            );
            println!("Public key fingerprint: {}", key.public_key_fingerprint());
        }
    }
    Ok(Status::Ok)
}

/// Every file is read before anything is printed: a list with one bad file prints nothing, so
/// no allow-list is made from part of it.
pub fn run_dn(args: DnArgs) -> CmdResult {
    let mut dns = Vec::with_capacity(args.files.len());
    for file in &args.files {
        dns.push(first_certificate(file, "certificate")?.subject().to_owned());
    }
    if args.json {
        print_json(&Value::Array(
            args.files
                .iter()
                .zip(&dns)
                .map(|(f, dn)| json!({"file": f.display().to_string(), "dn": dn}))
                .collect(),
        ));
    } else {
        // The bytes, as virt-pki-query-dn prints them: the string a daemon compares.
        for dn in &dns {
            println!("{dn}");
        }
    }
    Ok(Status::Ok)
}

/// The first certificate of a PEM or DER file, which the command expects to be `expected`
/// ("server certificate"), as its messages say.
pub fn first_certificate(path: &Path, expected: &str) -> Result<Certificate, CliError> {
    pem::read_certificates_expecting(path, expected)
        .map_err(|e| CliError::from(e).with_file(path))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            CliError(format!("{}: holds no certificate", path.display())).with_file(path)
        })
}

/// A certificate as JSON, for `show`, `known list` and `probe`: values as the certificate holds
/// them (the JSON encoder escapes control characters), the subject and the SANs alike.
pub fn cert_json(cert: &Certificate) -> Value {
    let bc = cert.basic_constraints();
    let ku = cert.key_usage();
    let eku = cert.extended_key_usage();
    json!({
        "subject": cert.subject(),
        "issuer": cert.issuer(),
        "serial": cert.serial_hex(),
        "version": cert.version(),
        "not_before": json_time(cert.not_before()),
        "not_after": json_time(cert.not_after()),
        "subject_alt_names": cert.subject_alt_names().iter().map(|n| n.to_raw_string()).collect::<Vec<_>>(),
        "public_key": cert.key_algorithm().to_string(),
        "signature_algorithm": cert.signature_algorithm(),
        "basic_constraints": bc.map(|b| json!({"ca": b.ca, "path_len": b.path_len, "critical": b.critical})),
        "key_usage": ku.map(|k| json!({"usages": k.names(), "critical": k.critical})),
        "extended_key_usage": eku.map(|e| json!({
            "server_auth": e.server_auth, "client_auth": e.client_auth, "any": e.any,
            "others": e.others, "critical": e.critical,
        })),
        "sha256_fingerprint": cert.fingerprint_string(),
        "public_key_sha256": cert.spki_fingerprint_string(),
    })
}

fn crl_json(crl: &Crl, known: &[Certificate]) -> Value {
    let revoked: Vec<Value> = crl
        .revoked()
        .iter()
        .map(|entry| {
            json!({
                "serial": entry.serial_hex(),
                "revoked_at": json_time(entry.revoked_at),
                "subject": known.iter().find(|c| crl.entry_is(entry, c)).map(|c| c.subject()),
            })
        })
        .collect();
    json!({
        "issuer": crl.issuer(),
        "crl_number": crl.number().to_string(),
        "this_update": json_time(crl.this_update()),
        "next_update": crl.next_update().map(json_time),
        "revoked_count": crl.revoked_count(),
        "revoked": revoked,
    })
}

/// The certificates whose subjects a CRL at `crl_path` can name: those `virtpki crl revoke`
/// recorded in its CA directory's `revoked/`, and the CA certificate, when the CRL is a CA
/// directory's (or an installed `/etc/pki/CA/cacrl.pem`, next to `cacert.pem`). Unreadable
/// files are skipped: they only leave a serial without its subject.
fn known_certificates(crl_path: &Path) -> Vec<Certificate> {
    let dir = match crl_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let Ok(cas) = pem::read_certificates(&CertificateAuthority::cert_path(&dir)) else {
        return Vec::new();
    };
    let mut recorded: Vec<PathBuf> = std::fs::read_dir(CertificateAuthority::revoked_dir(&dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem"))
                .collect()
        })
        .unwrap_or_default();
    recorded.sort();
    // A file in revoked/ names a serial's subject only if the CA really issued it: the
    // directory is the CA's, but a subject shown for a revoked serial must not be a guess.
    let issued = recorded
        .iter()
        .filter_map(|f| pem::read_certificates(f).ok())
        .flatten()
        .filter(|c| cas.iter().any(|ca| c.is_issued_by(ca)));
    cas.iter().cloned().chain(issued).collect()
}

fn key_json(key: &virtpki::PrivateKey) -> Value {
    json!({
        "public_key": KeyAlgorithm::of_spki_der(key.public_key_der()).to_string(),
        "public_key_sha256": key.public_key_fingerprint().to_string(),
    })
}
