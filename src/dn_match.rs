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
//! a hash map, and the others into a byte trie keyed by their literal prefix (the text
//! before the first wildcard), so a decision only tries the few patterns whose prefix
//! starts the DN. [`pattern_matches`] is the single-pattern rule on its own.

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
        let min_dn_len = pattern.len()
            - pattern.bytes().filter(|&b| b == b'*' || b == b'?').count()
            + pattern.bytes().filter(|&b| b == b'?').count();
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

/// One node of the prefix trie: the wildcard patterns whose literal prefix is exactly the
/// path to this node, and the children by next byte.
#[derive(Clone, Debug, Default)]
struct TrieNode {
    /// Positions in `AllowedDnList::wildcards`, in ascending list order.
    patterns: Vec<u32>,
    /// Sorted by byte, for binary search.
    children: Vec<(u8, u32)>,
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
    /// Node 0 is the root (the empty prefix).
    trie: Vec<TrieNode>,
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
            trie: vec![TrieNode::default()],
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
                let node = list.trie_insert(&pattern.as_bytes()[..compiled.prefix_len]);
                list.trie[node].patterns.push(list.wildcards.len() as u32);
                list.wildcards.push(compiled);
            } else {
                // A duplicate keeps the first index: that one would win.
                list.exact.entry(pattern.into()).or_insert(index);
            }
            list.patterns.push(pattern.to_owned());
        }
        Ok(list)
    }

    /// Returns the trie node for `prefix`, creating the path to it as needed.
    fn trie_insert(&mut self, prefix: &[u8]) -> usize {
        let mut node = 0;
        for &byte in prefix {
            let children = &self.trie[node].children;
            node = match children.binary_search_by_key(&byte, |&(b, _)| b) {
                Ok(found) => children[found].1 as usize,
                Err(slot) => {
                    let child = self.trie.len();
                    self.trie[node].children.insert(slot, (byte, child as u32));
                    self.trie.push(TrieNode::default());
                    child
                }
            };
        }
        node
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
        let dn_bytes = dn.as_bytes();
        let mut node = 0;
        let mut depth = 0;
        loop {
            // Every pattern here has a prefix equal to dn[..depth]. Buckets are in list
            // order, so the first match in a bucket is the bucket's best, and anything at
            // or past the best so far cannot win.
            for &slot in &self.trie[node].patterns {
                let pattern = &self.wildcards[slot as usize];
                if best.is_some_and(|b| pattern.index >= b) {
                    break;
                }
                if pattern.matches_after_prefix(dn) {
                    best = Some(pattern.index);
                    break;
                }
            }
            let Some(&byte) = dn_bytes.get(depth) else {
                break;
            };
            let children = &self.trie[node].children;
            match children.binary_search_by_key(&byte, |&(b, _)| b) {
                Ok(found) => node = children[found].1 as usize,
                Err(_) => break,
            }
            depth += 1;
        }
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
