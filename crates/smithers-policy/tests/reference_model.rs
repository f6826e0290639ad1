//! Property tests: the indexed evaluator against a linear-scan reference
//! written straight from the precedence rules, on random policies and
//! requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use proptest::prelude::*;
use smithers_policy::{
    Effect, PolicySet, Request, Resource, ResourceKind, Rule, Source, Subject, Verdict, branch,
    env, path, shell, tool,
};

/// What the reference says: verdict, source, and the deciding rule's line.
type Outcome = (Verdict, Source, Option<u32>);

fn linear(p: &PolicySet, req: &Request<'_>, resource: Resource<'_>, only_any: bool) -> Outcome {
    let matching: Vec<&Rule> = p
        .rules()
        .iter()
        .filter(|r| {
            r.subject.matches(req.subject)
                && r.action.matches(req.action)
                && if only_any {
                    r.resource.is_any()
                } else {
                    r.resource.matches(resource)
                }
        })
        .collect();
    let forbid = matching
        .iter()
        .filter(|r| r.effect == Effect::Forbid)
        .max_by_key(|r| (r.specificity(), std::cmp::Reverse(r.order())));
    if let Some(r) = forbid {
        return (Verdict::Deny, Source::Rule, Some(r.origin.line));
    }
    let best = matching.iter().max_by_key(|r| {
        (
            r.specificity(),
            r.effect.verdict(),
            std::cmp::Reverse(r.order()),
        )
    });
    match best {
        Some(r) => (r.effect.verdict(), Source::Rule, Some(r.origin.line)),
        None => (tool::default_verdict(req.action), Source::Default, None),
    }
}

fn unanalysable(p: &PolicySet, req: &Request<'_>) -> Outcome {
    let by_any = linear(p, req, Resource::Command(&[]), true);
    if by_any.0 > Verdict::Ask && by_any.1 == Source::Rule {
        by_any
    } else {
        (Verdict::Ask, Source::Default, None)
    }
}

fn parts(text: &str) -> Vec<&str> {
    if text.is_empty() {
        vec![]
    } else {
        text.split('/').collect()
    }
}

fn reference(p: &PolicySet, req: &Request<'_>) -> Outcome {
    let refused = (Verdict::Deny, Source::Invariant, None);
    match tool::resource_kind(req.action) {
        ResourceKind::Path => match path::normalize(req.resource, p.workspace_root()) {
            Err(_) => refused,
            Ok(n) => linear(p, req, Resource::Path(&parts(&n)), false),
        },
        ResourceKind::Branch => match branch::normalize(req.resource) {
            Err(_) => refused,
            Ok(name) => {
                let lower = name.to_ascii_lowercase();
                let protected = branch::BUILTIN_PROTECTED.contains(&lower.as_str())
                    || p.protected_branches()
                        .iter()
                        .any(|b| b.matches(&parts(&lower)));
                if protected {
                    refused
                } else {
                    linear(p, req, Resource::Branch(&parts(&lower)), false)
                }
            }
        },
        ResourceKind::Opaque => linear(p, req, Resource::Opaque(req.resource), false),
        ResourceKind::Command => {
            let split = shell::split_command(req.resource);
            // A `run_tests` line is `run_tests` only when it runs tests.
            let tests = split.as_ref().is_ok_and(|c| p.test_command(c).is_ok());
            let action = if req.action == "run_tests" && !tests {
                "run_command"
            } else {
                req.action
            };
            let req = Request { action, ..*req };
            match split {
                Err(_) => unanalysable(p, &req),
                Ok(cmds) => {
                    let cd = cmds.iter().any(|c| c.changes_directory);
                    let mut worst: Option<Outcome> = None;
                    let mut take = |o: Outcome| {
                        if worst.is_none_or(|w| o.0 > w.0) {
                            worst = Some(o);
                        }
                    };
                    for c in &cmds {
                        let significant: Vec<String> = c
                            .assignments
                            .iter()
                            .filter(|a| !env::is_inert(&a.name, a.value.as_deref()))
                            .map(|a| a.name.clone())
                            .collect();
                        if !c.words.is_empty() || !significant.is_empty() {
                            take(program(p, &req, c, cd, &significant));
                        }
                        for r in &c.redirects {
                            if let Some(o) = redirect(p, &req, r, cd) {
                                take(o);
                            }
                        }
                    }
                    worst.unwrap_or_else(|| linear(p, &req, Resource::Command(&[]), false))
                }
            }
        }
    }
}

