//! libvirt's `tls_allowed_dn_list`: which client Distinguished Names may connect.
//!
//! libvirt checks the client's DN string against each pattern with GLib's
//! `g_pattern_match_simple(pattern, dn)`, so the rules here are GLib's, not `fnmatch`'s:
//!
//! * the pattern must match the *whole* DN;
//! * `*` matches any run of characters, including none and including commas;
//! * `?` matches exactly one character (a Unicode scalar value, as GLib works on UTF-8);
//! * every other character, `\` and `[` included, matches only itself: there are no
//!   escapes and no character classes;
//! * the first pattern in list order that matches wins; an empty list lets nobody in
//!   (having no list at all, i.e. no DN check, is the caller's business).
//!
//! A configuration may hold thousands of patterns and the check runs on every TLS
//! connection, so [`AllowedDnList`] compiles the list once: wildcard-free patterns go into
//! a hash map, and the others into a path-compressed byte trie keyed by their literal
//! prefix (the text before the first wildcard), so a decision only tries the few patterns
//! whose prefix starts the DN. [`pattern_matches`] is the single-pattern rule on its own.

use std::collections::HashMap;

use crate::error::{Error, ErrorKind, Result};

/// Whether `dn` matches `pattern` under `g_pattern_match_simple`'s rules (see the module
/// documentation). Runs in O(len(pattern) × len(dn)) at worst, without recursion, so a
/// hostile pattern such as `*a*a*a*a*b` cannot make it blow up.
pub fn pattern_matches(pattern: &str, dn: &str) -> bool {
    wildcard_match(pattern.as_bytes(), dn.as_bytes())
}

/// The classic greedy matcher that, on a mismatch, backtracks only to the most recent `*`.
///
/// Going back to an earlier `*` is never needed: whatever an earlier star could absorb,
/// the latest one can absorb as well. Both slices must be valid UTF-8 (they come from
/// `&str`). Literals are compared byte by byte, which is the same as comparing characters
/// because the text position is always on a character boundary when a pattern character
/// starts; `?` and star retries step over a whole character.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the latest `*`: where the pattern resumes, and where in the text the star's
    // absorbed run currently ends.
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                last_star = Some((p, t));
                continue;
            }
            Some(b'?') => {
                p += 1;
                t += utf8_char_len(text[t]);
                continue;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch (or pattern exhausted with text left): let the last star absorb one more
        // character and retry from just after it.
        let Some((resume_p, star_end)) = last_star else {
            return false;
        };
        let star_end = star_end + utf8_char_len(text[star_end]);
        last_star = Some((resume_p, star_end));
        p = resume_p;
        t = star_end;
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The length in bytes of the UTF-8 character whose first byte is `lead`.
fn utf8_char_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        // 0xf0..: four-byte sequences. Continuation bytes (0x80..0xbf) never reach here,
        // as positions are always on character boundaries.
        _ => 4,
    }
}

/// A pattern with at least one wildcard, pre-split so that a decision does as little as
/// possible: its literal prefix is checked by the trie walk, its literal suffix by a cheap
/// `ends_with`, and only the middle (which starts and ends with a wildcard) goes through
/// [`wildcard_match`].
#[derive(Clone, Debug)]
struct WildcardPattern {
    /// Position in the original list; the smallest matching one wins.
    index: u32,
    /// Length in bytes of the literal text before the first wildcard.
    prefix_len: usize,
    /// The literal text after the last wildcard.
    suffix: Box<str>,
    /// From the first wildcard to the last, inclusive.
    middle: Box<str>,
    /// A lower bound on the length in bytes of any matching DN: literal bytes plus one per
    /// `?`.
    min_dn_len: usize,
}

impl WildcardPattern {
    /// Splits `pattern`, which must contain `*` or `?`.
    fn new(index: u32, pattern: &str) -> WildcardPattern {
        let is_wild = |c: char| c == '*' || c == '?';
        let first = pattern.find(is_wild).expect("pattern has a wildcard");
        let last = pattern.rfind(is_wild).expect("pattern has a wildcard");
        // Each literal byte needs a byte and each `?` at least one; `*` needs nothing.
        let min_dn_len = pattern.len() - pattern.matches('*').count();
        WildcardPattern {
            index,
            prefix_len: first,
            suffix: pattern[last + 1..].into(),
            middle: pattern[first..=last].into(),
            min_dn_len,
        }
    }

