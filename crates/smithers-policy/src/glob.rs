//! Glob patterns: `*`, `?`, `[...]` classes and `\` escapes over one piece
//! of text, and `/`-separated globs with `**` for paths and branch names.
//!
//! Matching never backtracks more than once per star: every token other
//! than `*` matches a fixed number of characters, so returning to the most
//! recent star is enough (the classic wildcard algorithm), and the same
//! holds one level up with `**` over whole segments. Matching is therefore
//! O(pattern × text) in the worst case, whatever the input.

use std::fmt;

/// A pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// Byte offset of the offending character in the pattern.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The characters that make a pattern more than a literal.
pub(crate) fn is_wildcard(c: char) -> bool {
    matches!(c, '*' | '?' | '[')
}

/// Number of characters before the first unescaped wildcard, and whether the
/// pattern has no wildcard at all.
pub(crate) fn literal_prefix(pattern: &str) -> (usize, bool) {
    let mut count = 0;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if is_wildcard(c) {
            return (count, false);
        }
        count += 1;
    }
    (count, true)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Star,
    AnyChar,
    Class(CharClass),
}

/// A glob over one piece of text, where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextGlob {
    tokens: Vec<Token>,
}

impl TextGlob {
    /// Parses `pattern`; `offset` is where it starts in the caller's text, so
    /// errors point at the right column.
    pub fn parse(pattern: &str, offset: usize) -> Result<TextGlob, GlobError> {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut iter = pattern.char_indices().peekable();
        while let Some((at, c)) = iter.next() {
            let token = match c {
                '\\' => match iter.next() {
                    Some((_, escaped)) => {
                        literal.push(escaped);
                        continue;
                    }
                    None => {
                        return Err(GlobError {
                            offset: offset + at,
                            message: "a trailing `\\` escapes nothing".into(),
                        });
                    }
                },
                '*' => {
                    while iter.peek().is_some_and(|&(_, n)| n == '*') {
                        iter.next();
                    }
                    Token::Star
                }
                '?' => Token::AnyChar,
                '[' => Token::Class(parse_class(&mut iter, offset + at)?),
                other => {
                    literal.push(other);
                    continue;
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(TextGlob { tokens })
    }

    /// The literal text, when the glob has no wildcard.
    pub fn as_literal(&self) -> Option<&str> {
        match self.tokens.as_slice() {
            [] => Some(""),
            [Token::Literal(s)] => Some(s),
            _ => None,
        }
    }

    /// Whether the glob is a lone `*`.
    pub fn is_star(&self) -> bool {
        matches!(self.tokens.as_slice(), [Token::Star])
    }

    /// Some text this glob matches (wildcards filled with `fill`), for
    /// analysis witnesses.
    pub fn instantiate(&self, fill: &str) -> String {
        let mut out = String::new();
        for t in &self.tokens {
            match t {
                Token::Literal(s) => out.push_str(s),
                Token::Star => out.push_str(fill),
                Token::AnyChar => out.push('x'),
                Token::Class(c) => out.push(class_member(c)),
            }
        }
        out
    }

    pub fn matches(&self, text: &str) -> bool {
        let tokens = &self.tokens;
        star_match(
            tokens.len(),
            text.len(),
            |t| matches!(tokens[t], Token::Star),
            |t, s| {
                let rest = &text[s..];
                let width = match &tokens[t] {
                    Token::Star => None,
                    Token::Literal(lit) => rest.starts_with(lit.as_str()).then_some(lit.len()),
                    Token::AnyChar => rest.chars().next().map(char::len_utf8),
                    Token::Class(class) => rest
                        .chars()
                        .next()
                        .filter(|&c| class.matches(c))
                        .map(char::len_utf8),
                };
                width.map(|w| s + w)
            },
            |s| text[s..].chars().next().map(|c| s + c.len_utf8()),
        )
    }
}

/// The classic wildcard algorithm, shared by both levels of globs.
///
/// `len` tokens are matched against a subject of `end` positions; a star
/// token matches any run, every other token a fixed width (`advance` gives
/// the position after it, or `None` when it does not match there), and
/// `step` moves one unit forward. Because only stars have variable width,
/// backtracking to the most recent star is enough: O(tokens × subject).
fn star_match(
    len: usize,
    end: usize,
    is_star: impl Fn(usize) -> bool,
    advance: impl Fn(usize, usize) -> Option<usize>,
    step: impl Fn(usize) -> Option<usize>,
) -> bool {
    let (mut t, mut s) = (0usize, 0usize);
    // Token index just after the last star, and where its match ends now.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if t < len {
            if is_star(t) {
                star = Some((t + 1, s));
                t += 1;
                continue;
            }
            if let Some(next) = advance(t, s) {
                s = next;
                t += 1;
                continue;
            }
        } else if s == end {
            return true;
        }
        let Some((after_star, star_end)) = star else {
            return false;
        };
        let Some(next_end) = step(star_end) else {
            return false;
        };
        star = Some((after_star, next_end));
        t = after_star;
        s = next_end;
    }
}

fn class_member(class: &CharClass) -> char {
    if !class.negated {
        return class.ranges.first().map_or('x', |r| r.0);
    }
    ['x', 'a', '0', '_', 'Z']
        .into_iter()
        .find(|&c| class.matches(c))
        .unwrap_or('~')
}

fn parse_class(
    iter: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    open_at: usize,
) -> Result<CharClass, GlobError> {
    let unclosed = || GlobError {
        offset: open_at,
        message: "unclosed character class `[`".into(),
    };
    let mut negated = false;
    if iter.peek().is_some_and(|&(_, c)| c == '!' || c == '^') {
        negated = true;
        iter.next();
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let (_, c) = iter.next().ok_or_else(unclosed)?;
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            iter.next().ok_or_else(unclosed)?.1
        } else {
            c
        };
        let is_range = iter.peek().is_some_and(|&(_, n)| n == '-');
        if is_range {
            iter.next();
            match iter.peek() {
                Some(&(_, ']')) | None => {
                    // A `-` before the closing bracket is literal.
                    ranges.push((lo, lo));
                    ranges.push(('-', '-'));
                }
                Some(_) => {
                    let (_, hi) = iter.next().ok_or_else(unclosed)?;
                    let hi = if hi == '\\' {
                        iter.next().ok_or_else(unclosed)?.1
                    } else {
                        hi
                    };
                    if hi < lo {
                        return Err(GlobError {
                            offset: open_at,
                            message: format!("character range `{lo}-{hi}` is reversed"),
                        });
                    }
                    ranges.push((lo, hi));
                }
            }
        } else {
            ranges.push((lo, lo));
        }
    }
    Ok(CharClass { negated, ranges })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments, including none.
    AnyDepth,
    One(TextGlob),
}

