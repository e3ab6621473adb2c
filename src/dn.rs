//! libvirt's Distinguished Name string.
//!
//! libvirt compares a client's DN against `tls_allowed_dn_list` and `virt-pki-query-dn` prints
//! it, both with GnuTLS's `gnutls_x509_crt_get_dn()`. That "compatibility" format differs from
//! RFC 4514 in ways that decide whether a pattern matches, so it is reproduced here exactly:
//!
//! - RDNs in the order they are encoded (RFC 4514 reverses them), joined by `,`, no spaces;
//!   the attributes of a multi-valued RDN joined by `+`, in encoded order;
//! - GnuTLS's attribute names (`C`, `ST`, `CN`, `EMAIL`, `UID`, `DC`, `serialNumber`, ...),
//!   an unknown attribute type as its dotted OID;
//! - a value of the string type GnuTLS expects for its attribute is printed as text (BMPString
//!   converted to UTF-8) with RFC 4514 escaping: `\` before `,` `+` `"` `\` `<` `>` `;`, before
//!   a leading `#` or space and before a trailing space;
//! - a UniversalString value is printed as `\#` and the lowercase hex of its content octets
//!   (GnuTLS does not convert UCS-4; verified against `virt-pki-query-dn`);
//! - any other value (unknown attribute, a type GnuTLS does not accept there, e.g. a country
//!   written as UTF8String, or a string with a NUL) is printed as `#` and the lowercase hex of
//!   its whole DER encoding.
//!
//! An attribute type whose OID GnuTLS's libtasn1 cannot decode (an arc not in DER's shortest
//! form, the first arc's included, or beyond 64 bits) fails the whole certificate in GnuTLS;
//! here it makes the name a parse error, so such a certificate does not load either (nor one
//! with an incomplete last arc, which libtasn1 reads leniently). Attribute types are compared by
//! their encoded bytes, which is the same as comparing the dotted text once these are refused.
//!
//! One deliberate difference: a UTF8String value that is not valid UTF-8 is printed in the `#`
//! hex form, where GnuTLS copies the bytes through; the result here is always valid UTF-8.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::der::{self, Tag};
use crate::error::{Error, ErrorKind, Result};

/// How GnuTLS decodes an attribute's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ValueType {
    /// X.520 DirectoryString: a CHOICE of Teletex, Printable, Universal, UTF8 and BMP strings.
    DirectoryString,
    /// Exactly this universal string tag.
    Exactly(Tag),
}

/// One attribute type GnuTLS knows by name.
struct KnownAttribute {
    oid: &'static str,
    name: &'static str,
    value_type: ValueType,
}

const DIRECTORY: ValueType = ValueType::DirectoryString;
const PRINTABLE: ValueType = ValueType::Exactly(Tag::PRINTABLE_STRING);
const IA5: ValueType = ValueType::Exactly(Tag::IA5_STRING);

/// GnuTLS's table of named attribute types (lib/x509/common.c), with the value type it
/// decodes each one as. Attribute types outside it print as dotted OIDs with hex values.
const KNOWN_ATTRIBUTES: &[KnownAttribute] = &[
    attr("2.5.4.6", "C", PRINTABLE),
    attr("2.5.4.9", "street", DIRECTORY),
    attr("2.5.4.10", "O", DIRECTORY),
    attr("2.5.4.11", "OU", DIRECTORY),
    attr("2.5.4.3", "CN", DIRECTORY),
    attr("2.5.4.7", "L", DIRECTORY),
    attr("2.5.4.8", "ST", DIRECTORY),
    attr("2.5.4.13", "description", DIRECTORY),
    attr("2.5.4.5", "serialNumber", PRINTABLE),
    attr("2.5.4.20", "telephoneNumber", PRINTABLE),
    attr("2.5.4.4", "surName", DIRECTORY),
    attr("2.5.4.43", "initials", DIRECTORY),
    attr("2.5.4.44", "generationQualifier", DIRECTORY),
    attr("2.5.4.42", "givenName", DIRECTORY),
    attr("2.5.4.65", "pseudonym", DIRECTORY),
    attr("2.5.4.46", "dnQualifier", PRINTABLE),
    attr("2.5.4.17", "postalCode", DIRECTORY),
    attr("2.5.4.41", "Name", DIRECTORY),
    attr("2.5.4.15", "businessCategory", DIRECTORY),
    attr("2.5.4.12", "title", DIRECTORY),
    attr("0.9.2342.19200300.100.1.25", "DC", IA5),
    attr("0.9.2342.19200300.100.1.1", "UID", DIRECTORY),
    attr("1.2.840.113556.1.4.656", "userPrincipalName", DIRECTORY),
    attr("1.2.840.113549.1.9.1", "EMAIL", IA5),
    attr(
        "1.3.6.1.4.1.311.60.2.1.1",
        "jurisdictionOfIncorporationLocalityName",
        DIRECTORY,
    ),
    attr(
        "1.3.6.1.4.1.311.60.2.1.2",
        "jurisdictionOfIncorporationStateOrProvinceName",
        DIRECTORY,
    ),
    attr(
        "1.3.6.1.4.1.311.60.2.1.3",
        "jurisdictionOfIncorporationCountryName",
        PRINTABLE,
    ),
];

