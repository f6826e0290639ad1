//! What the redactor looks for, built from the literal forms of each value
//! ([`crate::forms`]).
//!
//! - Canonical patterns: the canonical decoding ([`crate::decode`]) of each
//!   form, searched in the decoded output. One pattern stands for every
//!   per-character choice of every encoder that decodes to it.
//! - Cores: what is left of a form when the output just before it begins a
//!   token that swallows its first bytes (`%` before `41…`, `\` before
//!   `n…`, `ESC [` before `12m…`, `&am` before `p;…`, a line break before
//!   spaces, `'` before `\''…`), or when what follows
//!   completes a token its last bytes began (`…%4` then `1`, a trailing
//!   `\`). Registered when still [`MIN_SECRET_LEN`] bytes or more.
//! - Literal patterns: the forms themselves (trimmed of leading and
//!   trailing noise), checked at every position inside a decoded token, so
//!   a form written out byte for byte is masked even where a token
//!   swallowed its start.
//! - Patterns searched at every position of the original bytes: the forms
//!   whose end may be completed into a token by what follows, or whose
//!   decoding is shorter than [`MIN_SECRET_LEN`].
//!
//! - Hex patterns: the lower-case hex of the value and of each of its
//!   lines, searched in the hex view ([`crate::hexview`]).
//! - Values that may be cut: the canonical decoding of each value, whose
//!   start is masked before a truncation marker ([`crate::truncated`]).
//!
//! Together: wherever a literal form occurs in the output, one of these
//! finds it (the argument is in `redact.rs` and `docs/ARCHITECTURE.md`).

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::decode::{ENTITIES, Input, absorbed, absorbed_in, canonical, open_decoding, trim_noise};
use crate::forms::{MIN_SECRET_LEN, forms, hex_lower, pieces};

/// The patterns of a set of values, without duplicates.
#[derive(Debug, Default)]
pub(crate) struct Patterns {
    pub(crate) canonical: Vec<Vec<u8>>,
    pub(crate) literal: Vec<Vec<u8>>,
    pub(crate) anywhere: Vec<Vec<u8>>,
    /// Searched in the hex view.
    pub(crate) hex: Vec<Vec<u8>>,
    /// Canonical decodings of whole values, for truncated starts.
    pub(crate) values: Vec<Vec<u8>>,
    seen: [HashSet<Vec<u8>>; 5],
}

impl Patterns {
    /// Adds every pattern of `value` (at least [`MIN_SECRET_LEN`] bytes).
    pub(crate) fn add(&mut self, value: &[u8]) {
        let mut literal_forms = forms(value);
        if value.contains(&b' ') {
            // Form encoding (`application/x-www-form-urlencoded`) writes
            // spaces as `+`, which does not decode back.
            let plus: Vec<u8> = value
                .iter()
                .map(|&b| if b == b' ' { b'+' } else { b })
                .collect();
            literal_forms.push(plus);
        }
        for form in &literal_forms {
            self.add_form(form);
        }
        for piece in pieces(value) {
            self.push_one(Kind::Hex, &hex_lower(piece));
        }
        self.push_one(Kind::Value, &canonical(value));
    }

    fn add_form(&mut self, form: &[u8]) {
        let trimmed = trim_noise(form);
        if trimmed.len() < MIN_SECRET_LEN {
            // Only noise around a short core: the exact bytes, anywhere.
            self.push(Kind::Anywhere, form);
            return;
        }
        self.push(Kind::Literal, trimmed);
        self.add_decodings(trimmed, Kind::Anywhere);
        let first = trimmed[0];
        let mut done = Vec::new();
        for context in contexts() {
            if !context.continues_with[usize::from(first)] {
                continue;
            }
            for taken in absorbed(&context.bytes, trimmed).into_iter().flatten() {
                if taken > 0 && taken < trimmed.len() && !done.contains(&taken) {
                    done.push(taken);
                    self.add_decodings(&trimmed[taken..], Kind::Nothing);
                }
            }
        }
    }

    /// Registers the decodings of `bytes`: whole, and up to a token its end
    /// may begin. Where the first is too short or the second exists, the
    /// bytes themselves go to `fallback`.
    fn add_decodings(&mut self, bytes: &[u8], fallback: Kind) {
        let whole = canonical(bytes);
        let (open, open_at) = open_decoding(bytes);
        let whole_ok = self.push(Kind::Canonical, &whole);
        self.push(Kind::Canonical, &open);
        if !whole_ok || open_at < bytes.len() {
            self.push(fallback, bytes);
        }
    }

