#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! `smithers.toml` as users write it: the documented shape, and every kind
//! of mistake reported at its line and column.

use std::collections::BTreeSet;
use std::time::Duration;

use smithers_engine::workflow::{
    CheckContext, Condition, Driver, Outcome, ProviderKind, PullRequestEvent, SecretRef, StepKind,
    Trigger, check, parse,
};

/// The shape the documentation promises.
const DOCUMENTED: &str = r#"[workflows.fix-tests]
on = ["manual", "pull_request.opened"]
egress = ["api.openai.com"]                      # default: no network
secrets = [{ name = "OPENAI_API_KEY", env = "dev" }]
timeout = "30m"
policy = ".smithers/policy"                      # default: the built-in default policy

[[workflows.fix-tests.steps]]
id = "plan"
agent = { role = "planner", driver = "openai", model = "gpt-4.1", prompt = "Find why the tests fail" }

[[workflows.fix-tests.steps]]
id = "test"
run = "cargo test"
if = "plan.succeeded"

[[workflows.fix-tests.steps]]
id = "ship"
commit = { branch = "smithers/fix-tests", message = "Fix the failing tests" }
needs_approval = true
"#;

#[test]
fn the_documented_shape_parses() {
    let file = parse("smithers.toml", DOCUMENTED).unwrap();
    assert_eq!(file.workflows.len(), 1);
    let w = file.get("fix-tests").unwrap();
    assert_eq!(
        w.triggers,
        [
            Trigger::Manual,
            Trigger::PullRequest(PullRequestEvent::Opened)
        ]
    );
    assert_eq!(w.egress, ["api.openai.com"]);
    assert_eq!(
        w.secrets,
        [SecretRef {
            name: "OPENAI_API_KEY".into(),
            env: "dev".into()
        }]
    );
    assert_eq!(w.timeout, Duration::from_secs(1800));
    assert_eq!(w.provider, ProviderKind::Native);
    assert_eq!(w.policy.as_deref(), Some(".smithers/policy"));
    assert_eq!(w.line, 1);
    let ids: Vec<&str> = w.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["plan", "test", "ship"]);
    let StepKind::Agent(agent) = &w.steps[0].kind else {
        panic!("{:?}", w.steps[0]);
    };
    assert_eq!(agent.role, "planner");
    assert_eq!(agent.driver, Driver::OpenAi);
    assert_eq!(agent.model.as_deref(), Some("gpt-4.1"));
    assert_eq!(agent.max_turns, 20);
    assert_eq!(
        w.steps[1].kind,
        StepKind::Run {
            command: "cargo test".into()
        }
    );
    assert_eq!(
        w.steps[1].condition,
        Some(Condition {
            step: "plan".into(),
            outcome: Outcome::Succeeded
        })
    );
    assert_eq!(w.steps[1].line, 12);
    assert!(w.steps[2].needs_approval);
    assert_eq!(
        w.steps[2].kind,
        StepKind::Commit {
            branch: Some("smithers/fix-tests".into()),
            message: "Fix the failing tests".into()
        }
    );
}

