//! `virtpki expiry`: every certificate and CRL of a machine with its deadline, soonest first,
//! for people (a table), scripts (`--json`) and monitoring (`--prometheus`, the text format of
//! node_exporter's textfile collector). The list is the library's ([`virtpki::expiry`]).
//!
//! Exit status: 1 when any item has expired or expires within `--warn-days`, 0 otherwise, 2
//! when a file cannot be read or judged (a monitoring run never reports "all well" for a file
//! it could not read).

use std::fmt::Write as _;
use std::path::PathBuf;

use virtpki::expiry::{self, Entry, Target};
use virtpki::locations::Environment;
use virtpki::timefmt::{self, UnixSeconds};

use crate::files::{self, Replace};
use crate::ui::{self, escape, CliError, CmdResult, Status, Ui};

#[derive(clap::Args, Debug)]
pub struct ExpiryArgs {
    /// List the system files (/etc/pki/...): the default when run as root.
    #[arg(long, short = 's', conflicts_with_all = ["user", "path"])]
    pub system: bool,
    /// List the user's files (~/.pki/libvirt, with libvirt's fallbacks to the system files):
    /// the default for other users.
    #[arg(long, short = 'u', conflicts_with = "path")]
    pub user: bool,
    /// List the files of a pkipath directory (DIR/cacert.pem, DIR/servercert.pem, ...).
    /// Also spelt --pkipath.
    #[arg(long, short = 'p', alias = "pkipath", value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Treat PATH as / for the system files (for tests and chroots); lists the system files,
    /// so not with --user or --path.
    #[arg(long, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Also list the CA certificate and CRL of a directory made by `virtpki ca init`.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Certificate or CRL files to list instead of libvirt's (with --system, --user, --path
    /// or --root: as well as them).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Exit with status 1 when anything expires within N days (or has expired).
    #[arg(long, value_name = "N", default_value_t = virtpki::sanity::DEFAULT_EXPIRY_HORIZON_DAYS)]
    pub warn_days: u32,
    /// Print the list as JSON: an array of objects, dates in RFC 3339.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print Prometheus's text exposition format, for node_exporter's textfile collector.
    #[arg(long)]
    pub prometheus: bool,
    /// Write the output to FILE (mode 0644) atomically, through a temporary file in its
    /// directory renamed into place: a collector never reads half a file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: ExpiryArgs, ui: Ui) -> CmdResult {
    if let Some(root) = &args.root {
        if args.user || args.path.is_some() {
            let other = if args.user { "--user" } else { "--path" };
            return Err(CliError(format!(
                "the argument '--root {}' cannot be used with '{other}': --root lists the \
                 system files under it",
                root.display()
            ))
            .with_kind("usage"));
        }
    }
    let targets = targets(&args);
    if targets.is_empty() {
        return Err(CliError(format!(
            "no certificate or CRL found in {}",
            where_looked(&args)
        ))
        .with_fix("give the files (virtpki expiry FILE...), --path DIR, or --ca-dir DIR"));
    }
    if let Some(output) = &args.output {
        refuse_overwriting_an_input(output, &targets)?;
    }
    let now = timefmt::now();
    let list = expiry::list(&targets, now).map_err(CliError::from)?;
    let attention = list.iter().any(|e| e.needs_attention(now, args.warn_days));
    let out = if args.prometheus {
        prometheus(&list, now)
    } else if args.json {
        let json = serde_json::Value::Array(list.iter().map(|e| json(e, now, &args)).collect());
        serde_json::to_string_pretty(&json).expect("a JSON value always serialises") + "\n"
    } else {
        table(&list, now, args.warn_days, &ui)
    };
    match &args.output {
        Some(path) => files::write_atomic(path, out.as_bytes(), 0o644, Replace::Allowed)?,
        None => print!("{out}"),
    }
    Ok(Status::problems_if(attention))
}

