//! Subject names as libvirt writes them (`C=GB,O=Example,CN=admin`): the attributes it names
//! and the parser of that form.
//!
//! The DN model, apart from the issuer (`generate`) that writes it: the
//! `tls_allowed_dn_list` lint ([`crate::dn_lint`]) checks patterns against the same attribute
//! names without needing the code that issues certificates.

use crate::error::{Error, ErrorKind, Result};

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
    pub(crate) fn string_type(self, text: &str) -> Result<StringType> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidArg,
                format!("{}={text}: {why}", self.name()),
            )
        };
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

/// Where a value runs into the next attribute: the unescaped blanks or `;` between the value
/// and `ATTR=` of a known attribute, as a byte range of the DN text.
#[derive(Clone, Copy, Debug)]
struct Separator {
    start: usize,
    end: usize,
    semicolon: bool,
}

impl Separator {
    /// The separator before the word that a `=` just ended, when that word is a known
    /// attribute's name and something of the value comes before it. `typed` is the value so
    /// far, as typed.
    ///
    /// An escaped `=` or blank counts too: the DN string GnuTLS prints (and libvirt compares)
    /// escapes neither, so `O=Example CN\=admin` would be printed `O=Example CN=admin`, which
    /// reads as two attributes and would not parse back to the name it came from. An escaped
    /// `;` is kept in the printed string, so it stays part of the value.
    fn before_attribute(typed: &[(char, bool, usize)]) -> Option<Separator> {
        let is_sep = |&(c, escaped, _): &(char, bool, usize)| c == ' ' || (c == ';' && !escaped);
        // Blanks between the name and '=' ("CN =") are dropped, as around any '='.
        let mut end = typed.len();
        while end > 0 && typed[end - 1].0 == ' ' {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && !is_sep(&typed[start - 1]) && typed[start - 1].0 != '=' {
            start -= 1;
        }
        let word: String = typed[start..end].iter().map(|t| t.0).collect();
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
        Some(Separator {
            start: run[0].2,
            end: run[run.len() - 1].2 + 1,
            semicolon: run.iter().any(|t| t.0 == ';'),
        })
    }

    /// The error for DN text with run-together attributes, with the text as it was likely
    /// meant: each separator found replaced by a comma.
    fn explain(text: &str, found: &[Separator]) -> String {
        let mut fixed = String::with_capacity(text.len());
        let mut from = 0;
        for sep in found {
            fixed.push_str(&text[from..sep.start]);
            fixed.push(',');
            from = sep.end;
        }
        fixed.push_str(&text[from..]);
        if found.iter().any(|s| s.semicolon) {
            format!(
                "attributes are separated by commas, not ';': did you mean '{fixed}'? (Escape \
                 a ';' that belongs to a value as \\;.)"
            )
        } else {
            format!(
                "a value runs into the next attribute (a comma is missing): did you mean \
                 '{fixed}'? (A value cannot hold \" NAME=\" of an attribute: the DN string \
                 libvirt compares would read as two attributes.)"
            )
        }
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
    /// that runs into a known attribute after a blank or `;` (`O=Example CN=admin`,
    /// `C=GB;O=Example`) is refused with the DN it likely meant: a missing comma would
    /// otherwise make a subject without the CN every allow-list matches.
    pub fn parse(text: &str) -> Result<SubjectName> {
        let bad = |why: String| Error::new(ErrorKind::InvalidArg, format!("DN \"{text}\": {why}"));
        let mut parts: Vec<(String, String)> = Vec::new();
        let (mut key, mut value, mut in_value) = (String::new(), String::new(), false);
        // Trailing spaces of a value stay only when escaped: count those kept. Only the space
        // is dropped, at either end, as only the space is escaped in the DN string: a value
        // ending in another blank (a form feed) must parse back from its own DN string.
        let mut kept = 0usize;
        let mut after_comma = false;
        // The current value's characters as typed: (character, escaped, offset in `text`), to
        // find a next attribute run into it ("O=Example CN=admin", "C=GB;O=Example").
        let mut typed: Vec<(char, bool, usize)> = Vec::new();
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
                        run_together.extend(Separator::before_attribute(&typed));
                    }
                    value.push(next);
                    typed.push((next, true, at));
                    kept = value.len();
                }
                '=' if !in_value => {
                    in_value = true;
                    typed.clear();
                }
                '=' if in_value => {
                    run_together.extend(Separator::before_attribute(&typed));
                    typed.push(('=', false, at));
                    value.push('=');
                }
                ',' if in_value => {
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
                    typed.push((c, false, at));
                }
                c => key.push(c),
            }
        }
        if in_value {
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

    /// A name from attributes put together by a program rather than typed (the issuer's CA and
    /// server names: `O` and `CN`), each value checked as [`parse`](Self::parse) checks it.
    pub fn from_attributes(attrs: Vec<(Attribute, String)>) -> Result<SubjectName> {
        for (attr, value) in &attrs {
            if value.trim().is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    format!("{} must not be empty", attr.name()),
                ));
            }
            attr.string_type(value)?;
        }
        Ok(SubjectName(attrs))
    }
}
