//! Text someone else wrote (an agent's commit message, a command, an
//! approver's comment), made inert before it goes into a pull request's
//! body, where GitHub would act on it (GitHub Docs, "Basic writing and
//! formatting syntax", "Linking a pull request to an issue"):
//!
//! - `@name` and `@org/team` mention and notify: a zero-width space after
//!   every `@` stops it;
//! - a closing keyword (close, closes, closed, fix, fixes, fixed,
//!   resolve, resolves, resolved) before an issue closes that issue when
//!   the pull request merges: every keyword gets a zero-width space inside
//!   it, and every `#` one after it, so no reference or keyword survives;
//! - HTML (`<img src=…>`, `<details>`, comments hiding text) renders:
//!   `<`, `>` and `&` become entities;
//! - Markdown could turn it into a link or an image: `[`, `]`, `!`, `` ` ``
//!   and `|` are escaped with a backslash, and control characters become
//!   spaces.

/// U+200B ZERO WIDTH SPACE.
const ZWSP: char = '\u{200B}';

/// The closing keywords, lowercase.
const KEYWORDS: &[&str] = &[
    "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
];

/// `text` made inert for a pull request's body (the module says how).
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if KEYWORDS.contains(&word.to_lowercase().as_str()) {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first);
                out.push(ZWSP);
                out.extend(chars);
            }
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        match c {
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            '#' => {
                out.push('#');
                out.push(ZWSP);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '[' | ']' | '!' | '`' | '|' | '\\' | '*' | '_' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push('\n'),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// [`neutralize`], on one line (newlines become spaces), cut to `max`
/// characters.
pub fn neutralize_line(text: &str, max: usize) -> String {
    let line = neutralize(&text.replace(['\n', '\r'], " "));
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mentions_keywords_and_html_are_inert() {
        let text = "Fixes #12, closes acme/api#3 and RESOLVED https://github.com/acme/api/issues/4 \
                    cc @octocat @acme/security <img src=x onerror=alert(1)> [x](http://e) ![i](j)";
        let n = neutralize(text);
        assert!(!n.contains("Fixes"), "{n}");
        assert!(!n.contains("RESOLVED"), "{n}");
        assert!(!n.contains("#1"), "{n}");
        assert!(!n.contains("@o"), "{n}");
        assert!(!n.contains('<'), "{n}");
        assert!(n.contains("&lt;img"), "{n}");
        assert!(n.contains("\\[x\\]"), "{n}");
        // What a person reads is the same words.
        assert_eq!(
            n.replace([ZWSP, '\\'], "")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
            text
        );
    }

    #[test]
    fn ordinary_words_are_left_alone() {
        assert_eq!(
            neutralize("prefix fixture closet resolver"),
            "prefix fixture closet resolver"
        );
    }

    proptest! {
        /// Whatever the text, no mention, issue reference, closing
        /// keyword or tag survives.
        #[test]
        fn nothing_active_survives(text in "[a-zA-Z0-9 #@<>&/\\-\n\\[\\]!`]{0,80}|(fix|close|resolve)(s|d|es|ed)? #[0-9]{1,3}") {
            let n = neutralize(&text);
            prop_assert!(!n.contains('<'));
            prop_assert!(!n.contains('>'));
            let chars: Vec<char> = n.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if *c == '@' || *c == '#' {
                    prop_assert_eq!(chars.get(i + 1).copied(), Some(ZWSP));
                }
            }
            for word in n.split(|c: char| !c.is_alphanumeric()) {
                prop_assert!(!KEYWORDS.contains(&word.to_lowercase().as_str()), "{}", word);
            }
        }

        #[test]
        fn one_line_is_one_line_and_short(text in ".{0,300}") {
            let line = neutralize_line(&text, 72);
            prop_assert!(!line.contains('\n'));
            prop_assert!(line.chars().count() <= 72);
        }
    }
}
