//! The modules of `src/` import each other without a circle, and only `generate` uses the
//! certificate issuer (issue 11, "shared types in their natural homes").
//!
//! A circle means two files that can only be read, changed or left out together; the issuing
//! code (rcgen, rsa) is to go behind a cargo feature, which works only while the verification
//! side never names it. This test reads the source instead of trusting a tool: every file of
//! `src/` is a node (`foo/bar.rs` and `foo/bar/mod.rs` are the node `foo/bar`), its
//! `#[cfg(test)]` items and files left out (the test modules may use anything, and code may
//! follow them), and every `crate::` path in what is left is an edge to the module it names. A name the crate root re-exports
//! (`crate::Result`) counts as the module it comes from. `super::` is followed: in a file of a
//! subdirectory to its parent, in a top-level file or a `mod.rs` to the crate root when it names
//! one of the crate's modules (otherwise it comes from an inline module and means the file); a
//! parent that uses its own children by relative paths (`mod audit; pub use audit::...`) adds
//! no edge, as a child is part of its parent.
//! A path the test cannot place fails the test rather than being left out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn src_has_no_import_circle() {
    let graph = src_graph();
    print_graph(&graph);
    let circles = circles(&graph);
    assert!(
        circles.is_empty(),
        "import circles in src/ (a -> b: a uses crate::b):\n{}",
        circles
            .iter()
            .map(|(part, c)| format!("  {} in circles, e.g. {}", part.join(", "), c.join(" -> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn only_generate_imports_generate() {
    let graph = src_graph();
    let users: Vec<&String> = graph
        .iter()
        .filter(|(from, to)| from.as_str() != "generate" && to.contains("generate"))
        .map(|(from, _)| from)
        .collect();
    assert!(
        users.is_empty(),
        "outside its tests, only generate may use crate::generate (it is to go behind a \
         feature); used by: {users:?}"
    );
}

/// The checks above are only as good as the reader and the circle finder: both on small inputs.
#[test]
fn the_reader_finds_grouped_nested_and_parent_paths() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "e", "g", "h", "ffi", "ffi/x", "ffi/y"]
        .into_iter()
        .map(String::from)
        .collect();
    let reexports = BTreeMap::from([("Thing".to_string(), "e".to_string())]);
    let text = "use crate::a::A;\n\
                // use crate::z::Z; (a comment is no edge)\n\
                use crate::{b::{self, B}, c};\n\
                fn f() -> crate::Thing { crate::d::f() }\n\
                use crate::g as renamed;\n\
                use super::{x::X, guard};\n\
                let s = \"crate::q\";\n\
                #[cfg(test)]\n\
                fn encode(x: [u8; 2]) -> u8 {\n\
                    let _ = crate::generate::x();\n\
                }\n\
                #[cfg(test)]\n\
                use crate::generate::y;\n\
                #[cfg(test)]\n\
                mod tests {\n\
                    use crate::generate;\n\
                    const OPEN: char = '{';\n\
                }\n\
                pub fn after_the_tests() -> crate::h::H { todo!() }\n";
    let edges = references("ffi/y", text, &modules, &reexports).unwrap();
    let expected: BTreeSet<String> = ["a", "b", "c", "d", "e", "g", "h", "ffi", "ffi/x"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(edges, expected);
    let unknown = references("a", "use crate::nowhere::X;", &modules, &reexports);
    assert!(unknown.unwrap_err().contains("crate::nowhere::X"));
    // `super::` in a top-level file: the crate root when it names a module, else the file.
    let top = "use super::b::B;\nmod inner { use super::local_item; }\n";
    assert_eq!(
        references("a", top, &modules, &reexports).unwrap(),
        BTreeSet::from(["b".to_string()])
    );
    // `super::super::` from a file two levels down goes up twice.
    let deep: BTreeSet<String> = modules
        .iter()
        .cloned()
        .chain(["ffi/x/z".to_string()])
        .collect();
    assert_eq!(
        references("ffi/x/z", "use super::super::y::Y;", &deep, &reexports).unwrap(),
        BTreeSet::from(["ffi/y".to_string()])
    );
    let known = "mod format;\n#[cfg(test)]\nmod tests;\n";
    assert_eq!(test_children("known", known), ["known/tests"]);
}

#[test]
fn the_circle_finder_names_each_circle() {
    let mut graph = Graph::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
    ] {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    let strings = |s: &[&str]| s.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    assert_eq!(
        circles(&graph),
        vec![
            (strings(&["a", "b", "c"]), strings(&["a", "b", "c", "a"])),
            (strings(&["d", "e"]), strings(&["d", "e", "d"])),
        ]
    );
    graph.get_mut("c").unwrap().remove("a");
    graph.get_mut("e").unwrap().remove("d");
    assert!(circles(&graph).is_empty());
}

/// The import graph of `src/` (the crate root left out: it only declares and re-exports).
fn src_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    collect(&src, &src, &mut files);
    let lib = files.remove("lib").expect("src/lib.rs");
    let reexports = root_reexports(&lib);
    // A file of tests (`#[cfg(test)] mod tests;` beside `known/tests.rs`) is no node at all.
    let test_files: Vec<String> = files
        .iter()
        .flat_map(|(module, text)| test_children(module, text))
        .collect();
    for module in &test_files {
        files.remove(module);
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, text) in &files {
        let edges = references(module, text, &modules, &reexports)
            .unwrap_or_else(|e| panic!("src/{module}: {e}"));
        graph.insert(module.clone(), edges);
    }
    graph
}

/// Each `.rs` file under `dir` by its module path (`cert`, `daemon_conf/audit`, `ffi`, `lib`).
fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut name = rel.to_string_lossy().replace('\\', "/");
            if let Some(parent) = name.strip_suffix("/mod") {
                name = parent.to_string();
            }
            files.insert(name, fs::read_to_string(&path).unwrap());
        }
    }
}

