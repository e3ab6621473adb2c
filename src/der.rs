//! A minimal DER reader for the structures read byte-exactly: names (the libvirt DN string
//! needs each attribute value's exact encoding, which a high-level parser normalises away),
//! key algorithms, and the plain certificates `cert::reader` reads in one pass
//! ([`read_canonical`]). x509-parser reads every other certificate.

/// A single-byte DER identifier octet (class, constructed bit and tag number).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tag(pub u8);

impl Tag {
    pub const BOOLEAN: Tag = Tag(0x01);
    pub const INTEGER: Tag = Tag(0x02);
    pub const BIT_STRING: Tag = Tag(0x03);
    pub const OCTET_STRING: Tag = Tag(0x04);
    pub const OID: Tag = Tag(0x06);
    pub const NUMERIC_STRING: Tag = Tag(0x12);
    pub const UTC_TIME: Tag = Tag(0x17);
    pub const GENERALIZED_TIME: Tag = Tag(0x18);
    pub const UTF8_STRING: Tag = Tag(0x0c);
    pub const PRINTABLE_STRING: Tag = Tag(0x13);
    pub const TELETEX_STRING: Tag = Tag(0x14);
    pub const IA5_STRING: Tag = Tag(0x16);
    pub const UNIVERSAL_STRING: Tag = Tag(0x1c);
    pub const BMP_STRING: Tag = Tag(0x1e);
    pub const SEQUENCE: Tag = Tag(0x30);
    pub const SET: Tag = Tag(0x31);
}

/// One decoded element: its tag, its content and its whole encoding.
#[derive(Debug)]
pub struct Element<'a> {
    pub tag: Tag,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Why an element could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Reads one element from the front of `input`; returns it and what follows.
pub fn read(input: &[u8]) -> Result<(Element<'_>, &[u8]), Malformed> {
    let (&tag, rest) = input.split_first().ok_or(Malformed)?;
    if tag & 0x1f == 0x1f {
        // High tag numbers never occur in the structures read here.
        return Err(Malformed);
    }
    let (&first, mut rest) = rest.split_first().ok_or(Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > std::mem::size_of::<usize>() || rest.len() < count {
            return Err(Malformed);
        }
        let (len_bytes, after) = rest.split_at(count);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return Err(Malformed);
    }
    let header_len = input.len() - rest.len();
    let (content, after) = rest.split_at(len);
    Ok((
        Element {
            tag: Tag(tag),
            content,
            raw: &input[..header_len + len],
        },
        after,
    ))
}

/// Reads one element as [`read`] does, refusing a length not in its shortest form: the long
/// form for fewer than 128 bytes, or a leading zero byte (X.690 10.1). The canonical reader
/// of certificates (`cert::reader`) accepts only what every DER parser agrees on.
pub fn read_canonical(input: &[u8]) -> Result<(Element<'_>, &[u8]), Malformed> {
    let (element, rest) = read(input)?;
    let length_octets = element.raw.len() - element.content.len() - 1;
    let minimal = match length_octets {
        1 => true,
        n => element.raw[2] != 0 && (n > 2 || element.content.len() >= 0x80),
    };
    if minimal {
        Ok((element, rest))
    } else {
        Err(Malformed)
    }
}

/// The elements of a constructed value's content, read one at a time: with [`read`]'s rules
/// ([`Elements::new`]) or [`read_canonical`]'s ([`Elements::canonical`]). Each reading method
/// answers `None` for an element that does not read, so a walk stops at the first one.
pub struct Elements<'a> {
    rest: &'a [u8],
    canonical: bool,
}

impl<'a> Elements<'a> {
    pub fn new(content: &'a [u8]) -> Elements<'a> {
        Elements {
            rest: content,
            canonical: false,
        }
    }

    pub fn canonical(content: &'a [u8]) -> Elements<'a> {
        Elements {
            rest: content,
            canonical: true,
        }
    }

    /// The next element; `None` at the end or when it does not read.
    pub fn next_element(&mut self) -> Option<Element<'a>> {
        let read = if self.canonical { read_canonical } else { read };
        let (element, rest) = read(self.rest).ok()?;
        self.rest = rest;
        Some(element)
    }

    /// The next element, which must carry `tag`.
    pub fn take(&mut self, tag: Tag) -> Option<Element<'a>> {
        self.next_element().filter(|e| e.tag == tag)
    }

