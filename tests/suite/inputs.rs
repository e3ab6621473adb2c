//! Every way credentials come in, and every way an input can be wrong.

use crate::common;

use common::*;
use virtpki::{CertDataType, Context, ContextFlags, ErrorKind};

fn ctx() -> Context {
    Context::new(ContextFlags::default())
}

fn ca_count(ctx: &Context) -> usize {
    ctx.credentials().ca_certs.len()
}

/// Asserts `result` failed with `kind` and a message containing every one of `words`.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(result: virtpki::Result<T>, kind: ErrorKind, words: &[&str]) {
    let err = result.expect_err("expected an error");
    assert_eq!(err.kind(), kind, "{err}");
    for w in words {
        assert!(err.message().contains(w), "{w:?} not in: {err}");
    }
}

#[test]
fn a_bundle_of_ca_certificates_accumulates() {
    let c = ctx();
    let bundle = format!(
        "{}{}",
        self_signed(&Spec::ca("A")).pem(),
        self_signed(&Spec::ca("B")).pem()
    );
    c.add_pem(CertDataType::CaCert, &bundle).unwrap();
    c.add_pem(CertDataType::CaCert, &self_signed(&Spec::ca("C")).pem())
        .unwrap();
    let subjects: Vec<String> = c
        .credentials()
        .ca_certs
        .iter()
        .map(|c| c.subject().to_owned())
        .collect();
    assert_eq!(subjects, ["CN=A", "CN=B", "CN=C"]);
}

#[test]
fn text_around_pem_blocks_is_ignored() {
    let c = ctx();
    let pem = format!(
        "Subject: CN=A\nsome certtool -i output\n{}\ntrailing words\n",
        self_signed(&Spec::ca("A")).pem()
    );
    c.add_pem(CertDataType::CaCert, &pem).unwrap();
    assert_eq!(ca_count(&c), 1);
}

#[test]
fn der_files_are_read_for_certificates_crls_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ca = self_signed(&Spec::ca("DER CA"));
    let leaf = signed_by(&Spec::client("c"), &ca);
    let c = ctx();
    c.add_file(
        CertDataType::CaCert,
        &write(dir.path(), "ca.der", ca.der(), 0o644),
    )
    .unwrap();
    let crl_der = ::pem::parse(crl_pem(&ca, &[7])).unwrap().into_contents();
    c.add_file(
        CertDataType::CaCrl,
        &write(dir.path(), "crl.der", crl_der, 0o644),
    )
    .unwrap();
    c.add_file(
        CertDataType::ClientCert,
        &write(dir.path(), "c.der", leaf.der(), 0o644),
    )
    .unwrap();
    let key_der = leaf.key.serialize_der();
    c.add_file(
        CertDataType::ClientKey,
        &write(dir.path(), "k.der", key_der, 0o600),
    )
    .unwrap();
    let creds = c.credentials();
    assert_eq!(creds.ca_certs[0].subject(), "CN=DER CA");
    assert_eq!(creds.crls[0].revoked_count(), 1);
    assert!(creds
        .client
        .key
        .as_ref()
        .unwrap()
        .matches(&creds.client.chain[0]));
}

#[test]
fn der_is_refused_as_data_text() {
    // PEM text is the only form of in-memory data; DER bytes there are garbage.
    let c = ctx();
    assert_err(
        c.add_pem(CertDataType::CaCert, "0\u{3}\u{2}\u{1}"),
        ErrorKind::Parse,
        &["no PEM data", "BEGIN CERTIFICATE"],
    );
}