/// `--output` replaces its file without `--force` (a metrics file is rewritten every day): it
/// must not be one of the files listed, nor any PEM file (a certificate, a key, a CRL).
fn refuse_overwriting_an_input(
    output: &std::path::Path,
    targets: &[Target],
) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(output) else {
        return Ok(());
    };
    // A socket, FIFO, device or directory, or a link to one (/dev/stdout): the rename would
    // put a regular file in its place (or in the link's).
    if !meta.is_file() {
        return Err(CliError(format!(
            "--output {}: it is {}, not a regular file: the output would replace it",
            output.display(),
            virtpki::fsutil::kind_of(&meta)
        ))
        .with_file(output)
        .with_fix("give --output a regular file of its own, such as /var/lib/prometheus/node-exporter/virtpki.prom, or leave it out to print"));
    }
    let same = |t: &Target| {
        std::fs::metadata(&t.path).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    };
    // Its first bytes only, from a regular file (a FIFO there must not block the command).
    let pem = virtpki::fsutil::open_regular(output, virtpki::fsutil::Follow::Yes).is_ok_and(
        |(file, _)| {
            use std::io::Read;
            let mut head = Vec::new();
            file.take(10).read_to_end(&mut head).is_ok() && head == b"-----BEGIN"
        },
    );
    if targets.iter().any(same) || pem {
        return Err(CliError(format!(
            "--output {}: it holds certificates or keys (or is a file being listed); the \
             output would replace it",
            output.display()
        ))
        .with_file(output)
        .with_fix("give --output a file of its own, such as /var/lib/prometheus/node-exporter/virtpki.prom"));
    }
    Ok(())
}

/// The files to list: libvirt's of the chosen location unless only files or a CA directory
/// were given, then the CA directory's and the files.
fn targets(args: &ExpiryArgs) -> Vec<Target> {
    let location_given = args.system || args.user || args.path.is_some() || args.root.is_some();
    let mut targets = Vec::new();
    if location_given || (args.files.is_empty() && args.ca_dir.is_none()) {
        targets.extend(expiry::libvirt_targets(&env(args), args.path.as_deref()));
    }
    if let Some(dir) = &args.ca_dir {
        targets.extend(expiry::ca_dir_targets(dir));
    }
    targets.extend(args.files.iter().map(Target::file));
    targets
}

/// libvirt's locations as the options choose them: --system (or --root, or root) the system
/// files under ROOT, else the user's with libvirt's fallbacks.
fn env(args: &ExpiryArgs) -> Environment {
    let mut env = Environment::current();
    if let Some(root) = &args.root {
        env.root = root.clone();
    }
    if args.system || args.root.is_some() {
        env.uid = 0;
    } else if args.user {
        // Environment's uid only picks system versus user files.
        env.uid = 1;
    }
    env
}

fn where_looked(args: &ExpiryArgs) -> String {
    match (&args.path, &args.root) {
        (Some(dir), _) => dir.display().to_string(),
        (None, Some(root)) => format!("the system files under {}", root.display()),
        _ if args.user => "the user's files (~/.pki/libvirt) or the system ones".into(),
        _ => "libvirt's files".into(),
    }
}

/// `in 5 days`, `today`, `expired 3 days ago`.
fn days_text(entry: &Entry, now: UnixSeconds) -> String {
    match (entry.days_left, entry.not_after) {
        (None, _) | (_, None) => "no next update".into(),
        (Some(_), Some(t)) if t < now => {
            let ago = now.saturating_sub(t) / 86_400;
            match ago {
                0 => "expired today".into(),
                1 => "expired 1 day ago".into(),
                n => format!("expired {n} days ago"),
            }
        }
        (Some(0), _) => "today".into(),
        (Some(1), _) => "in 1 day".into(),
        (Some(n), _) => format!("in {n} days"),
    }
}

