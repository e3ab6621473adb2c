//! The quickstart: a libvirt TLS setup made, loaded and checked the way libvirt does.
//!
//! Run with `cargo run --release --example quickstart`. Everything happens in a temporary
//! directory; nothing on the system is read or changed.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use virtpki::locations::{self, Environment};
use virtpki::{CertDataType, Context, ContextFlags, Role};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let pki = dir.path();
    println!("== 1. A CA, a server and a client certificate, as libvirt's docs issue them");
    let (ca_params, ca_key) = ca("Quickstart CA")?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server = leaf(&["host.example.com"], "host.example.com", true)?;
    let client = leaf(&[], "client1", false)?;
    let server_cert = server.0.signed_by(&server.1, &issuer)?;
    let client_cert = client.0.signed_by(&client.1, &issuer)?;
    write(pki, "cacert.pem", &ca_cert.pem(), 0o644)?;
    write(pki, "servercert.pem", &server_cert.pem(), 0o644)?;
    write(pki, "serverkey.pem", &server.1.serialize_pem(), 0o600)?;
    write(pki, "clientcert.pem", &client_cert.pem(), 0o644)?;
    write(pki, "clientkey.pem", &client.1.serialize_pem(), 0o600)?;
    println!("written to {} (libvirt's pkipath layout)\n", pki.display());

    println!(
        "== 2. The daemon loads its credentials (libvirt's rules, pkipath={})",
        pki.display()
    );
    let daemon = Context::new(ContextFlags::default());
    // A private "system" root, so that libvirt's fallbacks to /etc/pki read nothing real.
    let env = Environment {
        root: pki.join("system-root"),
        home: None,
        uid: 0,
    };
    let report = daemon.load_files(&locations::libvirt(&env, Role::Server, Some(pki)))?;
    print!("{report}");
    let creds = daemon.credentials();
    println!(
        "\nThe server certificate:\n{}",
        creds.server.chain[0].describe()
    );

    println!("== 3. The client's DN, as tls_allowed_dn_list and virt-pki-query-dn see it");
    let client_ctx = Context::new(ContextFlags::default());
    client_ctx.add_file(CertDataType::CaCert, &pki.join("cacert.pem"))?;
    client_ctx.add_file(CertDataType::ClientCert, &pki.join("clientcert.pem"))?;
    client_ctx.add_file(CertDataType::ClientKey, &pki.join("clientkey.pem"))?;
    let dn = client_ctx.credentials().client.chain[0]
        .subject()
        .to_owned();
    println!("{dn}");
    let allowed = virtpki::AllowedDnList::new(&["C=GB,ST=London,L=London,O=Quickstart,CN=*"])?;
    println!(
        "allowed by \"C=GB,ST=London,L=London,O=Quickstart,CN=*\": {}",
        allowed.is_allowed(&dn)
    );
    println!(
        "the same list in RFC 4514 order would not match: {}\n",
        virtpki::AllowedDnList::new(&["CN=client1,O=Quickstart,L=London,ST=London,C=GB"])?
            .is_allowed(&dn)
    );

    println!("== 4. A broken setup: the client's certificate used as the daemon's");
    let broken = Context::new(ContextFlags::NO_SANITY);
    broken.add_file(CertDataType::CaCert, &pki.join("cacert.pem"))?;
    broken.add_file(CertDataType::ServerCert, &pki.join("clientcert.pem"))?;
    broken.add_file(CertDataType::ServerKey, &pki.join("serverkey.pem"))?;
    print!("{}", broken.check(Role::Server).to_text());
    Ok(())
}

fn ca(cn: &str) -> Result<(CertificateParams, KeyPair), rcgen::Error> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok((p, KeyPair::generate()?))
}

fn leaf(
    dns: &[&str],
    cn: &str,
    server: bool,
) -> Result<(CertificateParams, KeyPair), rcgen::Error> {
    let mut p = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // GnuTLS wants the country as PrintableString; UTF8String would print as hex in the DN.
    name.push(
        DnType::CountryName,
        DnValue::PrintableString("GB".try_into()?),
    );
    name.push(DnType::StateOrProvinceName, "London");
    name.push(DnType::LocalityName, "London");
    name.push(DnType::OrganizationName, "Quickstart");
    name.push(DnType::CommonName, cn);
    p.distinguished_name = name;
    for d in dns {
        p.subject_alt_names.push(SanType::DnsName((*d).try_into()?));
    }
    p.is_ca = IsCa::ExplicitNoCa;
    // rcgen leaves the authority key identifier out unless asked; RFC 5280 verifiers want it.
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    Ok((p, KeyPair::generate()?))
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
}
