//! The kernel's semantics as users rely on them, through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_policy::{Basis, PolicySet, Request, Source, Subject, Verdict};

fn policy(text: &str) -> PolicySet {
    PolicySet::parse("test.policy", text).unwrap_or_else(|e| panic!("{e}"))
}

fn decide(
    p: &PolicySet,
    subject: &str,
    action: &str,
    resource: &str,
) -> (Verdict, Source, Option<u32>) {
    let subject = Subject::parse(subject).unwrap();
    let d = p.evaluate(&Request {
        subject,
        action,
        resource,
    });
    (d.verdict, d.source(), d.rule().map(|r| r.origin.line))
}

fn verdict(p: &PolicySet, subject: &str, action: &str, resource: &str) -> Verdict {
    decide(p, subject, action, resource).0
}

use Verdict::{AdminOnly, Allow, Ask, Deny};

#[test]
fn the_example_policy_means_what_its_comments_say() {
    let text = include_str!("../../../examples/policies/default.policy");
    let p = policy(text);
    assert_eq!(p.rules().len(), 15);
    let outcomes = p.run_tests();
    assert!(!outcomes.is_empty());
    for o in &outcomes {
        assert!(
            o.passed(),
            "{}: got {}",
            o.test.origin.text,
            o.decision.reason()
        );
    }
    // Reviewer is read-only: the specific read rule beats `reviewer * *`.
    assert_eq!(verdict(&p, "reviewer", "read_file", "src/x.rs"), Allow);
    assert_eq!(verdict(&p, "reviewer", "list_directory", "src"), Deny);
    assert_eq!(
        verdict(&p, "security_reviewer", "read_file", "secrets/prod.env"),
        Allow
    );
    assert_eq!(verdict(&p, "security_reviewer", "run_command", "ls"), Deny);
    assert_eq!(verdict(&p, "planner", "write_file", "SPEC.md"), Ask);
    assert_eq!(
        verdict(&p, "planner", "write_file", "docs/notes.txt"),
        AdminOnly
    );
    assert_eq!(verdict(&p, "release_manager", "read_file", "x"), AdminOnly);
    assert!(p.analyze().is_clean(), "{:?}", p.analyze());
}

#[test]
fn forbid_beats_a_more_specific_allow() {
    let p = policy(
        "implementer run_command \"git push *\" -> allow\n\
         * * * -> forbid\n",
    );
    let (v, s, line) = decide(&p, "implementer", "run_command", "git push origin x");
    assert_eq!((v, s, line), (Deny, Source::Rule, Some(2)));
}

#[test]
fn specificity_action_then_resource_then_subject() {
    let p = policy(
        "user:alice * * -> deny\n\
         * read_file * -> allow\n\
         dev read_file src/* -> ask\n\
         * read_file src/main.rs -> admin-only\n\
         user:alice read_file src/* -> allow\n",
    );
    // A named tool beats `*` even for a user rule.
    assert_eq!(
        decide(&p, "user:alice", "read_file", "README"),
        (Allow, Source::Rule, Some(2))
    );
    assert_eq!(decide(&p, "user:alice", "write_file", "README").0, Deny);
    // A literal beats a glob, whoever the glob is for.
    assert_eq!(decide(&p, "dev", "read_file", "src/main.rs").2, Some(4));
    // Same resource specificity: the user beats the role.
    let user_and_role = Subject {
        role: Some("dev"),
        user: Some("alice"),
    };
    let d = p.evaluate(&Request {
        subject: user_and_role,
        action: "read_file",
        resource: "src/lib.rs",
    });
    assert_eq!(d.rule().map(|r| r.origin.line), Some(5));
    // A longer literal prefix beats a shorter one.
    let p = policy("* read_file src/* -> allow\n* read_file src/secret/* -> deny\n");
    assert_eq!(verdict(&p, "x", "read_file", "src/secret/key"), Deny);
    assert_eq!(verdict(&p, "x", "read_file", "src/key"), Allow);
}

#[test]
fn ties_go_to_the_most_restrictive_effect() {
    let p = policy(
        "a read_file *.md -> allow\n\
         a read_file *.rs -> ask\n\
         a read_file *.md -> admin-only\n\
         a read_file *.md -> ask\n",
    );
    assert_eq!(
        decide(&p, "a", "read_file", "x.md"),
        (AdminOnly, Source::Rule, Some(3))
    );
    let p = policy("a read_file x -> deny\na read_file x -> allow\n");
    assert_eq!(verdict(&p, "a", "read_file", "x"), Deny);
}