/// How a `/`-separated glob relates to the text it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentMode {
    /// gitignore rules: a pattern with no `/` (other than a trailing one)
    /// matches at any depth; a leading `/` anchors it at the root; a match
    /// on a directory covers everything under it.
    Gitignore,
    /// Branch names: the whole name must match, `*` stays within a segment.
    Anchored,
}

/// A glob over `/`-separated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentGlob {
    segments: Vec<Segment>,
    match_all: bool,
}

impl SegmentGlob {
    pub fn parse(pattern: &str, mode: SegmentMode) -> Result<SegmentGlob, GlobError> {
        if pattern == "*" || pattern == "**" {
            return Ok(SegmentGlob {
                segments: vec![Segment::AnyDepth],
                match_all: true,
            });
        }
        let mut body = pattern;
        let mut start = 0usize;
        let mut anchored = mode == SegmentMode::Anchored;
        let mut under = false;
        if mode == SegmentMode::Anchored {
            // `release/` stands for every branch under `release/`; a leading
            // `/` changes nothing, the name is anchored already.
            if let Some(stripped) = body.strip_suffix('/') {
                body = stripped;
                under = true;
            }
            if let Some(stripped) = body.strip_prefix('/') {
                body = stripped;
                start = 1;
            }
        }
        if mode == SegmentMode::Gitignore {
            if let Some(stripped) = body.strip_suffix('/') {
                body = stripped;
            }
            if let Some(stripped) = body.strip_prefix('/') {
                body = stripped;
                start = 1;
                anchored = true;
            } else if body.contains('/') {
                anchored = true;
            }
        }
        if body.is_empty() {
            return Err(GlobError {
                offset: 0,
                message: "the pattern names no path".into(),
            });
        }
        let mut segments = Vec::new();
        if !anchored {
            segments.push(Segment::AnyDepth);
        }
        let mut at = start;
        for part in body.split('/') {
            match part {
                "" => {
                    return Err(GlobError {
                        offset: at,
                        message: "empty path segment (`//`)".into(),
                    });
                }
                "." | ".." => {
                    return Err(GlobError {
                        offset: at,
                        message: format!(
                            "`{part}` segments are not allowed: resources are normalized before matching"
                        ),
                    });
                }
                "**" => {
                    if segments.last() != Some(&Segment::AnyDepth) {
                        segments.push(Segment::AnyDepth);
                    }
                }
                _ => segments.push(Segment::One(TextGlob::parse(part, at)?)),
            }
            at += part.len() + 1;
        }
        // A trailing `/**` written by the user matches everything inside,
        // not the directory itself (as in gitignore).
        if body.ends_with("/**") && segments.last() == Some(&Segment::AnyDepth) {
            segments.pop();
            segments.push(Segment::One(TextGlob::parse("*", 0)?));
            segments.push(Segment::AnyDepth);
        }
        if (under || mode == SegmentMode::Gitignore) && segments.last() != Some(&Segment::AnyDepth)
        {
            segments.push(Segment::AnyDepth);
        }
        Ok(SegmentGlob {
            segments,
            match_all: false,
        })
    }

    /// Whether the pattern is `*` or `**`, which match everything (the
    /// workspace root included).
    pub fn matches_everything(&self) -> bool {
        self.match_all
    }