    /// Whether the pattern matches `dn`, given that `dn` starts with the literal prefix
    /// (the trie has checked that).
    fn matches_after_prefix(&self, dn: &str) -> bool {
        if dn.len() < self.min_dn_len || !dn.ends_with(&*self.suffix) {
            return false;
        }
        // min_dn_len >= prefix_len + suffix.len(), so the slice is in bounds, and both ends
        // are character boundaries because literal UTF-8 text matched there.
        let middle_text = &dn[self.prefix_len..dn.len() - self.suffix.len()];
        wildcard_match(self.middle.as_bytes(), middle_text.as_bytes())
    }
}

/// The wildcard patterns grouped by literal prefix, in a path-compressed (radix) trie over
/// bytes, so that all the buckets whose prefix starts a DN are found in one pass over the
/// DN. Compressing the paths keeps the node count under twice the number of distinct
/// prefixes, however long they are.
#[derive(Clone, Debug)]
struct PrefixTrie {
    /// Node 0 is the root, for the empty prefix.
    nodes: Vec<TrieNode>,
}

#[derive(Clone, Debug, Default)]
struct TrieNode {
    /// The bytes on the edge from the parent; empty only at the root.
    label: Box<[u8]>,
    /// The bucket: positions in `AllowedDnList::wildcards` of the patterns whose prefix is
    /// the path to this node, in ascending list order.
    patterns: Vec<u32>,
    /// Child nodes by the first byte of their label, sorted for binary search.
    children: Vec<(u8, u32)>,
}

impl PrefixTrie {
    fn new() -> PrefixTrie {
        PrefixTrie {
            nodes: vec![TrieNode::default()],
        }
    }

    /// Appends `pattern` to the bucket for `prefix`.
    fn insert(&mut self, prefix: &[u8], pattern: u32) {
        let mut node = 0;
        let mut rest = prefix;
        while let Some(&first) = rest.first() {
            let Some(child) = self.child(node, first) else {
                node = self.add_child(node, rest);
                break;
            };
            let label = &self.nodes[child].label;
            let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common < label.len() {
                self.split(child, common);
            }
            node = child;
            rest = &rest[common..];
        }
        self.nodes[node].patterns.push(pattern);
    }

    /// The child of `node` whose label starts with `first`.
    fn child(&self, node: usize, first: u8) -> Option<usize> {
        let children = &self.nodes[node].children;
        children
            .binary_search_by_key(&first, |&(b, _)| b)
            .ok()
            .map(|found| children[found].1 as usize)
    }

    /// Adds a leaf under `parent` for the non-empty `label`, which no child starts with.
    fn add_child(&mut self, parent: usize, label: &[u8]) -> usize {
        let id = self.nodes.len();
        let children = &mut self.nodes[parent].children;
        let slot = children
            .binary_search_by_key(&label[0], |&(b, _)| b)
            .expect_err("no child starts with this byte");
        children.insert(slot, (label[0], id as u32));
        self.nodes.push(TrieNode {
            label: label.into(),
            ..TrieNode::default()
        });
        id
    }

    /// Cuts `node`'s label after `at` bytes (0 < at < len): the node keeps the first part
    /// (so its parent's link stays valid), and a new child takes the rest with the
    /// node's bucket and children.
    fn split(&mut self, node: usize, at: usize) {
        let lower_id = self.nodes.len() as u32;
        let upper = &mut self.nodes[node];
        let lower = TrieNode {
            label: upper.label[at..].into(),
            patterns: std::mem::take(&mut upper.patterns),
            children: std::mem::take(&mut upper.children),
        };
        upper.label = upper.label[..at].into();
        upper.children = vec![(lower.label[0], lower_id)];
        self.nodes.push(lower);
    }

    /// Calls `visit` with the bucket of each prefix of `text` in the trie, shortest first
    /// (so the root's bucket, of patterns starting with a wildcard, always comes first).
    fn for_each_bucket_on(&self, text: &[u8], mut visit: impl FnMut(&[u32])) {
        let mut node = 0;
        let mut depth = 0;
        loop {
            visit(&self.nodes[node].patterns);
            let Some(child) = text.get(depth).and_then(|&b| self.child(node, b)) else {
                return;
            };
            let label = &self.nodes[child].label;
            if !text[depth..].starts_with(label) {
                return;
            }
            depth += label.len();
            node = child;
        }
    }
}

