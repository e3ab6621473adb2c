//! What every subcommand shares: its outcome, its errors, and how it prints.
//!
//! Exit status: 0 = all is well, 1 = the command ran and found problems (a failed check, a
//! refused certificate), 2 = it could not run (bad usage, unreadable input, I/O).

use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;

use virtpki::timefmt::{self, UnixSeconds};

/// Text from certificates and from servers, made safe for a terminal: control characters
/// (ESC, CR, LF, NUL, ...), bidi overrides and line separators escaped. Everything the CLI
/// prints for people that it did not write itself goes through this or through [`Ui`]'s
/// colouring, which applies it.
pub use virtpki::display::escape;

/// How a subcommand that ran ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// The command ran and found problems: exit status 1.
    Problems,
    /// The command could not run on what it was given, and its own output (a report) says
    /// why: exit status 2, as for a [`CliError`](struct@crate::ui::CliError)(struct@CliError).
    BadInput,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Problems => 1,
            Status::BadInput => 2,
        }
    }

    /// `Problems` when `problems` holds, else `Ok`.
    pub fn problems_if(problems: bool) -> Status {
        if problems {
            Status::Problems
        } else {
            Status::Ok
        }
    }
}

/// A failure that stops a subcommand: exit status 2, the message on standard error (and, with
/// `--json`, as [`CliError::to_json`] on standard output).
#[derive(Debug)]
pub struct CliError {
    message: String,
    kind: Cow<'static, str>,
    file: Option<PathBuf>,
    fix: Option<String>,
}

/// A [`CliError`](struct@CliError) of kind `error` with `message`: the constructor every
/// module calls, spelt as when `CliError` was a tuple struct, so that
/// `CliError(format!(..))` keeps working.
#[allow(non_snake_case)]
pub fn CliError(message: String) -> CliError {
    CliError {
        message,
        kind: Cow::Borrowed("error"),
        file: None,
        fix: None,
    }
}

impl CliError {
    /// What went wrong, for scripts: the library's error kind (`parse`, `wrong_type`, `io`,
    /// ...), `usage` for a command line clap refused, `path` for a path option that is not
    /// what it takes, `connect` for a server that could not be reached, `error` for the rest.
    pub fn with_kind(mut self, kind: impl Into<Cow<'static, str>>) -> CliError {
        self.kind = kind.into();
        self
    }

    /// The file the error is about.
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> CliError {
        self.file = Some(file.into());
        self
    }

    /// What to do about it: printed on a line of its own after the message (`  fix: ...`),
    /// as the path checks print theirs.
    pub fn with_fix(mut self, fix: impl Into<String>) -> CliError {
        self.fix = Some(fix.into());
        self
    }

    /// The fix, if there is one.
    pub fn fix(&self) -> Option<&str> {
        self.fix.as_deref()
    }

    /// The message, unescaped (see [`fmt::Display`] for the escaped form).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `{"error": {"kind": ..., "message": ..., "file": ..., "fix": ...}}`: what `--json` prints on
    /// standard output when a command fails, so that a script reading it gets an object
    /// rather than nothing. JSON escapes control characters itself.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": self.kind,
                "message": self.message,
                "file": self.file.as_ref().map(|f| f.display().to_string()),
                "fix": self.fix,
            }
        })
    }
}

impl fmt::Display for CliError {
    /// Escaped: the message may quote a name from a certificate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.message))
    }
}

impl From<virtpki::Error> for CliError {
    fn from(e: virtpki::Error) -> CliError {
        CliError(e.message().to_owned()).with_kind(kind_name(e.kind()))
    }
}

/// The library's error kind as JSON names it: the C name without its prefix, in lower case
/// (`VIR_PKI_ERR_WRONG_TYPE` is `wrong_type`), so the C enum stays the one list of kinds.
pub fn kind_name(kind: virtpki::ErrorKind) -> String {
    let c = kind.c_name();
    c.strip_prefix("VIR_PKI_ERR_")
        .unwrap_or(c)
        .to_ascii_lowercase()
}

/// `Err(CliError(...))` from a format string.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::ui::CliError(format!($($arg)*)))
    };
}

pub type CmdResult = Result<Status, CliError>;

/// When to colour the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

/// Colours for people; plain text for pipes, files and `--json`.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    color: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Ui {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Ui { color }
    }

    /// `text` escaped (it may come from a certificate, see [`escape`]), then coloured.
    fn paint(&self, code: &str, text: &str) -> String {
        let text = escape(text);
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.into_owned()
        }
    }

    pub fn pass(&self, text: &str) -> String {
        self.paint("32", text)
    }

    pub fn fail(&self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Prints a JSON value, pretty, on standard output.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value always serialises")
    );
}

/// A time in JSON: RFC 3339 in UTC (`2026-11-23T10:00:00Z`), the one form of every date the
/// CLI prints as JSON (`show`, `probe`, `known list`, the store's own `added`); null for a
/// time RFC 3339 cannot write (before year 0 or after 9999), which no certificate holds.
pub fn json_time(t: UnixSeconds) -> serde_json::Value {
    timefmt::rfc3339(t).map_or(serde_json::Value::Null, serde_json::Value::String)
}

/// `n` and the noun for it, singular for one: "1 warning", "2 warnings".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_are_named_as_scripts_see_them() {
        use virtpki::ErrorKind as K;
        assert_eq!(kind_name(K::WrongType), "wrong_type");
        assert_eq!(kind_name(K::InsecurePermissions), "insecure_permissions");
        assert_eq!(kind_name(K::Internal), "internal");
    }

    #[test]
    fn json_times_are_rfc3339() {
        assert_eq!(json_time(1_795_428_000), "2026-11-23T10:00:00Z");
        assert_eq!(json_time(i64::MAX), serde_json::Value::Null);
    }
}
