//! Property tests: our glob matchers against `globset`, a widely used
//! implementation, on patterns translated to its syntax.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use globset::GlobBuilder;
use proptest::prelude::*;
use smithers_policy::glob::{SegmentGlob, SegmentMode, TextGlob};

fn globset_matches(pattern: &str, literal_separator: bool, text: &str) -> bool {
    GlobBuilder::new(pattern)
        .literal_separator(literal_separator)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher().is_match(text))
        .unwrap_or_else(|e| panic!("globset refused {pattern:?}: {e}"))
}

fn path_pattern() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(
            prop::sample::select(
                &["a", "b", "*", "?", "a*", "*b", "[ab]", "[!a]", "**", "a?b"][..],
            ),
            1..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(lead, segs, trail)| {
            let mut p = segs.join("/");
            if lead {
                p.insert(0, '/');
            }
            if trail {
                p.push('/');
            }
            p
        })
}

fn path_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(&["a", "b", "ab", "ba", "c", "aab"][..]),
        1..6,
    )
    .prop_map(|segs| segs.join("/"))
}

/// gitignore semantics spelled with globset: unanchored patterns get `**/`,
/// and a match on a directory covers what is under it.
fn gitignore_oracle(pattern: &str, path: &str) -> bool {
    let body = pattern.strip_suffix('/').unwrap_or(pattern);
    let (body, anchored) = match body.strip_prefix('/') {
        Some(b) => (b, true),
        None => (body, body.contains('/')),
    };
    let base = if anchored {
        body.to_string()
    } else {
        format!("**/{body}")
    };
    globset_matches(&base, true, path) || globset_matches(&format!("{base}/**"), true, path)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn gitignore_globs_agree_with_globset(pattern in path_pattern(), path in path_text()) {
        let ours = SegmentGlob::parse(&pattern, SegmentMode::Gitignore).unwrap();
        let parts: Vec<&str> = path.split('/').collect();
        prop_assert_eq!(ours.matches(&parts), gitignore_oracle(&pattern, &path), "{} vs {}", pattern, path);
    }

    #[test]
    fn anchored_globs_agree_with_globset(pattern in path_pattern(), path in path_text()) {
        let pattern = pattern.trim_matches('/').to_string();
        prop_assume!(!pattern.is_empty());
        let ours = SegmentGlob::parse(&pattern, SegmentMode::Anchored).unwrap();
        let parts: Vec<&str> = path.split('/').collect();
        let oracle = if pattern == "*" || pattern == "**" { true } else { globset_matches(&pattern, true, &path) };
        prop_assert_eq!(ours.matches(&parts), oracle, "{} vs {}", pattern, path);
    }

    #[test]
    fn text_globs_agree_with_globset(
        pattern in prop::collection::vec(prop::sample::select(&["a", "b", "*", "?", "[ab]", "[!a]", "/", "\\*"][..]), 0..7),
        text in "[ab/*]{0,8}",
    ) {
        let pattern = pattern.concat();
        // `**` only means "any depth" in path globs; here it is a plain star.
        prop_assume!(!pattern.contains("**"));
        let ours = TextGlob::parse(&pattern, 0).unwrap();
        prop_assert_eq!(ours.matches(&text), globset_matches(&pattern, false, &text), "{} vs {}", pattern, text);
    }

    #[test]
    fn matching_is_total_on_any_input(pattern in "\\PC{0,12}", text in "\\PC{0,24}") {
        if let Ok(g) = TextGlob::parse(&pattern, 0) {
            let _ = g.matches(&text);
        }
        if let Ok(g) = SegmentGlob::parse(&pattern, SegmentMode::Gitignore) {
            let parts: Vec<&str> = text.split('/').collect();
            let _ = g.matches(&parts);
        }
    }
}