#[test]
fn defaults_when_nothing_matches() {
    let p = policy("planner read_file docs/* -> deny\n");
    assert_eq!(
        decide(&p, "planner", "read_file", "src/x"),
        (Allow, Source::Default, None)
    );
    assert_eq!(verdict(&p, "planner", "write_file", "src/x"), Ask);
    assert_eq!(verdict(&p, "planner", "run_tests", "cargo test"), Allow);
    assert_eq!(verdict(&p, "planner", "run_command", "ls"), Ask);
    assert_eq!(verdict(&p, "planner", "create_commit", "smithers/x"), Ask);
    let d = p.evaluate(&Request {
        subject: Subject::parse("planner").unwrap(),
        action: "deploy_to_prod",
        resource: "x",
    });
    assert_eq!(
        (d.verdict, d.basis.clone()),
        (Ask, Basis::Default { known_tool: false })
    );
    assert!(d.reason().contains("not a known tool"));
}

#[test]
fn paths_are_normalized_and_escapes_refused_before_rules() {
    let p = policy("* read_file * -> allow\n* read_file secrets/* -> deny\n* * * -> allow\n");
    for escaping in [
        "../x",
        "src/../../x",
        "/etc/passwd",
        "/workspace/../etc/passwd",
        "a\0b",
    ] {
        let (v, s, _) = decide(&p, "a", "read_file", escaping);
        assert_eq!((v, s), (Deny, Source::Invariant), "{escaping:?}");
    }
    assert_eq!(verdict(&p, "a", "read_file", "./src/../secrets/key"), Deny);
    assert_eq!(
        verdict(&p, "a", "read_file", "/workspace/secrets//key"),
        Deny
    );
    assert_eq!(verdict(&p, "a", "read_file", "/workspace/src/x"), Allow);
    let moved = p.with_workspace_root("/repo");
    assert_eq!(verdict(&moved, "a", "read_file", "/repo/secrets/k"), Deny);
    assert_eq!(
        decide(&moved, "a", "read_file", "/workspace/x").1,
        Source::Invariant
    );
}

#[test]
fn protected_branches_are_never_writable() {
    let p = policy(
        "protect release/*\n* push_branch * -> allow\n* create_commit * -> allow\n* * * -> allow\n",
    );
    for branch in [
        "main",
        "master",
        "refs/heads/main",
        "MAIN",
        "Master",
        "release/1",
        "release/1.2",
    ] {
        for tool in ["push_branch", "create_commit"] {
            let (v, s, _) = decide(&p, "a", tool, branch);
            assert_eq!((v, s), (Deny, Source::Invariant), "{tool} {branch}");
        }
    }
    assert_eq!(verdict(&p, "a", "push_branch", "smithers/fix"), Allow);
    assert_eq!(verdict(&p, "a", "push_branch", "release"), Allow);
    for invalid in ["main..x", "-f", "a b", "main~1", "x.lock", "@{u}", ""] {
        assert_eq!(
            decide(&p, "a", "push_branch", invalid).1,
            Source::Invariant,
            "{invalid:?}"
        );
    }
    let branch_globs = policy("* push_branch smithers/* -> allow\n* push_branch * -> deny\n");
    assert_eq!(
        verdict(&branch_globs, "a", "push_branch", "smithers/x"),
        Allow
    );
    assert_eq!(
        verdict(&branch_globs, "a", "push_branch", "smithers/x/y"),
        Deny
    );
}

