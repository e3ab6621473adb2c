//! Issue 15, item 15: the man pages and shell completions `make install` installs, generated
//! from the clap definitions by `virtpki __generate-docs DIR`: every subcommand has its page,
//! naming each of its options, and every completion script knows every subcommand.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{require, s, virtpki};

/// The subcommands of `virtpki WORDS`, as its `--help` lists them (without `help`).
fn subcommands(dir: &Path, words: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.push("--help");
    let help = virtpki(dir, &args).expect(0).stdout;
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command line that names a command: [], [ca], [ca, init], ...
fn command_paths(dir: &Path, words: Vec<String>, out: &mut Vec<Vec<String>>) {
    for sub in subcommands(dir, &words) {
        let mut path = words.clone();
        path.push(sub);
        command_paths(dir, path, out);
    }
    out.push(words);
}

/// The long options `virtpki WORDS --help` lists.
fn long_options(dir: &Path, words: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.push("--help");
    virtpki(dir, &args)
        .expect(0)
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| {
            l.split(|c: char| c.is_whitespace() || c == ',')
                .find(|w| w.starts_with("--"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_subcommand_has_a_man_page_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("docs");
    virtpki(d, &["__generate-docs", s(&out)]).expect(0);

    let mut paths = Vec::new();
    command_paths(d, Vec::new(), &mut paths);
    // ca init, issue server and client, crl revoke, install, validate, show, dn, known list,
    // add and remove, probe, and the four groups and the command itself.
    assert!(paths.len() >= 17, "{paths:?}");

    let pages: BTreeSet<String> = std::fs::read_dir(out.join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let wanted: BTreeSet<String> = paths
        .iter()
        .map(|p| {
            let mut name = vec!["virtpki".to_owned()];
            name.extend(p.iter().cloned());
            format!("{}.1", name.join("-"))
        })
        .collect();
    assert_eq!(pages, wanted);

    for path in &paths {
        let mut name = vec!["virtpki".to_owned()];
        name.extend(path.iter().cloned());
        let page_path = out.join("man1").join(format!("{}.1", name.join("-")));
        let page = std::fs::read_to_string(&page_path).unwrap();
        assert!(
            page.contains(&format!(".TH {} 1", name.join("-"))),
            "{page}"
        );
        // roff escapes each hyphen of an option.
        for option in long_options(d, path) {
            let roff = option.replace('-', "\\-");
            assert!(page.contains(&roff), "{}: no {option}", page_path.display());
        }
        {
            require("groff");
            let run = Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .arg(&page_path)
                .output()
                .unwrap();
            assert!(
                run.status.success() && run.stderr.is_empty(),
                "{}: {}",
                page_path.display(),
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }

    let completions = out.join("completions");
    for file in ["virtpki.bash", "_virtpki", "virtpki.fish"] {
        let text = std::fs::read_to_string(completions.join(file)).unwrap();
        for path in paths.iter().filter(|p| !p.is_empty()) {
            let word = path.last().unwrap();
            assert!(text.contains(word.as_str()), "{file}: no {word}");
        }
        // The entry point itself is no command to complete.
        assert!(!text.contains("generate-docs"), "{file}");
    }
    for (shell, file) in [
        ("bash", "virtpki.bash"),
        ("zsh", "_virtpki"),
        ("fish", "virtpki.fish"),
    ] {
        {
            require(shell);
            let run = Command::new(shell)
                .arg("-n")
                .arg(completions.join(file))
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{shell} -n {file}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    // A usage mistake is said, and nothing is written.
    virtpki(d, &["__generate-docs"]).expect(2);
}