    /// Adds `pattern` if long enough; whether it is (or already was there).
    /// A canonical pattern with spaces or tabs in it also brings the ways a
    /// line break could cut them (see [`wrapped_variants`]).
    fn push(&mut self, kind: Kind, pattern: &[u8]) -> bool {
        if pattern.len() < MIN_SECRET_LEN {
            return false;
        }
        if matches!(kind, Kind::Canonical) && self.push_one(kind, pattern) {
            for variant in wrapped_variants(pattern) {
                self.push_one(kind, &variant);
            }
            return true;
        }
        self.push_one(kind, pattern)
    }

    /// Adds `pattern` alone if long enough; whether it is.
    fn push_one(&mut self, kind: Kind, pattern: &[u8]) -> bool {
        if pattern.len() < MIN_SECRET_LEN {
            return false;
        }
        let (list, seen) = match kind {
            Kind::Canonical => (&mut self.canonical, &mut self.seen[0]),
            Kind::Literal => (&mut self.literal, &mut self.seen[1]),
            Kind::Anywhere => (&mut self.anywhere, &mut self.seen[2]),
            Kind::Hex => (&mut self.hex, &mut self.seen[3]),
            Kind::Value => (&mut self.values, &mut self.seen[4]),
            Kind::Nothing => return true,
        };
        if !seen.contains(pattern) {
            seen.insert(pattern.to_vec());
            list.push(pattern.to_vec());
        }
        true
    }
}

/// The most variants [`wrapped_variants`] gives one pattern.
const MAX_WRAPPED_VARIANTS: usize = 64;

/// How `pattern` reads when a line break falls inside or just before some
/// of its runs of spaces and tabs: the decoder deletes what follows a line
/// break as indentation, so the run keeps only what came before the break.
/// Fewest cut runs first (a value is rarely wrapped twice within its
/// spaces), at most [`MAX_WRAPPED_VARIANTS`].
fn wrapped_variants(pattern: &[u8]) -> Vec<Vec<u8>> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    // (start, len) of each run.
    let mut runs = Vec::new();
    let mut at = 0;
    while at < pattern.len() {
        if blank(&pattern[at]) {
            let len = pattern[at..].iter().take_while(|b| blank(b)).count();
            runs.push((at, len));
            at += len;
        } else {
            at += 1;
        }
    }
    let mut out = Vec::new();
    // Each variant: for some runs, how much of them is kept.
    let mut frontier: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    while out.len() < MAX_WRAPPED_VARIANTS && !frontier.is_empty() {
        let mut next = Vec::new();
        for cuts in &frontier {
            // Cut only runs after the last one cut, so each set comes once.
            let first = cuts.last().map_or(0, |&(run, _)| run + 1);
            for run in first..runs.len() {
                for keep in 0..runs[run].1 {
                    let mut cuts = cuts.clone();
                    cuts.push((run, keep));
                    if out.len() < MAX_WRAPPED_VARIANTS {
                        out.push(cut(pattern, &runs, &cuts));
                    }
                    next.push(cuts);
                }
            }
        }
        if next.len() > MAX_WRAPPED_VARIANTS {
            next.truncate(MAX_WRAPPED_VARIANTS);
        }
        frontier = next;
    }
    out
}

/// `pattern` with run `i` of `runs` kept to its first `keep` bytes, for each `(i, keep)` in `cuts`.
fn cut(pattern: &[u8], runs: &[(usize, usize)], cuts: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut at = 0;
    for &(run, keep) in cuts {
        let (start, len) = runs[run];
        out.extend_from_slice(&pattern[at..start + keep]);
        at = start + len;
    }
    out.extend_from_slice(&pattern[at..]);
    out
}

#[derive(Clone, Copy)]
enum Kind {
    Canonical,
    Literal,
    Anywhere,
    Hex,
    Value,
    Nothing,
}

/// Output that may stand just before a form: the beginning of a token.
struct Context {
    bytes: Vec<u8>,
    /// Which first bytes of a form may be swallowed by the token.
    continues_with: [bool; 256],
}

