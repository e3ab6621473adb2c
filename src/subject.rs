//! Subject names as libvirt writes them (`C=GB,O=Example,CN=admin`): the attributes it names
//! and the parser of that form.
//!
//! The DN model, apart from the issuer (`generate`) that writes it: the
//! `tls_allowed_dn_list` lint ([`crate::dn_lint`]) checks patterns against the same attribute
//! names without needing the code that issues certificates.

use crate::display::escape;
use crate::error::{Error, ErrorKind, Result};

/// Why `text` cannot be a DN value virtpki writes, if it cannot: it holds a control character
/// (C0, DEL, C1), a bidirectional embedding, override or isolate (U+202A-U+202E,
/// U+2066-U+2069: Trojan Source's characters, which reorder what a reader sees), or a line or
/// paragraph separator (U+2028, U+2029). GnuTLS writes each into the DN string as it is, so
/// the name would print differently in libvirt's logs, in `virt-pki-query-dn` and beside a
/// `tls_allowed_dn_list` entry than it compares, and a line break would forge a further log
/// line. The joiners and marks some scripts spell words with (U+200C, U+200D, U+200E) stay:
/// virtpki's own displays escape them ([`crate::display::escape`]).
pub(crate) fn refused_in_value(text: &str) -> Option<String> {
    let c = text.chars().find(|&c| {
        c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    })?;
    let what = if c.is_control() {
        "control character"
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        "line separator character"
    } else {
        "bidirectional control character"
    };
    Some(format!(
        "the {what} {} is not allowed in a DN value (it would print differently in logs and \
         in the DN string tls_allowed_dn_list compares)",
        escape(c.encode_utf8(&mut [0; 4]))
    ))
}

/// The string type a value is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StringType {
    Printable,
    Ia5,
    Utf8,
}

/// One attribute of a subject name the issuer can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// `C`: a two-letter country code.
    Country,
    /// `ST`: state or province.
    State,
    /// `L`: locality (city).
    Locality,
    /// `O`: organization.
    Organization,
    /// `OU`: organizational unit.
    OrganizationalUnit,
    /// `CN`: common name.
    CommonName,
    /// `DC`: domain component.
    DomainComponent,
    /// `UID`: user ID.
    UserId,
    /// `EMAIL`: emailAddress, libvirt's name for it.
    Email,
    /// `serialNumber`: the subject's serial number, not the certificate's.
    SerialNumber,
    /// `title`.
    Title,
}

impl Attribute {
    /// Every attribute, with libvirt's (GnuTLS's) name for it.
    pub(crate) const NAMES: [(&'static str, Attribute); 11] = [
        ("C", Attribute::Country),
        ("ST", Attribute::State),
        ("L", Attribute::Locality),
        ("O", Attribute::Organization),
        ("OU", Attribute::OrganizationalUnit),
        ("CN", Attribute::CommonName),
        ("DC", Attribute::DomainComponent),
        ("UID", Attribute::UserId),
        ("EMAIL", Attribute::Email),
        ("serialNumber", Attribute::SerialNumber),
        ("title", Attribute::Title),
    ];

    /// The attribute for a name, case-insensitively (`cn`, `CN`; `emailAddress` too).
    pub fn from_name(name: &str) -> Option<Attribute> {
        if name.eq_ignore_ascii_case("emailAddress") {
            return Some(Attribute::Email);
        }
        Attribute::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }

    /// libvirt's name for it, as in its DN strings.
    pub fn name(self) -> &'static str {
        Attribute::NAMES
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The string type X.520 prescribes for this attribute, once `text` is checked to be
    /// writable in it: GnuTLS prints a country written as UTF8String in hex, so it would not
    /// match a `C=GB` pattern.
    ///
    /// A control character (a TAB, a line feed, an ESC), a bidirectional override or a line
    /// separator is refused in every attribute ([`refused_in_value`]).
    pub(crate) fn string_type(self, text: &str) -> Result<StringType> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidArg,
                format!("{}={}: {why}", self.name(), escape(text)),
            )
        };
        if let Some(why) = refused_in_value(text) {
            return Err(bad(&why));
        }
        match self {
            Attribute::Country => {
                if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(bad("a country is a two-letter code such as GB"));
                }
                Ok(StringType::Printable)
            }
            Attribute::SerialNumber => {
                // X.680 allows '?' in a PrintableString, but the DER writer under rcgen
                // (yasna) panics on it: refuse it here, with every other character it refuses.
                let printable = |b: u8| b.is_ascii_alphanumeric() || b" '()+,-./:=".contains(&b);
                if !text.bytes().all(printable) {
                    return Err(bad(
                        "only letters, digits, space and '()+,-./:= are allowed in a serialNumber",
                    ));
                }
                Ok(StringType::Printable)
            }
            // IA5String is ASCII (rcgen's check, made here so that parsing refuses it).
            Attribute::DomainComponent | Attribute::Email => {
                if !text.is_ascii() {
                    return Err(bad("only ASCII is allowed"));
                }
                Ok(StringType::Ia5)
            }
            _ => Ok(StringType::Utf8),
        }
    }
}