#[test]
fn private_keys_in_pkcs8_pkcs1_and_sec1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // PKCS#8 from rcgen; PKCS#1 and SEC1 converted by openssl.
    let ec = key(Alg::EcdsaP256);
    write(d, "pkcs8.pem", ec.serialize_pem(), 0o600);
    openssl(d, &["ec", "-in", "pkcs8.pem", "-out", "sec1.pem"]);
    let rsa = key(Alg::Rsa2048);
    write(d, "rsa8.pem", rsa.serialize_pem(), 0o600);
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa8.pem",
            "-traditional",
            "-out",
            "pkcs1.pem",
        ],
    );
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "with-params.pem",
        ],
    );
    for (file, label) in [
        ("pkcs8.pem", "BEGIN PRIVATE KEY"),
        ("sec1.pem", "BEGIN EC PRIVATE KEY"),
        ("pkcs1.pem", "BEGIN RSA PRIVATE KEY"),
        ("with-params.pem", "BEGIN EC PARAMETERS"),
    ] {
        let path = d.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(label),
            "{file} is not what the test means: {text}"
        );
        let c = ctx();
        c.add_file(CertDataType::ClientKey, &path)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(c.credentials().client.key.is_some());
        c.add_pem(CertDataType::ServerKey, &text).unwrap();
    }
}

#[test]
fn encrypted_keys_are_refused_with_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "plain.pem", key(Alg::EcdsaP256).serialize_pem(), 0o600);
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:secret",
            "-out",
            "pkcs8-enc.pem",
        ],
    );
    write(d, "rsa.pem", key(Alg::Rsa2048).serialize_pem(), 0o600);
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "legacy-enc.pem",
        ],
    );
    for file in ["pkcs8-enc.pem", "legacy-enc.pem"] {
        let path = d.join(file);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert_err(
            ctx().add_file(CertDataType::ClientKey, &path),
            ErrorKind::WrongType,
            &[file, "encrypted", "openssl pkey"],
        );
    }
}

#[test]
fn a_key_given_as_a_certificate_and_the_reverse_are_wrong_types() {
    let made = self_signed(&Spec::ca("A"));
    let c = ctx();
    assert_err(
        c.add_pem(CertDataType::CaCert, &made.key_pem()),
        ErrorKind::WrongType,
        &["private key", "CA certificate"],
    );
    assert_err(
        c.add_pem(CertDataType::ClientKey, &made.pem()),
        ErrorKind::WrongType,
        &["certificate", "client private key"],
    );
    assert_err(
        c.add_pem(CertDataType::ServerCert, &crl_pem(&made, &[1])),
        ErrorKind::WrongType,
        &["revocation list", "server certificate"],
    );
    assert_err(
        c.add_pem(CertDataType::CaCrl, &made.pem()),
        ErrorKind::WrongType,
        &["a certificate", "revocation list was expected"],
    );
    let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
    assert_err(
        c.add_pem(CertDataType::CaCert, csr),
        ErrorKind::WrongType,
        &["CERTIFICATE REQUEST"],
    );
    // A DER key file given as a certificate.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "key.der", made.key.serialize_der(), 0o600);
    assert_err(
        c.add_file(CertDataType::CaCert, &path),
        ErrorKind::WrongType,
        &["key.der", "private key"],
    );
    assert_eq!(ca_count(&c), 0);
    assert!(c.credentials().client.key.is_none());
}

#[test]
fn empty_garbage_and_broken_pem() {
    let c = ctx();
    assert_err(
        c.add_pem(CertDataType::CaCert, ""),
        ErrorKind::InvalidArg,
        &["empty"],
    );
    assert_err(
        c.add_pem(CertDataType::CaCert, " \n\t"),
        ErrorKind::InvalidArg,
        &["empty"],
    );
    assert_err(
        c.add_pem(CertDataType::CaCert, "hello world"),
        ErrorKind::Parse,
        &["no PEM data"],
    );
    let good = self_signed(&Spec::ca("A")).pem();
    let truncated = &good[..good.len() - 30];
    assert_err(
        c.add_pem(CertDataType::CaCert, truncated),
        ErrorKind::Parse,
        &["truncated"],
    );
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert_err(
        c.add_pem(CertDataType::CaCert, bad_base64),
        ErrorKind::Parse,
        &["malformed PEM"],
    );
    let not_x509 = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    assert_err(
        c.add_pem(CertDataType::CaCert, not_x509),
        ErrorKind::Parse,
        &["not a valid X.509"],
    );
    let not_key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
    assert_err(
        c.add_pem(CertDataType::ClientKey, not_key),
        ErrorKind::Parse,
        &["unusable private key"],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "garbage.bin",
        [0x30u8, 0x82, 0xff, 0xff, 1, 2, 3],
        0o644,
    );
    assert_err(
        c.add_file(CertDataType::CaCert, &path),
        ErrorKind::Parse,
        &["garbage.bin", "neither PEM nor"],
    );
    let path = write(dir.path(), "empty.pem", "", 0o644);
    assert_err(
        c.add_file(CertDataType::CaCert, &path),
        ErrorKind::InvalidArg,
        &["empty.pem", "empty"],
    );
    assert_eq!(ca_count(&c), 0);
}

