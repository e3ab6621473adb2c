//! Certificate revocation lists.
//!
//! rustls-webpki enforces revocation; this keeps the encoded list for it and the few fields
//! people ask about. A CRL is checked with webpki when it is loaded, so a list webpki would
//! refuse at verification time is refused at once, with the file named: in particular version 1
//! CRLs (no extensions, as `openssl ca -gencrl` without a `crlnumber` file writes), which
//! GnuTLS applies but webpki does not parse.

use x509_parser::num_bigint::BigUint;

use crate::dn;
use crate::error::{Error, ErrorKind, Result};
use crate::source::Source;
use crate::timefmt::UnixSeconds;

/// One certificate a CRL revokes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The serial number's DER content octets ([`crate::Certificate::raw_serial`]).
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: UnixSeconds,
}

impl Revoked {
    /// The serial as [`crate::Certificate::serial_hex`] writes it, so the two compare.
    pub fn serial_hex(&self) -> String {
        crate::cert::hex_with_colons(&self.serial)
    }
}

/// A parsed certificate revocation list.
#[derive(Debug)]
pub struct Crl {
    /// Issuer keys (SPKI SHA-256) webpki has verified this list's signature with.
    verified_for: std::sync::Mutex<Vec<crate::cert::Fingerprint>>,
    der: Vec<u8>,
    source: Source,
    /// Parsed once: webpki indexes the revoked serials, which matters for large lists.
    webpki: webpki::CertRevocationList<'static>,
    issuer: String,
    issuer_raw: Vec<u8>,
    number: BigUint,
    this_update: UnixSeconds,
    next_update: Option<UnixSeconds>,
    revoked_count: usize,
}