/// The modules `module` declares for tests only, in files of their own: `#[cfg(test)]` on the
/// line before `mod name;`.
fn test_children(module: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| {
            let declared = pair[1].strip_prefix("pub ").unwrap_or(pair[1]);
            let name = declared.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(format!("{module}/{}", name.trim()))
        })
        .collect()
}

/// The names the crate root re-exports (`pub use error::{Error, Result};`) and their modules.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in code(lib).split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        for path in expand(rest.trim()) {
            let (module, name) = path
                .rsplit_once("::")
                .expect("a re-export names its module");
            let name = name.rsplit(" as ").next().unwrap().trim();
            names.insert(name.to_string(), module.replace("::", "/"));
        }
    }
    names
}

/// The modules that `module`'s non-test code names, itself left out.
fn references(
    module: &str,
    text: &str,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, String> {
    let code = code(text);
    let parent = module.rsplit_once('/').map(|(p, _)| p);
    let mut edges = BTreeSet::new();
    let mut add = |full: String| -> Result<(), String> {
        let target = resolve(&full, modules, reexports)
            .ok_or_else(|| format!("cannot place the path crate::{full}"))?;
        if target != module {
            edges.insert(target);
        }
        Ok(())
    };
    for path in paths_after(&code, "crate::") {
        add(path)?;
    }
    for path in paths_after(&code, "super::") {
        // Each further `super::` goes one level up; above a top-level module is the root.
        let mut base = parent.unwrap_or("").to_string();
        let mut rest = path.as_str();
        while let Some(up) = rest.strip_prefix("super::") {
            base = base
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_string());
            rest = up;
        }
        if parent.is_none() && rest.len() == path.len() {
            // `super::` in a top-level file or a `mod.rs` is the crate root, or, inside an
            // inline module, this file: an edge only when it names one of the crate's modules.
            let first = rest.split("::").next().unwrap_or_default();
            if modules.contains(first) {
                add(rest.to_string())?;
            }
            continue;
        }
        add(if base.is_empty() {
            rest.to_string()
        } else {
            format!("{}::{rest}", base.replace('/', "::"))
        })?;
    }
    Ok(edges)
}

/// The source without its `#[cfg(test)]` items, comments, string and character literals.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().map(strip_literals);
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(&line);
            out.push('\n');
            continue;
        }
        // Skip the item: up to the `}` that closes its body, or a `;` outside any bracket
        // before a body opens (`#[cfg(test)] use ...;`).
        let (mut depth, mut body) = (0i32, false);
        'item: for line in lines.by_ref() {
            for c in line.chars() {
                match c {
                    '{' => (depth, body) = (depth + 1, true),
                    '(' | '[' => depth += 1,
                    ')' | ']' => depth -= 1,
                    '}' => {
                        depth -= 1;
                        if body && depth == 0 {
                            break 'item;
                        }
                    }
                    ';' if depth == 0 && !body => break 'item,
                    _ => {}
                }
            }
        }
    }
    out
}