#[test]
fn every_part_of_a_compound_command_is_decided() {
    let p = policy(
        "dev run_command \"cargo *\" -> allow\n\
         dev run_command \"rm *\" -> deny\n\
         dev run_command \"curl *\" -> admin-only\n\
         dev run_command \"ls *\" -> allow\n",
    );
    assert_eq!(verdict(&p, "dev", "run_command", "cargo test"), Allow);
    for hostile in [
        "cargo test && rm -rf /",
        "cargo test; rm -rf /",
        "cargo test || rm -rf /",
        "ls | rm -rf /",
        "cargo test $(rm -rf /)",
        "cargo test `rm -rf /`",
        "(rm -rf /)",
        "bash -c 'rm -rf /'",
        "sh -c \"cargo test && rm -rf /\"",
        "FOO=1 rm -rf /",
        "cargo test > /dev/null && r\"m\" -rf /",
        "env rm -rf /",
        "timeout 5 rm -rf /",
        "/bin/rm -rf /",
        "cargo build 2>&1 | xargs rm",
        "find . -exec rm {} +",
        "eval 'rm -rf /'",
        "cargo test\nrm -rf /",
    ] {
        let d = p.evaluate(&Request {
            subject: Subject::parse("dev").unwrap(),
            action: "run_command",
            resource: hostile,
        });
        assert_eq!(d.verdict, Deny, "{hostile:?}: {}", d.reason());
        assert_eq!(d.rule().map(|r| r.origin.line), Some(2), "{hostile:?}");
    }
    assert_eq!(
        verdict(&p, "dev", "run_command", "cargo test | curl -d @- x"),
        AdminOnly
    );
    let d = p.evaluate(&Request {
        subject: Subject::parse("dev").unwrap(),
        action: "run_command",
        resource: "ls && rm -rf /",
    });
    let part = d.part.clone().unwrap();
    assert_eq!(
        (part.index, part.count, part.text.as_str()),
        (1, 2, "rm -rf /")
    );
    assert!(
        d.reason().starts_with("part 2 of 2 (`rm -rf /`)"),
        "{}",
        d.reason()
    );
}

#[test]
fn a_local_program_does_not_pass_for_a_system_one() {
    let p = policy("dev run_tests \"cargo test *\" -> allow\ndev run_tests * -> ask\n");
    assert_eq!(verdict(&p, "dev", "run_tests", "cargo test"), Allow);
    assert_eq!(
        verdict(&p, "dev", "run_tests", "/usr/bin/cargo test"),
        Allow
    );
    assert_eq!(verdict(&p, "dev", "run_tests", "./cargo test"), Ask);
    assert_eq!(
        verdict(&p, "dev", "run_tests", "/workspace/cargo test"),
        Ask
    );
}

#[test]
fn what_cannot_be_analysed_asks_unless_a_catch_all_is_stricter() {
    let p = policy(
        "dev run_command * -> allow\nro run_command * -> deny\nadm run_command * -> admin-only\n",
    );
    for opaque in [
        "echo 'unterminated",
        "for f in *; do rm $f; done",
        "$CMD -rf /",
        "\"$(echo rm)\" -rf /",
    ] {
        let (v, s, _) = decide(&p, "dev", "run_command", opaque);
        assert_eq!((v, s), (Ask, Source::Default), "{opaque:?}");
        assert_eq!(verdict(&p, "ro", "run_command", opaque), Deny, "{opaque:?}");
        assert_eq!(
            verdict(&p, "adm", "run_command", opaque),
            AdminOnly,
            "{opaque:?}"
        );
    }
    let d = p.evaluate(&Request {
        subject: Subject::parse("dev").unwrap(),
        action: "run_command",
        resource: "case x in y) z;; esac",
    });
    assert!(d.reason().contains("cannot be analysed"), "{}", d.reason());
}

#[test]
fn a_branch_subtree_is_not_shadowed_by_a_one_level_glob() {
    // `docs/` is every branch under docs/ (docs/x/b too); `docs/*` reaches
    // one level only, so the allow still decides docs/x/b.
    let p = policy("* * \"docs/*\" -> forbid\n* push_branch \"docs/\" -> allow\n");
    assert!(p.analyze().shadowed.is_empty(), "{:?}", p.analyze());
    assert_eq!(verdict(&p, "dev", "push_branch", "docs/x/b.rs"), Allow);
    assert_eq!(verdict(&p, "dev", "push_branch", "docs/x"), Deny);
}

