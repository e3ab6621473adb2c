//! What every subcommand shares: its outcome, its errors, and how it prints.
//!
//! Exit status: 0 = all is well, 1 = the command ran and found problems (a failed check, a
//! refused certificate), 2 = it could not run (bad usage, unreadable input, I/O).

use std::fmt;
use std::io::IsTerminal;

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
    /// why: exit status 2, as for a [`CliError`].
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

/// A failure that stops a subcommand: exit status 2, the message on standard error.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    /// Escaped: the message may quote a name from a certificate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

impl From<virtpki::Error> for CliError {
    fn from(e: virtpki::Error) -> CliError {
        CliError(e.to_string())
    }
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
