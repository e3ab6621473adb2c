//! `virtpki renew` and `virtpki ca renew`: certificates re-issued with the key they have.
//!
//! A renewed server or client certificate keeps its subject, names, usages and public key,
//! so nothing else on its host changes: the key stays where it is, `tls_allowed_dn_list`
//! still matches, and clients that trusted the old certificate are told "changed, same key".
//! The CA needs the old certificate only. A renewed CA keeps its name, key and key identifier,
//! so every certificate it issued verifies under it.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use virtpki::display::shell_path;
use virtpki::generate::{CertificateAuthority, Renewed, Validity};
use virtpki::{timefmt, Certificate, Role};

use crate::files::{self, Replace};
use crate::issue::{print_written, replace, DEFAULT_LEAF_DAYS};
use crate::ui::{self, escape, json_time, CliError, CmdResult, Status, Ui};

/// `virtpki renew`.
#[derive(clap::Args, Debug)]
pub struct RenewArgs {
    /// The CA made by `virtpki ca init` that issued CERT (its key signs; CERT's key is not
    /// needed).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// The server or client certificate to renew: a PEM file holding that one certificate.
    #[arg(value_name = "CERT")]
    pub cert: PathBuf,
    /// Days until the new certificate expires.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LEAF_DAYS)]
    pub days: u32,
    /// Where to write the new certificate, under CERT's file name (created if missing).
    #[arg(long, value_name = "OUT")]
    pub out_dir: PathBuf,
    /// Replace an existing file there, CERT itself included; the old one is kept as
    /// NAME.bak-TIME.
    #[arg(long)]
    pub force: bool,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The role a certificate's extended key usage gives it, if one.
fn role_of(cert: &Certificate) -> Option<Role> {
    let eku = cert.extended_key_usage()?;
    match (eku.server_auth, eku.client_auth) {
        (true, false) => Some(Role::Server),
        (false, true) => Some(Role::Client),
        _ => None,
    }
}

/// Whether `a` and `b` are one file or directory (the same device and inode), both existing.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The one certificate of the file to renew; errors name the file.
fn read_one(path: &Path) -> Result<Certificate, CliError> {
    let mut certs = virtpki::pem::read_certificates_expecting(path, "certificate to renew")
        .map_err(|e| in_file(path, e))?;
    if certs.len() != 1 {
        return Err(CliError(format!(
            "{}: holds {} certificates; renew takes a file with the one certificate to renew",
            path.display(),
            certs.len()
        ))
        .with_kind("invalid_arg")
        .with_file(path));
    }
    Ok(certs.remove(0))
}

/// A library error about `path`, with the file's name in front when it lacks it.
fn in_file(path: &Path, e: virtpki::Error) -> CliError {
    let shown = path.display().to_string();
    let message = if e.message().contains(&shown) {
        e.message().to_owned()
    } else {
        format!("{shown}: {}", e.message())
    };
    CliError(message)
        .with_kind(ui::kind_name(e.kind()))
        .with_file(path)
}

/// The CA directory's current CRL (DER), if it has one.
fn current_crl(ca_dir: &Path) -> Result<Option<Vec<u8>>, CliError> {
    let path = CertificateAuthority::crl_path(ca_dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let crls = virtpki::pem::read_crls(&path).map_err(|e| in_file(&path, e))?;
    match crls.as_slice() {
        [one] => Ok(Some(one.der().to_vec())),
        more => Err(CliError(format!(
            "{}: holds {} CRLs; a CA directory holds one, its own",
            path.display(),
            more.len()
        ))
        .with_file(&path)),
    }
}

/// Writes `contents` as `path` (0644), keeping a copy of what it replaces; returns the copy.
fn write_keeping_old(
    path: &Path,
    contents: &[u8],
    replace: Replace,
) -> Result<Option<PathBuf>, CliError> {
    let (dir, name) = files::open_dir_of(path)?;
    let kept = if replace == Replace::Allowed && std::fs::symlink_metadata(path).is_ok() {
        Some(files::keep_copy_in(&dir, name)?.0)
    } else {
        None
    };
    files::write_in(&dir, name, contents, 0o644, None, replace)?;
    Ok(kept)
}

/// The dates, serial and fingerprint of a certificate, as JSON.
fn edition_json(cert: &Certificate) -> Value {
    json!({
        "not_before": json_time(cert.not_before()),
        "not_after": json_time(cert.not_after()),
        "serial": cert.serial_hex(),
        "fingerprint": cert.fingerprint_string(),
    })
}

/// What old and new have in common and where they differ, for people.
fn print_change(old: &Certificate, new: &Renewed, ui: Ui) {
    let cert = &new.certificate;
    println!("  DN (libvirt's format): {}", escape(cert.subject()));
    if !cert.subject_alt_names().is_empty() {
        let names: Vec<String> = cert
            .subject_alt_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        println!("  subject alternative names: {}", escape(&names.join(", ")));
    }
    // What tells the two apart, even when renewed with the same --days in the second of issue
    // (then both ends are the same to the second): the serial and the start.
    println!("  serial: {} -> {}", old.serial_hex(), cert.serial_hex());
    println!(
        "  not before: {}",
        change(old.not_before(), cert.not_before())
    );
    println!("  not after: {}", change(old.not_after(), cert.not_after()));
    println!(
        "  fingerprint: {} -> {}",
        old.fingerprint_string(),
        cert.fingerprint_string()
    );
    println!(
        "  public key: {}, the same public key ({})",
        cert.key_algorithm(),
        cert.spki_fingerprint_string()
    );
    if !new.not_carried.is_empty() {
        println!(
            "  {} {}: extensions virtpki does not copy",
            ui.warn("not carried over:"),
            escape(&new.not_carried.join(", "))
        );
    }
}

/// `OLD -> NEW`, in UTC to the second; when both are the same second, that is said, so the
/// line never reads as if nothing was renewed.
fn change(old: timefmt::UnixSeconds, new: timefmt::UnixSeconds) -> String {
    if old == new {
        format!(
            "{} -> {} (the same to the second, as when renewed in the second of issue; the \
             serial tells them apart)",
            timefmt::utc(old),
            timefmt::utc(new)
        )
    } else {
        format!("{} -> {}", timefmt::utc(old), timefmt::utc(new))
    }
}

pub fn run(args: RenewArgs, ui: Ui) -> CmdResult {
    // The CRL read below stays the CA's current one until the renewal is written: a
    // `crl revoke` of this certificate waits, or went first and is seen.
    let _lock = files::lock_dir(&args.ca_dir)?;
    let ca = CertificateAuthority::load_dir(&args.ca_dir)?;
    let old = read_one(&args.cert)?;
    let name: &OsStr = args
        .cert
        .file_name()
        .ok_or_else(|| CliError(format!("{}: not a file name", args.cert.display())))?;
    let target = args.out_dir.join(name);
    if !args.force && same_file(&target, &args.cert) {
        return Err(CliError(format!(
            "{}: is the certificate being renewed; not replaced (give --force to replace it, \
             keeping the old one as {}.bak-TIME, or another --out-dir)",
            target.display(),
            name.to_string_lossy()
        ))
        .with_file(&target));
    }
    // Not even --force writes over the CA's own files: a leaf there breaks the CA.
    if same_file(&args.out_dir, &args.ca_dir) {
        let own = [
            CertificateAuthority::cert_path(&args.ca_dir),
            CertificateAuthority::key_path(&args.ca_dir),
            CertificateAuthority::crl_path(&args.ca_dir),
        ];
        if own.iter().any(|f| f.file_name() == Some(name)) {
            return Err(CliError(format!(
                "{}: is a file of the CA directory {} itself; renew writes no certificate \
                 there, --force or not: give another --out-dir",
                target.display(),
                args.ca_dir.display()
            ))
            .with_kind("invalid_arg")
            .with_file(&target));
        }
    }
    files::check_free(&[&target], replace(args.force))?;
    let renewed = ca
        .renew(&old, &Validity::days_from_now(args.days))
        .map_err(|e| in_file(&args.cert, e))?;
    if let Some(crl) = current_crl(&args.ca_dir)? {
        ca.check_not_revoked(&old, &crl)
            .map_err(|e| in_file(&args.cert, e))?;
    }
    files::create_dir(&args.out_dir, 0o755)?;
    let kept = write_keeping_old(&target, renewed.cert_pem.as_bytes(), replace(args.force))?;
    let role = role_of(&renewed.certificate);
    // A daemon reloads a server's files; a client's are read at each connection.
    let next = format!(
        "virtpki install --role {} --ca-dir {} --from DIR{}",
        role.map_or("ROLE", |r| r.name()),
        shell_path(&args.ca_dir),
        if role == Some(Role::Client) {
            ""
        } else {
            " --reload"
        }
    );
    if args.json {
        let cert = &renewed.certificate;
        ui::print_json(&json!({
            "changed": true,
            "file": target.display().to_string(),
            "backup": kept.as_ref().map(|k| k.display().to_string()),
            "role": role.map(|r| r.name()),
            "subject": cert.subject(),
            "subject_alt_names": cert.subject_alt_names().iter().map(|n| n.to_raw_string()).collect::<Vec<_>>(),
            "public_key": cert.key_algorithm().to_string(),
            "public_key_fingerprint": cert.spki_fingerprint_string(),
            "same_public_key": cert.spki_der() == old.spki_der(),
            "old": edition_json(&old),
            "new": edition_json(cert),
            "not_carried": renewed.not_carried,
            "next": next,
        }));
        return Ok(Status::Ok);
    }
    println!(
        "{} {}certificate {}",
        ui.pass("Renewed"),
        role.map_or(String::new(), |r| format!("{} ", r.name())),
        escape(renewed.certificate.subject())
    );
    print_written(&[(&target, "0644")]);
    if let Some(kept) = &kept {
        println!("  kept the old one as {}", kept.display());
    }
    print_change(&old, &renewed, ui);
    if role == Some(Role::Client) {
        println!("  tls_allowed_dn_list: unchanged, the DN is the same");
    }
    println!(
        "\nNext: on the host that uses it, put {} next to its key (which does not change) in \
         a directory DIR, then there:\n  {next}\n(--reload has the running daemons take a \
         server's certificate without a restart; clients read theirs at each connection.)",
        target.display()
    );
    Ok(Status::Ok)
}

/// `virtpki ca renew --dir DIR`.
pub fn run_ca(dir: &Path, days: u32, json: bool, ui: Ui) -> CmdResult {
    // One change of the CA directory at a time (as `crl revoke` takes it).
    let _lock = files::lock_dir(dir)?;
    let ca = CertificateAuthority::load_dir(dir)?;
    let old = ca.certificate().clone();
    let renewed = ca.renew_ca(&Validity::days_from_now(days))?;
    let cert_path = CertificateAuthority::cert_path(dir);
    let kept = write_keeping_old(&cert_path, renewed.cert_pem.as_bytes(), Replace::Allowed)?;
    let hosts = [
        "/etc/pki/CA/cacert.pem on every server and client",
        "~/.pki/libvirt/cacert.pem of every user who connects as a client",
        "cacert.pem in every pkipath directory (?pkipath= URIs)",
    ];
    // Sooner than before: what it issued for longer stops verifying at the new end.
    let ends_before_old = renewed.certificate.not_after() < old.not_after();
    if json {
        let cert = &renewed.certificate;
        ui::print_json(&json!({
            "changed": true,
            "ends_before_old": ends_before_old,
            "issued_name_old_serial": renewed.issued_name_old_serial,
            "file": cert_path.display().to_string(),
            "backup": kept.as_ref().map(|k| k.display().to_string()),
            "subject": cert.subject(),
            "public_key_fingerprint": cert.spki_fingerprint_string(),
            "same_public_key": cert.spki_der() == old.spki_der(),
            "old": edition_json(&old),
            "new": edition_json(cert),
            "not_carried": renewed.not_carried,
            "replace_on_every_host": hosts,
        }));
        return Ok(Status::Ok);
    }
    println!(
        "{} CA {}",
        ui.pass("Renewed"),
        escape(renewed.certificate.subject())
    );
    print_written(&[(&cert_path, "0644")]);
    if let Some(kept) = &kept {
        println!("  kept the old one as {}", kept.display());
    }
    print_change(&old, &renewed, ui);
    if ends_before_old {
        println!(
            "  {} the renewed CA ends on {}, before the old one ({}): every certificate it \
             issued that runs past that day stops verifying then (give more --days to keep the \
             old end)",
            ui.warn("warning:"),
            timefmt::utc(renewed.certificate.not_after()),
            timefmt::utc(old.not_after())
        );
        println!(
            "\nThe same name, key and key identifier: the certificates this CA issued verify \
             under the renewed CA until it ends, and its CRL stays valid."
        );
    } else {
        println!(
            "\nThe same name, key and key identifier: every certificate this CA issued stays \
             valid and verifies under the renewed CA, and its CRL stays valid."
        );
    }
    if renewed.issued_name_old_serial {
        println!(
            "  {} the old CA certificate named itself by issuer and serial (authority key \
             identifier), as OpenSSL's authorityKeyIdentifier=keyid,issuer writes, and the \
             certificates it issued most likely do too: OpenSSL checks that serial, so \
             OpenSSL-based peers (not libvirt, which uses GnuTLS) accept them only while the old \
             CA stays in their cacert.pem, until each is renewed (virtpki renew)",
            ui.warn("warning:")
        );
    }
    println!("Replace the CA certificate with {}:", cert_path.display());
    for place in hosts {
        println!("  - {place}");
    }
    println!(
        "While hosts change over, old and new CA may sit in one cacert.pem (either order): \
         cat {} {} > cacert.pem",
        kept.as_deref().map_or_else(|| "OLD".to_owned(), shell_path),
        shell_path(&cert_path)
    );
    println!(
        "Then, on each host: virtpki install --role server --ca-dir {d} --from DIR --reload \
         (the running daemons take the CA without a restart) and virtpki install --role client \
         --ca-dir {d} --from DIR (clients read it at each connection).",
        d = shell_path(dir)
    );
    Ok(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::change;

    #[test]
    fn the_same_second_is_said_not_shown_as_nothing_renewed() {
        let t = 1_796_431_295;
        assert_eq!(
            change(t, t + 1),
            "2026-12-05 00:41:35 UTC -> 2026-12-05 00:41:36 UTC"
        );
        let same = change(t, t);
        assert!(
            same.starts_with(
                "2026-12-05 00:41:35 UTC -> 2026-12-05 00:41:35 UTC (the same to the second"
            ) && same.contains("the serial tells them apart"),
            "{same}"
        );
    }
}
