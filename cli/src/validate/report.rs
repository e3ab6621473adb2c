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
    /// Not run, and the message says why (a role whose files are absent, a host-name check
    /// without the name): neither a pass nor a failure.
    Skip,
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
            State::Skip => "skip",
        }
    }
}

/// One line of the report.
pub(super) struct Check {
    /// Stable, unique in the report: `SCOPE.ITEM` (`trust.ca_cert`, `server.key_mode`), for
    /// scripts, which should not parse `name`.
    pub id: String,
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
    /// How QEMU's own load-time check differs (by QEMU version), in `validate --qemu`.
    pub qemu: Option<String>,
}

/// The passed checks whose message says what was found (or not) rather than that all is
/// well: shown in the text report too, under the PASS. "Checking for a CA CRL: PASS" alone
/// read as "the CRL is fine" where it meant "there is none".
const NOTED: &[&str] = &[
    "trust.ca_crl",
    "server.conf_files",
    "conf.file",
    "conf.source",
    "conf.key_file_cert_file_ca_file",
    "conf.tls_allowed_dn_list",
];

/// The id (without its scope) of a check whose code gives none, from its name: the CONF
/// lines of [`conf`](super::conf) and [`dn_list`](super::dn_list) (`Checking tls_port` is
/// `conf.tls_port`). Names that quote a value (a DN pattern) have a fixed id, never the value.
pub(super) fn id_of_name(name: &str) -> String {
    // Names that quote what the user wrote (a pattern, a DN) get a fixed id.
    if name.starts_with("Checking DN pattern") {
        return "tls_allowed_dn_list.pattern".into();
    }
    if name.starts_with("Checking client DN ") {
        return "tls_allowed_dn_list.client_dn".into();
    }
    if name.starts_with("Finding ") && name.ends_with("'s configuration file") {
        return "source".into();
    }
    match name {
        "Checking libvirtd.conf" => return "file".into(),
        "Parsing libvirtd.conf" => return "parse".into(),
        "Checking this host's client certificate against tls_allowed_dn_list" => {
            return "tls_allowed_dn_list.client".into()
        }
        "Checking clients against tls_allowed_dn_list" => {
            return "tls_allowed_dn_list.clients".into()
        }
        _ => {}
    }
    let words = name.strip_prefix("Checking ").unwrap_or(name);
    // A setting libvirtd does not know (a typo, another case) has an id of its own, so it can
    // never take the id of the setting it resembles.
    let setting = !words.is_empty()
        && words
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let unknown = setting && virtpki::daemon_conf::key_kind(words).is_none();
    let mut id = String::from(if unknown { "unknown_setting." } else { "" });
    for c in words.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.is_empty() && !id.ends_with('_') {
            id.push('_');
        }
    }
    let id = id.trim_end_matches('_');
    id[..id.len().min(48)].to_owned()
}

/// The summary line's numbers.
#[derive(Clone, Copy)]
struct Tally {
    pass: usize,
    info: usize,
    warn: usize,
    fail: usize,
    skip: usize,
}

impl Tally {
    fn json(&self) -> Value {
        json!({
            "pass": self.pass, "info": self.info, "warn": self.warn, "fail": self.fail,
            "skip": self.skip, "ok": self.fail == 0
        })
    }

    /// The text report's last line: `12 checks: 10 passed, 1 warning, 0 failed, 1 note: OK`.
    fn line(&self, ui: Ui) -> String {
        let Tally {
            pass,
            info,
            warn,
            fail,
            skip,
        } = *self;
        let verdict = if fail > 0 {
            ui.fail("FAILED")
        } else if warn > 0 {
            ui.warn("OK, with warnings")
        } else {
            ui.pass("OK")
        };
        let notes = if info > 0 {
            format!(", {}", crate::ui::count(info, "note", "notes"))
        } else {
            String::new()
        };
        let skipped = if skip > 0 {
            format!(", {skip} skipped")
        } else {
            String::new()
        };
        format!(
            "{}: {pass} passed, {}, {fail} failed{skipped}{notes}: {verdict}",
            crate::ui::count(pass + info + warn + fail + skip, "check", "checks"),
            crate::ui::count(warn, "warning", "warnings"),
        )
    }
}

impl Validator {
    pub(super) fn print(&self, args: &ValidateArgs, ui: Ui) {
        if args.json {
            self.print_json();
        } else {
            self.print_text(ui, args.verbose);
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
            skip: count(State::Skip),
        }
    }

    /// Adds `check`, its id made unique: a second line of the same kind (two DN patterns, two
    /// key-usage findings) gets `.2`, the third `.3`, in the report's order.
    pub(super) fn add(&mut self, mut check: Check) {
        let base = format!("{}.{}", check.scope.label().to_ascii_lowercase(), check.id);
        let mut id = base.clone();
        let mut n = 1;
        while self.checks.iter().any(|c| c.id == id) {
            n += 1;
            id = format!("{base}.{n}");
        }
        check.id = id;
        self.checks.push(check);
    }

    fn print_json(&self) {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                let mut line = json!({
                    "id": c.id,
                    "scope": c.scope.label().to_ascii_lowercase(),
                    "name": c.name,
                    "status": c.state.name(),
                    "file": c.file.as_ref().map(|p| p.display().to_string()),
                    "message": c.message,
                    "fix": c.fix,
                    "rule": c.rule,
                    "libvirt_differs": c.libvirt,
                });
                if let Some(q) = &c.qemu {
                    line["qemu_differs"] = json!(q);
                }
                line
            })
            .collect();
        let (mode, path) = match &self.mode {
            Mode::System if self.qemu => ("qemu", None),
            Mode::System => ("system", None),
            Mode::User => ("user", None),
            Mode::Path(p) => ("path", Some(p.display().to_string())),
        };
        print_json(&json!({
            "mode": mode,
            "path": path,
            "root": self.root.display().to_string(),
            "configuration": self.conf_choice.as_ref().map(|c| c.json()),
            "checks": checks,
            "summary": self.tally().json(),
        }));
    }

    /// virt-pki-validate's layout: `SCOPE: name: STATE`, and under each problem (and each
    /// skip and noted pass) what is wrong or was found and the fix; `verbose` adds every
    /// pass's message and each line's id, file and rule (what JSON has). Every line of every
    /// check passes here, so this is where text from certificates, CRLs and libvirtd.conf
    /// (names, messages, fixes) is escaped.
    fn print_text(&self, ui: Ui, verbose: bool) {
        for c in &self.checks {
            let state = match c.state {
                State::Pass => ui.pass("PASS"),
                State::Info => ui.bold("INFO"),
                State::Warn => ui.warn("WARN"),
                State::Fail => ui.fail("FAIL"),
                State::Skip => ui.dim("SKIP"),
            };
            println!("{:>6}: {:<69}: {state}", c.scope.label(), escape(&c.name));
            let noted = c.state != State::Pass || verbose || NOTED.contains(&c.id.as_str());
            if noted {
                println!("        {}", escape(&c.message));
            }
            if c.state != State::Pass || verbose {
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
                if let Some(note) = &c.qemu {
                    println!("        {}", ui.dim(&format!("qemu: {note}")));
                }
            }
            if verbose {
                let mut about = format!("id: {}", c.id);
                if let Some(file) = &c.file {
                    about.push_str(&format!(", file: {}", file.display()));
                }
                if let Some(rule) = &c.rule {
                    about.push_str(&format!(", rule: {rule}"));
                }
                println!("        {}", ui.dim(&about));
            }
        }
        println!();
        println!("{}", self.tally().line(ui));
    }
}
