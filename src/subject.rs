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

/// A subject name: attributes in encoding order, one value each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectName(Vec<(Attribute, String)>);

impl SubjectName {
    /// Parses libvirt's DN format, e.g. `C=GB,ST=London,O=Libvirt Project,CN=client1`.
    ///
    /// `\` escapes the next character (`O=Acme\, Inc.`); spaces around `,` and `=` are
    /// dropped. Multi-valued RDNs (`+`) and repeated attributes cannot be written.
    pub fn parse(text: &str) -> Result<SubjectName> {
        let bad = |why: String| Error::new(ErrorKind::InvalidArg, format!("DN \"{text}\": {why}"));
        let mut parts: Vec<(String, String)> = Vec::new();
        let (mut key, mut value, mut in_value) = (String::new(), String::new(), false);
        // Trailing spaces of a value stay only when escaped: count those kept. Only the space
        // is dropped, at either end, as only the space is escaped in the DN string: a value
        // ending in another blank (a form feed) must parse back from its own DN string.
        let mut kept = 0usize;
        let mut after_comma = false;
        let mut chars = text.chars();
        let mut finish = |key: &mut String, value: &mut String, in_value: &mut bool, kept| {
            let trimmed_len = value.trim_end_matches(' ').len().max(kept);
            value.truncate(trimmed_len);
            parts.push((key.trim().to_owned(), std::mem::take(value)));
            key.clear();
            *in_value = false;
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let Some(next) = chars.next() else {
                        return Err(bad("it ends with a lone backslash".into()));
                    };
                    if !in_value {
                        return Err(bad("a backslash in an attribute name".into()));
                    }
                    value.push(next);
                    kept = value.len();
                }
                '=' if !in_value => in_value = true,
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