/// One line without its comment, string literals and character literals (`'"'`, `'{'`).
fn strip_literals(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if in_string => i += 1,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '/' if chars.get(i + 1) == Some(&'/') => break,
            // A character literal: 'x', or an escape such as '\'' or '\u{7f}'. A lifetime
            // ('a) has no closing quote and stays.
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
            '\'' if chars.get(i + 1) == Some(&'\\') => {
                if let Some(end) = (i + 3..chars.len()).find(|&j| chars[j] == '\'') {
                    i = end;
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Every path written after `prefix` (`crate::` or `super::`), groups expanded: `crate::{a::B, c}`
/// gives `a::B` and `c`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(prefix) {
        let at = from + found;
        // What precedes the prefix in the whole text: `super::super::` is one path.
        let before = code[..at].chars().next_back();
        let tail = &code[at + prefix.len()..];
        from = at + prefix.len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let end = if tail.starts_with('{') {
            closing_brace(tail) + 1
        } else {
            let mut end = 0;
            let bytes = tail.as_bytes();
            while end < bytes.len() {
                if bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' {
                    end += 1;
                } else if tail[end..].starts_with("::{") {
                    end += 2 + closing_brace(&tail[end + 2..]) + 1;
                    break;
                } else if tail[end..].starts_with("::") {
                    end += 2;
                } else {
                    break;
                }
            }
            end
        };
        paths.extend(expand(&tail[..end]));
    }
    paths
}

/// The index of the `}` that closes the `{` at the start of `text`.
fn closing_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unclosed brace in {text:?}")
}

/// `a::{b::{self, C}, d}` → `a::b::self`, `a::b::C`, `a::d`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = path.find('{') else {
        return vec![path.trim_end_matches("::").to_string()];
    };
    let head = &path[..open];
    let inner = &path[open + 1..open + closing_brace(&path[open..])];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(|item| expand(&format!("{head}{item}")))
        .collect()
}

/// The module a path (without `crate::`) lands in: the longest prefix that is a module, or for a
/// name the root re-exports, that name's module.
fn resolve(
    path: &str,
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    // `use crate::generate as g;`: the name it is given here does not matter.
    let path = path.split(" as ").next().unwrap_or(path);
    let segments: Vec<&str> = path.split("::").map(str::trim).collect();
    for n in (1..=segments.len()).rev() {
        let candidate = segments[..n].join("/");
        if modules.contains(&candidate) {
            return Some(candidate);
        }
    }
    reexports.get(segments[0]).cloned()
}

/// Each set of modules that reach each other, with one shortest circle through its smallest
/// module (starting and ending there).
fn circles(graph: &Graph) -> Vec<(Vec<String>, Vec<String>)> {
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    for start in graph.keys() {
        if seen.contains(start) {
            continue;
        }
        // A module is in a circle with `start` when each reaches the other.
        let part: BTreeSet<&String> = graph
            .keys()
            .filter(|m| reaches(graph, start, m) && reaches(graph, m, start))
            .collect();
        seen.extend(part.iter().map(|m| (*m).clone()));
        if part.len() < 2 {
            continue;
        }
        let part = part.into_iter().cloned().collect();
        found.push((part, shortest_circle(graph, start)));
    }
    found
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    let mut queue = VecDeque::from([from.to_string()]);
    let mut visited = BTreeSet::from([from.to_string()]);
    while let Some(m) = queue.pop_front() {
        for next in graph.get(&m).into_iter().flatten() {
            if next == to {
                return true;
            }
            if visited.insert(next.clone()) {
                queue.push_back(next.clone());
            }
        }
    }
    false
}

/// The shortest way from `start` back to itself (breadth first).
fn shortest_circle(graph: &Graph, start: &str) -> Vec<String> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([start.to_string()]);
    while let Some(m) = queue.pop_front() {
        for next in graph.get(&m).into_iter().flatten() {
            if next == start {
                let mut path = vec![start.to_string(), m.clone()];
                let mut at = m.clone();
                while let Some(prev) = came_from.get(&at) {
                    path.push(prev.clone());
                    at = prev.clone();
                }
                path.reverse();
                return path;
            }
            if next != start && !came_from.contains_key(next) {
                came_from.insert(next.clone(), m.clone());
                queue.push_back(next.clone());
            }
        }
    }
    unreachable!("{start} is in a circle")
}

fn print_graph(graph: &Graph) {
    println!("module graph of src/ (non-test code):");
    for (from, to) in graph {
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("  {from} -> {}", to.join(", "));
    }
}