/// The attribute names GnuTLS (and so libvirt) prints, as in its table.
pub fn attribute_names() -> impl Iterator<Item = &'static str> {
    KNOWN_ATTRIBUTES.iter().map(|a| a.name)
}

const fn attr(oid: &'static str, name: &'static str, value_type: ValueType) -> KnownAttribute {
    KnownAttribute {
        oid,
        name,
        value_type,
    }
}

/// What [`walk`] meets in a name, in encoded order.
enum Part<'a> {
    /// The start of an RDN; `first` for the name's first one.
    Rdn { first: bool },
    /// One attribute of the current RDN; `first` for the RDN's first one. `oid` holds the
    /// content octets of a well-formed OID.
    Attribute {
        first: bool,
        oid: &'a [u8],
        value: der::Element<'a>,
    },
}

/// Walks a DER-encoded X.501 `Name`, checking every rule the printing relies on, and hands
/// each part to `visit`. One walk for checking and printing, so they cannot disagree.
fn walk<'a>(name_der: &'a [u8], mut visit: impl FnMut(Part<'a>)) -> Result<()> {
    let bad = |what: &str| {
        Error::new(
            ErrorKind::Parse,
            format!("malformed distinguished name: {what}"),
        )
    };
    let (name, rest) = der::read(name_der).map_err(|_| bad("not DER"))?;
    if name.tag != Tag::SEQUENCE || !rest.is_empty() {
        return Err(bad("not a SEQUENCE"));
    }
    let mut rdns = name.content;
    let mut first_rdn = true;
    while !rdns.is_empty() {
        let (rdn, rest) = der::read(rdns).map_err(|_| bad("truncated RDN"))?;
        rdns = rest;
        if rdn.tag != Tag::SET {
            return Err(bad("RDN is not a SET"));
        }
        visit(Part::Rdn { first: first_rdn });
        first_rdn = false;
        let mut atvs = rdn.content;
        let mut first_atv = true;
        while !atvs.is_empty() {
            let (atv, rest) = der::read(atvs).map_err(|_| bad("truncated attribute"))?;
            atvs = rest;
            if atv.tag != Tag::SEQUENCE {
                return Err(bad("attribute is not a SEQUENCE"));
            }
            let (oid, value_rest) = der::read(atv.content).map_err(|_| bad("attribute type"))?;
            if oid.tag != Tag::OID {
                return Err(bad("attribute type is not an OID"));
            }
            if !der::oid_is_well_formed(oid.content) {
                return Err(bad("attribute OID"));
            }
            let (value, trailing) = der::read(value_rest).map_err(|_| bad("attribute value"))?;
            if !trailing.is_empty() {
                return Err(bad("data after the attribute value"));
            }
            visit(Part::Attribute {
                first: first_atv,
                oid: oid.content,
                value,
            });
            first_atv = false;
        }
    }
    Ok(())
}

