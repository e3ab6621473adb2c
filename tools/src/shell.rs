//! What a POSIX shell would make of a suggested command, for the tests that check it names
//! each file as one shell word. Shared with the CLI tests (a module of the kit).

/// The words a POSIX shell makes of `cmd` (single and double quotes, backslashes); panics on
/// anything that would make the shell do more than run one command with these words.
pub fn shell_words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => panic!("unterminated ' in {cmd:?}"),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().expect("trailing backslash")),
            '"' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[' | '#'
            | '~' | '\n' => panic!("{c:?} is special to a shell, unquoted, in {cmd:?}"),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}
