//! Text someone else wrote (an agent's commit message, a command, an
//! approver's comment), made inert before it goes into a pull request's
//! body, where GitHub would act on it (GitHub Docs, "Basic writing and
//! formatting syntax", "Linking a pull request to an issue"):
//!
//! - `@name` and `@org/team` mention and notify: a zero-width space after
//!   every `@` stops it;
//! - a closing keyword (close, closes, closed, fix, fixes, fixed,
//!   resolve, resolves, resolved) before an issue closes that issue when
//!   the pull request merges: every `#` gets a zero-width space after it,
//!   `GH-` one before its dash, and the stems `close`, `fix`, `resolve`,
//!   `issues` and `pull` one inside them wherever they stand in a word
//!   (GitHub's idea of a word boundary is its own), so neither a keyword
//!   nor a reference or an issue link survives;
//! - HTML (`<img src=…>`, `<details>`, comments hiding text) renders:
//!   `<`, `>` and `&` become entities;
//! - Markdown could turn it into a link or an image: `[`, `]`, `!`, `` ` ``
//!   and `|` are escaped with a backslash, and control characters become
//!   spaces.

/// U+200B ZERO WIDTH SPACE.
const ZWSP: char = '\u{200B}';

/// The stems of GitHub's closing keywords (close, closes, closed, fix,
/// fixes, fixed, resolve, resolves, resolved), and the path words of issue
/// and pull request links, lowercase: broken wherever they stand inside a
/// word, since what GitHub counts as a word boundary is its own.
const STEMS: &[&str] = &["close", "fix", "resolve", "issues", "pull"];

/// `text` made inert for a pull request's body (the module says how).
pub fn neutralize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut word = String::new();
    let mut last_word = String::new();
    let flush = |word: &mut String, out: &mut String, last: &mut String| {
        out.push_str(&break_stems(word));
        last.clone_from(word);
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out, &mut last_word);
        match c {
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            '#' => {
                out.push('#');
                out.push(ZWSP);
            }
            // `GH-7` is an issue reference too.
            '-' if last_word.eq_ignore_ascii_case("gh") => {
                out.push(ZWSP);
                out.push('-');
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
        last_word.clear();
        if c.is_alphanumeric() {
            last_word.push(c);
        }
    }
    flush(&mut word, &mut out, &mut last_word);
    out
}

/// `word` with a zero-width space after the first letter of every stem
/// it contains (any case).
fn break_stems(word: &str) -> String {
    let lower: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    let chars: Vec<char> = word.chars().collect();
    // Lowercasing can change the length (rare letters): leave the word
    // broken at every letter then, which is as inert.
    if lower.len() != chars.len() {
        let mut out = String::new();
        for c in chars {
            out.push(c);
            out.push(ZWSP);
        }
        return out;
    }
    let mut breaks = vec![false; chars.len()];
    for stem in STEMS {
        let stem: Vec<char> = stem.chars().collect();
        for start in 0..chars.len().saturating_sub(stem.len() - 1) {
            if lower[start..start + stem.len()] == stem[..] {
                breaks[start] = true;
            }
        }
    }
    let mut out = String::with_capacity(word.len() + 3);
    for (c, b) in chars.into_iter().zip(breaks) {
        out.push(c);
        if b {
            out.push(ZWSP);
        }
    }
    out
}

/// [`neutralize`], on one line (newlines become spaces), cut to `max`
/// characters.
pub fn neutralize_line(text: &str, max: usize) -> String {
    cut(neutralize(&text.replace(['\n', '\r'], " ")), max)
}

/// `line` cut to `max` characters, the last one an ellipsis when it was
/// longer.
pub fn cut(line: String, max: usize) -> String {
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
    fn stems_are_broken_inside_any_word() {
        let text = "²fixes https://github.com/acme/api/issues/1 GH-7 prefix";
        let n = neutralize(text);
        assert!(!n.contains("fixes"), "{n}");
        assert!(!n.contains("issues"), "{n}");
        assert!(!n.contains("GH-"), "{n}");
        // Invisible: the same text once the zero-width spaces go.
        assert_eq!(n.replace(ZWSP, ""), text);
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
            let lower = n.to_lowercase();
            for stem in STEMS {
                prop_assert!(!lower.contains(stem), "{}", stem);
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