#[test]
fn two_keys_in_one_input_are_refused() {
    let two = format!(
        "{}{}",
        key(Alg::EcdsaP256).serialize_pem(),
        key(Alg::EcdsaP256).serialize_pem()
    );
    assert_err(
        ctx().add_pem(CertDataType::ServerKey, &two),
        ErrorKind::Parse,
        &["block 2", "second private key"],
    );
}

#[test]
fn small_rsa_keys_are_unusable() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.pem",
        ],
    );
    let path = dir.path().join("small.pem");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert_err(
        ctx().add_file(CertDataType::ClientKey, &path),
        ErrorKind::Parse,
        &["small.pem", "2048, 3072 or 4096 bits"],
    );
}

#[test]
fn adding_is_all_or_nothing() {
    let c = ctx();
    c.add_pem(CertDataType::CaCert, &self_signed(&Spec::ca("First")).pem())
        .unwrap();
    let bad = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
    let mixed = format!("{}{bad}", self_signed(&Spec::ca("Second")).pem());
    assert_err(
        c.add_pem(CertDataType::CaCert, &mixed),
        ErrorKind::Parse,
        &["block 2"],
    );
    let subjects: Vec<String> = c
        .credentials()
        .ca_certs
        .iter()
        .map(|c| c.subject().to_owned())
        .collect();
    assert_eq!(subjects, ["CN=First"]);
    let ca = self_signed(&Spec::ca("CA"));
    let crls = format!(
        "{}{}",
        crl_pem(&ca, &[1]),
        self_signed(&Spec::ca("X")).pem()
    );
    assert_err(
        c.add_pem(CertDataType::CaCrl, &crls),
        ErrorKind::WrongType,
        &["block 2"],
    );
    assert!(c.credentials().crls.is_empty());
}

#[test]
fn identity_halves_replace_the_previous_ones() {
    let c = ctx();
    let ca = self_signed(&Spec::ca("CA"));
    let a = signed_by(&Spec::client("a"), &ca);
    let b = signed_by(&Spec::client("b"), &ca);
    c.add_pem(CertDataType::ClientCert, &a.pem()).unwrap();
    c.add_pem(CertDataType::ClientKey, &a.key_pem()).unwrap();
    c.add_pem(
        CertDataType::ClientCert,
        &format!("{}{}", b.pem(), ca.pem()),
    )
    .unwrap();
    let creds = c.credentials();
    assert_eq!(creds.client.chain.len(), 2);
    assert_eq!(creds.client.chain[0].subject(), "CN=b");
    // The old key stays until replaced: the pair is now inconsistent, which the check reports.
    assert!(!creds
        .client
        .key
        .as_ref()
        .unwrap()
        .matches(&creds.client.chain[0]));
    c.add_pem(CertDataType::ClientKey, &b.key_pem()).unwrap();
    let creds = c.credentials();
    assert!(creds
        .client
        .key
        .as_ref()
        .unwrap()
        .matches(&creds.client.chain[0]));
    assert!(creds.server.is_empty());
}

