//! libvirtd.conf (and virtproxyd.conf, ...): libvirt's configuration syntax, and the TLS
//! settings a daemon takes from it.
//!
//! The grammar is libvirt's own (src/util/virconf.c), so that a file this module accepts is one
//! libvirtd accepts, and an error here is an error there:
//!
//! - statements `name = value`, separated by a line end or `;`; names start with a letter and
//!   go on with letters, digits and `_`;
//! - `#` starts a comment, on its own line or after a value (not inside a list);
//! - values: integers (optionally signed), strings in `"..."` or `'...'` (one line, **no
//!   escapes**: a backslash is an ordinary character, as in libvirt) or `"""..."""` (several
//!   lines), and lists `[v, v, ...]` that may span lines and end with a comma;
//! - the first statement of a name is the one that counts, as `virConfGetValue` returns it;
//!   later ones are kept and reported by [`DaemonConf::duplicates`].
//!
//! Unknown names are kept, not refused: libvirtd ignores them too, and [`audit()`] warns about
//! each one, with the name it was probably meant to be ([`keys`] lists libvirtd's names).
//! Files over libvirt's own limit of 10 MiB are refused before they are read. Every error
//! names the file and line.
//!
//! [`audit()`] checks the TLS settings for what makes libvirtd refuse to start, weakens it
//! silently or has no effect, as `virtpki validate` reports them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::fsutil::{self, Follow};

mod access;
mod audit;
pub mod keys;
pub mod qemu;
mod reload;
pub use access::conf_writers;
pub use audit::{audit, audit_listener, audit_settings, rerooted, ConfCheck};
pub use keys::{key_kind, nearest_in, nearest_key, KeyKind};
pub use reload::{ConfSource, Daemon, OtherFile, ReloadCheck};

/// libvirt's limit on a configuration file (MAX_CONFIG_FILE_SIZE).
pub const MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// Lists nested deeper than this are refused: libvirt recurses without limit, but no daemon
/// setting is a list of lists, and a hostile file must not exhaust the stack.
const MAX_DEPTH: usize = 32;

/// One value of a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A number (libvirt also writes booleans as 0 and 1).
    Integer(i64),
    /// A quoted string, without its quotes.
    String(String),
    /// A bracketed list of values.
    List(Vec<Value>),
}

impl Value {
    /// `integer`, `string` or `list`, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "integer",
            Value::String(_) => "string",
            Value::List(_) => "list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "{i}"),
            Value::String(s) if s.contains('"') => write!(f, "'{s}'"),
            Value::String(s) => write!(f, "\"{s}\""),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One `name = value` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The setting's name, as written.
    pub name: String,
    /// Its value.
    pub value: Value,
    /// The line the statement starts on, counting from 1.
    pub line: usize,
}

/// A parsed configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaemonConf {
    /// What errors call the file (its path, or `memory conf`).
    pub name: String,
    entries: Vec<Entry>,
}

/// A setting of the wrong type, or a value libvirtd refuses: libvirtd would not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingError {
    /// The setting's name.
    pub name: String,
    /// The line it is set on, counting from 1.
    pub line: usize,
    /// What is wrong with it, naming the file and line.
    pub message: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A setting's value and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value, already of the type libvirtd reads it as.
    pub value: T,
    /// The line it is set on, counting from 1.
    pub line: usize,
}