/// The first diagnostic's `line:column: message`.
fn problems(text: &str) -> Vec<String> {
    parse("smithers.toml", text)
        .unwrap_err()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

fn only_problem(text: &str) -> String {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap()
}

const MINIMAL_STEP: &str = "\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"true\"\n";

#[test]
fn each_mistake_is_reported_at_its_line_and_column() {
    // Unknown keys, with the key meant.
    let p = only_problem(&format!("[workflows.w]\ntimout = \"5m\"{MINIMAL_STEP}"));
    assert!(p.starts_with("2:1: unknown key `timout`"), "{p}");
    assert!(p.contains("did you mean `timeout`?"), "{p}");
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\nneeds_aproval = true\n",
    );
    assert!(
        p.starts_with("5:1:") && p.contains("`needs_approval`"),
        "{p}"
    );
    // Bad cron, and a schedule without its trigger.
    let p = only_problem(&format!(
        "[workflows.w]\non = [\"schedule\"]\nschedule = \"61 * * * *\"{MINIMAL_STEP}"
    ));
    assert!(
        p.starts_with("3:12:") && p.contains("not valid cron"),
        "{p}"
    );
    let p = only_problem(&format!(
        "[workflows.w]\non = [\"schedule\"]\nschedule = \"* * *\"{MINIMAL_STEP}"
    ));
    assert!(p.contains("3 fields; cron takes five"), "{p}");
    let p = only_problem(&format!("[workflows.w]\non = [\"schedule\"]{MINIMAL_STEP}"));
    assert!(p.starts_with("1:") && p.contains("needs `schedule"), "{p}");
    // Egress host syntax.
    let p = only_problem(&format!(
        "[workflows.w]\negress = [\"ok.example.com\", \"*.com\"]{MINIMAL_STEP}"
    ));
    assert!(p.starts_with("2:29:") && p.contains("\"*.com\""), "{p}");
    // Step ids: unique, and `if` refers to an earlier one.
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"y\"\n",
    );
    assert!(
        p.starts_with("6:6:") && p.contains("used twice (first at line 2)"),
        "{p}"
    );
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\nif = \"b.succeeded\"\n[[workflows.w.steps]]\nid = \"b\"\nrun = \"y\"\n",
    );
    assert!(
        p.starts_with("5:6:") && p.contains("not an earlier step"),
        "{p}"
    );
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"plan\"\nrun = \"x\"\n[[workflows.w.steps]]\nid = \"b\"\nrun = \"y\"\nif = \"plna.succeeded\"\n",
    );
    assert!(p.contains("did you mean `plan`?"), "{p}");
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\n[[workflows.w.steps]]\nid = \"b\"\nrun = \"y\"\nif = \"a.succeded\"\n",
    );
    assert!(p.contains("did you mean `succeeded`?"), "{p}");
    // One thing per step; something to do.
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\napproval = \"ok?\"\n",
    );
    assert!(p.contains("has run and approval"), "{p}");
    let p = only_problem("[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\n");
    assert!(p.contains("says nothing to do"), "{p}");
    // Commits only under smithers/.
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\ncommit = { branch = \"main\", message = \"m\" }\n",
    );
    assert!(
        p.starts_with("4:21:") && p.contains("not under `smithers/`"),
        "{p}"
    );
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\ncommit = { branch = \"smithers/a..b\", message = \"m\" }\n",
    );
    assert!(p.contains("not a valid branch name"), "{p}");
    // Types, ranges, unknown values.
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\nretries = 99\n",
    );
    assert!(
        p.starts_with("5:11:") && p.contains("between 0 and 10"),
        "{p}"
    );
    let p = only_problem("[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nrun = 5\n");
    assert!(p.contains("`run` must be a string, not integer"), "{p}");
    let p = only_problem(&format!("[workflows.w]\nprovider = \"vm\"{MINIMAL_STEP}"));
    assert!(p.contains("unknown provider \"vm\""), "{p}");
    let p = only_problem(&format!(
        "[workflows.w]\non = [\"pull_request.open\"]{MINIMAL_STEP}"
    ));
    assert!(p.contains("did you mean `pull_request.opened`?"), "{p}");
    let p = only_problem(&format!("[workflows.w]\ntimeout = \"soon\"{MINIMAL_STEP}"));
    assert!(
        p.starts_with("2:11:") && p.contains("not a duration"),
        "{p}"
    );
    let p = only_problem(&format!(
        "[workflows.w]\napproval_timeout = \"0s\"{MINIMAL_STEP}"
    ));
    assert!(
        p.starts_with("2:20:") && p.contains("`approval_timeout` must be more than 0"),
        "{p}"
    );
    let p = only_problem(&format!(
        "[workflows.w]\npolicy = \"../elsewhere\"{MINIMAL_STEP}"
    ));
    assert!(p.contains("inside the repository"), "{p}");
    // Agents: drivers, their needs, their keys among the secrets.
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nagent = { role = \"planner\", driver = \"gpt\", prompt = \"p\" }\n",
    );
    assert!(p.contains("unknown driver \"gpt\""), "{p}");
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nagent = { role = \"planner\", driver = \"anthropic\", model = \"m\", prompt = \"p\" }\n",
    );
    assert!(
        p.contains("secret ANTHROPIC_API_KEY, which this workflow's `secrets` does not list"),
        "{p}"
    );
    let p = only_problem(
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nagent = { role = \"planner\", driver = \"scripted\", prompt = \"p\" }\n",
    );
    assert!(p.contains("needs `script`"), "{p}");
    // An API key only crosses the network encrypted.
    let agent_at = |url: &str| {
        format!(
            "[workflows.w]\nsecrets = [{{ name = \"OPENAI_API_KEY\", env = \"dev\" }}]\n[[workflows.w.steps]]\nid = \"a\"\nagent = {{ role = \"r\", driver = \"openai\", model = \"m\", prompt = \"p\", base_url = \"{url}\" }}\n"
        )
    };
    for (url, problem) in [
        (
            "http://llm.internal:8000/v1",
            "would send the API key in the clear",
        ),
        ("ftp://127.0.0.1/v1", "must be an http(s) URL"),
        (
            "https://user:pw@llm.example.com/v1",
            "must not hold credentials",
        ),
        ("not a url", "is not a URL"),
    ] {
        let p = only_problem(&agent_at(url));
        assert!(p.starts_with("5:") && p.contains(problem), "{url}: {p}");
    }
    for url in [
        "https://llm.example.com/v1",
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
    ] {
        assert!(parse("smithers.toml", &agent_at(url)).is_ok(), "{url}");
    }
    // Secrets: well-formed and one environment per name.
    let p = only_problem(&format!(
        "[workflows.w]\nsecrets = [{{ name = \"BAD-NAME\", env = \"dev\" }}]{MINIMAL_STEP}"
    ));
    assert!(
        p.starts_with("2:21:") && p.contains("letters, digits and `_`"),
        "{p}"
    );
    // No workflow at all; a syntax error.
    assert!(only_problem("").contains("no workflow"));
    let found = problems("# nothing\n[other]\n");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("2:2: unknown key `other`")),
        "{found:?}"
    );
    let p = only_problem("[workflows.w\nrun = \"x\"\n");
    assert!(p.starts_with("1:"), "{p}");
}