#[test]
fn size_caps_per_type() {
    let c = ctx();
    let big = "A".repeat(virtpki::CertDataType::CaCert.size_limit() + 1);
    assert_err(
        c.add_pem(CertDataType::CaCert, &big),
        ErrorKind::TooLarge,
        &["1 MiB", "CA certificate"],
    );
    let dir = tempfile::tempdir().unwrap();
    let key_limit = CertDataType::ClientKey.size_limit();
    let path = write(dir.path(), "huge-key.pem", vec![b'A'; key_limit + 1], 0o600);
    assert_err(
        c.add_file(CertDataType::ClientKey, &path),
        ErrorKind::TooLarge,
        &["huge-key.pem", "64 KiB"],
    );
    // CRLs may be much larger than certificates.
    assert!(CertDataType::CaCrl.size_limit() >= 32 * CertDataType::CaCert.size_limit());
}

#[test]
fn key_files_open_to_others_are_refused_group_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let pem = key(Alg::EcdsaP256).serialize_pem();
    for (mode, ok) in [
        (0o600, true),
        (0o640, true),
        (0o660, true),
        (0o644, false),
        (0o602, false),
        (0o666, false),
    ] {
        let path = write(dir.path(), &format!("key-{mode:o}.pem"), &pem, mode);
        let result = ctx().add_file(CertDataType::ServerKey, &path);
        if ok {
            result.unwrap();
        } else {
            assert_err(
                result,
                ErrorKind::InsecurePermissions,
                &[&format!("key-{mode:o}.pem"), "chmod o-rwx"],
            );
        }
    }
    // Certificates may be world-readable.
    let path = write(
        dir.path(),
        "cert.pem",
        self_signed(&Spec::ca("A")).pem(),
        0o644,
    );
    ctx().add_file(CertDataType::CaCert, &path).unwrap();
}

#[test]
fn missing_files_and_directories_are_io_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/cacert.pem");
    assert_err(
        ctx().add_file(CertDataType::CaCert, &missing),
        ErrorKind::Io,
        &["nope/cacert.pem"],
    );
    assert_err(
        ctx().add_file(CertDataType::CaCert, dir.path()),
        ErrorKind::Io,
        &["is a directory"],
    );
}

#[test]
fn version_1_crls_are_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = self_signed(&Spec::ca("V1 CA"));
    write(d, "ca.pem", ca.pem(), 0o644);
    write(d, "ca.key", ca.key_pem(), 0o600);
    write(d, "index.txt", "", 0o644);
    write(
        d,
        "ca.cnf",
        "[ca]\ndefault_ca=x\n[x]\ndatabase=index.txt\ncertificate=ca.pem\nprivate_key=ca.key\ndefault_md=sha256\ndefault_crl_days=30\n",
        0o644,
    );
    openssl(d, &["ca", "-config", "ca.cnf", "-gencrl", "-out", "v1.crl"]);
    let path = d.join("v1.crl");
    assert_err(
        ctx().add_file(CertDataType::CaCrl, &path),
        ErrorKind::Parse,
        &["v1.crl", "version 1"],
    );
}

#[test]
fn debug_output_of_a_key_shows_no_key_material() {
    let k = key(Alg::EcdsaP256);
    let c = ctx();
    c.add_pem(CertDataType::ClientKey, &k.serialize_pem())
        .unwrap();
    let shown = format!("{:?}", c.credentials().client.key);
    assert!(shown.contains("PrivateKey"), "{shown}");
    assert!(!shown.contains("der"), "{shown}");
    let body: String = k
        .serialize_pem()
        .lines()
        .nth(1)
        .unwrap()
        .chars()
        .take(16)
        .collect();
    assert!(!shown.contains(&body));
}