/// The TLS settings of a daemon (libvirt's remote_daemon_config.c reads the same names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `key_file`; an empty string is the same as not set (libvirt loads nothing for it).
    pub key_file: Option<Setting<PathBuf>>,
    /// `cert_file`: the server certificate; empty is the same as not set.
    pub cert_file: Option<Setting<PathBuf>>,
    /// `ca_file`: the CA certificates; empty is the same as not set.
    pub ca_file: Option<Setting<PathBuf>>,
    /// `crl_file`: the CRL; empty is the same as not set.
    pub crl_file: Option<Setting<PathBuf>>,
    /// `tls_no_sanity_certificate`: libvirtd skips its load-time checks of its own certificate.
    pub no_sanity_certificate: Option<Setting<bool>>,
    /// `tls_no_verify_certificate`: libvirtd accepts clients without verifying their certificates.
    pub no_verify_certificate: Option<Setting<bool>>,
    /// `tls_allowed_dn_list`: `None` = no DN check, an empty list = nobody may connect.
    pub allowed_dn_list: Option<Setting<Vec<String>>>,
    /// `listen_tls`: whether libvirtd started with `--listen` (and without socket activation)
    /// listens for TLS.
    pub listen_tls: Option<Setting<bool>>,
    /// `tls_port`: a string in libvirt (a port number or service name).
    pub tls_port: Option<Setting<String>>,
    /// `tls_priority`: the GnuTLS priority string, kept as written.
    pub tls_priority: Option<Setting<String>>,
    /// The line of `tls_no_verify_address`, which libvirt stopped reading long ago.
    pub obsolete_no_verify_address: Option<usize>,
    /// Settings libvirtd would refuse (wrong type, boolean out of range, unknown `auth_*`
    /// scheme): the TLS ones above first, then every other known key of the file, since
    /// libvirtd refuses to start for any of them.
    pub errors: Vec<SettingError>,
}

impl TlsSettings {
    /// Whether `name` is set but with a value libvirtd refuses: its field above is then
    /// `None` although the file sets it, and the error is the one thing to say about it.
    pub fn refused(&self, name: &str) -> bool {
        self.errors.iter().any(|e| e.name == name)
    }
}

impl DaemonConf {
    /// Parses configuration text; `name` is used in error messages.
    pub fn parse(bytes: &[u8], name: &str) -> Result<DaemonConf> {
        let mut parser = Parser {
            bytes,
            pos: 0,
            line: 1,
            name,
        };
        let entries = parser.statements()?;
        Ok(DaemonConf {
            name: name.to_owned(),
            entries,
        })
    }