/// Checks that [`name_to_libvirt_string`] can print this name, without printing it: a
/// certificate checks its names when it is parsed and prints them only when asked.
pub fn check_name(name_der: &[u8]) -> Result<()> {
    walk(name_der, |_| {})
}

/// The libvirt (GnuTLS compatibility) string of a DER-encoded X.501 `Name`.
pub fn name_to_libvirt_string(name_der: &[u8]) -> Result<String> {
    // Names print at about their encoded size: one allocation, no regrowing.
    let mut out = String::with_capacity(name_der.len());
    walk(name_der, |part| match part {
        Part::Rdn { first } => {
            if !first {
                out.push(',');
            }
        }
        Part::Attribute { first, oid, value } => {
            if !first {
                out.push('+');
            }
            append_attribute(&mut out, oid, &value);
        }
    })?;
    Ok(out)
}

/// Appends `NAME=value` for one attribute, as GnuTLS prints it; `oid` is the content octets
/// of a well-formed OID ([`walk`] checked it).
fn append_attribute(out: &mut String, oid: &[u8], value: &der::Element<'_>) {
    let known = known_attribute(oid);
    match known {
        Some(a) => out.push_str(a.name),
        None => out.push_str(&der::oid_to_string(oid).unwrap_or_default()),
    }
    out.push('=');
    match known.and_then(|a| decode_value(a.value_type, value)) {
        Some(text) => escape_value(out, &text),
        None => {
            out.push('#');
            for b in value.raw {
                out.push_str(&format!("{b:02x}"));
            }
        }
    }
}

/// The entries of [`KNOWN_ATTRIBUTES`] with their OIDs encoded: a name is looked up by the
/// bytes it carries, not by formatting its OID as text (a fifth of parsing a peer's chain).
static KNOWN_ATTRIBUTE_OIDS: LazyLock<Vec<(Vec<u8>, &'static KnownAttribute)>> =
    LazyLock::new(|| {
        KNOWN_ATTRIBUTES
            .iter()
            .filter_map(|a| Some((der::oid_from_string(a.oid)?, a)))
            .collect()
    });

/// GnuTLS's name for the attribute type whose OID content octets are `oid`.
fn known_attribute(oid: &[u8]) -> Option<&'static KnownAttribute> {
    KNOWN_ATTRIBUTE_OIDS
        .iter()
        .find(|(encoded, _)| encoded == oid)
        .map(|(_, a)| *a)
}

/// The text of a value GnuTLS accepts for this attribute type, or `None` for the hex form.
fn decode_value<'a>(expected: ValueType, value: &der::Element<'a>) -> Option<Cow<'a, str>> {
    let accepted = match expected {
        ValueType::Exactly(tag) => value.tag == tag,
        ValueType::DirectoryString => matches!(
            value.tag,
            Tag::UTF8_STRING
                | Tag::PRINTABLE_STRING
                | Tag::TELETEX_STRING
                | Tag::BMP_STRING
                | Tag::UNIVERSAL_STRING
        ),
    };
    if !accepted {
        return None;
    }
    // GnuTLS does not convert UCS-4, nor T61 strings beyond ASCII: it prints their content
    // octets in hex behind a `#`, which the escaping below then turns into `\#` (so a T61
    // "Café" is `\#436166e9`, as virt-pki-query-dn prints it).
    let content_hex = || {
        let mut hex = String::from("#");
        for b in value.content {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    };
    let text = if value.tag == Tag::UNIVERSAL_STRING
        || (value.tag == Tag::TELETEX_STRING && !value.content.is_ascii())
    {
        Cow::Owned(content_hex())
    } else if value.tag == Tag::BMP_STRING {
        Cow::Owned(decode_bmp(value.content)?)
    } else {
        Cow::Borrowed(std::str::from_utf8(value.content).ok()?)
    };
    // GnuTLS refuses strings with embedded NULs and prints them in hex.
    if text.contains('\0') {
        return None;
    }
    Some(text)
}

/// UCS-2 big-endian to UTF-8; an odd length or an unpaired surrogate is not accepted.
fn decode_bmp(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<std::result::Result<String, _>>()
        .ok()
}