/// Text that mentions a PEM BEGIN line but holds no complete block.
const NO_COMPLETE_BLOCK: [&str; 6] = [
    "-----BEGIN",
    "-----BEGIN-----",
    "-----BEGINCERTIFICATE-----\nMAMCAQA=\n-----ENDCERTIFICATE-----\n",
    "-----BEGIN\tCERTIFICATE-----\nMAMCAQA=\n-----END\tCERTIFICATE-----\n",
    "----BEGIN X509 CRL----\nMAMCAQA=\n----END X509 CRL----\n-----BEGIN",
    "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n",
];

#[test]
fn pem_text_without_a_complete_block_is_a_parse_error_for_every_type() {
    let ca = self_signed(&Spec::ca("Zero CA"));
    let client = signed_by(&Spec::client("client1"), &ca);
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in NO_COMPLETE_BLOCK.iter().enumerate() {
        for ty in CertDataType::ALL {
            let c = ctx();
            c.add_pem(CertDataType::ClientCert, &client.pem()).unwrap();
            c.add_pem(CertDataType::CaCrl, &crl_pem(&ca, &[7])).unwrap();
            let before = format!("{:?}", c.credentials());
            let err = c.add_pem(ty, text).expect_err(&format!("{ty:?} {text:?}"));
            assert_eq!(err.kind(), ErrorKind::Parse, "{ty:?} {text:?}: {err}");
            assert!(err.message().starts_with("data: "), "{err}");
            let path = write(dir.path(), &format!("in{i}-{}.pem", ty as i32), text, 0o600);
            let err = c
                .add_file(ty, &path)
                .expect_err(&format!("{ty:?} {text:?}"));
            assert_eq!(err.kind(), ErrorKind::Parse, "{ty:?} {text:?}: {err}");
            assert!(err.message().contains(&*path.to_string_lossy()), "{err}");
            // Nothing changed: the client chain is still there, the CRL still loaded.
            assert_eq!(format!("{:?}", c.credentials()), before, "{ty:?} {text:?}");
        }
    }
}

/// The same through the C API's default context, and the certificate functions, which used
/// to panic on an empty chain.
#[test]
fn c_api_refuses_pem_text_without_a_complete_block() {
    use std::ffi::CString;
    use virtpki::ffi::{cert, connect, errors};
    for text in NO_COMPLETE_BLOCK {
        let data = CString::new(text).unwrap();
        for ty in CertDataType::ALL {
            errors::virPKIResetLastError();
            // SAFETY: a NUL-terminated string that outlives the call.
            let rc = unsafe { connect::virConnectAddCertData(ty as i32, data.as_ptr()) };
            assert_eq!(rc, -1, "{ty:?} {text:?}");
            assert_eq!(
                errors::virPKIGetLastErrorCode(),
                ErrorKind::Parse.code(),
                "{ty:?} {text:?}"
            );
        }
        type CertFn = unsafe extern "C" fn(*const std::ffi::c_char) -> *mut std::ffi::c_char;
        let getters: [CertFn; 3] = [
            cert::virPKICertGetDN,
            cert::virPKICertFingerprint,
            cert::virPKICertDescribe,
        ];
        for f in getters {
            errors::virPKIResetLastError();
            // SAFETY: a NUL-terminated string that outlives the call.
            assert!(unsafe { f(data.as_ptr()) }.is_null(), "{text:?}");
            assert_eq!(errors::virPKIGetLastErrorCode(), ErrorKind::Parse.code());
        }
    }
}

/// A snapshot taken before an addition shares the certificates with the one after it, so an
/// addition costs what is added, not what is loaded (item 9 of issue 10: a context that cloned
/// every certificate per addition made adding a bundle one by one quadratic). The speed itself
/// is measured by the criterion benchmark `benches/adding.rs`, not by a timed test.
#[test]
fn snapshots_share_the_certificates() {
    let c = ctx();
    c.add_pem(CertDataType::CaCert, &self_signed(&Spec::ca("A")).pem())
        .unwrap();
    let before = c.credentials();
    c.add_pem(CertDataType::CaCert, &self_signed(&Spec::ca("B")).pem())
        .unwrap();
    let after = c.credentials();
    assert_eq!((before.ca_certs.len(), after.ca_certs.len()), (1, 2));
    assert_eq!(
        before.ca_certs[0].der().as_ptr(),
        after.ca_certs[0].der().as_ptr()
    );
}

