//! Paths given on the command line, checked before a command does anything with them.
//!
//! A path the user typed that does not exist, or is not the kind of thing its option takes,
//! is the first thing said: the option, the path, what is wrong and what the option takes.
//! Left to the commands, such a typo surfaced later and elsewhere: `validate --path DIR
//! client` reported libvirt's fallbacks under /etc/pki and never named DIR, `install` an OS
//! error about DIR/cacert.pem, `probe --pkipath DIR` went on with the default locations.
//!
//! Every command's path options are listed in one table, [`Command::given_paths`], and
//! checked here before the command runs; `validate` puts the problems at the
//! top of its report, the other commands stop with them on standard error; both exit with
//! status 2.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ui::{escape, Status};
use crate::{expiry, issue, known, request, validate, Command};

/// What a given path must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// An existing directory.
    Dir,
    /// An existing file: anything but a directory (the command reads it and judges the rest).
    File,
    /// A directory the command creates when it is missing: what is there must be one.
    NewDir,
    /// A file the command creates when it is missing: what is there must not be a directory.
    NewFile,
}

impl Expect {
    fn noun(self) -> &'static str {
        match self {
            Expect::Dir | Expect::NewDir => "directory",
            Expect::File | Expect::NewFile => "file",
        }
    }

    fn must_exist(self) -> bool {
        matches!(self, Expect::Dir | Expect::File)
    }

    fn wants_dir(self) -> bool {
        matches!(self, Expect::Dir | Expect::NewDir)
    }
}

/// A path from the command line, the option that gave it and what the option takes.
#[derive(Clone, Debug)]
pub struct Given<'a> {
    /// The option as typed (`--ca-dir`), or a positional argument's name (`CERT`).
    pub option: &'static str,
    pub path: &'a Path,
    pub expect: Expect,
    /// What the option takes, for the fix: "the CA's directory, made by `virtpki ca init`".
    pub takes: &'static str,
    /// A command that makes the path, offered when it is missing (`mkdir -p -m 0700 DIR` for
    /// a pkipath directory that is yet to be filled).
    pub make: Option<String>,
}

impl<'a> Given<'a> {
    pub fn new(option: &'static str, path: &'a Path, expect: Expect, takes: &'static str) -> Self {
        Given {
            option,
            path,
            expect,
            takes,
            make: None,
        }
    }

    /// The same, offering `command` to make the path when it is missing.
    pub fn or_make(self, command: String) -> Self {
        Given {
            make: Some(command),
            ..self
        }
    }
}

// What the options take, as the fixes say it.
const PKIPATH: &str = "a pkipath directory: cacert.pem, and the client's or server's \
                       certificate and key (ROLEcert.pem, ROLEkey.pem)";
const CA_DIR: &str = "the CA's directory, made by `virtpki ca init --dir DIR`";
const CA_CERT_DIR: &str = "the directory holding the CA's cacert.pem";
const ISSUED_DIR: &str = "the --out-dir of `virtpki issue`, holding ROLEcert.pem and ROLEkey.pem";
const CERT: &str = "a certificate file (PEM or DER)";
const STORE: &str = "a known-servers file (made when missing)";
const QEMU_DIR: &str = "a QEMU x509 directory: ca-cert.pem, and client-cert.pem and client-key.pem";
const QEMU_CONF: &str =
    "qemu.conf, libvirt's QEMU driver configuration (leave it out for ROOT/etc/libvirt/qemu.conf)";

