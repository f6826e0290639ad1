//! Property tests for the policy parser and the shell splitter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use proptest::prelude::*;
use smithers_policy::PolicySet;
use smithers_policy::shell::split_command;

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        "[a-z_]{1,8}",
        "user:[a-z]{1,5}",
        "\"[ a-z*?/.]{0,10}\"",
        "[a-z*?/.\\[\\]]{1,8}",
        "\\PC{1,6}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            field(),
            field(),
            field(),
            prop::sample::select(&["allow", "ask", "admin-only", "deny", "forbid", "alow", ""][..])
        )
            .prop_map(|(s, a, r, e)| format!("{s} {a} {r} -> {e}")),
        (
            field(),
            field(),
            field(),
            prop::sample::select(&["allow", "deny", "forbid"][..])
        )
            .prop_map(|(s, a, r, e)| format!("test {s} {a} {r} -> {e}")),
        field().prop_map(|p| format!("protect {p}")),
        "\\PC{0,40}",
        Just("# comment".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the input, parsing either loads every rule or reports
    /// errors that point inside the text; it never panics.
    #[test]
    fn parsing_is_total(lines in prop::collection::vec(line(), 0..12)) {
        let text = lines.join("\n");
        match PolicySet::parse("fuzz.policy", &text) {
            Ok(p) => {
                let statements = text.lines().filter(|l| {
                    let t = l.trim_start();
                    !t.is_empty() && !t.starts_with('#')
                }).count();
                prop_assert!(p.rules().len() + p.tests().len() + p.protected_branches().len() <= statements);
            }
            Err(smithers_policy::Error::InvalidPolicy(diagnostics)) => {
                prop_assert!(!diagnostics.is_empty());
                let count = text.lines().count() as u32;
                for d in diagnostics {
                    prop_assert!(d.line >= 1 && d.line <= count.max(1), "{}", d);
                    prop_assert!(d.column >= 1 && d.column as usize <= d.source_line.chars().count() + 4, "{}", d);
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// A rule printed in canonical form parses back to the same rule.
    #[test]
    fn canonical_form_round_trips(lines in prop::collection::vec(line(), 0..12)) {
        let text = lines.join("\n");
        if let Ok(p) = PolicySet::parse("a.policy", &text) {
            let canonical: Vec<String> = p.rules().iter().map(|r| r.canonical()).collect();
            let again = PolicySet::parse("b.policy", &canonical.join("\n")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again.rules().len(), p.rules().len());
            for (a, b) in p.rules().iter().zip(again.rules()) {
                prop_assert_eq!(&a.subject, &b.subject);
                prop_assert_eq!(&a.action, &b.action);
                prop_assert_eq!(a.resource.as_str(), b.resource.as_str());
                prop_assert_eq!(a.effect, b.effect);
            }
        }
    }

    #[test]
    fn splitting_is_total(line in "[a-z $'\"`()|;&<>\\\\{}#=\n-]{0,40}") {
        let _ = split_command(&line);
    }

    /// Two plain commands joined by any list or pipeline operator split into
    /// the parts of each, in order.
    #[test]
    fn operators_split_commands(
        a in prop::collection::vec("[a-z][a-z0-9]{0,5}", 1..4),
        b in prop::collection::vec("[a-z][a-z0-9]{0,5}", 1..4),
        op in prop::sample::select(&["&&", "||", ";", "|", "&", "\n", " ; ", "|&"][..]),
    ) {
        let keyword = |w: &String| ["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "time", "for", "case", "in", "esac", "select", "function", "coproc"].contains(&w.as_str())
            || smithers_policy::shell::interprets(w);
        prop_assume!(!keyword(&a[0]) && !keyword(&b[0]));
        let line = format!("{}{op}{}", a.join(" "), b.join(" "));
        let parts = split_command(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let words: Vec<Vec<String>> = parts.into_iter().map(|p| p.words).collect();
        prop_assert_eq!(&words[0], &a);
        prop_assert_eq!(&words[1], &b);
    }

    /// Any words, single-quoted, come back as exactly those words.
    #[test]
    fn quoted_words_survive(words in prop::collection::vec("\\PC{1,10}", 1..5)) {
        // Quotes do not stop `'.'` or `'eval'` from being what they are.
        prop_assume!(!smithers_policy::shell::interprets(&words[0]));
        let line: Vec<String> = words.iter().map(|w| format!("'{}'", w.replace('\'', r"'\''"))).collect();
        let parts = split_command(&line.join(" ")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!parts.is_empty());
        prop_assert_eq!(&parts[0].words, &words);
    }
}