/// A DER file is recognised as DER even when its bytes contain the PEM marker: a certificate
/// whose subject holds the text "-----BEGIN CERTIFICATE-----" is read, not refused as broken
/// PEM.
#[test]
fn a_der_file_containing_the_pem_marker_is_der() {
    let dir = tempfile::tempdir().unwrap();
    let ca = self_signed(&Spec::ca("-----BEGIN CERTIFICATE-----"));
    let der = ca.der();
    assert!(der.windows(10).any(|w| w == b"-----BEGIN"));
    let path = write(dir.path(), "marker.der", &der, 0o644);
    let c = ctx();
    c.add_file(CertDataType::CaCert, &path).unwrap();
    assert_eq!(ca_count(&c), 1);
    assert_eq!(
        c.credentials().ca_certs[0].fingerprint(),
        virtpki::Certificate::from_der(der.clone(), virtpki::source::Source::Data)
            .unwrap()
            .fingerprint()
    );

    // The same bytes with a byte appended are no complete DER structure: still refused.
    let mut longer = der.clone();
    longer.push(b'\n');
    let path = write(dir.path(), "longer.der", &longer, 0o644);
    let c = ctx();
    assert_err(
        c.add_file(CertDataType::CaCert, &path),
        ErrorKind::Parse,
        &["longer.der"],
    );
    assert_eq!(ca_count(&c), 0);
}

/// An add that returned success stays added: a load of files running at the same time (a
/// daemon reloading while another thread adds a CRL) used to take a copy of the credentials
/// before reading its files and put that copy back after, losing every add in between.
#[test]
fn adds_during_a_load_of_files_are_not_lost() {
    use virtpki::locations::{CredentialFiles, Located, Origin};
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "cacert.pem",
        self_signed(&Spec::ca("Loaded")).pem(),
        0o644,
    );
    let files = CredentialFiles {
        role: virtpki::Role::Client,
        files: vec![Located {
            ty: CertDataType::CaCert,
            path,
            origin: Origin::PkiPath,
            required: true,
        }],
        extra_identities: Vec::new(),
    };
    let c = Context::new(ContextFlags::NO_SANITY);
    let added = self_signed(&Spec::ca("Added")).pem();
    const ROUNDS: usize = 300;
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                c.load_files(&files).unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..ROUNDS {
                c.add_pem(CertDataType::CaCert, &added).unwrap();
            }
        });
    });
    let count = |cn: &str| {
        c.credentials()
            .ca_certs
            .iter()
            .filter(|cert| cert.subject() == cn)
            .count()
    };
    assert_eq!(count("CN=Loaded"), ROUNDS);
    assert_eq!(count("CN=Added"), ROUNDS);
}

/// The command a key-permission error suggests quotes the file name: pasted as printed, a
/// name such as "key.pem; touch pwned" must not run a second command.
#[test]
fn the_suggested_chmod_quotes_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let name = "key.pem; touch pwned";
    let path = write(dir.path(), name, key(Alg::EcdsaP256).serialize_pem(), 0o644);
    let err = ctx()
        .add_file(CertDataType::ClientKey, &path)
        .expect_err("a key readable by others");
    assert_eq!(err.kind(), ErrorKind::InsecurePermissions, "{err}");
    let quoted = format!("chmod o-rwx '{}'", path.display());
    assert!(err.message().ends_with(&quoted), "{err}");
}

