//! Text from certificates, made safe to show to people.
//!
//! Names, alternative names and other strings in a certificate are chosen by whoever made
//! it, and a server sends its certificate before anyone has verified it. Printed as they are,
//! an escape sequence (ESC, CSI) can move the cursor, recolour or rewrite lines of a terminal
//! (a green "Trusted" line in `virtpki probe`), a carriage return or line feed can forge
//! further lines, a NUL cuts a C string short, and Unicode bidirectional overrides reorder
//! what a reader sees. [`escape`] is the one function every display of such text goes
//! through: `Certificate::describe`, the CLI's `show` and `probe`, the validator's
//! description and error messages that quote a name.
//!
//! Only display escapes: the DN string used for matching (`tls_allowed_dn_list`) and printed
//! by `virtpki dn` stays byte-identical to libvirt's `virt-pki-query-dn`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal or a C string as it is: C0 controls (NUL, ESC, CR,
/// LF, TAB, ...), DEL, C1 controls (CSI U+009B among them), the bidirectional marks, embeddings,
/// overrides and isolates, the Unicode line and paragraph separators, and the characters that
/// show as nothing (zero-width space and joiners, word joiner, soft hyphen, byte order mark,
/// variation selectors, tags, fillers), with which "libvirt\u{200B}.example" would look like
/// "libvirt.example" in a prompt that asks whether to trust it.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// `text` with every [`is_unsafe`] character written as an escape: `\xNN` below U+0080
/// (`\x00`, `\x1b`, `\x7f`), `\u{NNNN}` above. Everything else, backslashes included (libvirt's
/// DN strings use them), is unchanged; text without such characters is returned as it is.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if c.is_ascii() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// A value from a certificate as one unambiguous item of a list such as "DNS:a, DNS:b": as it
/// is when it holds only printable ASCII other than space, `,`, `"` and `\`; else in double
/// quotes with `"` and `\` written `\"` and `\\` and the [`is_unsafe`] characters escaped.
/// So a SAN "a.example, DNS:b.example" cannot pass for two names, and inside quotes `\x1b` is
/// always an escaped ESC, never the four characters a certificate spelt.
pub fn list_item(value: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_graphic() && !matches!(c, ',' | '"' | '\\');
    if !value.is_empty() && value.chars().all(plain) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(escape(&out).into_owned())
}

/// `word` as one word of a shell command a message suggests ("fix with: chmod o-rwx PATH"):
/// as it is when it holds only characters no shell treats specially, else in single quotes
/// (a `'` written `'\''`). A file name is chosen by whoever made the file, and pasted
/// unquoted, `key.pem; rm -rf ~` would run its second command.
pub fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return Cow::Borrowed(word);
    }
    Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
}

/// A path as one word of a suggested shell command: [`shell_word`] of how it displays.
pub fn shell_path(path: &std::path::Path) -> String {
    shell_word(&path.display().to_string()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_when_a_shell_would_read_them() {
        assert_eq!(
            shell_word("/etc/pki/libvirt/private/clientkey.pem"),
            "/etc/pki/libvirt/private/clientkey.pem"
        );
        assert_eq!(shell_word("/tmp/k.pem; rm -rf ~"), "'/tmp/k.pem; rm -rf ~'");
        assert_eq!(shell_word("it's $(x)`y`"), r"'it'\''s $(x)`y`'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn list_items_are_quoted_when_they_could_mislead() {
        assert_eq!(list_item("host.example"), "host.example");
        assert_eq!(list_item("*.example"), "*.example");
        assert_eq!(
            list_item("a.example, DNS:b.example"),
            r#""a.example, DNS:b.example""#
        );
        // The four characters \x1b and an ESC are told apart.
        assert_eq!(list_item(r"a\x1b"), r#""a\\x1b""#);
        assert_eq!(list_item("a\u{1b}"), r#""a\x1b""#);
        assert_eq!(list_item(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(list_item("bücher.example"), r#""bücher.example""#);
        assert_eq!(list_item(""), r#""""#);
    }

    #[test]
    fn controls_bidi_and_separators_are_escaped() {
        assert_eq!(escape("a\0b"), "a\\x00b");
        assert_eq!(
            escape("\x1b[2K\x1b[32mTrusted\r\n"),
            "\\x1b[2K\\x1b[32mTrusted\\x0d\\x0a"
        );
        assert_eq!(escape("\x7f\u{9b}31m"), "\\x7f\\u{009b}31m");
        assert_eq!(
            escape("evil\u{202E}moc.\u{2028}x"),
            "evil\\u{202e}moc.\\u{2028}x"
        );
        assert_eq!(escape("\u{2066}\u{061C}\t"), "\\u{2066}\\u{061c}\\x09");
        assert_eq!(
            escape("a\u{200B}b\u{FEFF}c\u{AD}d\u{E0041}e"),
            "a\\u{200b}b\\u{feff}c\\u{00ad}d\\u{e0041}e"
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in ["CN=a\\,b,O=Café 東京", "DNS:host.example", "", "\\x1b"] {
            assert!(matches!(escape(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn nothing_unsafe_is_left() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!escape(&all).chars().any(is_unsafe));
    }
}