#[test]
fn analysis_finds_shadowed_rules_conflicts_and_reach() {
    let p = policy(
        "dev read_file * -> forbid\n\
         dev read_file src/* -> allow\n\
         * push_branch main -> allow\n\
         ops run_command \"cargo *\" -> deny\n\
         ops run_command \"cargo test *\" -> allow\n\
         qa write_file *.md -> allow\n\
         qa write_file *.rs -> deny\n\
         qa write_file docs/* -> deny\n\
         ops run_command \"cargo build\" -> allow\n\
         ops run_command \"cargo build\" -> allow\n",
    );
    let a = p.analyze();
    let shadowed: Vec<u32> = a.shadowed.iter().map(|s| s.rule.origin.line).collect();
    assert_eq!(shadowed, [2, 3, 10], "{a:?}");
    let conflicts: Vec<(u32, u32)> = a
        .conflicts
        .iter()
        .map(|c| (c.winner.origin.line, c.loser.origin.line))
        .collect();
    // `*.md` and `docs/*` are not equally specific (prefix 0 vs 5); `*.md`
    // and `*.rs` are but never match the same path.
    assert!(conflicts.is_empty(), "{a:?}");
    let p = policy("qa write_file *.md -> allow\nqa write_file docs* -> deny\n");
    let a = p.analyze();
    assert_eq!(
        a.conflicts.len(),
        0,
        "different prefixes are not a conflict"
    );
    let p = policy("qa write_file *.md -> allow\nqa write_file *_test.* -> deny\n");
    let a = p.analyze();
    assert_eq!(a.conflicts.len(), 1, "{a:?}");
    assert_eq!(a.conflicts[0].winner.origin.line, 2);
    let w = &a.conflicts[0].witness;
    assert!(w.ends_with(".md") && w.contains("_test."), "{w}");

    let p = policy("protect release/*\nrm push_branch release/* -> allow\n");
    let a = p.analyze();
    assert_eq!(
        a.shadowed.len(),
        0,
        "a glob is not proven to hit only protected branches"
    );
    let reach = policy(include_str!("../../../examples/policies/default.policy"))
        .who_can("push_branch", "release/1")
        .into_iter()
        .map(|r| (r.subject, r.decision.verdict))
        .collect::<Vec<_>>();
    assert_eq!(
        reach,
        [
            ("planner".to_string(), Ask),
            ("implementer".to_string(), Ask),
            ("reviewer".to_string(), Deny),
            ("security_reviewer".to_string(), Deny),
            ("release_manager".to_string(), AdminOnly),
            ("*".to_string(), Ask),
        ]
    );
}

#[test]
fn explain_lists_every_match_winner_first() {
    let p = policy(include_str!("../../../examples/policies/default.policy"));
    let e = p.explain(&Request {
        subject: Subject::parse("reviewer").unwrap(),
        action: "read_file",
        resource: "src/lib.rs",
    });
    assert_eq!(e.decision.verdict, Allow);
    let lines: Vec<u32> = e.parts[0]
        .matches
        .iter()
        .map(|m| m.rule.origin.line)
        .collect();
    assert_eq!(lines, [14, 15]);
    assert_eq!(
        smithers_policy::why_wins(e.parts[0].matches[0].rule, e.parts[0].matches[1].rule),
        "it names the tool; the other applies to every tool (`*`)"
    );
    let e = p.explain(&Request {
        subject: Subject::parse("implementer").unwrap(),
        action: "run_command",
        resource: "cargo test && rm -rf /",
    });
    assert_eq!(e.parts.len(), 2);
    assert_eq!(e.parts[1].text, "rm -rf /");
    let e = p.explain(&Request {
        subject: Subject::parse("implementer").unwrap(),
        action: "push_branch",
        resource: "main",
    });
    assert!(e.parts.is_empty());
    assert_eq!(e.decision.source(), Source::Invariant);
}

#[test]
fn several_sources_load_together_or_not_at_all() {
    let p = PolicySet::from_sources([
        ("a.policy", "x read_file * -> deny\n"),
        ("b.policy", "x read_file * -> allow\n"),
    ])
    .unwrap();
    let d = p.evaluate(&Request {
        subject: Subject::parse("x").unwrap(),
        action: "read_file",
        resource: "f",
    });
    assert_eq!(d.verdict, Deny);
    assert_eq!(&*d.rule().unwrap().origin.file, "a.policy");
    let e = PolicySet::from_sources([
        ("a.policy", "x read_file * -> deny\n"),
        ("b.policy", "oops\n"),
    ])
    .unwrap_err();
    assert!(e.to_string().starts_with("b.policy:1:"), "{e}");
}

#[test]
fn malformed_subjects_in_requests_are_refused() {
    for bad in ["", "user:", "pl anner", "a/b", "user:x y"] {
        assert!(Subject::parse(bad).is_err(), "{bad:?}");
    }
}
