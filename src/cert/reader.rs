//! The fields of a certificate read straight from its DER, for the one form certificates
//! really take.
//!
//! Certificates that libvirt hosts load and exchange (certtool's, OpenSSL's, virtpki's own)
//! are version 3, in canonical DER, with a few well-known extensions. For those, [`read`]
//! fills [`ParsedFields`] in one pass over the bytes. x509-parser's generic machinery was
//! most of the time it took to parse a peer's chain, and a fifth of a verification.
//!
//! Anything else makes [`read`] answer `None`, and x509-parser reads the certificate as it
//! always has, with its own errors: another version, unique identifiers, a length or boolean
//! not in its shortest form, an extension this reader does not interpret (name constraints,
//! an unknown critical one), an authority information access other than URIs, a duplicate
//! extension, a general name other than DNS, IP, e-mail or URI, a name `dn::check_name`
//! refuses. So this reader never decides whether a certificate is acceptable. It only ever
//! accepts a subset of what x509-parser accepts, and fills the same fields; `cert`'s
//! differential tests check both.

use x509_parser::oid_registry::*;

use super::{
    named_purposes, BasicConstraints, ExtendedKeyUsage, KeyUsage, ParsedFields, ProfileFacts,
    SubjectAltName, WEBPKI_EXTENSIONS,
};
use crate::der::{self, Element, Elements, Tag};
use crate::dn;
use crate::timefmt::UnixSeconds;

/// The certificate's fields, or `None` when it is not in the form this reader takes.
pub(super) fn read(der: &[u8]) -> Option<ParsedFields> {
    let mut certificate = Elements::canonical(only(der, Tag::SEQUENCE)?.content);
    let tbs = certificate.take(Tag::SEQUENCE)?;
    let signature_oid = algorithm_oid(certificate.take(Tag::SEQUENCE)?.content)?;
    bit_string(certificate.take(Tag::BIT_STRING)?.content)?;
    certificate.end()?;

    let mut tbs = Elements::canonical(tbs.content);
    // Version 3 only: `[0] EXPLICIT INTEGER 2`.
    if tbs.take(Tag(0xa0))?.content != [0x02, 0x01, 0x02] {
        return None;
    }
    let serial = tbs.take(Tag::INTEGER)?.content;
    if serial.is_empty() || serial.len() > 20 {
        return None;
    }
    algorithm_oid(tbs.take(Tag::SEQUENCE)?.content)?;
    let issuer = name(tbs.take(Tag::SEQUENCE)?)?;
    let mut validity = Elements::canonical(tbs.take(Tag::SEQUENCE)?.content);
    let not_before = time(validity.next_element()?)?;
    let not_after = time(validity.next_element()?)?;
    validity.end()?;
    let subject = name(tbs.take(Tag::SEQUENCE)?)?;
    let spki = tbs.take(Tag::SEQUENCE)?;
    let mut key_info = Elements::canonical(spki.content);
    algorithm_oid(key_info.take(Tag::SEQUENCE)?.content)?;
    bit_string(key_info.take(Tag::BIT_STRING)?.content)?;
    key_info.end()?;
    let extensions = only(tbs.take(Tag(0xa3))?.content, Tag::SEQUENCE)?;
    tbs.end()?;

    let mut fields = ParsedFields {
        version: 3,
        serial: serial.to_vec(),
        subject_raw: subject.raw.to_vec(),
        issuer_raw: issuer.raw.to_vec(),
        common_names: common_names(subject.content),
        not_before,
        not_after,
        subject_alt_names: Vec::new(),
        basic_constraints: None,
        key_usage: None,
        extended_key_usage: None,
        signature_oid: signature_oid.to_vec(),
        has_name_constraints: false,
        profile: ProfileFacts::default(),
        spki_der: spki.raw.to_vec(),
    };
    read_extensions(extensions.content, &mut fields)?;
    Some(fields)
}

/// `input` holding exactly one element, carrying `tag`.
fn only(input: &[u8], tag: Tag) -> Option<Element<'_>> {
    let mut elements = Elements::canonical(input);
    let element = elements.take(tag)?;
    elements.end()?;
    Some(element)
}