/// One program: computed names and a changed directory ask; variables
/// that matter need a rule naming them; a forbid on the program holds.
fn program(
    p: &PolicySet,
    req: &Request<'_>,
    c: &shell::CommandPart,
    cd: bool,
    significant: &[String],
) -> Outcome {
    let relative = c
        .words
        .first()
        .is_some_and(|w| w.contains('/') && !w.starts_with('/'));
    if c.dynamic_program.is_some() || (cd && relative) {
        return unanalysable(p, req);
    }
    let plain = linear(p, req, Resource::Command(&c.words), false);
    if significant.is_empty() {
        return plain;
    }
    let forbidden = p.rules().iter().any(|r| {
        r.effect == Effect::Forbid
            && r.subject.matches(req.subject)
            && r.action.matches(req.action)
            && r.resource.matches(Resource::Command(&c.words))
    });
    if forbidden {
        return plain;
    }
    let assignments: Vec<String> = c
        .assignments
        .iter()
        .filter(|a| a.kind != shell::AssignmentKind::Builtin)
        .map(|a| a.text.clone())
        .collect();
    let resource = Resource::Assigned {
        assignments: &assignments,
        significant,
        words: &c.words,
    };
    let named = linear(p, req, resource, false);
    if named.1 == Source::Rule {
        return named;
    }
    if plain.0 > Verdict::Ask {
        return plain;
    }
    (Verdict::Ask, Source::Default, None)
}

/// A redirection: a `read_file`/`write_file` of its target.
fn redirect(p: &PolicySet, req: &Request<'_>, r: &shell::Redirect, cd: bool) -> Option<Outcome> {
    let t = r.target.as_str();
    let device = t == "/dev/null" || t.starts_with("/dev/fd/") || t.starts_with("/dev/std");
    if !r.computed && device {
        return None;
    }
    let action = match r.access {
        shell::Access::Read => "read_file",
        shell::Access::Write => "write_file",
    };
    let req = Request { action, ..*req };
    if r.computed || (cd && !t.starts_with('/')) {
        return Some(unanalysable(p, &req));
    }
    Some(match path::normalize(t, p.workspace_root()) {
        Err(_) => (Verdict::Deny, Source::Invariant, None),
        Ok(n) => linear(p, &req, Resource::Path(&parts(&n)), false),
    })
}

const ROLES: &[&str] = &["planner", "implementer", "reviewer", "r1"];
const USERS: &[&str] = &["alice", "bob"];
const ACTIONS: &[&str] = &[
    "read_file",
    "write_file",
    "list_directory",
    "run_command",
    "run_tests",
    "push_branch",
    "create_commit",
    "inspect_repo",
    "custom_tool",
];
/// Patterns valid for every kind, built from the same few names the
/// requests use, so that rules and requests meet often.
const PATTERNS: &[&str] = &[
    "*",
    "**",
    "src",
    "src/*",
    "src/**",
    "src/**/b.rs",
    "*.md",
    "*.rs",
    "a.md",
    "/a.md",
    "docs/",
    "docs/*",
    "s?c/*",
    "[ab].rs",
    "src/b.rs",
    "smithers/*",
    "release/*",
    "release/**",
    "smithers/a",
    "main",
    "cargo *",
    "cargo test *",
    "cargo test",
    "rm *",
    "rm -rf *",
    "git push *",
    "ls",
    "ls *",
    "ca* *",
    "/usr/bin/rm *",
    "x",
    "PATH=* ls *",
    "src/*.rs",
    "Release/*",
];
const RESOURCES: &[&str] = &[
    "",
    ".",
    "src",
    "src/b.rs",
    "src/a/b.rs",
    "a.md",
    "docs/a.md",
    "docs/x/b.rs",
    "sxc/q",
    "b.rs",
    "./src/../a.md",
    "../x",
    "/etc/passwd",
    "/workspace/src/b.rs",
    "smithers/a",
    "smithers/a/b",
    "release/1",
    "release/1/2",
    "main",
    "MAIN",
    "refs/heads/main",
    "master",
    "a..b",
    "x",
    "cargo test",
    "cargo test --all",
    "cargo build",
    "rm -rf /",
    "/bin/rm x",
    "ls",
    "ls -la",
    "cargo test && rm -rf /",
    "ls | cargo test",
    "echo $(rm x)",
    "bash -c 'cargo test; ls'",
    "$CMD x",
    "echo 'oops",
    "for x in y; do ls; done",
    "git push origin x",
    "./cargo test",
    "timeout 5 rm x",
    "X=1 ls > out",
    "PATH=/w ls",
    "PATH=/w:$PATH ls -la",
    "LANG=C cargo test",
    "echo x > src/b.rs",
    "cat < a.md > /dev/null",
    "cd src && ls > b.rs",
    "cargo test 2> /tmp/log",
    "ls > ../x",
    "/usr/bin/l? x",
    "time -p rm x",
    "Release/1",
];