    /// Matches a normalized text already split on `/`.
    pub fn matches(&self, parts: &[&str]) -> bool {
        if self.match_all {
            return true;
        }
        let segs = &self.segments;
        star_match(
            segs.len(),
            parts.len(),
            |g| segs[g] == Segment::AnyDepth,
            |g, p| match &segs[g] {
                Segment::One(glob) if p < parts.len() && glob.matches(parts[p]) => Some(p + 1),
                _ => None,
            },
            |p| (p < parts.len()).then_some(p + 1),
        )
    }

    /// A `/`-joined text this glob matches, for analysis witnesses.
    pub fn instantiate(&self, fill: &str) -> String {
        let parts: Vec<String> = self
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::AnyDepth => None,
                Segment::One(g) => Some(g.instantiate(fill)),
            })
            .collect();
        if parts.is_empty() {
            fill.to_string()
        } else {
            parts.join("/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &str, t: &str) -> bool {
        TextGlob::parse(p, 0).map(|g| g.matches(t)).unwrap_or(false)
    }

    fn path(p: &str, t: &str) -> bool {
        let parts: Vec<&str> = if t.is_empty() {
            vec![]
        } else {
            t.split('/').collect()
        };
        SegmentGlob::parse(p, SegmentMode::Gitignore)
            .map(|g| g.matches(&parts))
            .unwrap_or(false)
    }

    #[test]
    fn text_globs() {
        assert!(text("*", ""));
        assert!(text("a*c", "abbbc"));
        assert!(text("a*c", "ac"));
        assert!(!text("a*c", "abcd"));
        assert!(text("?.rs", "é.rs"));
        assert!(text("[a-c]x", "bx"));
        assert!(!text("[!a-c]x", "bx"));
        assert!(text("[]]", "]"));
        assert!(text("[a-]", "-"));
        assert!(text(r"\*", "*"));
        assert!(!text(r"\*", "a"));
        assert!(text("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!text("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn bad_globs_say_where() {
        let e = TextGlob::parse("ab[cd", 10).unwrap_err();
        assert_eq!(e.offset, 12);
        assert!(e.message.contains("unclosed"));
        assert!(TextGlob::parse("ab\\", 0).is_err());
        assert!(TextGlob::parse("[z-a]", 0).is_err());
        let e = SegmentGlob::parse("src/../x", SegmentMode::Gitignore).unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(SegmentGlob::parse("a//b", SegmentMode::Gitignore).is_err());
        assert!(SegmentGlob::parse("/", SegmentMode::Gitignore).is_err());
    }

    #[test]
    fn gitignore_semantics() {
        assert!(path("*.md", "README.md"));
        assert!(path("*.md", "docs/deep/x.md"));
        assert!(!path("*.md", "docs/x.rs"));
        assert!(path("src/*", "src/main.rs"));
        assert!(
            path("src/*", "src/a/b.rs"),
            "a matched directory covers its contents"
        );
        assert!(!path("src/*", "lib/src/main.rs"), "a slash anchors");
        assert!(path("/Cargo.toml", "Cargo.toml"));
        assert!(!path("/Cargo.toml", "crates/x/Cargo.toml"));
        assert!(path("Cargo.toml", "crates/x/Cargo.toml"));
        assert!(path("docs/", "docs/a/b.md"));
        assert!(path("src/**/test_*.rs", "src/test_a.rs"));
        assert!(path("src/**/test_*.rs", "src/a/b/test_a.rs"));
        assert!(!path("src/**/test_*.rs", "src/a/b/a_test.rs"));
        assert!(path("**/secrets", "a/secrets/key.pem"));
        assert!(path("*", ""), "`*` matches the workspace root");
        assert!(!path("src", ""));
        assert!(!path("*.md", ""));
    }

    #[test]
    fn anchored_segments() {
        let g = SegmentGlob::parse("release/*", SegmentMode::Anchored).unwrap();
        assert!(g.matches(&["release", "1"]));
        assert!(!g.matches(&["release", "1", "x"]));
        assert!(!g.matches(&["release"]));
        let g = SegmentGlob::parse("smithers/**", SegmentMode::Anchored).unwrap();
        assert!(g.matches(&["smithers", "a", "b"]));
        assert!(!g.matches(&["smithers"]), "`/**` matches what is inside");
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("src/*.rs"), (4, false));
        assert_eq!(literal_prefix("src/main.rs"), (11, true));
        assert_eq!(literal_prefix(r"a\*b"), (3, true));
        assert_eq!(literal_prefix("*"), (0, false));
    }

    #[test]
    fn instantiation_is_matched() {
        for p in ["src/*.rs", "*.md", "a?[bc]*/**/x", "docs/"] {
            let g = SegmentGlob::parse(p, SegmentMode::Gitignore).unwrap();
            let w = g.instantiate("x");
            let parts: Vec<&str> = w.split('/').collect();
            assert!(g.matches(&parts), "{p} -> {w}");
        }
    }
}