#[test]
fn all_problems_are_reported_at_once_in_file_order() {
    let text = "[workflows.w]\ntimout = \"5m\"\nprovider = \"vm\"\n[[workflows.w.steps]]\nid = \"a\"\nrun = 1\n[[workflows.w.steps]]\nid = \"a\"\nrun = \"x\"\n";
    let found = problems(text);
    assert_eq!(found.len(), 4, "{found:#?}");
    let lines: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["2", "3", "6", "8"]);
}

#[test]
fn a_check_in_the_repository_reads_the_files_and_knows_the_secrets() {
    let repo = tempfile::tempdir().unwrap();
    let none = CheckContext::default();
    // No file at all.
    let e = check(repo.path(), &none).unwrap_err();
    assert!(e[0].message.contains("smithers init"), "{}", e[0]);
    std::fs::write(repo.path().join("smithers.toml"), DOCUMENTED).unwrap();
    // The policy file is missing.
    let e = check(repo.path(), &none).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (6, 10));
    assert!(e[0].message.contains("cannot be read"), "{}", e[0]);
    // A policy with an error is reported at its own line, after the pointer to it.
    std::fs::create_dir(repo.path().join(".smithers")).unwrap();
    std::fs::write(
        repo.path().join(".smithers/policy"),
        "planner read_file * -> allow\nplanner write_file * => ask\n",
    )
    .unwrap();
    let e = check(repo.path(), &none).unwrap_err();
    assert!(
        e.iter()
            .any(|d| d.file == ".smithers/policy" && d.line == 2),
        "{e:?}"
    );
    std::fs::write(
        repo.path().join(".smithers/policy"),
        "planner read_file * -> allow\n",
    )
    .unwrap();
    let file = check(repo.path(), &none).unwrap();
    assert_eq!(file.workflows[0].name, "fix-tests");
    // Secrets that do not exist, when the store is known.
    let mut context = CheckContext {
        known_secrets: Some(BTreeSet::new()),
    };
    let e = check(repo.path(), &context).unwrap_err();
    assert!(
        e[0].message
            .contains("OPENAI_API_KEY does not exist in environment dev"),
        "{}",
        e[0]
    );
    context.known_secrets = Some(BTreeSet::from([("OPENAI_API_KEY".into(), "dev".into())]));
    check(repo.path(), &context).unwrap();
    // A scripted agent's script must exist.
    std::fs::write(
        repo.path().join("smithers.toml"),
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\nagent = { role = \"planner\", driver = \"scripted\", prompt = \"p\", script = \".smithers/plan.toml\" }\n",
    )
    .unwrap();
    let e = check(repo.path(), &none).unwrap_err();
    assert!(
        e[0].message
            .contains("script \".smithers/plan.toml\" cannot be read"),
        "{}",
        e[0]
    );
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let file = parse(
        "smithers.toml",
        "[workflows.w]\n[[workflows.w.steps]]\nid = \"a\"\napproval = { message = \"go?\" }\n",
    )
    .unwrap();
    let w = &file.workflows[0];
    assert_eq!(w.triggers, [Trigger::Manual]);
    assert!(w.egress.is_empty() && w.secrets.is_empty());
    assert_eq!(w.timeout, Duration::from_secs(1800));
    assert_eq!(w.approval_timeout, Duration::from_secs(24 * 3600));
    assert_eq!(w.policy, None);
    assert_eq!(
        w.steps[0].kind,
        StepKind::Approval {
            message: "go?".into()
        }
    );
    assert_eq!(
        (w.steps[0].retries, w.steps[0].continue_on_error),
        (0, false)
    );
}