/// One character of a value as typed: `start..end` is its place in the DN text, the
/// backslash included when it is escaped.
#[derive(Clone, Copy, Debug)]
struct Typed {
    c: char,
    escaped: bool,
    start: usize,
    end: usize,
}

/// What a [`Separator`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slip {
    /// Blanks (any whitespace) before a known `ATTR=`: a missing comma.
    Blank,
    /// A `;` (and blanks) before a known `ATTR=`: `;` used as a separator.
    Semicolon,
    /// An unescaped `;` that ends a value (`CN=admin;`): a separator with nothing after it.
    Trailing,
}

/// Where a value runs into the next attribute, or ends in a separator: a byte range of the
/// DN text that the likely fix replaces (by a comma, or by nothing for [`Slip::Trailing`]).
#[derive(Clone, Debug)]
struct Separator {
    start: usize,
    end: usize,
    /// The offset of the backslash of an escaped `=` after the attribute's name
    /// (`CN\=admin`): the fix drops it, as the `=` then ends the name.
    unescape: Option<usize>,
    /// The attribute name as typed (empty for [`Slip::Trailing`]).
    word: String,
    slip: Slip,
}

/// Whitespace or an unescaped `;`: what can stand between a value and the next attribute.
/// An escaped blank counts (GnuTLS prints it unescaped); an escaped `;` stays in the
/// printed string, so it is part of the value.
fn is_sep(t: &Typed) -> bool {
    t.c.is_whitespace() || (t.c == ';' && !t.escaped)
}

impl Separator {
    /// The separator before the word that a `=` just ended, when that word is a known
    /// attribute's name and something of the value comes before it. `typed` is the value so
    /// far, as typed; `unescape` is the backslash of that `=` when it was escaped.
    ///
    /// An escaped `=` or blank counts too: the DN string GnuTLS prints (and libvirt compares)
    /// escapes neither, so `O=Example CN\=admin` would be printed `O=Example CN=admin`, which
    /// reads as two attributes and would not parse back to the name it came from. An escaped
    /// `;` is kept in the printed string, so it stays part of the value.
    fn before_attribute(typed: &[Typed], unescape: Option<usize>) -> Option<Separator> {
        // Blanks between the name and '=' ("CN =") are dropped, as around any '='.
        let mut end = typed.len();
        while end > 0 && typed[end - 1].c.is_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && !is_sep(&typed[start - 1]) && typed[start - 1].c != '=' {
            start -= 1;
        }
        let word: String = typed[start..end].iter().map(|t| t.c).collect();
        if word.is_empty() || Attribute::from_name(&word).is_none() {
            return None;
        }
        let mut first = start;
        while first > 0 && is_sep(&typed[first - 1]) {
            first -= 1;
        }
        if first == start || first == 0 {
            return None;
        }
        let run = &typed[first..start];
        let semicolon = run.iter().any(|t| t.c == ';');
        Some(Separator {
            start: run[0].start,
            // After the last character of the run, past an escaped one's backslash.
            end: run[run.len() - 1].end,
            unescape,
            word,
            slip: if semicolon {
                Slip::Semicolon
            } else {
                Slip::Blank
            },
        })
    }

