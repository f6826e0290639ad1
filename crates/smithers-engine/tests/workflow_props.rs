#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Properties of the workflow parser: any input gives workflows or
//! diagnostics that point inside the file, never a panic; and a workflow
//! written out as TOML reads back as the same workflow.

use proptest::prelude::*;
use smithers_engine::workflow::{Outcome, StepKind, parse};

/// A TOML basic string (JSON's escapes are a subset of TOML's for the
/// characters generated here).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

#[derive(Debug, Clone)]
enum GenKind {
    Run(String),
    Approval(String),
    Commit(Option<String>, String),
    Agent(String, String),
}

#[derive(Debug, Clone)]
struct GenStep {
    kind: GenKind,
    needs_approval: bool,
    retries: u32,
    condition: Option<(usize, usize)>,
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?'\"\\\\é/_-]{1,30}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn step() -> impl Strategy<Value = GenStep> {
    let kind = prop_oneof![
        text().prop_map(GenKind::Run),
        text().prop_map(GenKind::Approval),
        (
            proptest::option::of("[a-z0-9]{1,12}(/[a-z0-9-]{1,8})?"),
            text()
        )
            .prop_map(|(b, m)| GenKind::Commit(b.map(|b| format!("smithers/{b}")), m)),
        ("[a-z][a-z_]{0,10}", text()).prop_map(|(r, p)| GenKind::Agent(r, p)),
    ];
    (
        kind,
        any::<bool>(),
        0u32..=10,
        proptest::option::of((0usize..20, 0usize..3)),
    )
        .prop_map(|(kind, needs_approval, retries, condition)| GenStep {
            kind,
            needs_approval,
            retries,
            condition,
        })
}

fn render(steps: &[GenStep]) -> String {
    let mut out = String::from("[workflows.gen]\non = [\"manual\", \"push\"]\n");
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&format!("\n[[workflows.gen.steps]]\nid = \"s{i}\"\n"));
        match &step.kind {
            GenKind::Run(c) => out.push_str(&format!("run = {}\n", quoted(c))),
            GenKind::Approval(m) => out.push_str(&format!("approval = {}\n", quoted(m))),
            GenKind::Commit(b, m) => {
                let branch = b
                    .as_ref()
                    .map(|b| format!("branch = {}, ", quoted(b)))
                    .unwrap_or_default();
                out.push_str(&format!("commit = {{ {branch}message = {} }}\n", quoted(m)));
            }
            GenKind::Agent(r, p) => out.push_str(&format!(
                "agent = {{ role = \"{r}\", driver = \"scripted\", script = \"s.toml\", prompt = {} }}\n",
                quoted(p)
            )),
        }
        out.push_str(&format!(
            "needs_approval = {}\nretries = {}\n",
            step.needs_approval, step.retries
        ));
        if let (Some((target, outcome)), true) = (step.condition, i > 0) {
            let outcome = ["succeeded", "failed", "skipped"][outcome];
            out.push_str(&format!("if = \"s{}.{outcome}\"\n", target % i));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_input_gives_workflows_or_diagnostics_inside_the_file(input in "(?s).{0,400}") {
        if let Err(diagnostics) = parse("smithers.toml", &input) {
            let lines = input.split('\n').count() as u32;
            prop_assert!(!diagnostics.is_empty());
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.line <= lines.max(1), "{d}");
                prop_assert!(d.column >= 1, "{d}");
            }
        }
    }

    #[test]
    fn a_written_workflow_reads_back_the_same(steps in proptest::collection::vec(step(), 1..12)) {
        let text = render(&steps);
        let file = parse("smithers.toml", &text).map_err(|e| {
            TestCaseError::fail(format!("{text}\n{}", smithers_policy::render_diagnostics(&e)))
        })?;
        let parsed = &file.workflows[0].steps;
        prop_assert_eq!(parsed.len(), steps.len());
        for (i, (got, want)) in parsed.iter().zip(&steps).enumerate() {
            prop_assert_eq!(&got.id, &format!("s{i}"));
            prop_assert_eq!(got.needs_approval, want.needs_approval);
            prop_assert_eq!(got.retries, want.retries);
            match (&got.kind, &want.kind) {
                (StepKind::Run { command }, GenKind::Run(c)) => prop_assert_eq!(command, c),
                (StepKind::Approval { message }, GenKind::Approval(m)) => prop_assert_eq!(message, m),
                (StepKind::Commit { branch, message }, GenKind::Commit(b, m)) => {
                    prop_assert_eq!(branch, b);
                    prop_assert_eq!(message, m);
                }
                (StepKind::Agent(agent), GenKind::Agent(r, p)) => {
                    prop_assert_eq!(&agent.role, r);
                    prop_assert_eq!(&agent.prompt, p);
                }
                (got, want) => prop_assert!(false, "{got:?} read back from {want:?}"),
            }
            match (&got.condition, want.condition) {
                (None, None) => {}
                (None, Some(_)) => prop_assert_eq!(i, 0),
                (Some(c), Some((target, outcome))) => {
                    prop_assert_eq!(&c.step, &format!("s{}", target % i));
                    let expected = [Outcome::Succeeded, Outcome::Failed, Outcome::Skipped][outcome];
                    prop_assert_eq!(c.outcome, expected);
                }
                (Some(c), None) => prop_assert!(false, "a condition from nowhere: {c:?}"),
            }
        }
    }

    #[test]
    fn a_damaged_file_never_panics_and_points_inside_it(
        steps in proptest::collection::vec(step(), 1..5),
        cut in 0usize..2000,
        length in 0usize..40,
    ) {
        let text = render(&steps);
        let start = cut.min(text.len());
        let end = (start + length).min(text.len());
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return Ok(());
        }
        let damaged = format!("{}{}", &text[..start], &text[end..]);
        if let Err(diagnostics) = parse("smithers.toml", &damaged) {
            let lines = damaged.split('\n').count() as u32;
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.line <= lines.max(1), "{d}");
            }
        }
    }
}