/// A compiled `tls_allowed_dn_list`: build it once from the configuration, then ask
/// [`is_allowed`](AllowedDnList::is_allowed) for each client.
///
/// A decision costs one hash lookup of the DN plus a walk of the DN's bytes through the
/// prefix trie, trying only the wildcard patterns whose literal prefix starts the DN (and,
/// of those, only ones earlier in the list than the best match found so far). Patterns
/// that begin with a wildcard sit at the trie's root and are tried for every DN, after a
/// cheap check of their literal suffix.
#[derive(Clone, Debug)]
pub struct AllowedDnList {
    patterns: Vec<String>,
    /// Wildcard-free patterns, to the index of their first occurrence.
    exact: HashMap<Box<str>, u32>,
    /// Every pattern with a wildcard, in list order.
    wildcards: Vec<WildcardPattern>,
    /// `wildcards` grouped by literal prefix.
    trie: PrefixTrie,
}

impl AllowedDnList {
    /// Compiles `patterns`, in the order given (the order matters for
    /// [`matching_pattern`](AllowedDnList::matching_pattern)).
    ///
    /// Fails with [`ErrorKind::InvalidArg`] if a pattern contains a NUL character, which a
    /// C string (and so libvirt's configuration) cannot hold, or if there are more than
    /// `u32::MAX` patterns.
    pub fn new(patterns: &[impl AsRef<str>]) -> Result<Self> {
        if u32::try_from(patterns.len()).is_err() {
            return Err(Error::new(
                ErrorKind::InvalidArg,
                format!(
                    "tls_allowed_dn_list has too many entries ({})",
                    patterns.len()
                ),
            ));
        }
        let mut list = AllowedDnList {
            patterns: Vec::with_capacity(patterns.len()),
            exact: HashMap::new(),
            wildcards: Vec::new(),
            trie: PrefixTrie::new(),
        };
        for (index, pattern) in patterns.iter().enumerate() {
            let pattern = pattern.as_ref();
            if pattern.contains('\0') {
                return Err(Error::new(
                    ErrorKind::InvalidArg,
                    format!("tls_allowed_dn_list entry {index} contains a NUL character"),
                ));
            }
            // In range: checked above.
            let index = index as u32;
            if pattern.contains(['*', '?']) {
                let compiled = WildcardPattern::new(index, pattern);
                let prefix = &pattern.as_bytes()[..compiled.prefix_len];
                list.trie.insert(prefix, list.wildcards.len() as u32);
                list.wildcards.push(compiled);
            } else {
                // A duplicate keeps the first index: that one would win.
                list.exact.entry(pattern.into()).or_insert(index);
            }
            list.patterns.push(pattern.to_owned());
        }
        Ok(list)
    }

    /// Whether a client with this Distinguished Name may connect: some pattern matches it.
    pub fn is_allowed(&self, dn: &str) -> bool {
        self.first_match(dn).is_some()
    }

    /// The first pattern, in list order, that matches `dn`; `None` if none does. This is
    /// the one libvirt would log as having let the client in.
    pub fn matching_pattern(&self, dn: &str) -> Option<&str> {
        self.first_match(dn)
            .map(|index| self.patterns[index as usize].as_str())
    }

    /// The list index of the first matching pattern.
    fn first_match(&self, dn: &str) -> Option<u32> {
        let mut best = self.exact.get(dn).copied();
        self.trie.for_each_bucket_on(dn.as_bytes(), |bucket| {
            // Every pattern here has its literal prefix at the start of the DN. A bucket is
            // in list order, so its first match is its best, and nothing at or past the best
            // so far can win.
            for &slot in bucket {
                let pattern = &self.wildcards[slot as usize];
                if best.is_some_and(|b| pattern.index >= b) {
                    break;
                }
                if pattern.matches_after_prefix(dn) {
                    best = Some(pattern.index);
                    break;
                }
            }
        });
        best
    }