    /// An unescaped `;` at the end of a value (trailing blanks aside): `CN=admin;` would
    /// make the CN `admin;`, which no allow-list entry written `CN=admin` matches.
    fn trailing(typed: &[Typed]) -> Option<Separator> {
        let mut end = typed.len();
        while end > 0 && typed[end - 1].c.is_whitespace() && !typed[end - 1].escaped {
            end -= 1;
        }
        let last = typed[..end].last()?;
        if last.c != ';' || last.escaped {
            return None;
        }
        Some(Separator {
            start: last.start,
            end: typed[typed.len() - 1].end,
            unescape: None,
            word: String::new(),
            slip: Slip::Trailing,
        })
    }

    /// The error for DN text with run-together attributes or a trailing `;`, with the text
    /// as it was likely meant: each separator found replaced by a comma (a trailing `;`
    /// dropped). That text is offered only when it is itself accepted; otherwise the message
    /// says where the comma goes and what would still be wrong.
    fn explain(text: &str, found: &[Separator]) -> String {
        let mut fixed = String::with_capacity(text.len());
        let mut from = 0;
        for sep in found {
            fixed.push_str(&text[from..sep.start]);
            if sep.slip != Slip::Trailing {
                fixed.push(',');
            }
            from = sep.end;
            if let Some(backslash) = sep.unescape {
                fixed.push_str(&text[from..backslash]);
                from = backslash + 1;
            }
        }
        fixed.push_str(&text[from..]);
        let slip = |s: Slip| found.iter().any(|f| f.slip == s);
        let what = if slip(Slip::Semicolon) {
            "attributes are separated by commas, not ';'"
        } else if slip(Slip::Trailing) {
            "a DN does not end with ';' (it would be part of the last value)"
        } else {
            "a value runs into the next attribute (a comma is missing)"
        };
        let suggestion = match SubjectName::parse_as(&fixed, false) {
            Ok(_) => format!("did you mean '{fixed}'?"),
            Err(e) => {
                let words: Vec<String> = found
                    .iter()
                    .filter(|f| f.slip != Slip::Trailing)
                    .map(|f| format!("\"{}=\"", f.word))
                    .collect();
                let place = if words.is_empty() {
                    "did you mean it without the ';'?".to_owned()
                } else {
                    format!("did you mean a comma before {}?", words.join(" and "))
                };
                format!("{place} That alone is not enough: {}.", e.message())
            }
        };
        let note = if slip(Slip::Semicolon) || slip(Slip::Trailing) {
            "(Escape a ';' that belongs to a value as \\;.)"
        } else {
            "(A value cannot hold \" NAME=\" of an attribute: the DN string libvirt compares \
             would read as two attributes.)"
        };
        format!("{what}: {suggestion} {note}")
    }
}

/// A subject name: attributes in encoding order, one value each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectName(Vec<(Attribute, String)>);

impl SubjectName {
    /// Parses libvirt's DN format, e.g. `C=GB,ST=London,O=Libvirt Project,CN=client1`.
    ///
    /// `\` escapes the next character (`O=Acme\, Inc.`); spaces around `,` and `=` are
    /// dropped. Multi-valued RDNs (`+`) and repeated attributes cannot be written. A value
    /// that runs into a known attribute after whitespace (a TAB too) or `;`
    /// (`O=Example CN=admin`, `C=GB;O=Example`), or that ends with an unescaped `;`
    /// (`CN=admin;`), is refused with the DN it likely meant: a missing comma would
    /// otherwise make a subject without the CN every allow-list matches.
    pub fn parse(text: &str) -> Result<SubjectName> {
        SubjectName::parse_as(text, true)
    }