/// Tokens whose every proper prefix is a context: together they reach each
/// state the decoder can be in when a form begins, including the states
/// where the value of what was read matters (a backslash that arms, a high
/// surrogate waiting for its pair). One token per state is enough (`ESC [1`
/// stands for any parameters so far, `\\` for any odd run); each context
/// tried costs every form a decoding. Left out: the inside of a control
/// string, which swallows a form only up to a BEL or ESC in it.
const TOKENS: &[&[u8]] = &[
    b"%41",
    b"%2541",
    b"%252541",
    b"%5Cn",
    b"&#38;",
    b"&#x26;",
    b"&#92;n",
    b"&#x5c;n",
    b"&amp;amp;lt;",
    b"\\n",
    b"\\101",
    b"\\u0041",
    b"\\x41",
    b"\\ud83d\\ude00",
    b"\x1b[1m",
    b"\x1b[ q",
    b"\x1b(B",
    b"\x1b7",
    b"\n ",
    b"\n%20",
    b"\n\\t",
    b"\n&#32;",
    b"'\\''",
    b"'\"'\"'",
];

fn contexts() -> &'static [Context] {
    static CONTEXTS: OnceLock<Vec<Context>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let mut tokens: Vec<Vec<u8>> = TOKENS.iter().map(|t| t.to_vec()).collect();
        for (name, _) in ENTITIES {
            tokens.push(format!("&{name};").into_bytes());
        }
        let mut prefixes: Vec<Vec<u8>> = Vec::new();
        for token in &tokens {
            for len in 1..token.len() {
                if !prefixes.iter().any(|p| p[..] == token[..len]) {
                    prefixes.push(token[..len].to_vec());
                }
            }
        }
        prefixes
            .into_iter()
            .map(|bytes| {
                let mut continues_with = [false; 256];
                for (b, slot) in continues_with.iter_mut().enumerate() {
                    // Anything but "the token ended with the context, and
                    // nothing after this byte can change that".
                    *slot = absorbed_in(&bytes, &[b as u8], Input::Continues) != Some(0);
                }
                Context {
                    bytes,
                    continues_with,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(value: &str) -> Patterns {
        let mut p = Patterns::default();
        p.add(value.as_bytes());
        p
    }

    fn has(list: &[Vec<u8>], s: &str) -> bool {
        list.iter().any(|p| p == s.as_bytes())
    }

    #[test]
    fn encodings_share_one_canonical_pattern() {
        let p = patterns("pa\"ss\\word-123456");
        assert!(has(&p.canonical, "pa\"ssword-123456"));
        assert!(
            has(&p.literal, "pa\\\"ss\\\\word-123456"),
            "the JSON form, literally"
        );
        assert!(p.anywhere.is_empty());
    }

    #[test]
    fn cores_cover_swallowed_starts_and_completed_ends() {
        let p = patterns("41secret-value");
        assert!(has(&p.canonical, "secret-value"), "`%` before `41…`");
        assert!(
            has(&p.canonical, "1secret-value"),
            "ESC before `4…`: ESC 4 is a sequence"
        );
        let p = patterns("n-secret-value");
        assert!(has(&p.canonical, "-secret-value"), "`\\` before `n…`");
        let p = patterns("secret-value%4");
        assert!(has(&p.canonical, "secret-value"), "`1` after `…%4`");
        assert!(
            has(&p.anywhere, "secret-value%4"),
            "its end may be completed"
        );
    }

    #[test]
    fn a_line_break_may_cut_a_run_of_spaces() {
        let p = patterns("ab cd  ef-secret");
        assert!(has(&p.canonical, "ab cd  ef-secret"));
        assert!(
            has(&p.canonical, "abcd  ef-secret"),
            "a wrap before the space"
        );
        assert!(
            has(&p.canonical, "ab cd ef-secret"),
            "a wrap inside the run"
        );
        assert!(has(&p.canonical, "abcdef-secret"), "two wraps");
        let many = "a b c d e f g h i j k l m n o p q r s t u v w x y z";
        assert!(wrapped_variants(many.as_bytes()).len() <= MAX_WRAPPED_VARIANTS);
        assert!(wrapped_variants(b"no-blanks-here").is_empty());
    }

    #[test]
    fn a_value_that_decodes_short_is_searched_as_it_is() {
        let p = patterns("\\n\\n\\nab");
        assert!(has(&p.anywhere, "\\n\\n\\nab"));
        assert!(!p.canonical.iter().any(|c| c.len() < MIN_SECRET_LEN));
    }
}