impl Crl {
    /// Parses one DER CRL read from `source`; `name` says where, for messages (e.g. a block).
    pub fn from_der(der: Vec<u8>, source: Source, name: &str) -> Result<Crl> {
        use x509_parser::prelude::FromDer;
        let bad = |what: String| Error::new(ErrorKind::Parse, format!("{name}: {what}"));
        let (rest, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
                .map_err(|e| bad(format!("not a valid certificate revocation list ({e})")))?;
        if !rest.is_empty() {
            return Err(bad(format!(
                "{} bytes of garbage after the CRL",
                rest.len()
            )));
        }
        let owned = webpki::OwnedCertRevocationList::from_der(&der).map_err(|e| {
            let hint = if crl.version().is_none() {
                "; it is a version 1 CRL, which webpki does not accept: regenerate it as \
                 version 2 (virtpki crl revoke; certtool --generate-crl, or openssl ca -gencrl with a \
                 crlnumber file)"
            } else {
                ""
            };
            bad(format!(
                "unusable certificate revocation list ({e:?}){hint}"
            ))
        })?;
        // RFC 5280 §5.2.3: a conforming CRL carries a non-critical CRL number.
        match crl
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.20")
        {
            None => {
                return Err(bad(
                    "the CRL has no CRL number (RFC 5280 §5.2.3); regenerate it (virtpki crl \
                     revoke and certtool --generate-crl write one)"
                        .into(),
                ))
            }
            Some(e) if e.critical => {
                return Err(bad(
                    "the CRL marks its CRL number critical (RFC 5280 §5.2.3)".into(),
                ))
            }
            Some(_) => {}
        }
        let issuer_raw = crl.issuer().as_raw().to_vec();
        let issuer = dn::name_to_libvirt_string(&issuer_raw)?;
        Ok(Crl {
            issuer,
            number: crl.crl_number().cloned().unwrap_or_default(),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            revoked_count: crl.iter_revoked_certificates().count(),
            issuer_raw,
            webpki: webpki::CertRevocationList::Owned(owned),
            verified_for: std::sync::Mutex::default(),
            source,
            der,
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Where the list was read from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The list as webpki applies it.
    pub fn webpki(&self) -> &webpki::CertRevocationList<'static> {
        &self.webpki
    }

    /// Whether webpki has verified this list's signature with the key `issuer_spki` (the
    /// fingerprint of its SubjectPublicKeyInfo).
    pub fn is_verified_for(&self, issuer_spki: &crate::cert::Fingerprint) -> bool {
        match self.verified_for.lock() {
            Ok(keys) => keys.contains(issuer_spki),
            Err(_) => false,
        }
    }

    /// Records that webpki verified this list's signature with the key `issuer_spki`.
    pub fn mark_verified_for(&self, issuer_spki: crate::cert::Fingerprint) {
        if let Ok(mut keys) = self.verified_for.lock() {
            if !keys.contains(&issuer_spki) {
                keys.push(issuer_spki);
            }
        }
    }

    /// The issuing CA in libvirt's DN format.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The encoded issuer name.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// The CRL number: of two lists of one CA, the higher is the newer (RFC 5280 §5.2.3).
    pub fn number(&self) -> &BigUint {
        &self.number
    }

    /// When the list was issued.
    pub fn this_update(&self) -> UnixSeconds {
        self.this_update
    }

    /// When the next list is due, if said.
    pub fn next_update(&self) -> Option<UnixSeconds> {
        self.next_update
    }

    /// The certificates the list revokes, in its order. Read from the encoding on each call
    /// rather than kept: a list can hold 100,000 entries that verification never needs.
    pub fn revoked(&self) -> Vec<Revoked> {
        use x509_parser::prelude::FromDer;
        // Parsed once already in `from_der`: it cannot fail now.
        x509_parser::revocation_list::CertificateRevocationList::from_der(&self.der)
            .map(|(_, crl)| {
                crl.iter_revoked_certificates()
                    .map(|r| Revoked {
                        serial: r.raw_serial().to_vec(),
                        revoked_at: r.revocation_date.timestamp(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `entry` of this list stands for `cert`: its serial, from this list's issuer.
    pub fn entry_is(&self, entry: &Revoked, cert: &crate::Certificate) -> bool {
        entry.serial == cert.raw_serial() && cert.issuer_raw() == self.issuer_raw.as_slice()
    }

    /// How many certificates the list revokes.
    pub fn revoked_count(&self) -> usize {
        self.revoked_count
    }

    /// Whether `ca` made this list: its issuer is the CA's subject and its signature verifies
    /// with the CA's key. Loading a list checks neither; verification checks them only for the
    /// certificates it meets.
    pub fn is_signed_by(&self, ca: &crate::Certificate) -> bool {
        use x509_parser::prelude::FromDer;
        if self.issuer_raw != ca.subject_raw() {
            return false;
        }
        match (
            x509_parser::revocation_list::CertificateRevocationList::from_der(&self.der),
            x509_parser::certificate::X509Certificate::from_der(ca.der()),
        ) {
            (Ok((_, crl)), Ok((_, ca))) => crl
                .verify_signature(&ca.tbs_certificate.subject_pki)
                .is_ok(),
            _ => false,
        }
    }

    /// Checks that this list is an update of `installed` that needs no one's say-so: both of
    /// the CA `ca`, this one signed by it, and a strictly higher CRL number (RFC 5280 §5.2.3).
    /// An equal or lower number is a rollback, which would bring revoked certificates back;
    /// the error says which rule failed.
    pub fn check_update_of(&self, installed: &Crl, ca: &crate::Certificate) -> Result<()> {
        if installed.issuer_raw != self.issuer_raw {
            return Err(Error::new(
                ErrorKind::UnknownIssuer,
                format!(
                    "the installed CRL is of another CA (\"{}\", this one of \"{}\")",
                    installed.issuer, self.issuer
                ),
            ));
        }
        if !self.is_signed_by(ca) {
            return Err(Error::new(
                ErrorKind::BadSignature,
                format!(
                    "the new CRL is not signed by the CA certificate being installed (\"{}\")",
                    ca.subject()
                ),
            ));
        }
        if self.number <= installed.number {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "the new CRL has number {}, not higher than the installed one's {}: \
                     installing it would roll back revocations",
                    self.number, installed.number
                ),
            ));
        }
        Ok(())
    }
}
