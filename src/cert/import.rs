//! The rules GnuTLS applies when it imports a certificate, beyond decoding its DER.
//!
//! libvirt reads its own certificates, its CA file and every certificate a peer sends with
//! `gnutls_x509_crt_import`; a certificate that call refuses fails the load or the
//! handshake, so [`Certificate::from_der`](super::Certificate::from_der) refuses it too. The
//! rules, from GnuTLS 3.7.9 and 3.8.x (the same in both), lib/x509/x509.c:
//!
//! - `compare_sig_algorithm`: the signature algorithm outside the signed part and
//!   `tbsCertificate.signature` name the same OID with the same parameters, absent
//!   parameters counting as NULL;
//! - `_gnutls_x509_get_version` (lib/x509/common.c): the version INTEGER is one byte below
//!   0x80, so version 128 at most (higher versions up to there are imported);
//! - `_gnutls_check_cert_sanity`: no extensions in a version 1 or 2 certificate, no unique
//!   identifiers in a version 1 certificate, no two extensions of one OID
//!   (`GNUTLS_E_X509_DUPLICATE_EXTENSION`), and both times readable: libtasn1's strict DER
//!   (digits, then `Z`) and GnuTLS's `_gnutls_x509_generalTime2gtime`, which refuses
//!   fractional seconds;
//! - `cache_alt_names` (lib/x509/x509.c) with `gnutls_x509_ext_import_subject_alt_names`
//!   (lib/x509/x509_ext.c): the subject and issuer alternative names decode, every name
//!   is of a type GnuTLS knows (`_gnutls_x509_san_find_type`: not an X.400 address or an
//!   EDI party name) and, but for an other name, is not empty; an other name is a type and
//!   one value, a directory name a Name (`dn::check_name`), a registered ID an OID libtasn1
//!   decodes (its strict decoding);
//! - libtasn1 decodes every OID of the certificate (`der::libtasn1_reads_oid`: here the
//!   extension identifiers and those of the signature algorithms, and of the alternative
//!   names, which it decodes at import), and `gnutls_x509_crt_get_extension_info` reads an
//!   extension identifier of 126 characters dotted at most.
//!
//! Both readers have accepted the certificate when [`check`] runs; it reads the headers of
//! the top-level elements and of the extensions, compares two short algorithm identifiers
//! and walks the two alternative name values: not a second pass over the certificate.

use super::ParsedFields;
use crate::der::{self, Element, Elements, Tag};

const DIFFERENT_SIGNATURE_ALGORITHMS: &str = "the signature algorithm outside the signed part \
    differs from the one inside it (tbsCertificate.signature)";