impl Command {
    /// Every path the command line gave, with what its option takes: the one table of the
    /// CLI's path options, checked by [`check`] before any command runs.
    pub(crate) fn given_paths(&self) -> Vec<Given<'_>> {
        let dir = |option, path, takes| Given::new(option, path, Expect::Dir, takes);
        match self {
            Command::Ca(issue::CaCommand::Init { dir: d, .. }) => vec![Given::new(
                "--dir",
                d,
                Expect::NewDir,
                "the CA's directory (made when missing)",
            )],
            Command::Ca(issue::CaCommand::Renew { dir: d, .. }) => vec![dir("--dir", d, CA_DIR)],
            Command::Renew(a) => vec![
                dir("--ca-dir", &a.ca_dir, CA_DIR),
                Given::new(
                    "CERT",
                    &a.cert,
                    Expect::File,
                    "the server or client certificate to renew (PEM)",
                ),
                Given::new(
                    "--out-dir",
                    &a.out_dir,
                    Expect::NewDir,
                    "a directory for the renewed certificate (made when missing)",
                ),
            ],
            Command::Issue(
                issue::IssueCommand::Server { leaf, .. } | issue::IssueCommand::Client { leaf, .. },
            ) => vec![
                dir("--ca-dir", &leaf.ca_dir, CA_DIR),
                Given::new(
                    "--out-dir",
                    &leaf.out_dir,
                    Expect::NewDir,
                    "a directory for the certificate and key (made when missing)",
                ),
            ],
            Command::Request(
                request::RequestCommand::Server { out, .. }
                | request::RequestCommand::Client { out, .. },
            ) => vec![Given::new(
                "--out-dir",
                &out.out_dir,
                Expect::NewDir,
                "a directory for the key and request (made when missing)",
            )],
            Command::Sign(cmd) => {
                let a = cmd.args();
                vec![
                    dir("--ca-dir", &a.ca_dir, CA_DIR),
                    Given::new(
                        "--request",
                        &a.request,
                        Expect::File,
                        "a certificate request made by `virtpki request`",
                    ),
                    Given::new(
                        "--out-dir",
                        &a.out_dir,
                        Expect::NewDir,
                        "a directory for the certificate (made when missing)",
                    ),
                ]
            }
            Command::Crl(issue::CrlCommand::Revoke { ca_dir, certs, .. }) => {
                let mut given = vec![dir("--ca-dir", ca_dir, CA_DIR)];
                given.extend(
                    certs
                        .iter()
                        .map(|c| Given::new("CERT", c, Expect::File, CERT)),
                );
                given
            }
            Command::Install(a) => {
                const ROOT: &str =
                    "a directory to install under as if it were / (made when missing)";
                let root = a.root.as_ref();
                let mut given = vec![
                    dir("--ca-dir", &a.ca_dir, CA_CERT_DIR),
                    dir("--from", &a.from, ISSUED_DIR),
                ];
                given.extend(root.map(|r| Given::new("--root", r, Expect::NewDir, ROOT)));
                given.extend(
                    a.qemu_conf
                        .as_ref()
                        .map(|c| Given::new("--qemu-conf", c, Expect::File, QEMU_CONF)),
                );
                given
            }
            Command::Validate(a) => {
                const CONF: &str =
                    "the daemon's configuration file (leave it out to check the default one)";
                let root = a.root.as_ref();
                let conf = a.libvirtd_conf.as_ref();
                let mut given: Vec<Given> = root
                    .map(|r| dir("--root", r, "an existing directory to treat as /"))
                    .into_iter()
                    .collect();
                // A pkipath directory is one user's (libvirt's URI parameter).
                given.extend(a.path.as_ref().map(|path| {
                    dir("--path", path, PKIPATH).or_make(validate::mkdir_p(path, false))
                }));
                given.extend(conf.map(|c| Given::new("--libvirtd-conf", c, Expect::File, CONF)));
                given.extend(
                    a.qemu_conf
                        .as_ref()
                        .map(|c| Given::new("--qemu-conf", c, Expect::File, QEMU_CONF)),
                );
                given
            }
            Command::Show(a) => vec![Given::new(
                "FILE",
                &a.file,
                Expect::File,
                "a PEM or DER file of certificates, a CRL or a private key",
            )],
            Command::Dn(a) => a
                .files
                .iter()
                .map(|f| Given::new("FILE", f, Expect::File, CERT))
                .collect(),
            Command::Known(cmd) => {
                let (store, cert) = match cmd {
                    known::KnownCommand::List { store, .. }
                    | known::KnownCommand::Remove { store, .. } => (store, None),
                    known::KnownCommand::Add { store, cert, .. } => (store, Some(cert)),
                };
                let mut given = Vec::new();
                if let Some(file) = &store.file {
                    given.push(Given::new("--known-file", file, Expect::NewFile, STORE));
                }
                if let Some(cert) = cert {
                    given.push(Given::new("CERT", cert, Expect::File, CERT));
                }
                given
            }
            Command::Expiry(a) => expiry_paths(a),
            Command::Probe(a) => {
                let mut given = Vec::new();
                if let Some(path) = &a.pkipath {
                    given.push(dir("--path", path, PKIPATH));
                }
                if let Some(path) = &a.qemu_dir {
                    given.push(dir("--qemu-dir", path, QEMU_DIR));
                }
                if let Some(file) = &a.known_file {
                    given.push(Given::new("--known-file", file, Expect::NewFile, STORE));
                }
                given
            }
            Command::Reload(a) => a
                .root
                .iter()
                .map(|r| {
                    dir(
                        "--root",
                        r,
                        "an existing directory to look for the daemons under, as if it were /",
                    )
                })
                .collect(),
        }
    }
}