    /// [`parse`](Self::parse); `suggest` = false for the check of a suggested fix, whose
    /// own slips (there should be none) are then reported without a further suggestion.
    fn parse_as(text: &str, suggest: bool) -> Result<SubjectName> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::InvalidArg,
                format!("DN \"{}\": {why}", escape(text)),
            )
        };
        let mut parts: Vec<(String, String)> = Vec::new();
        let (mut key, mut value, mut in_value) = (String::new(), String::new(), false);
        // Trailing spaces of a value stay only when escaped: count those kept. Only the space
        // is dropped, at either end, as only the space is escaped in the DN string: a value
        // ending in another blank (a no-break space) must parse back from its own DN string.
        let mut kept = 0usize;
        let mut after_comma = false;
        // The current value's characters as typed: (character, escaped, offset in `text`), to
        // find a next attribute run into it ("O=Example CN=admin", "C=GB;O=Example").
        let mut typed: Vec<Typed> = Vec::new();
        let mut run_together: Vec<Separator> = Vec::new();
        let mut chars = text.char_indices();
        let mut finish = |key: &mut String, value: &mut String, in_value: &mut bool, kept| {
            let trimmed_len = value.trim_end_matches(' ').len().max(kept);
            value.truncate(trimmed_len);
            parts.push((key.trim().to_owned(), std::mem::take(value)));
            key.clear();
            *in_value = false;
        };
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => {
                    let Some((_, next)) = chars.next() else {
                        return Err(bad("it ends with a lone backslash".into()));
                    };
                    if !in_value {
                        return Err(bad("a backslash in an attribute name".into()));
                    }
                    if next == '=' {
                        run_together.extend(Separator::before_attribute(&typed, Some(at)));
                    }
                    value.push(next);
                    typed.push(Typed {
                        c: next,
                        escaped: true,
                        start: at,
                        end: at + 1 + next.len_utf8(),
                    });
                    kept = value.len();
                }
                '=' if !in_value => {
                    in_value = true;
                    typed.clear();
                }
                '=' if in_value => {
                    run_together.extend(Separator::before_attribute(&typed, None));
                    typed.push(Typed {
                        c: '=',
                        escaped: false,
                        start: at,
                        end: at + 1,
                    });
                    value.push('=');
                }
                ',' if in_value => {
                    run_together.extend(Separator::trailing(&typed));
                    finish(&mut key, &mut value, &mut in_value, kept);
                    kept = 0;
                    after_comma = true;
                }
                ',' => return Err(bad(format!("\"{}\" has no '=value'", key.trim()))),
                '+' if in_value => {
                    return Err(bad(
                        "multi-valued RDNs ('+') cannot be issued; escape a literal plus as \\+"
                            .into(),
                    ))
                }
                c if in_value => {
                    if value.is_empty() && c == ' ' {
                        continue;
                    }
                    value.push(c);
                    typed.push(Typed {
                        c,
                        escaped: false,
                        start: at,
                        end: at + c.len_utf8(),
                    });
                }
                c => key.push(c),
            }
        }
        if in_value {
            run_together.extend(Separator::trailing(&typed));
            finish(&mut key, &mut value, &mut in_value, kept);
        } else if after_comma && key.trim().is_empty() {
            return Err(bad("it ends with ',' and no '=value' after it".into()));
        } else if !key.trim().is_empty() {
            return Err(bad(format!("\"{}\" has no '=value'", key.trim())));
        }
        if parts.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if !run_together.is_empty() {
            if !suggest {
                return Err(bad("a value runs into the next attribute".into()));
            }
            return Err(bad(Separator::explain(text, &run_together)));
        }
        let mut name = Vec::with_capacity(parts.len());
        for (key, value) in parts {
            let attr = Attribute::from_name(&key).ok_or_else(|| {
                bad(format!(
                    "unknown attribute \"{key}\" (known: C, ST, L, O, OU, CN, DC, UID, EMAIL, \
                     serialNumber, title)"
                ))
            })?;
            if value.is_empty() {
                return Err(bad(format!("{} has an empty value", attr.name())));
            }
            if name.iter().any(|(a, _)| *a == attr) {
                return Err(bad(format!(
                    "{} appears twice; repeated attributes cannot be issued",
                    attr.name()
                )));
            }
            attr.string_type(&value)?;
            name.push((attr, value));
        }
        Ok(SubjectName(name))
    }

    /// The attributes in order.
    pub fn attributes(&self) -> &[(Attribute, String)] {
        &self.0
    }

    /// The value of `attr`, if present.
    pub fn get(&self, attr: Attribute) -> Option<&str> {
        self.0
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, v)| v.as_str())
    }

    /// The short subject of a server (`virtpki issue server --cn NAME [--org O]`): O when
    /// given, then CN, the host name.
    pub fn host(common_name: &str, organization: Option<&str>) -> Result<SubjectName> {
        let mut attrs = Vec::new();
        if let Some(org) = organization {
            attrs.push((Attribute::Organization, org.to_owned()));
        }
        attrs.push((Attribute::CommonName, common_name.to_owned()));
        SubjectName::from_attributes(attrs)
    }

    /// A name from attributes put together by a program rather than typed (the issuer's CA and
    /// server names: `O` and `CN`), each value checked as [`parse`](Self::parse) checks it.
    pub fn from_attributes(attrs: Vec<(Attribute, String)>) -> Result<SubjectName> {
        for (i, (attr, value)) in attrs.iter().enumerate() {
            if value.trim().is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    format!("{} must not be empty", attr.name()),
                ));
            }
            // The issuer writes one value per attribute: a repeat would be dropped in silence,
            // and the certificate would name another subject than the one asked for.
            if attrs[..i].iter().any(|(a, _)| a == attr) {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    format!(
                        "{} appears twice; repeated attributes cannot be issued",
                        attr.name()
                    ),
                ));
            }
            attr.string_type(value)?;
        }
        Ok(SubjectName(attrs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of the refusal of `text`.
    fn refused(text: &str) -> String {
        SubjectName::parse(text)
            .expect_err(text)
            .message()
            .to_owned()
    }

    /// The DN that the refusal of `text` suggests, checked to be accepted itself.
    fn suggested(text: &str) -> String {
        let msg = refused(text);
        let fixed = msg
            .split_once("did you mean '")
            .and_then(|(_, rest)| rest.split_once("'?"))
            .map(|(fixed, _)| fixed.to_owned())
            .unwrap_or_else(|| panic!("{text}: no suggestion in {msg}"));
        SubjectName::parse(&fixed).unwrap_or_else(|e| panic!("{text}: {fixed} refused: {e}"));
        fixed
    }

    #[test]
    fn an_escaped_blank_separator_is_replaced_whole() {
        // The blank after the backslash went into the suggestion ("O=a, CN=b").
        for (typed, fixed) in [
            ("O=a\\ CN=b", "O=a,CN=b"),
            ("O=a \\ CN=b", "O=a,CN=b"),
            ("O=Example\\ CN\\=admin", "O=Example,CN=admin"),
            ("O=Example CN\\=admin", "O=Example,CN=admin"),
        ] {
            assert_eq!(suggested(typed), fixed);
        }
        // With a CN after it, a comma gives two CNs: no such suggestion, but where the comma
        // goes and what is still wrong.
        let msg = refused("O=a\\ CN=b,CN=c");
        assert!(!msg.contains("did you mean '"), "{msg}");
        assert!(
            msg.contains("did you mean a comma before \"CN=\"? That alone is not enough"),
            "{msg}"
        );
        assert!(msg.contains("CN appears twice"), "{msg}");
    }

    #[test]
    fn any_whitespace_before_an_attribute_is_a_missing_comma() {
        for (typed, fixed) in [
            ("O=Example\tCN=admin", "O=Example,CN=admin"),
            ("O=Ex\tOU=x,CN=a", "O=Ex,OU=x,CN=a"),
            ("O=Ex\u{a0}OU=x,CN=a", "O=Ex,OU=x,CN=a"),
            ("O=Ex \t\nCN =a", "O=Ex,CN =a"),
        ] {
            assert_eq!(suggested(typed), fixed);
        }
        assert!(refused("O=Example\tCN=admin").contains("a comma is missing"));
        // A TAB before what is no attribute is a control character in the value: refused.
        let msg = refused("O=Ex\tfoo=bar,CN=a");
        assert!(
            msg.contains("O=Ex\\x09foo=bar: the control character \\x09"),
            "{msg}"
        );
    }

    #[test]
    fn control_characters_are_refused_naming_the_attribute_and_the_character() {
        for (text, attr, shown) in [
            ("CN=a\u{0}b", "CN", "\\x00"),
            ("O=x,CN=evil\x1b[32mOK", "CN", "\\x1b"),
            ("O=a\rb,CN=c", "O", "\\x0d"),
            ("CN=a\\\nb", "CN", "\\x0a"),
            ("DC=a\x7fb,CN=c", "DC", "\\x7f"),
            ("EMAIL=a\u{1f}@b,CN=c", "EMAIL", "\\x1f"),
            ("CN=a\u{9b}b", "CN", "\\u{009b}"),
            ("CN=a\u{85}", "CN", "\\u{0085}"),
        ] {
            let msg = refused(text);
            assert!(
                msg.starts_with(&format!("{attr}="))
                    && msg.contains(&format!("character {shown} ")),
                "{text:?}: {msg}"
            );
            assert!(!msg.chars().any(char::is_control), "{text:?}: {msg:?}");
        }
        // The same for names a program puts together (ca init's CN, a request's subject).
        let e = SubjectName::host("host\x1b[2J", Some("Org")).unwrap_err();
        assert!(e.message().contains("CN=host\\x1b[2J"), "{}", e.message());
        let e = SubjectName::from_attributes(vec![(Attribute::Organization, "a\nb".into())])
            .unwrap_err();
        assert!(e.message().contains("\\x0a"), "{}", e.message());
        // Printable non-ASCII stays allowed.
        assert!(SubjectName::parse("O=Müller \u{e9}t\u{e9},CN=a").is_ok());
    }

    /// The bidirectional embeddings, overrides and isolates (Trojan Source's characters) and
    /// the line and paragraph separators reorder or break what libvirt prints raw, as control
    /// characters do: refused. Joiners and marks that spell words in some scripts stay.
    #[test]
    fn bidi_overrides_and_line_separators_are_refused() {
        for (text, shown) in [
            ("CN=admin\u{202e}txt.exe", "\\u{202e}"),
            ("O=a\u{2066}b\u{2069},CN=c", "\\u{2066}"),
            ("CN=a\u{202a}b", "\\u{202a}"),
            ("CN=a\u{2028}b", "\\u{2028}"),
            ("CN=a\u{2029}", "\\u{2029}"),
        ] {
            let msg = refused(text);
            assert!(
                msg.contains(&format!("character {shown} ")),
                "{text:?}: {msg}"
            );
            assert!(!msg.chars().any(crate::display::is_unsafe), "{msg:?}");
        }
        let e = SubjectName::host("host\u{202e}", None).unwrap_err();
        assert!(e.message().contains("\\u{202e}"), "{}", e.message());
        // Persian's zero-width non-joiner, Devanagari's joiner: letters of names.
        assert!(SubjectName::parse(
            "O=\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645},CN=a"
        )
        .is_ok());
        assert!(SubjectName::parse("O=\u{915}\u{94d}\u{200d}\u{937},CN=a").is_ok());
    }

    #[test]
    fn a_trailing_semicolon_is_refused_with_it_dropped() {
        assert_eq!(suggested("O=Example,CN=admin;"), "O=Example,CN=admin");
        assert_eq!(suggested("O=Example,CN=admin; "), "O=Example,CN=admin");
        assert_eq!(suggested("O=Example;,CN=admin"), "O=Example,CN=admin");
        assert_eq!(
            suggested("C=GB;O=Example;CN=admin;"),
            "C=GB,O=Example,CN=admin"
        );
        let msg = refused("O=Example,CN=admin;");
        assert!(msg.contains("does not end with ';'"), "{msg}");
        assert!(msg.contains("as \\;"), "{msg}");
        // Nothing left once it is dropped: said, without a DN that would be refused.
        let msg = refused("O=Example,CN=;");
        assert!(
            msg.contains("without the ';'? That alone is not enough"),
            "{msg}"
        );
        // An escaped ';' is part of the value, at the end too; one inside a value stays.
        for (text, cn) in [
            ("O=Example,CN=admin\\;", "admin;"),
            ("O=Example,CN=ad;min", "ad;min"),
            ("CN=a\\; ", "a;"),
        ] {
            let name = SubjectName::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(name.get(Attribute::CommonName), Some(cn), "{text}");
        }
    }
}