/// The GnuTLS import rule `der` breaks, in words, if any. `fields` is what a reader read
/// from `der`.
pub(super) fn check(der: &[u8], fields: &ParsedFields) -> Result<(), String> {
    let parts = Parts::of(der).ok_or("the certificate is not in DER")?;
    if !same_algorithm(parts.outer_signature.content, parts.signature.content) {
        return Err(DIFFERENT_SIGNATURE_ALGORITHMS.to_owned());
    }
    let version = fields.version;
    if version > 128 {
        return Err(format!(
            "version {version} is beyond 128, the highest GnuTLS reads"
        ));
    }
    if version < 3 && parts.extensions {
        return Err(format!("a version {version} certificate has extensions"));
    }
    if !der::libtasn1_reads_oid(parts.key_algorithm) {
        return Err(
            "the public key's algorithm identifier does not decode (an arc not in its \
            shortest form, or beyond 64 bits)"
                .to_owned(),
        );
    }
    if !parts
        .extension_ids
        .iter()
        .all(|id| der::libtasn1_reads_oid(id))
    {
        return Err(
            "an extension identifier does not decode (an arc not in its shortest form, \
            or beyond 64 bits)"
                .to_owned(),
        );
    }
    // gnutls_x509_crt_get_extension_info reads the dotted identifier into MAX_OID_SIZE (128)
    // bytes and fails the import beyond 126 characters (certtool -i). Up to 30 content
    // bytes print in at most 4 + 29 * 4 = 120 characters: only longer ones are printed.
    if let Some(long) = parts
        .extension_ids
        .iter()
        .filter(|id| id.len() > 30)
        .filter_map(|id| der::oid_to_string(id))
        .find(|text| text.len() > 126)
    {
        let length = long.len();
        return Err(format!(
            "an extension identifier is {length} characters long dotted, longer than the 126 \
             characters GnuTLS reads"
        ));
    }
    let mut ids = parts.extension_ids.clone();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        // An incomplete last arc (libtasn1 reads it) has no dotted text here: its bytes.
        let oid = der::oid_to_string(pair[0])
            .unwrap_or_else(|| format!("of the OID encoded {}", super::hex_with_colons(pair[0])));
        return Err(format!("the certificate has two extensions {oid}"));
    }
    if version < 2 && parts.unique_id {
        return Err("a version 1 certificate has a unique identifier".to_owned());
    }
    for (which, names) in [
        ("subject", &parts.subject_alt_names),
        ("issuer", &parts.issuer_alt_names),
    ] {
        if names
            .as_ref()
            .is_some_and(|names| !gnutls_general_names(names))
        {
            return Err(format!(
                "the {which} alternative name extension holds a name GnuTLS refuses (empty, or \
                 of a type it does not know) or is malformed"
            ));
        }
    }
    for (which, time) in [
        ("notBefore", &parts.not_before),
        ("notAfter", &parts.not_after),
    ] {
        if !gnutls_time(time) {
            return Err(format!(
                "the {which} time is not digits ending in Z (no fractional seconds, no offset)"
            ));
        }
    }
    Ok(())
}

/// The top-level elements the rules look at.
struct Parts<'a> {
    outer_signature: Element<'a>,
    signature: Element<'a>,
    not_before: Element<'a>,
    not_after: Element<'a>,
    unique_id: bool,
    extensions: bool,
    /// The identifiers (OID contents) of the extensions, in order.
    extension_ids: Vec<&'a [u8]>,
    /// The public key's algorithm OID (content), which libtasn1 decodes too.
    key_algorithm: &'a [u8],
    /// The values (content of the OCTET STRING) of the first subject and issuer
    /// alternative name extensions, the ones GnuTLS reads at import.
    subject_alt_names: Option<&'a [u8]>,
    issuer_alt_names: Option<&'a [u8]>,
}