/// `virtpki expiry`'s paths: the location options, the CA directory, the files, the output.
fn expiry_paths(a: &expiry::ExpiryArgs) -> Vec<Given<'_>> {
    let dir = |option, path, takes| Given::new(option, path, Expect::Dir, takes);
    let mut given: Vec<Given> = Vec::new();
    given.extend(
        a.root
            .as_ref()
            .map(|r| dir("--root", r, "an existing directory to treat as /")),
    );
    given.extend(a.path.as_ref().map(|p| dir("--path", p, PKIPATH)));
    given.extend(a.ca_dir.as_ref().map(|d| dir("--ca-dir", d, CA_DIR)));
    given.extend(a.files.iter().map(|f| {
        Given::new(
            "FILE",
            f,
            Expect::File,
            "a certificate or CRL file (PEM or DER)",
        )
    }));
    given.extend(a.output.as_ref().map(|o| {
        Given::new(
            "--output",
            o,
            Expect::NewFile,
            "a file to write (replaced atomically), in an existing directory",
        )
    }));
    given
}

/// What is wrong with a given path, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub option: &'static str,
    pub path: PathBuf,
    /// "no such directory", "not a directory: it is a regular file", ...
    pub what: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    /// `--path /x: no such directory`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.option, self.path.display(), self.what)
    }
}

/// The problems of `given`, in its order; empty when every path is what its option takes.
pub fn check(given: &[Given]) -> Vec<Problem> {
    given.iter().filter_map(check_one).collect()
}

/// Says `problems` (not empty) on standard error, each with its fix on the next line, for a
/// command that stops on them.
pub fn print(problems: &[Problem]) -> Status {
    for p in problems {
        eprintln!("virtpki: {}", escape(&p.to_string()));
        eprintln!("  fix: {}", escape(&p.fix));
    }
    Status::BadInput
}

fn check_one(g: &Given) -> Option<Problem> {
    let noun = g.expect.noun();
    let problem = |what: String| {
        Some(Problem {
            option: g.option,
            path: g.path.to_owned(),
            what,
            fix: format!("check the path: {} takes {}", g.option, g.takes),
        })
    };
    match fs::metadata(g.path) {
        Ok(meta) if meta.is_dir() == g.expect.wants_dir() => None,
        Ok(meta) => problem(format!(
            "not a {noun}: it is {}",
            virtpki::fsutil::kind_of(&meta)
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A link to nothing: no command can use it, whether it reads or creates.
            if let Ok(target) = fs::read_link(g.path) {
                return problem(format!(
                    "no such {noun}: it is a symbolic link to {}, which does not exist",
                    target.display()
                ));
            }
            if !g.expect.must_exist() {
                return None;
            }
            let mut p = problem(format!("no such {noun}"))?;
            if let Some(make) = &g.make {
                p.fix.push_str(&format!("; or make it: `{make}`"));
            }
            Some(p)
        }
        // A part of the path is a file: name it, it is where the path went wrong.
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            let culprit = blocking_file(g.path).unwrap_or_else(|| g.path.to_owned());
            let what = if g.expect.must_exist() {
                format!("no such {noun}")
            } else {
                "cannot be made".to_owned()
            };
            problem(format!("{what}: {} is not a directory", culprit.display()))
        }
        Err(e) => problem(format!("cannot be reached: {e}")),
    }
}