fn table(list: &[Entry], now: UnixSeconds, warn_days: u32, ui: &Ui) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|e| {
            [
                days_text(e, now),
                e.not_after.map_or("-".into(), timefmt::utc),
                e.role.name().to_owned(),
                escape(&e.subject).into_owned(),
                escape(&e.file.display().to_string()).into_owned(),
            ]
        })
        .collect();
    let head = ["EXPIRES", "NOT AFTER", "ROLE", "SUBJECT", "FILE"];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String; 5]| {
        let mut l = String::new();
        for (i, w) in widths.iter().enumerate() {
            let pad = w - cells[i].chars().count();
            let _ = write!(l, "{}{}  ", cells[i], " ".repeat(pad));
        }
        l + &cells[4]
    };
    let mut out = ui.bold(&line(&head.map(String::from))) + "\n";
    for (entry, row) in list.iter().zip(&rows) {
        let text = line(row);
        let text = match entry.not_after {
            Some(t) if t < now => ui.fail(&text),
            _ if entry.needs_attention(now, warn_days) => ui.warn(&text),
            _ => text,
        };
        out += &text;
        out.push('\n');
    }
    let expired = list
        .iter()
        .filter(|e| e.not_after.is_some_and(|t| t < now))
        .count();
    let soon = list
        .iter()
        .filter(|e| e.needs_attention(now, warn_days))
        .count()
        - expired;
    let _ = writeln!(
        out,
        "{}: {} expired, {} within {warn_days} days",
        ui::count(list.len(), "item", "items"),
        expired,
        soon
    );
    out
}

fn json(e: &Entry, now: UnixSeconds, args: &ExpiryArgs) -> serde_json::Value {
    serde_json::json!({
        "subject": e.subject,
        "file": e.file.display().to_string(),
        "index": e.index,
        "role": e.role.name(),
        "not_after": e.not_after.map_or(serde_json::Value::Null, ui::json_time),
        "days_left": e.days_left,
        "expired": e.not_after.is_some_and(|t| t < now),
        "within_horizon": e.needs_attention(now, args.warn_days),
    })
}

