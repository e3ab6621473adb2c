//! QEMU's own rules: owners and modes QEMU's user needs (`file_audit::audit_qemu`), and the
//! sanity check's QEMU profile (`sanity::check_qemu`) with its versioned notes.

use std::path::Path;

use crate::common::*;
use virtpki::file_audit::{audit_qemu, qemu_mode, FileKind, FileStat, QemuIds};
use virtpki::{sanity, CertDataType, Context, ContextFlags, Role, Severity};

fn qemu() -> QemuIds {
    QemuIds {
        uid: 64055,
        gid: 64055,
        groups: vec![64055, 108],
        label: "libvirt-qemu:libvirt-qemu".into(),
    }
}

fn stat(uid: u32, gid: u32, mode: u32, is_dir: bool) -> FileStat {
    FileStat {
        uid,
        gid,
        mode,
        is_dir,
    }
}

const KEY: FileKind = FileKind::Key(Role::Server);

fn audit(kind: FileKind, s: FileStat) -> Option<(Severity, String)> {
    audit_qemu(Path::new("/p"), kind, &qemu(), &s).map(|f| (f.severity, f.message))
}

#[test]
fn install_s_modes_pass() {
    assert_eq!(qemu_mode(FileKind::Dir), 0o750);
    assert_eq!(qemu_mode(FileKind::Public), 0o644);
    assert_eq!(qemu_mode(KEY), 0o440);
    assert_eq!(audit(FileKind::Dir, stat(0, 64055, 0o750, true)), None);
    assert_eq!(audit(FileKind::Public, stat(0, 64055, 0o644, false)), None);
    assert_eq!(audit(FileKind::Public, stat(0, 64055, 0o440, false)), None);
    assert_eq!(audit(KEY, stat(0, 64055, 0o440, false)), None);
    // Owned by QEMU's user, 0400, as QEMU's documentation has it.
    assert_eq!(audit(KEY, stat(64055, 0, 0o400, false)), None);
    // A supplementary group (kvm) is QEMU's too.
    assert_eq!(audit(KEY, stat(0, 108, 0o440, false)), None);
}

#[test]
fn qemu_must_read_its_files() {
    // root:root 0600: QEMU cannot read the key (QEMU's "Error while reading file").
    let (sev, msg) = audit(KEY, stat(0, 0, 0o600, false)).unwrap();
    assert_eq!(sev, Severity::Error);
    assert!(msg.contains("cannot read /p"), "{msg}");
    assert!(msg.contains("Error while reading file"), "{msg}");
    // A root-only directory: QEMU cannot enter it.
    let (_, msg) = audit(FileKind::Dir, stat(0, 0, 0o700, true)).unwrap();
    assert!(msg.contains("cannot enter"), "{msg}");
    assert!(msg.contains("Permission denied"), "{msg}");
}

#[test]
fn nobody_else_reads_or_replaces() {
    let (sev, msg) = audit(KEY, stat(0, 64055, 0o444, false)).unwrap();
    assert_eq!(sev, Severity::Error);
    assert!(msg.contains("readable by every user"), "{msg}");
    let (_, msg) = audit(KEY, stat(0, 5000, 0o440, false)).unwrap();
    assert!(msg.contains("which is not QEMU's"), "{msg}");
    let (_, msg) = audit(FileKind::Public, stat(0, 0, 0o666, false)).unwrap();
    assert!(msg.contains("writable by other users"), "{msg}");
    let (_, msg) = audit(FileKind::Public, stat(1000, 0, 0o644, false)).unwrap();
    assert!(msg.contains("neither root nor QEMU's user"), "{msg}");
    let (sev, msg) = audit(FileKind::Dir, stat(0, 64055, 0o755, true)).unwrap();
    assert_eq!(sev, Severity::Warning);
    assert!(msg.contains("entered by every user"), "{msg}");
    let f = audit_qemu(Path::new("/p"), KEY, &qemu(), &stat(0, 0, 0o600, false)).unwrap();
    assert_eq!(f.fix, "chown root:64055 /p; chmod 0440 /p");
}

#[test]
fn a_chain_in_the_cert_file_is_versioned_for_qemu() {
    let root = self_signed(&Spec::ca("Test CA"));
    let intermediate = signed_by(
        &Spec::ca("Intermediate CA")
            .bc(Some(true), true)
            .ku(KU_KEY_CERT_SIGN, true),
        &root,
    );
    let leaf = signed_by(&Spec::server("server.example"), &intermediate);
    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(CertDataType::CaCert, &root.pem()).unwrap();
    ctx.add_pem(
        CertDataType::ServerCert,
        &(leaf.pem() + &intermediate.pem()),
    )
    .unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let found = sanity::check_qemu(&ctx.credentials(), Role::Server, now(), 30);
    assert_eq!(found.len(), 1, "{found:?}");
    let note = found[0].qemu.as_deref().unwrap();
    assert!(
        note.starts_with("QEMU >= 10.2 accepts the chain; QEMU <= 10.1"),
        "{note}"
    );
    assert!(note.contains("ca-cert.pem"), "{note}");
}

#[test]
fn too_many_cas_for_qemu_up_to_10_1() {
    let cas: Vec<Made> = (0..17)
        .map(|i| self_signed(&Spec::ca(&format!("CA {i}"))))
        .collect();
    let leaf = signed_by(&Spec::server("server.example"), &cas[0]);
    let ctx = Context::new(ContextFlags::default());
    let bundle: String = cas.iter().map(Made::pem).collect();
    ctx.add_pem(CertDataType::CaCert, &bundle).unwrap();
    ctx.add_pem(CertDataType::ServerCert, &leaf.pem()).unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let found = sanity::check_qemu(&ctx.credentials(), Role::Server, now(), 30);
    let f = found
        .iter()
        .find(|f| f.finding.message.contains("more than the 16"))
        .expect("the cap is reported");
    assert_eq!(f.finding.severity, Severity::Warning);
    assert!(f
        .qemu
        .as_deref()
        .unwrap()
        .contains("Unable to import CA certificate list"));
}