    /// Reads and parses the file at `path`, refusing files over [`MAX_FILE_SIZE`].
    pub fn read_file(path: &Path) -> Result<DaemonConf> {
        let read = fsutil::read_regular(path, Follow::Yes, MAX_FILE_SIZE).map_err(|e| {
            e.into_error(path, "configuration file", |len| {
                Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "{}: {len} bytes is over libvirt's limit of 10 MiB for a configuration \
                         file",
                        path.display()
                    ),
                )
            })
        })?;

        DaemonConf::parse(&read.bytes, &path.display().to_string())
    }

    /// `FILE:LINE`: how messages point at a setting of this file.
    pub fn location(&self, line: usize) -> String {
        format!("{}:{line}", self.name)
    }

    /// Every statement, in file order, unknown names included.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The statement that counts for `name`: the first one, as in libvirt.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Statements that repeat an earlier name, and are therefore ignored by libvirt.
    pub fn duplicates(&self) -> Vec<&Entry> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .filter(|e| !seen.insert(e.name.as_str()))
            .collect()
    }

    /// The TLS settings, with every setting libvirtd would refuse listed in `errors`.
    pub fn tls_settings(&self) -> TlsSettings {
        let mut s = TlsSettings::default();
        let errors = &mut s.errors;
        let path = |v: Option<Setting<String>>| {
            v.filter(|s| !s.value.is_empty()).map(|s| Setting {
                value: PathBuf::from(s.value),
                line: s.line,
            })
        };
        s.key_file = path(self.string("key_file", errors));
        s.cert_file = path(self.string("cert_file", errors));
        s.ca_file = path(self.string("ca_file", errors));
        s.crl_file = path(self.string("crl_file", errors));
        s.no_sanity_certificate = self.boolean("tls_no_sanity_certificate", errors);
        s.no_verify_certificate = self.boolean("tls_no_verify_certificate", errors);
        s.allowed_dn_list = self.string_list("tls_allowed_dn_list", errors);
        s.listen_tls = self.boolean("listen_tls", errors);
        s.tls_port = self.string("tls_port", errors);
        s.tls_priority = self.string("tls_priority", errors);
        s.obsolete_no_verify_address = self.get("tls_no_verify_address").map(|e| e.line);
        self.other_errors(&mut s.errors);
        s
    }

    /// The values libvirtd refuses among the known keys that [`tls_settings`] does not read
    /// itself, checked as [`keys::KEYS`] says libvirtd reads them.
    ///
    /// [`tls_settings`]: DaemonConf::tls_settings
    fn other_errors(&self, errors: &mut Vec<SettingError>) {
        const READ_ABOVE: [&str; 10] = [
            "key_file",
            "cert_file",
            "ca_file",
            "crl_file",
            "tls_no_sanity_certificate",
            "tls_no_verify_certificate",
            "tls_allowed_dn_list",
            "listen_tls",
            "tls_port",
            "tls_priority",
        ];
        for (name, kind) in keys::KEYS {
            if READ_ABOVE.contains(name) {
                continue;
            }
            // Only the errors count here; the values are not used.
            let _ = match kind {
                KeyKind::String => self.string(name, errors).is_some(),
                KeyKind::Bool => self.boolean(name, errors).is_some(),
                KeyKind::Int => {
                    let (min, max) = (i64::from(i32::MIN), i64::from(i32::MAX));
                    self.integer(name, min, max, errors).is_some()
                }
                KeyKind::UInt => {
                    let v = self.integer(name, 0, i64::from(u32::MAX), errors);
                    match (v, keys::minimum(name)) {
                        (Some(v), Some(m)) if v.value < m.min => {
                            errors.push(self.error_at(
                                name,
                                v.line,
                                format!("{name} = {}: {}", v.value, m.why),
                            ));
                            false
                        }
                        (v, _) => v.is_some(),
                    }
                }
                KeyKind::StringList => self.string_list(name, errors).is_some(),
                KeyKind::Auth => self.auth(name, errors).is_some(),
                KeyKind::Mode => self.mode(name, errors).is_some(),
                KeyKind::Unchecked => true,
            };
        }
    }

    fn type_error(&self, entry: &Entry, wanted: &str) -> SettingError {
        self.error_at(
            &entry.name,
            entry.line,
            format!(
                "expected {wanted} for '{}' parameter, found the {} {}",
                entry.name,
                entry.value.type_name(),
                entry.value
            ),
        )
    }

    /// The error of setting `name` at `line`: the message prefixed with this file and line.
    fn error_at(&self, name: &str, line: usize, what: String) -> SettingError {
        SettingError {
            name: name.to_owned(),
            line,
            message: format!("{}:{line}: {what}", self.name),
        }
    }

    /// A string setting (virConfGetValueString).
    pub fn string(&self, name: &str, errors: &mut Vec<SettingError>) -> Option<Setting<String>> {
        let entry = self.get(name)?;
        match &entry.value {
            Value::String(s) => Some(Setting {
                value: s.clone(),
                line: entry.line,
            }),
            _ => {
                errors.push(self.type_error(entry, "a string"));
                None
            }
        }
    }

    /// A boolean setting (virConfGetValueBool): the integer 0 or 1.
    pub fn boolean(&self, name: &str, errors: &mut Vec<SettingError>) -> Option<Setting<bool>> {
        let wrong = |i| format!("boolean '{name}' must be 0 or 1, not {i}");
        let v = self.integer_as(name, 0..=1, "an integer (0 or 1)", wrong, errors)?;
        Some(Setting {
            value: v.value == 1,
            line: v.line,
        })
    }

    /// An integer setting in `min..=max` (virConfGetValueInt, virConfGetValueUInt).
    pub fn integer(
        &self,
        name: &str,
        min: i64,
        max: i64,
        errors: &mut Vec<SettingError>,
    ) -> Option<Setting<i64>> {
        let wrong = |i| format!("'{name}' must be an integer from {min} to {max}, not {i}");
        self.integer_as(name, min..=max, "an integer", wrong, errors)
    }

    /// An integer in `range`; `wanted` names the type for a value of another type, `wrong`
    /// says what is wrong with an integer out of range.
    fn integer_as(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        wanted: &str,
        wrong: impl FnOnce(i64) -> String,
        errors: &mut Vec<SettingError>,
    ) -> Option<Setting<i64>> {
        let entry = self.get(name)?;
        match entry.value {
            Value::Integer(i) if range.contains(&i) => Some(Setting {
                value: i,
                line: entry.line,
            }),
            Value::Integer(i) => {
                errors.push(self.error_at(name, entry.line, wrong(i)));
                None
            }
            _ => {
                errors.push(self.type_error(entry, wanted));
                None
            }
        }
    }

    /// An authentication scheme (remoteConfigGetAuth): `none`, `sasl` or `polkit`.
    pub fn auth(&self, name: &str, errors: &mut Vec<SettingError>) -> Option<Setting<String>> {
        let v = self.string(name, errors)?;
        if ["none", "sasl", "polkit"].contains(&v.value.as_str()) {
            return Some(v);
        }
        errors.push(self.error_at(
            name,
            v.line,
            format!(
                "unsupported auth \"{}\" for '{name}' (none, sasl or polkit)",
                v.value
            ),
        ));
        None
    }

    /// A file mode (`unix_sock_*_perms`), read as libvirtd does: `strtol` in base 8 over the
    /// whole string (leading whitespace and a sign allowed), fitting a C `int`.
    pub fn mode(&self, name: &str, errors: &mut Vec<SettingError>) -> Option<Setting<u32>> {
        let v = self.string(name, errors)?;
        let digits = v
            .value
            .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
        let (negative, digits) = match digits.as_bytes().first() {
            Some(b'-') => (true, &digits[1..]),
            Some(b'+') => (false, &digits[1..]),
            _ => (false, digits),
        };
        let parsed = if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            i64::from_str_radix(digits, 8)
                .ok()
                .map(|m| if negative { -m } else { m })
                .filter(|m| i32::try_from(*m).is_ok())
        } else {
            None
        };
        if let Some(m) = parsed {
            return Some(Setting {
                // The bits libvirtd uses of it.
                value: (m & 0o7777) as u32,
                line: v.line,
            });
        }
        errors.push(self.error_at(
            name,
            v.line,
            format!(
                "{name} = \"{}\" is not an octal mode: libvirtd fails to parse it",
                v.value
            ),
        ));
        None
    }

    /// A list of strings (virConfGetValueStringList without the one-string form).
    pub fn string_list(
        &self,
        name: &str,
        errors: &mut Vec<SettingError>,
    ) -> Option<Setting<Vec<String>>> {
        let entry = self.get(name)?;
        let Value::List(items) = &entry.value else {
            errors.push(self.type_error(entry, "a list of strings"));
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => {
                    errors.push(self.error_at(
                        name,
                        entry.line,
                        format!(
                            "'{name}' must hold only strings, not the {} {other}",
                            other.type_name()
                        ),
                    ));
                    return None;
                }
            }
        }
        Some(Setting {
            value: out,
            line: entry.line,
        })
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    name: &'a str,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_eol(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, line: usize, message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Parse, format!("{}:{line}: {message}", self.name))
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    fn skip_blanks_and_eol(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'\n' {
                self.line += 1;
            } else if !is_blank(b) && !is_eol(b) {
                break;
            }
            self.pos += 1;
        }
    }

    fn skip_to_eol(&mut self) {
        while self.peek().is_some_and(|b| !is_eol(b)) {
            self.pos += 1;
        }
    }

    fn statements(&mut self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        loop {
            self.skip_blanks_and_eol();
            match self.peek() {
                None => return Ok(entries),
                Some(b'#') => self.skip_to_eol(),
                Some(_) => entries.push(self.statement()?),
            }
            // The separator: a line end, `;`, or the end of the file.
            self.skip_blanks();
            match self.peek() {
                None => return Ok(entries),
                Some(b) if is_eol(b) => {}
                Some(b';') => self.pos += 1,
                Some(b) => {
                    return Err(self.error(
                        self.line,
                        format!(
                            "expecting a separator (a new line or ';'), found {}",
                            describe(b)
                        ),
                    ))
                }
            }
        }
    }

    fn statement(&mut self) -> Result<Entry> {
        let line = self.line;
        let start = self.pos;
        if !self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            return Err(self.error(
                line,
                format!("expecting a name, found {}", describe(self.bytes[self.pos])),
            ));
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        // ASCII by construction.
        let name = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        self.skip_blanks();
        if self.peek() != Some(b'=') {
            return Err(self.error(
                line,
                format!("expecting an assignment ('=') after '{name}'"),
            ));
        }
        self.pos += 1;
        let value = self.value(&name, 0)?;
        self.skip_blanks();
        if self.peek() == Some(b'#') {
            self.skip_to_eol();
        }
        Ok(Entry { name, value, line })
    }

    fn value(&mut self, name: &str, depth: usize) -> Result<Value> {
        self.skip_blanks();
        match self.peek() {
            None => Err(self.error(self.line, format!("expecting a value for '{name}'"))),
            Some(b'"' | b'\'') => self.string(name).map(Value::String),
            Some(b'[') => self.list(name, depth),
            Some(b) if b.is_ascii_digit() || b == b'-' || b == b'+' => self.integer(name),
            Some(b) => Err(self.error(
                self.line,
                format!(
                    "expecting a value for '{name}' (a number, a quoted string or a [list]), \
                     found {}",
                    describe(b)
                ),
            )),
        }
    }

    fn integer(&mut self, name: &str) -> Result<Value> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.error(self.line, format!("unterminated number for '{name}'")));
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        text.parse::<i64>().map(Value::Integer).map_err(|_| {
            self.error(
                self.line,
                format!("the number {text} for '{name}' is out of range"),
            )
        })
    }

    fn string(&mut self, name: &str) -> Result<String> {
        let line = self.line;
        let unterminated = |p: &Self| {
            p.error(
                line,
                format!(
                    "unterminated string for '{name}': a quoted string must end on the line \
                     it starts (use \"\"\"...\"\"\" for several lines)"
                ),
            )
        };
        let (start, end) = if self.bytes[self.pos..].starts_with(b"\"\"\"") {
            self.pos += 3;
            let start = self.pos;
            loop {
                if self.bytes[self.pos..].starts_with(b"\"\"\"") {
                    break;
                }
                match self.peek() {
                    None => {
                        return Err(self.error(
                            line,
                            format!("unterminated string for '{name}': no closing \"\"\""),
                        ))
                    }
                    Some(b'\n') => self.line += 1,
                    Some(_) => {}
                }
                self.pos += 1;
            }
            let end = self.pos;
            self.pos += 3;
            (start, end)
        } else {
            let quote = self.bytes[self.pos];
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|b| b != quote && !is_eol(b)) {
                self.pos += 1;
            }
            if self.peek() != Some(quote) {
                return Err(unterminated(self));
            }
            let end = self.pos;
            self.pos += 1;
            (start, end)
        };
        let raw = &self.bytes[start..end];
        let text = std::str::from_utf8(raw).map_err(|e| {
            self.error(
                line,
                format!(
                    "the string for '{name}' is not valid UTF-8 (byte {} of it)",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        if text.contains('\0') {
            return Err(self.error(line, format!("the string for '{name}' holds a NUL byte")));
        }
        Ok(text.to_owned())
    }

    fn list(&mut self, name: &str, depth: usize) -> Result<Value> {
        let line = self.line;
        if depth >= MAX_DEPTH {
            return Err(self.error(line, format!("lists nested too deeply in '{name}'")));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_blanks_and_eol();
        let unclosed =
            |p: &Self| p.error(line, format!("the list of '{name}' is not closed with ']'"));
        if self.peek() == Some(b'#') {
            return Err(self.error(
                self.line,
                format!("a comment inside the list of '{name}': libvirt does not allow them"),
            ));
        }
        if self.peek().is_some_and(|b| b != b']') {
            items.push(self.value(name, depth + 1)?);
            self.skip_blanks_and_eol();
        }
        loop {
            match self.peek() {
                None => return Err(unclosed(self)),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                Some(b',') => {
                    self.pos += 1;
                    self.skip_blanks_and_eol();
                    match self.peek() {
                        Some(b']') => continue,
                        None => return Err(unclosed(self)),
                        Some(b'#') => {
                            return Err(self.error(
                                self.line,
                                format!(
                                    "a comment inside the list of '{name}': libvirt does not \
                                     allow them"
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                    items.push(self.value(name, depth + 1)?);
                    self.skip_blanks_and_eol();
                }
                Some(b) => {
                    return Err(self.error(
                        self.line,
                        format!(
                            "expecting a separator (',') in the list of '{name}', found {}",
                            describe(b)
                        ),
                    ))
                }
            }
        }
    }
}

/// A byte for a message: the character, or its value when it is not printable.
fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConf> {
        DaemonConf::parse(text.as_bytes(), "test.conf")
    }

    #[test]
    fn libvirtd_conf_statements() {
        let conf = parse(
            "# comment\n\
             listen_tls = 0   # trailing comment\n\
             tls_port = \"16514\"; key_file = '/k.pem'\n\
             tls_allowed_dn_list = [\"C=GB,CN=a\",\n   \"C=GB,CN=b\",\n]\n\
             future_key = -42\n\
             text = \"\"\"two\nlines\"\"\"\n\
             last = 1",
        )
        .unwrap();
        let names: Vec<&str> = conf.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "listen_tls",
                "tls_port",
                "key_file",
                "tls_allowed_dn_list",
                "future_key",
                "text",
                "last"
            ]
        );
        assert_eq!(conf.get("future_key").unwrap().value, Value::Integer(-42));
        assert_eq!(conf.get("future_key").unwrap().line, 7);
        assert_eq!(conf.get("last").unwrap().line, 10);
        let tls = conf.tls_settings();
        assert!(tls.errors.is_empty(), "{:?}", tls.errors);
        assert!(!tls.listen_tls.unwrap().value);
        assert_eq!(tls.tls_port.unwrap().value, "16514");
        assert_eq!(tls.key_file.unwrap().value, PathBuf::from("/k.pem"));
        let dns = tls.allowed_dn_list.unwrap();
        assert_eq!(dns.value, ["C=GB,CN=a", "C=GB,CN=b"]);
        assert_eq!(dns.line, 4);
    }

    #[test]
    fn backslashes_are_literal_as_in_libvirt() {
        let conf = parse(r#"tls_allowed_dn_list = ["O=Acme\, Inc.,CN=x\"]"#).unwrap();
        let list = conf.tls_settings().allowed_dn_list.unwrap().value;
        assert_eq!(list, [r"O=Acme\, Inc.,CN=x\"]);
    }

    #[test]
    fn empty_strings_are_not_loaded_and_empty_lists_are_kept() {
        let conf = parse("crl_file = \"\"\ntls_allowed_dn_list = []\n").unwrap();
        let tls = conf.tls_settings();
        assert!(tls.crl_file.is_none());
        assert_eq!(tls.allowed_dn_list.unwrap().value, Vec::<String>::new());
    }

    #[test]
    fn first_statement_wins_and_duplicates_are_reported() {
        let conf = parse("listen_tls = 1\nlisten_tls = 0\n").unwrap();
        assert!(conf.tls_settings().listen_tls.unwrap().value);
        let dups = conf.duplicates();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].line, 2);
    }

    #[test]
    fn wrong_types_are_setting_errors_with_lines() {
        let conf = parse(
            "\ntls_port = 16514\nlisten_tls = 2\nkey_file = [\"a\"]\ntls_allowed_dn_list = \"C=GB\"\n",
        )
        .unwrap();
        let tls = conf.tls_settings();
        let lines: Vec<usize> = tls.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [4, 5, 3, 2], "{:?}", tls.errors);
        assert!(tls.errors[3]
            .message
            .contains("expected a string for 'tls_port'"));
        assert!(tls.errors[2].message.contains("must be 0 or 1, not 2"));
        assert!(tls.tls_port.is_none() && tls.listen_tls.is_none() && tls.key_file.is_none());
    }

    #[test]
    fn obsolete_key_is_noticed() {
        let conf = parse("tls_no_verify_address = 1\n").unwrap();
        assert_eq!(conf.tls_settings().obsolete_no_verify_address, Some(1));
    }

    fn err(text: &[u8]) -> String {
        DaemonConf::parse(text, "bad.conf")
            .expect_err("must not parse")
            .message()
            .to_owned()
    }

    #[test]
    fn syntax_errors_name_the_line() {
        // (the file, what the message starts with or holds)
        let cases: [(&[u8], &str); 13] = [
            (
                b"a = 1\nkey_file = \"/etc/pki/x.pem\n",
                "bad.conf:2: unterminated string for 'key_file'",
            ),
            (
                b"a = 1\n\nlist = [\"a\",\n \"b\"\n",
                "bad.conf:3: the list of 'list' is not closed",
            ),
            (b"list = [\"a\" \"b\"]\n", "expecting a separator (',')"),
            (
                b"\n\nkey_file /etc/x\n",
                "bad.conf:3: expecting an assignment",
            ),
            (b"listen_tls = 1 2\n", "bad.conf:1: expecting a separator"),
            (b"= 1\n", "expecting a name"),
            (b"a = \n", "expecting a value for 'a'"),
            (b"a = yes\n", "found 'y'"),
            (b"a = \"\"\"never closed\n\n", "no closing \"\"\""),
            (b"a = 99999999999999999999\n", "out of range"),
            (b"a = -\n", "unterminated number"),
            (
                b"l = [\n  # allowed?\n  \"x\"]\n",
                "bad.conf:2: a comment inside the list",
            ),
            (b"a = 1\nb = 2 3\n", "bad.conf:2: expecting a separator"),
        ];
        for (file, expected) in cases {
            let e = err(file);
            let found = if expected.starts_with("bad.conf:") {
                e.starts_with(expected)
            } else {
                e.contains(expected)
            };
            assert!(found, "{expected:?} in {e:?}");
        }
    }

    #[test]
    fn hostile_input() {
        // Not UTF-8 inside a string: an error with its line; in a comment: fine.
        let e = err(b"ok = 1\nkey_file = \"/etc/\xff\xfe\"\n");
        assert!(
            e.starts_with("bad.conf:2:") && e.contains("not valid UTF-8"),
            "{e}"
        );
        assert!(DaemonConf::parse(b"# \xff\xfe\nok = 1\n", "c").is_ok());
        // A NUL byte in a string, and as a statement start.
        assert!(err(b"a = \"x\0y\"\n").contains("NUL"));
        assert!(err(b"\0").contains("byte 0x00"));
        // Deep nesting stops instead of overflowing the stack.
        let deep = format!("a = {}", "[".repeat(100_000));
        assert!(err(deep.as_bytes()).contains("nested too deeply"));
        // Unterminated list at the end of input.
        assert!(err(b"a = [").contains("not closed"));
        assert!(err(b"a = [1,").contains("not closed"));
        // An empty file and a file of comments are fine.
        assert!(parse("").unwrap().entries().is_empty());
        assert!(parse("#\n#\n\n").unwrap().entries().is_empty());
    }

    #[test]
    fn huge_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libvirtd.conf");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_SIZE + 1).unwrap();
        let e = DaemonConf::read_file(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        assert!(e.message().contains("10 MiB"), "{}", e.message());
        let e = DaemonConf::read_file(&dir.path().join("absent.conf")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        std::fs::write(&path, "a = [\n").unwrap();
        let e = DaemonConf::read_file(&path).unwrap_err();
        assert!(e.message().starts_with(&format!("{}:1:", path.display())));
    }
}