/// A label value in the text exposition format: backslash, double quote and line feed are
/// the three characters it escapes.
fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The list in Prometheus's text exposition format (version 0.0.4): two gauges, each series
/// told apart by file and position in the file (a bundle may hold two CAs of one subject), and
/// the time of the run. A CRL without a next update has no deadline and no sample.
fn prometheus(list: &[Entry], now: UnixSeconds) -> String {
    let mut out = String::new();
    let labels = |e: &Entry| {
        format!(
            "file=\"{}\",index=\"{}\",role=\"{}\",subject=\"{}\"",
            label_value(&e.file.to_string_lossy()),
            e.index,
            e.role.name(),
            label_value(&e.subject)
        )
    };
    /// A metric's name, help, and value from the deadline and the time of the run.
    type Metric = (
        &'static str,
        &'static str,
        fn(UnixSeconds, UnixSeconds) -> i64,
    );
    let metrics: [Metric; 2] = [
        (
            "virtpki_certificate_not_after_seconds",
            "When the certificate expires (a CRL: its next update), in seconds since the Unix epoch.",
            |t, _| t,
        ),
        (
            "virtpki_certificate_expires_in_seconds",
            "Seconds from the run that wrote this to the certificate's expiry (a CRL: its next update); negative once past.",
            |t, now| t.saturating_sub(now),
        ),
    ];
    for (name, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for e in list {
            if let Some(t) = e.not_after {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(e), value(t, now));
            }
        }
    }
    let name = "virtpki_expiry_last_run_timestamp_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} When virtpki expiry wrote these metrics, in seconds since the Unix epoch."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {now}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use virtpki::expiry::Role;

    fn entry(subject: &str, file: &str, index: usize, role: Role, t: Option<i64>) -> Entry {
        Entry {
            subject: subject.into(),
            file: file.into(),
            index,
            role,
            not_after: t,
            days_left: t.map(|t| virtpki::sanity::days_left(t, 1_000_000)),
        }
    }

    /// A sample: metric name, labels in their order, value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// A label value as the format reads it: `"`, then characters with `\\`, `\"`, `\n` as the
    /// only escapes, then `"`. Returns the value and the rest.
    fn parse_label_value(s: &str) -> Option<(String, &str)> {
        let mut chars = s.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let rest = s.strip_prefix('"')?;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((value, &rest[i + 1..])),
                '\\' => match chars.next()?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    _ => return None,
                },
                '\n' => return None,
                c => value.push(c),
            }
        }
        None
    }

    fn is_metric_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// Checks `text` against the text exposition format's grammar and promtool's rules that
    /// apply (HELP and TYPE once per metric before its samples, gauges named without
    /// `_total`, a unit suffix, no series twice); returns the label sets per sample.
    fn check_format(text: &str) -> Vec<Sample> {
        assert!(text.ends_with('\n'), "the last line ends with a line feed");
        let mut samples = Vec::new();
        let (mut helped, mut typed) = (HashSet::new(), HashSet::new());
        let mut series = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(is_metric_name(name), "{line}");
                assert!(!help.is_empty() && !help.contains('\\'), "{line}");
                assert!(helped.insert(name.to_owned()), "HELP twice: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                assert_eq!(ty, "gauge", "{line}");
                assert!(name.ends_with("_seconds"), "unit suffix: {line}");
                assert!(helped.contains(name), "HELP before TYPE: {line}");
                assert!(typed.insert(name.to_owned()), "TYPE twice: {line}");
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert!(is_metric_name(name) && typed.contains(name), "{line}");
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(mut inner) = rest.strip_prefix('{') {
                loop {
                    if let Some(after) = inner.strip_prefix('}') {
                        rest = after;
                        break;
                    }
                    let (label, after) = inner.split_once('=').unwrap();
                    assert!(is_metric_name(label) && !label.contains(':'), "{line}");
                    let (value, after) = parse_label_value(after).unwrap_or_else(|| {
                        panic!("bad label value in {line:?}");
                    });
                    labels.push((label.to_owned(), value));
                    inner = after.strip_prefix(',').unwrap_or(after);
                }
            }
            let value: f64 = rest.strip_prefix(' ').unwrap().parse().unwrap();
            let mut key = labels.clone();
            key.sort();
            assert!(
                series.insert((name.to_owned(), key)),
                "series twice: {line}"
            );
            samples.push((name.to_owned(), labels, value));
        }
        samples
    }

    #[test]
    fn prometheus_output_follows_the_format_with_hostile_subjects_escaped() {
        let hostile = "CN=a\"b\\c\nd}e,O=x=y";
        let list = [
            entry(
                hostile,
                "/etc/pki/CA/cacert.pem",
                0,
                Role::Ca,
                Some(1_500_000),
            ),
            // The same subject twice in one bundle: told apart by index.
            entry(
                hostile,
                "/etc/pki/CA/cacert.pem",
                1,
                Role::Ca,
                Some(1_500_000),
            ),
            entry("CN=host", "/x \"y\"\n.pem", 0, Role::Server, Some(900_000)),
            entry("CN=CA", "/etc/pki/CA/cacrl.pem", 0, Role::Crl, None),
        ];
        let text = prometheus(&list, 1_000_000);
        let samples = check_format(&text);
        assert_eq!(samples.len(), 3 + 3 + 1, "{text}");
        let (_, labels, value) = &samples[0];
        assert_eq!(
            labels,
            &[
                ("file".into(), "/etc/pki/CA/cacert.pem".into()),
                ("index".into(), "0".into()),
                ("role".into(), "ca".into()),
                ("subject".into(), hostile.into()),
            ]
        );
        assert_eq!(*value, 1_500_000.0);
        assert!(
            text.contains(r#"subject="CN=a\"b\\c\nd}e,O=x=y""#),
            "{text}"
        );
        assert!(text.contains(r#"file="/x \"y\"\n.pem""#), "{text}");
        let expires_in: Vec<f64> = samples
            .iter()
            .filter(|s| s.0 == "virtpki_certificate_expires_in_seconds")
            .map(|s| s.2)
            .collect();
        assert_eq!(expires_in, [500_000.0, 500_000.0, -100_000.0]);
    }

    #[test]
    fn days_are_said_for_people() {
        let now = 1_000_000;
        let e = |t| entry("CN=x", "/f", 0, Role::Server, Some(t));
        assert_eq!(days_text(&e(now + 5 * 86_400 + 1), now), "in 5 days");
        assert_eq!(days_text(&e(now + 86_400), now), "in 1 day");
        assert_eq!(days_text(&e(now + 60), now), "today");
        assert_eq!(days_text(&e(now - 60), now), "expired today");
        assert_eq!(
            days_text(&e(now - 3 * 86_400 - 1), now),
            "expired 3 days ago"
        );
        let crl = entry("CN=x", "/f", 0, Role::Crl, None);
        assert_eq!(days_text(&crl, now), "no next update");
    }
}