/// Review: QEMU must not be able to replace its own trust: a directory or a CA certificate
/// (or CRL, or certificate) that QEMU's user owns or its group may write lets a compromised
/// QEMU put its own CA (or an empty CRL) in place for every domain of the host.
#[test]
fn qemu_cannot_replace_its_own_ca() {
    for (kind, s) in [
        (FileKind::Dir, stat(64055, 64055, 0o750, true)),
        (FileKind::Dir, stat(0, 64055, 0o770, true)),
        (FileKind::Dir, stat(0, 108, 0o770, true)),
        (FileKind::Public, stat(64055, 64055, 0o444, false)),
        (FileKind::Public, stat(0, 64055, 0o664, false)),
    ] {
        let (sev, msg) = audit(kind, s).unwrap_or_else(|| panic!("{kind:?} {s:?} passes"));
        assert_eq!(sev, Severity::Error, "{msg}");
        assert!(msg.contains("QEMU can replace"), "{msg}");
    }
    // Running QEMU as root is its own choice: nothing more to say about writing.
    let root = QemuIds {
        uid: 0,
        gid: 0,
        groups: vec![0],
        label: "root:root".into(),
    };
    assert_eq!(
        audit_qemu(
            Path::new("/p"),
            FileKind::Dir,
            &root,
            &stat(0, 0, 0o750, true)
        ),
        None
    );
    // QEMU's own key, 0400 or 0600 as QEMU's documentation has it, stays fine.
    assert_eq!(audit(KEY, stat(64055, 0, 0o600, false)), None);
}

/// Review: QEMU's server loads dh-params.pem (PKCS#3 "DH PARAMETERS") when present.
#[test]
fn dh_params_must_be_pkcs3_pem() {
    // A DHParameter SEQUENCE { p, g } (toy numbers: only the form is checked).
    let good = "-----BEGIN DH PARAMETERS-----\nMAYCAQcCAQI=\n-----END DH PARAMETERS-----\n";
    assert_eq!(sanity::check_qemu_dh_params(good.as_bytes()), Ok(()));
    for bad in [
        "",
        "not pem",
        "-----BEGIN CERTIFICATE-----\nMAYCAQcCAQI=\n-----END CERTIFICATE-----\n",
        "-----BEGIN DH PARAMETERS-----\n!!!!\n-----END DH PARAMETERS-----\n",
        "-----BEGIN DH PARAMETERS-----\nBAYCAQcCAQI=\n-----END DH PARAMETERS-----\n",
    ] {
        assert!(
            sanity::check_qemu_dh_params(bad.as_bytes()).is_err(),
            "{bad:?}"
        );
    }
}

/// Review: the keyEncipherment rule is QEMU's from the start (copied from libvirt) until
/// 10.2, except stable releases that carry the backport (Debian 12's 7.2.22): the note must
/// not say that only 10.0 and 10.1 refuse (facts 2.3 rule 3, 2.4).
#[test]
fn the_key_encipherment_note_covers_every_qemu_before_10_2() {
    let ca = self_signed(&Spec::ca("Test CA"));
    let leaf = signed_by(
        &Spec::server("server.example").ku(KU_DIGITAL_SIGNATURE, true),
        &ca,
    );
    let ctx = Context::new(ContextFlags::default());
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx.add_pem(CertDataType::ServerCert, &leaf.pem()).unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let found = sanity::check_qemu(&ctx.credentials(), Role::Server, now(), 0);
    let f = found
        .iter()
        .find(|f| f.finding.message.contains("key encipherment"))
        .expect("the finding");
    let note = f.qemu.as_deref().unwrap();
    assert!(note.contains("QEMU <= 10.1"), "{note}");
    assert!(note.contains("7.2.22"), "{note}");
    let libvirt = f.finding.libvirt_differs.as_deref().unwrap();
    assert!(!libvirt.contains("QEMU 10.0 and 10.1 refuse"), "{libvirt}");
}

/// An RSA leaf without keyEncipherment under critical key usage: an error for libvirt and
/// virtpki alike, so no libvirt note carries QEMU's, which differs by version (measured by
/// make interop: Debian 12's 7.2.22 loads it, qemu-img 10.0.2 refuses it).
#[test]
fn an_rsa_leaf_without_key_encipherment_carries_the_qemu_versions() {
    let ca = self_signed(&Spec::ca("Test CA"));
    let leaf = signed_by(
        &Spec::server("server.example")
            .alg(virtpki_tools::kit::Alg::Rsa2048)
            .ku(KU_DIGITAL_SIGNATURE, true),
        &ca,
    );
    let ctx = Context::new(ContextFlags::NO_SANITY);
    ctx.add_pem(CertDataType::CaCert, &ca.pem()).unwrap();
    ctx.add_pem(CertDataType::ServerCert, &leaf.pem()).unwrap();
    ctx.add_pem(CertDataType::ServerKey, &leaf.key_pem())
        .unwrap();
    let found = sanity::check_qemu(&ctx.credentials(), Role::Server, now(), 0);
    let f = found
        .iter()
        .find(|f| f.finding.message.contains("key encipherment"))
        .expect("the finding");
    assert_eq!(f.finding.severity, Severity::Error);
    let note = f
        .qemu
        .as_deref()
        .unwrap_or_else(|| panic!("no QEMU note: {f:?}"));
    assert!(note.contains("7.2.22 accepts it"), "{note}");
    assert!(note.contains("QEMU >= 10.2 accepts it"), "{note}");
}