impl<'a> Parts<'a> {
    /// `None` when `der` does not have the shape of a certificate, which neither reader
    /// would have accepted.
    fn of(der: &'a [u8]) -> Option<Parts<'a>> {
        let mut certificate = Elements::new(der::read(der).ok()?.0.content);
        let tbs = certificate.next_element()?;
        let outer_signature = certificate.next_element()?;
        let mut tbs = Elements::new(tbs.content);
        // The version, if there is one, then the serial.
        if tbs.next_element()?.tag == Tag(0xa0) {
            tbs.next_element()?;
        }
        let signature = tbs.next_element()?;
        let _issuer = tbs.next_element()?;
        let mut validity = Elements::new(tbs.next_element()?.content);
        let not_before = validity.next_element()?;
        let not_after = validity.next_element()?;
        let _subject = tbs.next_element()?;
        let key_info = tbs.next_element()?;
        let key_algorithm = Elements::new(Elements::new(key_info.content).next_element()?.content)
            .next_element()?;
        if key_algorithm.tag != Tag::OID {
            return None;
        }
        let key_algorithm = key_algorithm.content;
        let (mut unique_id, mut extensions) = (false, false);
        let mut extension_ids = Vec::new();
        let (mut subject_alt_names, mut issuer_alt_names) = (None, None);
        while !tbs.is_empty() {
            let element = tbs.next_element()?;
            // [1] issuerUniqueID, [2] subjectUniqueID, [3] extensions; constructed or not.
            match element.tag.0 & 0xdf {
                0x81 | 0x82 => unique_id = true,
                0x83 => {
                    extensions = true;
                    let mut list =
                        Elements::new(Elements::new(element.content).next_element()?.content);
                    while !list.is_empty() {
                        let mut extension = Elements::new(list.next_element()?.content);
                        let id = extension.next_element()?.content;
                        extension_ids.push(id);
                        // The critical flag, if any, then the value.
                        let mut value = extension.next_element()?;
                        if value.tag == Tag::BOOLEAN {
                            value = extension.next_element()?;
                        }
                        let slot = match id {
                            [0x55, 0x1d, 0x11] => &mut subject_alt_names,
                            [0x55, 0x1d, 0x12] => &mut issuer_alt_names,
                            _ => continue,
                        };
                        slot.get_or_insert(value.content);
                    }
                }
                _ => {}
            }
        }
        Some(Parts {
            outer_signature,
            signature,
            not_before,
            not_after,
            unique_id,
            extensions,
            extension_ids,
            key_algorithm,
            subject_alt_names,
            issuer_alt_names,
        })
    }
}

/// Whether two `AlgorithmIdentifier` contents name the same algorithm as GnuTLS compares
/// them: the OID, then the parameters' whole encodings, a NULL standing for none.
fn same_algorithm(a: &[u8], b: &[u8]) -> bool {
    fn split(content: &[u8]) -> Option<(&[u8], &[u8])> {
        let (oid, parameters) = der::read(content).ok()?;
        let parameters: &[u8] = if parameters == [0x05, 0x00] {
            &[]
        } else {
            parameters
        };
        (oid.tag == Tag::OID && der::libtasn1_reads_oid(oid.content))
            .then_some((oid.content, parameters))
    }
    matches!((split(a), split(b)), (Some(a), Some(b)) if a == b)
}

/// Whether GnuTLS reads this UTCTime or GeneralizedTime: digits up to the minutes at least
/// (its length checks), then `Z` and nothing else.
fn gnutls_time(time: &Element<'_>) -> bool {
    let shortest = match time.tag {
        Tag::UTC_TIME => 10,
        Tag::GENERALIZED_TIME => 12,
        _ => return false,
    };
    match time.content.split_last() {
        Some((b'Z', digits)) => digits.len() >= shortest && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Whether GnuTLS imports these `GeneralNames` (`cache_alt_names` and
/// `gnutls_x509_ext_import_subject_alt_names`): a SEQUENCE of names of the types it knows
/// (other name, e-mail, DNS, URI, directory name, IP address, registered ID), each but an
/// other name holding something, an other name, a directory name and a registered ID
/// decoding.
fn gnutls_general_names(value: &[u8]) -> bool {
    let Ok((sequence, rest)) = der::read(value) else {
        return false;
    };
    if sequence.tag != Tag::SEQUENCE || !rest.is_empty() {
        return false;
    }
    let mut names = Elements::new(sequence.content);
    while !names.is_empty() {
        let Some(name) = names.next_element() else {
            return false;
        };
        let readable = match name.tag.0 {
            0xa0 => gnutls_other_name(name.content),
            0x88 => der::libtasn1_reads_oid(name.content),
            // A Name, as the subject's and the issuer's are checked (`_gnutls_x509_get_dn`).
            0xa4 => crate::dn::check_name(name.content).is_ok(),
            0x81 | 0x82 | 0x86 | 0x87 => !name.content.is_empty(),
            _ => false,
        };
        if !readable {
            return false;
        }
    }
    true
}

/// Whether libtasn1 decodes this `OtherName` content: a DER OID, then the value in an
/// explicit `[0]` holding one element, and nothing after.
fn gnutls_other_name(content: &[u8]) -> bool {
    let mut parts = Elements::new(content);
    let (Some(id), Some(value)) = (parts.next_element(), parts.next_element()) else {
        return false;
    };
    let single = |inner: &[u8]| der::read(inner).is_ok_and(|(_, rest)| rest.is_empty());
    parts.is_empty()
        && id.tag == Tag::OID
        && der::libtasn1_reads_oid(id.content)
        && value.tag == Tag(0xa0)
        && single(value.content)
}