/// A bad block of a bundle is named by its number whatever the file is called: the number
/// went missing for a file name with a character that messages escape (a line feed).
#[test]
fn the_bad_block_of_a_bundle_is_named_for_odd_file_names_too() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = format!(
        "{}-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        self_signed(&Spec::ca("A")).pem()
    );
    for name in ["plain.pem", "new\nline.pem"] {
        let path = write(dir.path(), name, &bundle, 0o644);
        let c = ctx();
        assert_err(
            c.add_file(CertDataType::CaCert, &path),
            ErrorKind::Parse,
            &["block 2: not a valid X.509"],
        );
        assert_eq!(ca_count(&c), 0);
    }
}

/// A block whose BEGIN line is broken (four dashes, lower case) in a bundle with good blocks
/// is a parse error, not text around the blocks: a CRL bundle lost its middle list without a
/// word, and the certificates it revokes were accepted.
#[test]
fn a_block_with_a_broken_begin_line_among_good_ones_is_a_parse_error() {
    let crls: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|cn| crl_pem(&self_signed(&Spec::ca(cn)), &[7]))
        .collect();
    for broken in ["----BEGIN X509 CRL-----", "-----begin X509 CRL-----"] {
        let middle = crls[1].replacen("-----BEGIN X509 CRL-----", broken, 1);
        let bundle = format!("{}{middle}{}", crls[0], crls[2]);
        let c = ctx();
        assert_err(
            c.add_pem(CertDataType::CaCrl, &bundle),
            ErrorKind::Parse,
            &["END lines"],
        );
        assert!(c.credentials().crls.is_empty());
    }
    // A stray END line with nothing to close is refused the same way.
    let stray = format!("-----END X509 CRL-----\n{}", crls[0]);
    assert_err(
        ctx().add_pem(CertDataType::CaCrl, &stray),
        ErrorKind::Parse,
        &["END lines"],
    );
}

/// Certificates GnuTLS refuses to import (`gnutls_x509_crt_import`), so libvirt fails to load
/// them: the signature algorithm outside the signed part not the one inside it, a version 2
/// certificate with extensions, two extensions of one OID. Loading a CA file holding one fails
/// with a parse error that names the file and the rule, and adds nothing (the good certificate
/// before it neither).
#[test]
fn ca_files_gnutls_refuses_to_import_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = self_signed(&Spec::ca("Good CA").alg(Alg::EcdsaP256)).pem();
    let der = self_signed(&Spec::ca("Import CA").alg(Alg::EcdsaP256)).der();
    // ecdsa-with-SHA256; its last occurrence is the outer one, made ecdsa-with-SHA384.
    let sha256 = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let at = der.windows(12).rposition(|w| w == sha256).unwrap();
    assert_ne!(Some(at), der.windows(12).position(|w| w == sha256));
    let mut outer = der.clone();
    outer[at + 11] = 0x03;
    // Version 3 (`[0] INTEGER 2`) made version 2, the extensions kept.
    let at = der
        .windows(5)
        .position(|w| w == [0xa0, 0x03, 0x02, 0x01, 0x02])
        .unwrap();
    let mut v2 = der.clone();
    v2[at + 4] = 0x01;
    // Two extensions of one OID (GNUTLS_E_X509_DUPLICATE_EXTENSION).
    let mut twice = Spec::ca("Twice CA").alg(Alg::EcdsaP256);
    for _ in 0..2 {
        let unknown = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 5], vec![0x05, 0x00]);
        twice.custom.push(unknown);
    }
    let twice = self_signed(&twice).der();
    let c = ctx();
    for (file, der, rule) in [
        (
            "outer.pem",
            outer,
            "the signature algorithm outside the signed part differs",
        ),
        ("v2.pem", v2, "a version 2 certificate has extensions"),
        (
            "twice.pem",
            twice,
            "the certificate has two extensions 1.2.3.5",
        ),
    ] {
        let pem = ::pem::encode(&::pem::Pem::new("CERTIFICATE", der));
        let path = write(dir.path(), file, format!("{good}{pem}"), 0o644);
        assert_err(
            c.add_file(CertDataType::CaCert, &path),
            ErrorKind::Parse,
            &[file, rule],
        );
    }
    assert_eq!(ca_count(&c), 0);
}
