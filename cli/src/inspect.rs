//! `virtpki show FILE` and `virtpki dn FILE`: what a file holds, for people and for scripts.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
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
    /// A PEM or DER certificate file; the first certificate's DN is printed.
    pub file: PathBuf,
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
    let (bytes, _) = pem::read_file(path, CertDataType::CaCrl)?;
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
    Err(first.into())
}

pub fn run_show(args: ShowArgs, ui: Ui) -> CmdResult {
    let contents = read_any(&args.file)?;
    if args.json {
        print_json(&match &contents {
            Contents::Certificates(certs) => {
                json!({ "certificates": certs.iter().map(cert_json).collect::<Vec<_>>() })
            }
            Contents::Crls(crls) => {
                json!({ "crls": crls.iter().map(crl_json).collect::<Vec<_>>() })
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
            }
        }
        Contents::Key(key) => {
            println!("{}", ui.bold("Private key (not shown)"));
            println!("Public key SHA-256: {}", key.public_key_fingerprint());
        }
    }
    Ok(Status::Ok)
}

pub fn run_dn(args: DnArgs) -> CmdResult {
    println!("{}", first_certificate(&args.file)?.subject());
    Ok(Status::Ok)
}

/// The first certificate of a PEM or DER file.
pub fn first_certificate(path: &Path) -> Result<Certificate, CliError> {
    pem::read_certificates(path)?
        .into_iter()
        .next()
        .ok_or_else(|| CliError(format!("{}: holds no certificate", path.display())))
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

fn crl_json(crl: &Crl) -> Value {
    json!({
        "issuer": crl.issuer(),
        "crl_number": crl.number().to_string(),
        "this_update": json_time(crl.this_update()),
        "next_update": crl.next_update().map(json_time),
        "revoked_count": crl.revoked_count(),
    })
}

fn key_json(key: &virtpki::PrivateKey) -> Value {
    json!({ "public_key_sha256": key.public_key_fingerprint().to_string() })
}