    /// The number of patterns, duplicates included.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the list has no patterns, and so lets nobody in.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both the single-pattern function and a one-entry compiled list.
    fn check(pattern: &str, dn: &str, expected: bool) {
        assert_eq!(
            pattern_matches(pattern, dn),
            expected,
            "pattern_matches({pattern:?}, {dn:?})"
        );
        let list = AllowedDnList::new(&[pattern]).unwrap();
        assert_eq!(
            list.is_allowed(dn),
            expected,
            "list [{pattern:?}] with {dn:?}"
        );
    }

    const DN: &str = "C=GB,ST=London,L=London,O=Libvirt Project,CN=client1";

    #[test]
    fn literal_patterns_match_the_whole_string_only() {
        check(DN, DN, true);
        check("C=GB", DN, false);
        check("CN=client1", DN, false);
        check(&format!("{DN},"), DN, false);
        check(
            "CN=client1,O=Libvirt Project,L=London,ST=London,C=GB",
            DN,
            false,
        );
        check("cn=client1", "CN=client1", false);
    }

    #[test]
    fn star_matches_any_run_including_commas_and_nothing() {
        check("*", DN, true);
        check("*", "", true);
        check("C=GB,*", DN, true);
        check("*,CN=client1", DN, true);
        check("C=GB,*,CN=client1", DN, true);
        check("C=GB*CN=client1", DN, true);
        check(
            "C=GB,ST=London,*L=London,O=Libvirt Project,CN=client1",
            DN,
            true,
        );
        check("*CN=client1*", DN, true);
        check("C=GB,*,CN=client2", DN, false);
        check("*,CN=client", DN, false);
    }

    #[test]
    fn consecutive_stars_are_one_star() {
        check("**", "", true);
        check("***", DN, true);
        check("C=GB**CN=client1", DN, true);
        check("C=GB,**,**,CN=client1", DN, true);
        check("a**b", "ab", true);
        check("a**b", "ac", false);
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        check("CN=client?", "CN=client1", true);
        check("CN=client?", "CN=client", false);
        check("CN=client?", "CN=client12", false);
        check("CN=client??", "CN=client12", true);
        check("C=GB?ST=London", "C=GB,ST=London", true);
        check("?*", "", false);
        check("*?", "x", true);
        check("?", "", false);
    }

    #[test]
    fn question_mark_is_one_unicode_character_not_one_byte() {
        check("CN=?", "CN=é", true);
        check("CN=??", "CN=é", false);
        check("CN=?", "CN=€", true);
        check("CN=?", "CN=😀", true);
        check("CN=?x", "CN=😀x", true);
        check("*?", "é", true);
        check("*??", "é", false);
        check("O=?*,CN=?", "O=Ünïcödé,CN=ß", true);
        check("O=*é*", "O=caféteria", true);
        check("O=*é", "O=caf", false);
    }

    #[test]
    fn there_are_no_escapes_backslash_is_literal() {
        // `\` is a literal backslash, and the `*` after it is still a wildcard.
        check("CN=a\\*", "CN=ab", false);
        check("CN=a\\*", "CN=a*", false);
        check("CN=a\\*", "CN=a\\", true);
        check("CN=a\\*", "CN=a\\anything", true);
        check("CN=a\\?", "CN=a\\b", true);
        check("CN=a\\?", "CN=a?", false);
        check("O=Acme\\, Inc.,CN=x", "O=Acme\\, Inc.,CN=x", true);
    }

    #[test]
    fn there_are_no_character_classes() {
        check("CN=[ab]", "CN=a", false);
        check("CN=[ab]", "CN=[ab]", true);
        check("CN=[!a]", "CN=[!a]", true);
        check("CN=[*]", "CN=[anything]", true);
        check("CN=[*]", "CN=a", false);
    }

    #[test]
    fn empty_pattern_matches_only_the_empty_string() {
        check("", "", true);
        check("", "C=GB", false);
        check("", " ", false);
    }

    #[test]
    fn empty_list_lets_nobody_in() {
        let list = AllowedDnList::new(&[] as &[&str]).unwrap();
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
        assert!(!list.is_allowed(DN));
        assert!(!list.is_allowed(""));
        assert_eq!(list.matching_pattern(DN), None);
    }