/// The OID of an `AlgorithmIdentifier`'s content: a well-formed OID and at most one
/// parameter, which is not interpreted here.
fn algorithm_oid(content: &[u8]) -> Option<&[u8]> {
    let mut elements = Elements::canonical(content);
    let oid = oid(elements.take(Tag::OID)?)?;
    if !elements.is_empty() {
        elements.next_element()?;
    }
    elements.end()?;
    Some(oid)
}

fn oid(element: Element<'_>) -> Option<&[u8]> {
    der::oid_is_well_formed(element.content).then_some(element.content)
}

/// A BIT STRING's content with no unused bits and at least one byte of data: what a
/// signature and a public key are.
fn bit_string(content: &[u8]) -> Option<&[u8]> {
    match content.split_first() {
        Some((0, data)) if !data.is_empty() => Some(data),
        _ => None,
    }
}

/// A `Name` whose attributes are each one OID and one primitive universal value, which
/// `dn::check_name` accepts: the names that print in libvirt's format.
fn name(element: Element<'_>) -> Option<Element<'_>> {
    let mut rdns = Elements::canonical(element.content);
    while !rdns.is_empty() {
        let mut attributes = Elements::canonical(rdns.take(Tag::SET)?.content);
        // An RDN holds at least one attribute.
        attributes.not_empty()?;
        while !attributes.is_empty() {
            let mut attribute = Elements::canonical(attributes.take(Tag::SEQUENCE)?.content);
            oid(attribute.take(Tag::OID)?)?;
            let value = attribute.next_element()?;
            // Universal class, primitive: x509-parser reads any such value.
            if value.tag.0 & 0xe0 != 0 {
                return None;
            }
            attribute.end()?;
        }
    }
    dn::check_name(element.raw).ok()?;
    Some(element)
}

/// The subject's common names that are text: x509-parser's `iter_common_name` with
/// `as_str`, which reads Numeric, Printable, UTF8 and IA5 strings holding UTF-8. `subject` is
/// a name [`name`] accepted.
fn common_names(subject: &[u8]) -> Vec<String> {
    let text_types = [
        Tag::NUMERIC_STRING,
        Tag::PRINTABLE_STRING,
        Tag::UTF8_STRING,
        Tag::IA5_STRING,
    ];
    let mut names = Vec::new();
    let mut rdns = Elements::canonical(subject);
    while let Some(rdn) = rdns.next_element() {
        let mut attributes = Elements::canonical(rdn.content);
        while let Some(attribute) = attributes.next_element() {
            let mut parts = Elements::canonical(attribute.content);
            let (Some(oid), Some(value)) = (parts.next_element(), parts.next_element()) else {
                continue;
            };
            if oid.content == OID_X509_COMMON_NAME.as_bytes() && text_types.contains(&value.tag) {
                if let Ok(text) = std::str::from_utf8(value.content) {
                    names.push(text.to_owned());
                }
            }
        }
    }
    names
}

/// A UTCTime `YYMMDDHHMMSSZ` (years 1950 to 2049) or a GeneralizedTime `YYYYMMDDHHMMSSZ`,
/// as RFC 5280 writes them, in seconds since the epoch.
fn time(element: Element<'_>) -> Option<UnixSeconds> {
    let (year, rest) = match (element.tag, element.content.len()) {
        (Tag::UTC_TIME, 13) => {
            let yy = i32::from(two_digits(&element.content[..2])?);
            (
                if yy < 50 { 2000 + yy } else { 1900 + yy },
                &element.content[2..],
            )
        }
        (Tag::GENERALIZED_TIME, 15) => {
            let century = i32::from(two_digits(&element.content[..2])?);
            let yy = i32::from(two_digits(&element.content[2..4])?);
            (century * 100 + yy, &element.content[4..])
        }
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let field = |at: usize| two_digits(&rest[at..at + 2]);
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(date.with_time(clock).assume_utc().unix_timestamp())
}

fn two_digits(pair: &[u8]) -> Option<u8> {
    match pair {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
        _ => None,
    }
}

/// Reads the extensions this reader interprets into `fields`; `None` for anything it leaves
/// to x509-parser.
fn read_extensions(content: &[u8], fields: &mut ParsedFields) -> Option<()> {
    let mut extensions = Elements::canonical(content);
    let mut seen: Vec<&[u8]> = Vec::new();
    // `Extensions ::= SEQUENCE SIZE (1..MAX)`: an empty list is x509-parser's to judge.
    extensions.not_empty()?;
    while !extensions.is_empty() {
        let mut extension = Elements::canonical(extensions.take(Tag::SEQUENCE)?.content);
        let id = oid(extension.take(Tag::OID)?)?;
        let critical = match extension.take_if(Tag::BOOLEAN)? {
            // DER leaves out the default FALSE and writes TRUE as 0xff.
            Some(flag) if flag.content == [0xff] => true,
            Some(_) => return None,
            None => false,
        };
        let value = extension.take(Tag::OCTET_STRING)?.content;
        extension.end()?;
        if seen.contains(&id) {
            return None;
        }
        seen.push(id);
        let is = |known: &Oid<'_>| id == known.as_bytes();
        if critical && !WEBPKI_EXTENSIONS.iter().any(is) {
            // An unknown critical extension: x509-parser's account of it.
            return None;
        }
        if is(&OID_X509_EXT_BASIC_CONSTRAINTS) {
            fields.basic_constraints = Some(basic_constraints(value, critical)?);
        } else if is(&OID_X509_EXT_KEY_USAGE) {
            fields.key_usage = Some(key_usage(value, critical)?);
        } else if is(&OID_X509_EXT_EXTENDED_KEY_USAGE) {
            fields.extended_key_usage = Some(extended_key_usage(value, critical)?);
        } else if is(&OID_X509_EXT_SUBJECT_ALT_NAME) {
            fields.subject_alt_names = subject_alt_names(value)?;
            fields.profile.san_critical = Some(critical);
        } else if is(&OID_X509_EXT_SUBJECT_KEY_IDENTIFIER) {
            fields.profile.subject_key_id = Some(only(value, Tag::OCTET_STRING)?.content.to_vec());
        } else if is(&OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER) {
            fields.profile.authority_key_id = Some(authority_key_id(value)?);
        } else if is(&OID_PKIX_AUTHORITY_INFO_ACCESS) {
            authority_info_access(value)?;
        } else if is(&OID_X509_EXT_NAME_CONSTRAINTS) {
            return None;
        }
        // Any other non-critical extension carries nothing the library reads.
    }
    Some(())
}

/// The key identifier of an authority key identifier, `[0] IMPLICIT OCTET STRING`, if it
/// has one. The issuer's names and serial that may follow (`[1]`, `[2]`: OpenSSL's
/// `issuer:always`, easy-rsa's default) are not read; x509-parser reads the key identifier
/// whatever they hold.
fn authority_key_id(value: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut parts = Elements::canonical(only(value, Tag::SEQUENCE)?.content);
    let key_id = parts.take_if(Tag(0x80))?.map(|id| id.content.to_vec());
    parts.take_if(Tag(0xa1))?;
    parts.take_if(Tag(0x82))?;
    parts.end()?;
    Some(key_id)
}

fn basic_constraints(value: &[u8], critical: bool) -> Option<BasicConstraints> {
    let mut parts = Elements::canonical(only(value, Tag::SEQUENCE)?.content);
    let ca = match parts.take_if(Tag::BOOLEAN)? {
        Some(flag) if flag.content == [0xff] => true,
        Some(_) => return None,
        None => false,
    };
    let path_len = match parts.take_if(Tag::INTEGER)? {
        Some(n) => match n.content {
            [n] if *n < 0x80 => Some(u32::from(*n)),
            _ => return None,
        },
        None => None,
    };
    parts.end()?;
    Some(BasicConstraints {
        critical,
        ca,
        path_len,
    })
}

/// The bits of a key usage BIT STRING of one or two bytes whose unused bits are zero, in
/// x509-parser's order (digitalSignature is bit 0).
fn key_usage(value: &[u8], critical: bool) -> Option<KeyUsage> {
    let content = only(value, Tag::BIT_STRING)?.content;
    let (&unused, data) = content.split_first()?;
    let last = *data.last()?;
    if data.len() > 2 || unused > 7 || last & ((1u8 << unused) - 1) != 0 {
        return None;
    }
    let bits = data
        .iter()
        .rev()
        .fold(0u16, |acc, b| (acc << 8) | u16::from(b.reverse_bits()));
    Some(KeyUsage { critical, bits })
}

/// An extended key usage of the purposes x509-parser names; another purpose is left to it.
fn extended_key_usage(value: &[u8], critical: bool) -> Option<ExtendedKeyUsage> {
    let mut purposes = Elements::canonical(only(value, Tag::SEQUENCE)?.content);
    purposes.not_empty()?;
    let mut eku = ExtendedKeyUsage {
        critical,
        any: false,
        server_auth: false,
        client_auth: false,
        others: Vec::new(),
    };
    let [mut code_signing, mut email, mut time_stamping, mut ocsp] = [false; 4];
    // id-kp-* is 1.3.6.1.5.5.7.3.N.
    let kp = |n: u8| [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, n];
    while !purposes.is_empty() {
        let purpose = oid(purposes.take(Tag::OID)?)?;
        let flag = [
            (&[0x55, 0x1d, 0x25, 0x00][..], &mut eku.any),
            (&kp(1), &mut eku.server_auth),
            (&kp(2), &mut eku.client_auth),
            (&kp(3), &mut code_signing),
            (&kp(4), &mut email),
            (&kp(8), &mut time_stamping),
            (&kp(9), &mut ocsp),
        ]
        .into_iter()
        .find(|(known, _)| purpose == *known)?
        .1;
        *flag = true;
    }
    eku.others = named_purposes(code_signing, email, time_stamping, ocsp);
    Some(eku)
}

/// DNS names, e-mail addresses and URIs of printable ASCII, and IPv4 or IPv6 addresses.
fn subject_alt_names(value: &[u8]) -> Option<Vec<SubjectAltName>> {
    let mut names = Elements::canonical(only(value, Tag::SEQUENCE)?.content);
    names.not_empty()?;
    let mut out = Vec::new();
    while !names.is_empty() {
        let name = names.next_element()?;
        let text = || printable_ascii(name.content).map(str::to_owned);
        out.push(match (name.tag.0, name.content.len()) {
            (0x81, _) => SubjectAltName::Email(text()?),
            (0x82, _) => SubjectAltName::Dns(text()?),
            (0x86, _) => SubjectAltName::Uri(text()?),
            (0x87, 4) => SubjectAltName::Ip(<[u8; 4]>::try_from(name.content).ok()?.into()),
            (0x87, 16) => SubjectAltName::Ip(<[u8; 16]>::try_from(name.content).ok()?.into()),
            _ => return None,
        });
    }
    Some(out)
}

/// An authority information access of access methods each with a URI, the form CAs write
/// (OCSP, CA issuers: FreeIPA's and Active Directory's certificates carry one). It holds
/// nothing the library reads; x509-parser finds such a one well formed, so the profile's
/// `malformed_aia` stays false. Any other form is left to x509-parser, which judges it.
fn authority_info_access(value: &[u8]) -> Option<()> {
    let mut descriptions = Elements::canonical(only(value, Tag::SEQUENCE)?.content);
    descriptions.not_empty()?;
    while !descriptions.is_empty() {
        let mut description = Elements::canonical(descriptions.take(Tag::SEQUENCE)?.content);
        oid(description.take(Tag::OID)?)?;
        printable_ascii(description.take(Tag(0x86))?.content)?;
        description.end()?;
    }
    Some(())
}

/// `bytes` as text if they are all printable ASCII, the only text alternative names and
/// access locations are read in.
fn printable_ascii(bytes: &[u8]) -> Option<&str> {
    if bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}