    /// The next element if it carries `tag`; nothing is consumed otherwise. `None` when the
    /// element carries `tag` but does not read.
    pub fn take_if(&mut self, tag: Tag) -> Option<Option<Element<'a>>> {
        match self.rest.first() {
            Some(&t) if Tag(t) == tag => self.take(tag).map(Some),
            _ => Some(None),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// `Some` when every element has been read.
    pub fn end(&self) -> Option<()> {
        self.is_empty().then_some(())
    }

    /// `Some` when there is an element left.
    pub fn not_empty(&self) -> Option<()> {
        (!self.is_empty()).then_some(())
    }
}

/// Whether `content` is a DER OID's content octets: not empty, the last arc complete, every
/// arc in its shortest form (no leading 0x80 group, X.690 8.19.2) and none beyond 64 bits.
/// GnuTLS's libtasn1 (`asn1_get_object_id_der`) fails the whole certificate on a leading 0x80
/// group or an arc beyond 64 bits ([`libtasn1_reads_oid`]); the rest (an incomplete last arc,
/// which it reads without complaint) is refused here as well where OIDs are compared by these
/// bytes, since two encodings of one OID must not both pass. [`oid_to_string`] prints
/// exactly these.
pub fn oid_is_well_formed(content: &[u8]) -> bool {
    content.last().is_some_and(|b| b & 0x80 == 0) && libtasn1_reads_oid(content)
}

/// Whether GnuTLS's libtasn1 (4.19, `asn1_get_object_id_der`) decodes these OID content
/// octets: not empty, no arc led by a 0x80 group (the first byte included) and none beyond
/// 64 bits; an incomplete last arc it takes (certtool -i imports a certificate with one).
/// For OIDs GnuTLS only has to decode, not compare.
pub fn libtasn1_reads_oid(content: &[u8]) -> bool {
    let mut value: u64 = 0;
    let mut arc_start = true;
    for &b in content {
        if arc_start && b == 0x80 {
            return false;
        }
        match value.checked_mul(128) {
            Some(v) => value = v | u64::from(b & 0x7f),
            None => return false,
        }
        arc_start = b & 0x80 == 0;
        if arc_start {
            value = 0;
        }
    }
    !content.is_empty()
}

/// Dotted text of an OID's content octets, e.g. `2.5.4.3`; `None` exactly when
/// [`oid_is_well_formed`] says no.
pub fn oid_to_string(content: &[u8]) -> Option<String> {
    if !oid_is_well_formed(content) {
        return None;
    }
    // Well formed: every arc fits in 64 bits.
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in content {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in &arcs[1..] {
        out.push_str(&format!(".{arc}"));
    }
    Some(out)
}

/// The content octets of the dotted OID `dotted` (`2.5.4.3` gives `55 04 03`), or `None` when
/// it is not an OID: two or more decimal arcs of at most 64 bits, the first 0, 1 or 2 and
/// the second below 40 under 0 and 1. The inverse of [`oid_to_string`], so tables of known OIDs written as text
/// can be matched against the bytes a certificate carries.
pub fn oid_from_string(dotted: &str) -> Option<Vec<u8>> {
    let mut arcs = Vec::new();
    for arc in dotted.split('.') {
        if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        arcs.push(arc.parse::<u64>().ok()?);
    }
    let (&first, &second) = (arcs.first()?, arcs.get(1)?);
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let head = (first * 40).checked_add(second)?;
    for arc in std::iter::once(head).chain(arcs[2..].iter().copied()) {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        out.extend(groups.iter().rev());
    }
    Some(out)
}

/// Encodes one element (definite length); used to build test inputs.
#[cfg(test)]
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let long = encode(0x04, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (e, rest) = read(&long).unwrap();
        assert_eq!(e.content.len(), 300);
        assert_eq!(e.raw.len(), long.len());
        assert!(rest.is_empty());
    }

    #[test]
    fn canonical_reads_refuse_lengths_longer_than_needed() {
        for (input, minimal) in [
            (&[0x04, 0x01, 0x07][..], true),
            (&[0x04, 0x81, 0x01, 0x07][..], false),
            (&[0x04, 0x82, 0x00, 0x01, 0x07][..], false),
        ] {
            assert!(read(input).is_ok());
            assert_eq!(read_canonical(input).is_ok(), minimal, "{input:02x?}");
        }
        let long = encode(0x04, &[7u8; 0x80]);
        assert_eq!(&long[..3], &[0x04, 0x81, 0x80]);
        assert!(read_canonical(&long).is_ok());
        let long = encode(0x04, &[7u8; 300]);
        assert!(read_canonical(&long).is_ok());
        let mut padded = vec![0x04, 0x83, 0x00, 0x01, 0x2c];
        padded.extend([7u8; 300]);
        assert!(read(&padded).is_ok());
        assert_eq!(read_canonical(&padded).unwrap_err(), Malformed);
    }

    #[test]
    fn elements_walk_a_content_and_stop_at_what_does_not_read() {
        let content = [encode(0x02, &[1]), encode(0x04, &[2, 3])].concat();
        let mut elements = Elements::new(&content);
        assert!(matches!(elements.take_if(Tag::BOOLEAN), Some(None)));
        assert_eq!(elements.take(Tag::INTEGER).unwrap().content, [1]);
        assert!(elements.not_empty().is_some() && elements.end().is_none());
        assert!(
            elements.take(Tag::INTEGER).is_none(),
            "an OCTET STRING is not an INTEGER"
        );
        assert!(elements.end().is_some() && elements.not_empty().is_none());
        // A length longer than needed: read by `new`, not by `canonical`.
        let padded = [0x04, 0x81, 0x01, 0x07];
        assert!(Elements::new(&padded).next_element().is_some());
        assert!(Elements::canonical(&padded).next_element().is_none());
        assert!(Elements::canonical(&padded)
            .take_if(Tag::OCTET_STRING)
            .is_none());
        assert!(Elements::new(&[0x30, 0x05]).next_element().is_none());
    }

    #[test]
    fn rejects_truncation_and_high_tags() {
        assert_eq!(read(&[0x30, 0x03, 0x01]).unwrap_err(), Malformed);
        assert_eq!(read(&[0x30, 0x81]).unwrap_err(), Malformed);
        assert_eq!(read(&[0x1f, 0x01, 0x00]).unwrap_err(), Malformed);
        assert_eq!(read(&[]).unwrap_err(), Malformed);
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(oid_to_string(&[0x55, 0x04, 0x03]).unwrap(), "2.5.4.3");
        assert_eq!(
            oid_to_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).unwrap(),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(oid_to_string(&[0x88, 0x37]).unwrap(), "2.999");
        assert!(oid_to_string(&[0x86]).is_none());
        assert!(oid_to_string(&[]).is_none());
        // An arc of 19 groups of 7 bits is beyond 128 bits.
        let mut huge = vec![0xff; 19];
        huge.push(0x7f);
        assert!(!oid_is_well_formed(&huge));
        assert!(oid_to_string(&huge).is_none());
        assert!(oid_is_well_formed(&[0x55, 0x04, 0x03]));
        // Not the shortest form (libtasn1 refuses these), wherever the 0x80 group leads an arc.
        for non_minimal in [
            &[0x55, 0x04, 0x80, 0x03][..],
            &[0x80, 0x55, 0x04, 0x03][..],
            &[0x55, 0x80, 0x84, 0x03][..],
            &[0x80][..],
        ] {
            assert!(!oid_is_well_formed(non_minimal), "{non_minimal:02x?}");
            assert!(oid_to_string(non_minimal).is_none());
        }
        // 0x80 inside an arc is a zero group, not padding.
        assert_eq!(
            oid_to_string(&[0x55, 0x81, 0x80, 0x00]).unwrap(),
            "2.5.16384"
        );
        // 2^64 - 1 is the largest arc (libtasn1 keeps arcs in 64 bits); 2^64 is refused.
        let mut max = vec![0x55, 0x81];
        max.extend([0xff; 8]);
        max.push(0x7f);
        assert_eq!(oid_to_string(&max).unwrap(), format!("2.5.{}", u64::MAX));
        let mut over = vec![0x55, 0x82];
        over.extend([0x80; 8]);
        over.push(0x00);
        assert!(!oid_is_well_formed(&over));
        assert!(oid_from_string("2.5.18446744073709551616").is_none());
    }

    /// What libtasn1 decodes (certtool -i on a registered ID and an extension identifier of
    /// each form): an incomplete last arc, not a 0x80-led or a 65-bit arc, nor nothing.
    #[test]
    fn libtasn1_takes_an_incomplete_last_arc_only() {
        for read in [&[0x2a, 0x83][..], &[0x2a, 0x03, 0x85], &[0x55, 0x04, 0x03]] {
            assert!(libtasn1_reads_oid(read), "{read:02x?}");
        }
        assert!(!oid_is_well_formed(&[0x2a, 0x83]));
        let mut over = vec![0x2a, 0x82];
        over.extend([0x80; 8]);
        over.push(0x00);
        for refused in [&[][..], &[0x80], &[0x80, 0x01], &[0x2a, 0x80, 0x01], &over] {
            assert!(!libtasn1_reads_oid(refused), "{refused:02x?}");
        }
    }

    #[test]
    fn oids_encode_from_dotted_text_and_back() {
        assert_eq!(oid_from_string("2.5.4.3").unwrap(), [0x55, 0x04, 0x03]);
        assert_eq!(oid_from_string("2.999").unwrap(), [0x88, 0x37]);
        for dotted in [
            "1.2.840.113549.1.9.1",
            "0.9.2342.19200300.100.1.25",
            "1.3.6.1.4.1.311.60.2.1.3",
            "2.5.4.128",
            "1.39.0",
        ] {
            let encoded = oid_from_string(dotted).unwrap();
            assert_eq!(oid_to_string(&encoded).unwrap(), dotted);
        }
        for bad in [
            "", "2", "2.", ".5", "3.1", "1.40", "2.5.x", "2.5.-4", "2..5", "2.5.4.3 ",
        ] {
            assert!(oid_from_string(bad).is_none(), "{bad:?}");
        }
    }
}