    #[test]
    fn first_match_wins_across_exact_and_wildcard_buckets() {
        let patterns = [
            "C=US,*",                                               // 0: other prefix
            "C=GB,ST=London,L=London,O=Libvirt Project,CN=client2", // 1: exact, other DN
            "C=GB,ST=London,*,CN=client1",                          // 2: prefix "C=GB,ST=London,"
            DN,                                                     // 3: exact
            "*",                                                    // 4: root bucket
            "C=GB,*",                                               // 5: prefix "C=GB,"
            DN,                                                     // 6: duplicate exact
        ];
        let list = AllowedDnList::new(&patterns).unwrap();
        assert_eq!(list.len(), 7);
        assert_eq!(list.patterns()[3], DN);
        assert_eq!(list.matching_pattern(DN), Some(patterns[2]));
        assert_eq!(
            list.matching_pattern("C=GB,ST=London,L=London,O=Libvirt Project,CN=client2"),
            Some(patterns[1])
        );
        assert_eq!(list.matching_pattern("C=US,CN=x"), Some(patterns[0]));
        assert_eq!(list.matching_pattern("C=GB,CN=x"), Some(patterns[4]));
        assert_eq!(list.matching_pattern(""), Some(patterns[4]));

        // Drop the early wildcard: the exact pattern (index 2 now) beats the later `*`.
        let list = AllowedDnList::new(&[patterns[0], patterns[1], DN, "*", "C=GB,*"]).unwrap();
        assert_eq!(list.matching_pattern(DN), Some(DN));

        // A short-prefix wildcard early in the list beats a long-prefix one and an exact
        // pattern later in it.
        let list = AllowedDnList::new(&["C=GB,*client1", DN, "C=GB,ST=London,*"]).unwrap();
        assert_eq!(list.matching_pattern(DN), Some("C=GB,*client1"));
        let list = AllowedDnList::new(&["C=GB,ST=London,*", "C=GB,*client1", DN]).unwrap();
        assert_eq!(list.matching_pattern(DN), Some("C=GB,ST=London,*"));
        // Within one bucket, a later match does not replace an earlier one.
        let list = AllowedDnList::new(&["C=GB,*", "C=GB,*client1", "C=GB,?*"]).unwrap();
        assert_eq!(list.matching_pattern(DN), Some("C=GB,*"));
        assert_eq!(list.matching_pattern("C=US"), None);
        assert!(!list.is_allowed("C=US"));
    }

    #[test]
    fn pathological_patterns_finish() {
        let long_a = "a".repeat(50_000);
        check("*a*a*a*a*a*a*a*a*a*a*b", &long_a, false);
        check("*a*a*a*a*a*a*a*a*a*a*a", &long_a, true);
        let pattern = format!("*{}b", "a".repeat(200));
        check(&pattern, &long_a, false);
        check(&"*?".repeat(100), &"é".repeat(5_000), true);
        check(&"*?".repeat(100), &"é".repeat(99), false);

        // Many patterns sharing a long prefix, with a long DN down the trie.
        let patterns: Vec<String> = (0..2_000)
            .map(|i| format!("{}*{}b", "a".repeat(i % 300), "a".repeat(i % 7)))
            .collect();
        let list = AllowedDnList::new(&patterns).unwrap();
        assert!(!list.is_allowed(&long_a));
        assert_eq!(list.matching_pattern(&format!("{long_a}b")), Some("*b"));
    }