/// RFC 4514 escaping, the way GnuTLS applies it.
fn escape_value(out: &mut String, text: &str) {
    let last = text.len().saturating_sub(1);
    for (i, c) in text.char_indices() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';');
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if special || edge {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One attribute: OID content bytes, value tag, value bytes.
    type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

    /// DER of a Name built from RDNs of attributes.
    fn name(rdns: &[&[Attribute<'_>]]) -> Vec<u8> {
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in *rdn {
                let mut atv = der::encode(Tag::OID.0, oid);
                atv.extend(der::encode(*tag, value));
                set.extend(der::encode(Tag::SEQUENCE.0, &atv));
            }
            seq.extend(der::encode(Tag::SET.0, &set));
        }
        der::encode(Tag::SEQUENCE.0, &seq)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const O: &[u8] = &[0x55, 0x04, 0x0a];

    /// Every named attribute is found by its encoded OID (an entry whose text did not encode
    /// would silently print as a dotted OID with a hex value).
    #[test]
    fn every_known_attribute_is_found_by_its_encoding() {
        assert_eq!(KNOWN_ATTRIBUTE_OIDS.len(), KNOWN_ATTRIBUTES.len());
        for a in KNOWN_ATTRIBUTES {
            let encoded = der::oid_from_string(a.oid).unwrap();
            assert_eq!(known_attribute(&encoded).map(|k| k.name), Some(a.name));
            let der = name(&[&[(&encoded, 0x13, b"x")]]);
            assert!(name_to_libvirt_string(&der)
                .unwrap()
                .starts_with(&format!("{}=", a.name)));
        }
        assert!(known_attribute(&[0x55, 0x04]).is_none());
        assert!(known_attribute(&[0x55, 0x04, 0x03, 0x00]).is_none());
    }

    #[test]
    fn encoding_order_without_spaces() {
        let der = name(&[
            &[(C, 0x13, b"GB")],
            &[(O, 0x0c, b"Libvirt Project")],
            &[(CN, 0x0c, b"client1")],
        ]);
        assert_eq!(
            name_to_libvirt_string(&der).unwrap(),
            "C=GB,O=Libvirt Project,CN=client1"
        );
    }

    #[test]
    fn multi_valued_rdn_uses_plus() {
        let der = name(&[&[(CN, 0x0c, b"a"), (O, 0x0c, b"b")]]);
        assert_eq!(name_to_libvirt_string(&der).unwrap(), "CN=a+O=b");
    }

    #[test]
    fn specials_and_edges_are_escaped() {
        let der = name(&[&[(CN, 0x0c, b"# a,b+c\"d\\e<f>g;h= ")]]);
        assert_eq!(
            name_to_libvirt_string(&der).unwrap(),
            r#"CN=\# a\,b\+c\"d\\e\<f\>g\;h=\ "#
        );
        let der = name(&[&[(CN, 0x0c, b" x#")]]);
        assert_eq!(name_to_libvirt_string(&der).unwrap(), r"CN=\ x#");
    }

    #[test]
    fn wrong_string_type_and_unknown_oid_print_hex() {
        // Country as UTF8String: GnuTLS wants PrintableString.
        let der = name(&[&[(C, 0x0c, b"GB")], &[(&[0x2a, 0x03], 0x0c, b"x")]]);
        assert_eq!(
            name_to_libvirt_string(&der).unwrap(),
            "C=#0c024742,1.2.3=#0c0178"
        );
    }

    /// Differential against the lookup before the speed-up (by dotted text, in
    /// `KNOWN_ATTRIBUTES`): random names of known, unknown, near-miss and refused attribute
    /// types, empty and multi-valued RDNs, values of every string type with escapes, NULs and
    /// bytes beyond ASCII. A name prints exactly when the parse-time check passes, exactly
    /// when none of its OIDs is one GnuTLS refuses, and then as the text lookup printed it.
    #[test]
    fn printing_agrees_with_the_dotted_text_lookup_on_random_names() {
        /// The printing before: attribute types named by their dotted text.
        fn by_text(name_der: &[u8]) -> Result<String> {
            let mut out = String::new();
            walk(name_der, |part| match part {
                Part::Rdn { first } => out.push_str(if first { "" } else { "," }),
                Part::Attribute { first, oid, value } => {
                    out.push_str(if first { "" } else { "+" });
                    let text = der::oid_to_string(oid).unwrap();
                    let known = KNOWN_ATTRIBUTES.iter().find(|a| a.oid == text);
                    out.push_str(known.map_or(text.as_str(), |a| a.name));
                    out.push('=');
                    match known.and_then(|a| decode_value(a.value_type, &value)) {
                        Some(text) => escape_value(&mut out, &text),
                        None => out.extend(
                            std::iter::once('#'.to_string())
                                .chain(value.raw.iter().map(|b| format!("{b:02x}"))),
                        ),
                    }
                }
            })?;
            Ok(out)
        }
        let mut oids: Vec<(Vec<u8>, bool)> = KNOWN_ATTRIBUTES
            .iter()
            .map(|a| (der::oid_from_string(a.oid).unwrap(), true))
            .collect();
        for (oid, fine) in [
            (&[0x55, 0x04, 0x63][..], true),
            (&[0x55, 0x04][..], true),
            (&[0x55, 0x04, 0x03, 0x00][..], true),
            (&[0x88, 0x37][..], true),
            (&[0x2a, 0x03][..], true),
            (&[0x55, 0x04, 0x81, 0x80, 0x03][..], true),
            (&[0x55, 0x04, 0x80, 0x03][..], false),
            (&[0x80, 0x55, 0x04, 0x0a][..], false),
            (
                &[
                    0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x80, 0x19,
                ][..],
                false,
            ),
            (
                &[
                    0x55, 0x04, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
                ][..],
                false,
            ),
        ] {
            oids.push((oid.to_vec(), fine));
        }
        let tags = [0x0c, 0x13, 0x14, 0x16, 0x1c, 0x1e, 0x04, 0x02, 0x30];
        let bytes = b"a Z,+#\\\"<>;=\0\xc3\xa9\xe9\xff\x00\xd8";
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        let mut below = |n: usize| rng.below(n);
        let (mut printed, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let mut rdns = Vec::new();
            let mut fine = true;
            for _ in 0..below(4) {
                let mut set = Vec::new();
                for _ in 0..below(3) {
                    let (oid, ok) = &oids[below(oids.len())];
                    fine &= ok;
                    let value: Vec<u8> = (0..below(6)).map(|_| bytes[below(bytes.len())]).collect();
                    let mut atv = der::encode(Tag::OID.0, oid);
                    atv.extend(der::encode(tags[below(tags.len())], &value));
                    set.extend(der::encode(Tag::SEQUENCE.0, &atv));
                }
                rdns.extend(der::encode(Tag::SET.0, &set));
            }
            let der = der::encode(Tag::SEQUENCE.0, &rdns);
            let new = name_to_libvirt_string(&der);
            assert_eq!(check_name(&der).is_ok(), new.is_ok(), "{der:02x?}");
            if fine {
                assert_eq!(new.unwrap(), by_text(&der).unwrap(), "{der:02x?}");
                printed += 1;
            } else {
                assert!(new.unwrap_err().message().ends_with("attribute OID"));
                refused += 1;
            }
        }
        assert!(printed > 5000 && refused > 1000, "{printed} {refused}");
    }

    #[test]
    fn bmp_strings_become_utf8_and_nul_prints_hex() {
        let der = name(&[&[(CN, 0x1e, &[0x00, 0xe9, 0x00, 0x74])]]);
        assert_eq!(name_to_libvirt_string(&der).unwrap(), "CN=ét");
        let der = name(&[&[(CN, 0x0c, b"a\0b")]]);
        assert_eq!(name_to_libvirt_string(&der).unwrap(), "CN=#0c03610062");
    }

    /// GnuTLS decodes a certificate with libtasn1, whose `asn1_get_object_id_der` refuses an OID
    /// arc led by a 0x80 group (not DER's shortest form, X.690 8.19.2) or beyond 64 bits: the
    /// whole certificate fails to load. So such an attribute type is a parse error here too,
    /// not `CN` (2.5.4.3 written `55 04 80 03` printed as `CN=x` before it was looked up by its
    /// bytes) nor a dotted OID that a `tls_allowed_dn_list` pattern could match. (libtasn1
    /// 4.19 refuses a leading 0x80 first byte as well.)
    #[test]
    fn attribute_oids_gnutls_refuses_are_parse_errors() {
        let two_to_the_64 = [
            0x55, 0x04, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        for oid in [
            &[0x55, 0x04, 0x80, 0x03][..],
            &[0x55, 0x80, 0x04, 0x03][..],
            &[0x80, 0x55, 0x04, 0x03][..],
            &[0x55, 0x04, 0x80, 0x80, 0x03][..],
            &two_to_the_64[..],
        ] {
            let der = name(&[&[(CN, 0x13, b"a")], &[(oid, 0x0c, b"x")]]);
            let err = name_to_libvirt_string(&der).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Parse);
            assert!(
                err.message().ends_with("attribute OID"),
                "{oid:02x?}: {err}"
            );
            assert_eq!(check_name(&der).unwrap_err().message(), err.message());
        }
        // The largest arc libtasn1 reads (2^64 - 1), and 0x80 inside an arc, are fine.
        let u64_max = [
            0x55, 0x04, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        let der = name(&[&[(&u64_max, 0x0c, b"x")]]);
        assert_eq!(
            name_to_libvirt_string(&der).unwrap(),
            "2.5.4.18446744073709551615=#0c0178"
        );
        let der = name(&[&[(&[0x55, 0x04, 0x81, 0x80, 0x00], 0x0c, b"x")]]);
        assert_eq!(name_to_libvirt_string(&der).unwrap(), "2.5.4.16384=#0c0178");
    }

    /// Every malformed name is refused by the check a certificate runs at parse time with the
    /// same error as by the printing it runs later.
    #[test]
    fn malformed_names_are_parse_errors() {
        let incomplete_oid = name(&[&[(&[0x55, 0x04, 0x83], 0x0c, b"x")]]);
        let high_tag_value = der::encode(
            0x30,
            &der::encode(
                0x31,
                &der::encode(
                    0x30,
                    &[0x06, 0x03, 0x55, 0x04, 0x03, 0x1f, 0x22, 0x01, 0x78],
                ),
            ),
        );
        let trailing = der::encode(
            0x30,
            &der::encode(
                0x31,
                &der::encode(
                    0x30,
                    &[0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, 0x78, 0x05, 0x00],
                ),
            ),
        );
        for (bad, why) in [
            (&b""[..], "not DER"),
            (&[0x30, 0x05, 0x31][..], "not DER"),
            (&[0x31, 0x00][..], "not a SEQUENCE"),
            (&[0x30, 0x02, 0x30, 0x00][..], "RDN is not a SET"),
            (&incomplete_oid[..], "attribute OID"),
            (&high_tag_value[..], "attribute value"),
            (&trailing[..], "data after the attribute value"),
        ] {
            let err = name_to_libvirt_string(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Parse);
            assert!(err.message().contains("distinguished name"), "{err}");
            assert!(err.message().ends_with(why), "{err}");
            assert_eq!(check_name(bad).unwrap_err().message(), err.message());
        }
        assert_eq!(name_to_libvirt_string(&[0x30, 0x00]).unwrap(), "");
        check_name(&[0x30, 0x00]).unwrap();
        // An empty RDN still separates (as GnuTLS prints it).
        let mut rdns = der::encode(
            0x31,
            &der::encode(0x30, &[0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a']),
        );
        rdns.extend(der::encode(0x31, &[]));
        rdns.extend(der::encode(
            0x31,
            &der::encode(0x30, &[0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x01, b'b']),
        ));
        assert_eq!(
            name_to_libvirt_string(&der::encode(0x30, &rdns)).unwrap(),
            "CN=a,,O=b"
        );
    }
}