fn effect() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => Just("allow"),
        3 => Just("ask"),
        2 => Just("admin-only"),
        3 => Just("deny"),
        1 => Just("forbid"),
    ]
}

fn subject_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("*".to_string()),
        4 => prop::sample::select(ROLES).prop_map(str::to_string),
        1 => prop::sample::select(USERS).prop_map(|u| format!("user:{u}")),
    ]
}

fn action_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        4 => prop::sample::select(ACTIONS).prop_map(str::to_string),
    ]
}

fn rule_line() -> impl Strategy<Value = String> {
    (
        subject_pattern(),
        action_pattern(),
        prop::sample::select(PATTERNS),
        effect(),
    )
        .prop_map(|(s, a, r, e)| format!("{s} {a} \"{r}\" -> {e}"))
}

fn policy_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(rule_line(), 0..40),
        prop::option::of(prop::sample::select(
            &["release/*", "smithers/a", "prod"][..],
        )),
    )
        .prop_map(|(rules, protect)| {
            let mut text = protect
                .map(|p| format!("protect {p}\n"))
                .unwrap_or_default();
            text.push_str(&rules.join("\n"));
            text
        })
}

fn request() -> impl Strategy<
    Value = (
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        &'static str,
    ),
> {
    (
        prop::option::of(prop::sample::select(ROLES)),
        prop::option::of(prop::sample::select(USERS)),
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn indexed_evaluator_agrees_with_the_reference(
        text in policy_text(),
        requests in prop::collection::vec(request(), 1..20),
    ) {
        let p = PolicySet::parse("random.policy", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (role, user, action, resource) in requests {
            let req = Request { subject: Subject { role, user }, action, resource };
            let d = p.evaluate(&req);
            let got = (d.verdict, d.source(), d.rule().map(|r| r.origin.line));
            prop_assert_eq!(got, reference(&p, &req), "{:?} on\n{}", req, text);
            // Explain agrees with evaluate.
            let e = p.explain(&req);
            prop_assert_eq!(e.decision.verdict, d.verdict);
            for part in &e.parts {
                if let (Some(first), Some(rule)) = (part.matches.first(), part.decision.rule()) {
                    prop_assert_eq!(first.rule.order(), rule.order());
                }
            }
        }
    }

    #[test]
    fn shadowed_rules_never_decide(
        text in policy_text(),
        requests in prop::collection::vec(request(), 1..30),
    ) {
        let p = PolicySet::parse("random.policy", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let shadowed: Vec<u32> = p.analyze().shadowed.iter().map(|s| s.rule.order()).collect();
        for (role, user, action, resource) in requests {
            let req = Request { subject: Subject { role, user }, action, resource };
            if let Some(rule) = p.evaluate(&req).rule() {
                prop_assert!(!shadowed.contains(&rule.order()), "line {} reported shadowed but decided {:?}", rule.origin.line, req);
            }
        }
    }

    #[test]
    fn conflict_witnesses_match_both_rules(text in policy_text()) {
        let p = PolicySet::parse("random.policy", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for c in p.analyze().conflicts {
            prop_assert_eq!(c.winner.specificity(), c.loser.specificity());
            prop_assert!(c.winner.effect.verdict() > c.loser.effect.verdict());
            let kinds: Vec<ResourceKind> = match &c.winner.action {
                smithers_policy::ActionPattern::Tool(t) => vec![tool::resource_kind(t)],
                smithers_policy::ActionPattern::Any => ResourceKind::ALL.to_vec(),
            };
            prop_assert!(kinds.iter().any(|&k| c.winner.resource.matches_text(&c.witness, k) && c.loser.resource.matches_text(&c.witness, k)));
        }
    }
}