    #[test]
    fn nul_in_a_pattern_is_rejected_with_its_index() {
        let err = AllowedDnList::new(&["C=GB,*", "CN=a\0b"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg);
        assert!(err.message().contains("entry 1"), "{err}");
    }

    #[test]
    fn prefix_trie_splits_edges_and_finds_every_prefix_bucket() {
        // Orders chosen so that later prefixes split earlier edges, in the middle and at
        // the first byte after a shared part, and some land exactly on a split point.
        let orders: [&[&str]; 3] = [
            &["abcdef", "abc", "abx", "a", "abcdefgh", "", "b", "abcdef"],
            &["", "abcdefgh", "a", "abx", "abc", "b", "abcdef", "abcdef"],
            &["abcdefgh", "abcdef", "abc", "ab", "a", "", "abd", "abcdeX"],
        ];
        let texts = [
            "",
            "a",
            "ab",
            "abc",
            "abcdefghij",
            "abcdeX",
            "abxyz",
            "b",
            "c",
            "abd",
        ];
        for prefixes in orders {
            let mut trie = PrefixTrie::new();
            for (slot, prefix) in prefixes.iter().enumerate() {
                trie.insert(prefix.as_bytes(), slot as u32);
            }
            let distinct = prefixes
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len();
            assert!(trie.nodes.len() <= 2 * distinct + 1, "{prefixes:?}");
            for text in texts {
                let mut visited = Vec::new();
                trie.for_each_bucket_on(text.as_bytes(), |bucket| {
                    visited.extend_from_slice(bucket)
                });
                // Expected: every slot whose prefix starts the text, shorter prefixes first,
                // list order within one prefix.
                let mut expected: Vec<u32> = (0..prefixes.len() as u32)
                    .filter(|&slot| text.starts_with(prefixes[slot as usize]))
                    .collect();
                expected.sort_by_key(|&slot| prefixes[slot as usize].len());
                assert_eq!(visited, expected, "{prefixes:?} on {text:?}");
            }
        }
    }

    /// A deliberately naive recursive matcher over characters, written straight from the
    /// rules, to check the real ones against.
    fn reference_match(pattern: &[char], text: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('*', rest)) => (0..=text.len()).any(|skip| reference_match(rest, &text[skip..])),
            Some(('?', rest)) => !text.is_empty() && reference_match(rest, &text[1..]),
            Some((c, rest)) => text.first() == Some(c) && reference_match(rest, &text[1..]),
        }
    }

    /// Deterministic pseudo-random numbers (Knuth's MMIX LCG), so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % bound as u64) as usize
        }

        fn string(&mut self, alphabet: &[char], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }

        /// A string that `pattern` matches: each `*` becomes up to three random characters
        /// and each `?` one.
        fn instantiate(&mut self, pattern: &str, alphabet: &[char]) -> String {
            let mut out = String::new();
            for c in pattern.chars() {
                match c {
                    '*' => out.push_str(&self.string(alphabet, 3)),
                    '?' => out.push(alphabet[self.below(alphabet.len())]),
                    _ => out.push(c),
                }
            }
            out
        }
    }

    #[test]
    fn compiled_list_agrees_with_a_naive_first_match_scan() {
        const PATTERN_ALPHABET: &[char] = &['a', ',', '*', '?', '=', 'é'];
        const DN_ALPHABET: &[char] = &['a', ',', '=', 'é'];
        let mut rng = Lcg(0x5eed);
        let (mut decisions, mut allowed) = (0, 0);
        for _round in 0..300 {
            let count = rng.below(12);
            let patterns: Vec<String> = (0..count)
                .map(|_| rng.string(PATTERN_ALPHABET, 6))
                .collect();
            let chars: Vec<Vec<char>> = patterns.iter().map(|p| p.chars().collect()).collect();
            let list = AllowedDnList::new(&patterns).unwrap();
            for _ in 0..20 {
                // Random DNs rarely match, so half are a pattern filled in at random.
                let dn = if count > 0 && rng.below(2) == 0 {
                    let source = &patterns[rng.below(count)];
                    rng.instantiate(source, DN_ALPHABET)
                } else {
                    rng.string(DN_ALPHABET, 7)
                };
                let dn_chars: Vec<char> = dn.chars().collect();
                let expected = patterns
                    .iter()
                    .zip(&chars)
                    .find(|(_, p)| reference_match(p, &dn_chars))
                    .map(|(p, _)| p.as_str());
                decisions += 1;
                allowed += usize::from(expected.is_some());
                assert_eq!(
                    list.matching_pattern(&dn),
                    expected,
                    "patterns {patterns:?}, dn {dn:?}"
                );
                for (pattern, pattern_chars) in patterns.iter().zip(&chars) {
                    assert_eq!(
                        pattern_matches(pattern, &dn),
                        reference_match(pattern_chars, &dn_chars),
                        "pattern {pattern:?}, dn {dn:?}"
                    );
                }
            }
        }
        // Both outcomes must be well represented for the comparison to mean anything.
        assert!(allowed * 4 > decisions && allowed * 4 < decisions * 3);
    }
}
