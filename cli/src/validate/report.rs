//! The report: its lines and how they are printed, as text or as one JSON object.

use std::path::PathBuf;

use serde_json::{json, Value};
use virtpki::Severity;

use super::{Mode, Scope, ValidateArgs, Validator};
use crate::ui::{escape, print_json, Ui};

/// A check's outcome. Only a failure makes the command exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Pass,
    /// A note: shown like a problem, with its hint, but not one (not counted as a warning).
    Info,
    Warn,
    Fail,
}

impl From<Severity> for State {
    /// The library's errors fail (libvirt would refuse), its warnings warn.
    fn from(severity: Severity) -> State {
        match severity {
            Severity::Error => State::Fail,
            Severity::Warning => State::Warn,
        }
    }
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Info => "info",
            State::Warn => "warn",
            State::Fail => "fail",
        }
    }
}

/// One line of the report.
pub(super) struct Check {
    pub scope: Scope,
    pub name: String,
    pub state: State,
    pub file: Option<PathBuf>,
    pub message: String,
    pub fix: Option<String>,
    /// The library's rule, for its sanity findings.
    pub rule: Option<String>,
    /// How libvirt itself differs from virtpki on this point, when it does.
    pub libvirt: Option<String>,
}

/// The summary line's numbers.
struct Tally {
    pass: usize,
    info: usize,
    warn: usize,
    fail: usize,
}

impl Validator {
    pub(super) fn print(&self, args: &ValidateArgs, ui: Ui) {
        if args.json {
            self.print_json();
        } else {
            self.print_text(ui);
        }
    }

    /// How many checks passed, warned and failed.
    fn tally(&self) -> Tally {
        let count = |state: State| self.checks.iter().filter(|c| c.state == state).count();
        Tally {
            pass: count(State::Pass),
            info: count(State::Info),
            warn: count(State::Warn),
            fail: count(State::Fail),
        }
    }

    fn print_json(&self) {
        let Tally {
            pass,
            info,
            warn,
            fail,
        } = self.tally();
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({
                    "scope": c.scope.label().to_ascii_lowercase(),
                    "name": c.name,
                    "status": c.state.name(),
                    "file": c.file.as_ref().map(|p| p.display().to_string()),
                    "message": c.message,
                    "fix": c.fix,
                    "rule": c.rule,
                    "libvirt_differs": c.libvirt,
                })
            })
            .collect();
        let (mode, path) = match &self.mode {
            Mode::System => ("system", None),
            Mode::User => ("user", None),
            Mode::Path(p) => ("path", Some(p.display().to_string())),
        };
        print_json(&json!({
            "mode": mode,
            "path": path,
            "root": self.root.display().to_string(),
            "checks": checks,
            "summary": { "pass": pass, "info": info, "warn": warn, "fail": fail, "ok": fail == 0 },
        }));
    }

    /// virt-pki-validate's layout: `SCOPE: name: STATE`, and under each problem what is
    /// wrong and the fix. Every line of every check passes here, so this is where text from
    /// certificates, CRLs and libvirtd.conf (names, messages, fixes) is escaped.
    fn print_text(&self, ui: Ui) {
        for c in &self.checks {
            let state = match c.state {
                State::Pass => ui.pass("PASS"),
                State::Info => ui.bold("INFO"),
                State::Warn => ui.warn("WARN"),
                State::Fail => ui.fail("FAIL"),
            };
            println!("{:>6}: {:<69}: {state}", c.scope.label(), escape(&c.name));
            if c.state != State::Pass {
                println!("        {}", escape(&c.message));
                if let Some(fix) = &c.fix {
                    // A note has nothing to fix, only a hint.
                    let label = if c.state == State::Info {
                        "hint:"
                    } else {
                        "fix:"
                    };
                    println!("        {} {}", ui.bold(label), escape(fix));
                }
                if let Some(note) = &c.libvirt {
                    println!("        {}", ui.dim(&format!("libvirt: {note}")));
                }
            }
        }
        println!();
        let Tally {
            pass,
            info,
            warn,
            fail,
        } = self.tally();
        let verdict = if fail > 0 {
            ui.fail("FAILED")
        } else if warn > 0 {
            ui.warn("OK, with warnings")
        } else {
            ui.pass("OK")
        };
        let notes = match info {
            0 => String::new(),
            1 => ", 1 note".to_owned(),
            n => format!(", {n} notes"),
        };
        println!(
            "{} checks: {pass} passed, {warn} warnings, {fail} failed{notes}: {verdict}",
            pass + info + warn + fail
        );
    }
}