/// The first ancestor of `path` that exists and is not a directory.
fn blocking_file(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|a| fs::metadata(a).is_ok_and(|m| !m.is_dir()))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::error::{ContextKind, ContextValue};
    use clap::{CommandFactory, Parser};
    use std::any::TypeId;

    fn one(path: &Path, expect: Expect) -> Option<String> {
        check(&[Given::new("--x", path, expect, "something")])
            .pop()
            .map(|p| p.to_string())
    }

    #[test]
    fn each_way_a_path_can_be_wrong_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("file");
        fs::write(&file, "").unwrap();
        let missing = d.join("missing");
        let dangling = d.join("dangling");
        std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
        let below_file = file.join("x");
        let shown = |p: &Path| p.display().to_string();

        // What each option takes passes.
        assert_eq!(one(d, Expect::Dir), None);
        assert_eq!(one(d, Expect::NewDir), None);
        assert_eq!(one(&file, Expect::File), None);
        assert_eq!(one(&file, Expect::NewFile), None);
        assert_eq!(one(&missing, Expect::NewDir), None);
        assert_eq!(one(&missing.join("deeper"), Expect::NewFile), None);

        // Missing, told from the wrong kind.
        assert_eq!(
            one(&missing, Expect::Dir).unwrap(),
            format!("--x {}: no such directory", shown(&missing))
        );
        assert_eq!(
            one(&missing, Expect::File).unwrap(),
            format!("--x {}: no such file", shown(&missing))
        );
        assert_eq!(
            one(&file, Expect::Dir).unwrap(),
            format!(
                "--x {}: not a directory: it is a regular file",
                shown(&file)
            )
        );
        assert_eq!(
            one(&file, Expect::NewDir).unwrap(),
            format!(
                "--x {}: not a directory: it is a regular file",
                shown(&file)
            )
        );
        assert_eq!(
            one(d, Expect::File).unwrap(),
            format!("--x {}: not a file: it is a directory", shown(d))
        );
        assert_eq!(
            one(d, Expect::NewFile).unwrap(),
            format!("--x {}: not a file: it is a directory", shown(d))
        );
        // A file in the middle of the path is named.
        assert_eq!(
            one(&below_file, Expect::Dir).unwrap(),
            format!(
                "--x {}: no such directory: {} is not a directory",
                shown(&below_file),
                shown(&file)
            )
        );
        assert_eq!(
            one(&below_file, Expect::NewDir).unwrap(),
            format!(
                "--x {}: cannot be made: {} is not a directory",
                shown(&below_file),
                shown(&file)
            )
        );
        // A link to nothing, even where the command would create the path.
        for expect in [Expect::Dir, Expect::NewFile] {
            let msg = one(&dangling, expect).unwrap();
            assert!(msg.contains(": no such "), "{msg}");
            assert!(msg.ends_with("nowhere, which does not exist"), "{msg}");
        }
        // Something else entirely.
        assert_eq!(
            one(Path::new("/dev/null"), Expect::Dir).unwrap(),
            "--x /dev/null: not a directory: it is a device"
        );
    }

    #[test]
    fn every_problem_is_found_in_order_with_its_fix() {
        let problems = check(&[
            Given::new("--a", Path::new("/nonexistent/a"), Expect::Dir, "A"),
            Given::new("--b", Path::new("/"), Expect::Dir, "B"),
            Given::new("--c", Path::new("/nonexistent/c"), Expect::File, "C"),
        ]);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].fix, "check the path: --a takes A");
        assert_eq!(problems[1].to_string(), "--c /nonexistent/c: no such file");
        // A command that makes the path is offered when it is missing, and only then.
        let make = |path: &'static str| {
            check(&[Given::new("--p", Path::new(path), Expect::Dir, "P").or_make("mkdir M".into())])
                .pop()
                .unwrap()
                .fix
        };
        assert_eq!(
            make("/nonexistent/p"),
            "check the path: --p takes P; or make it: `mkdir M`"
        );
        assert_eq!(make("/dev/null"), "check the path: --p takes P");
    }

    /// Every path argument of every subcommand (a `PathBuf` in clap's model) is in
    /// `Command::given_paths`, under the name the user typed: an option added without a row
    /// there would be used unchecked.
    #[test]
    fn every_path_option_is_in_the_table() {
        let mut leaves = Vec::new();
        let mut cli = Cli::command();
        // Gives the positional arguments their indexes.
        cli.build();
        collect_leaves(&cli, vec!["virtpki".to_owned()], &mut leaves);
        assert!(leaves.len() >= 10, "{}", leaves.len());
        let mut seen = 0;
        for (words, cmd) in leaves {
            let paths: Vec<&clap::Arg> = cmd
                .get_arguments()
                .filter(|a| a.get_value_parser().type_id() == TypeId::of::<PathBuf>())
                .collect();
            // One parse per path argument, with what the command requires besides: two path
            // options that exclude each other (`probe --qemu-dir`, `--path`) are each checked.
            for path_arg in paths {
                let wanted = check_one_path_option(&words, &cmd, path_arg);
                seen += wanted;
            }
        }
        // ca init --dir; issue server and client --ca-dir, --out-dir; request server and client
        // --out-dir; sign server and client --ca-dir, --request, --out-dir; crl revoke --ca-dir,
        // CERT; install --ca-dir, --from, --root, --qemu-conf; validate --path,
        // --libvirtd-conf, --root, --qemu-conf;
        // show FILE; dn FILE; known list, add, remove --known-file and add CERT; probe --path,
        // --qemu-dir, --known-file; expiry --root, --path, --ca-dir, FILE, --output; ca renew --dir; renew
        // --ca-dir, CERT, --out-dir; reload --root.
        assert_eq!(seen, 42);
    }

    /// Parses `words` with `path_arg` given a sentinel path (and whatever the command
    /// requires besides) and asserts `given_paths` reports exactly it; returns 1.
    fn check_one_path_option(words: &[String], cmd: &clap::Command, path_arg: &clap::Arg) -> usize {
        let mut argv = words.to_vec();
        let mut positionals = Vec::new();
        let sentinel = format!("/nonexistent/given-check/{}", path_arg.get_id());
        let name = match path_arg.get_long() {
            Some(long) => format!("--{long}"),
            None => path_arg.get_value_names().unwrap()[0].to_string(),
        };
        for arg in cmd.get_arguments() {
            let is_this = arg.get_id() == path_arg.get_id();
            if !is_this && !arg.is_required_set() {
                continue;
            }
            let value = if is_this {
                sentinel.clone()
            } else if arg.get_value_parser().type_id() == TypeId::of::<PathBuf>() {
                // A required path other than the one checked: given, and expected too.
                format!("/nonexistent/given-check/{}", arg.get_id())
            } else {
                arg.get_possible_values()
                    .first()
                    .map_or("x".to_owned(), |v| v.get_name().to_owned())
            };
            match arg.get_long() {
                Some(long) => argv.extend([format!("--{long}"), value]),
                None => positionals.push((arg.get_index().unwrap_or(0), value)),
            }
        }
        positionals.sort();
        argv.extend(positionals.into_iter().map(|(_, v)| v));
        // An option required only without another (`issue server --cn`, unless --dn) or by
        // the one checked (`probe --qemu-dir` needs --vnc) is named by clap's refusal.
        if let Err(e) = Cli::try_parse_from(&argv) {
            if let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) {
                for m in missing {
                    let option = m.split_whitespace().next().unwrap_or_default();
                    let arg = cmd
                        .get_arguments()
                        .find(|a| a.get_long() == option.strip_prefix("--"));
                    let takes_value = arg.is_some_and(|a| {
                        a.get_num_args().is_none_or(|n| n.takes_values())
                            && !matches!(
                                a.get_action(),
                                clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
                            )
                    });
                    argv.push(option.to_owned());
                    if takes_value {
                        // A value it takes (`install --role`, required unless --qemu).
                        argv.push(
                            arg.and_then(|a| a.get_possible_values().first().cloned())
                                .map_or("x".to_owned(), |v| v.get_name().to_owned()),
                        );
                    }
                }
            }
        }
        let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let got: Vec<(String, PathBuf)> = cli
            .command
            .given_paths()
            .iter()
            .map(|g| (g.option.to_owned(), g.path.to_owned()))
            .filter(|(_, p)| p == Path::new(&sentinel))
            .collect();
        assert_eq!(got, [(name, PathBuf::from(&sentinel))], "{argv:?}");
        1
    }

    /// The subcommands that run something, each with the words that call it.
    fn collect_leaves(
        cmd: &clap::Command,
        argv: Vec<String>,
        out: &mut Vec<(Vec<String>, clap::Command)>,
    ) {
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push((argv, cmd.clone()));
            return;
        }
        for sub in subs {
            let mut argv = argv.clone();
            argv.push(sub.get_name().to_owned());
            collect_leaves(sub, argv, out);
        }
    }
}
