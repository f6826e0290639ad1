//! Runs put in a given state directly through the store, for tests of
//! what happens to them next.

use serde_json::json;
use smithers_store::{
    ApprovalKind, DEFAULT_ORGANIZATION, NewApproval, NewRun, RunState, Runs, StepState, StepUpdate,
};

/// The workflow file of [`waiting_on_approval`]'s run.
const SHIP: &str = r#"[workflows.ship]
on = ["manual"]

[[workflows.ship.steps]]
id = "deploy"
agent = { role = "implementer", driver = "scripted", script = ".smithers/deploy.json", prompt = "Deploy" }
"#;

/// A run of the default organization started by `starter`, its one step
/// running and waiting on a tool call's approval (`admin_only` or not);
/// returns the approval's id. Its stored definition is a real one, so the
/// run can be shown like any other.
pub async fn waiting_on_approval(runs: &Runs, starter: &str, admin_only: bool) -> String {
    let run = runs
        .create(NewRun {
            organization_id: DEFAULT_ORGANIZATION,
            workflow: "ship",
            repository: "/srv/repo",
            trigger: "manual",
            definition: json!({
                "file": SHIP,
                "workflow": "ship",
                "policy_name": smithers_engine::run::BUILT_IN_POLICY,
                "policy": smithers_engine::init::DEFAULT_POLICY,
                "scripts": {".smithers/deploy.json": "[]"},
                "base": "0000000000000000000000000000000000000000",
            }),
            requested_by: starter,
            steps: vec![("deploy".into(), "agent".into())],
        })
        .await
        .unwrap();
    runs.transition(
        &run.id,
        &[RunState::Queued],
        RunState::Running,
        Some("o"),
        None,
        json!(null),
    )
    .await
    .unwrap();
    runs.step_transition(
        &run.id,
        0,
        &[StepState::Pending],
        StepState::Running,
        StepUpdate {
            attempt: true,
            ..StepUpdate::default()
        },
    )
    .await
    .unwrap();
    runs.request_approval(
        &run.id,
        NewApproval {
            position: 0,
            kind: ApprovalKind::ToolCall,
            admin_only,
            role: Some("implementer"),
            summary: "run_command: cargo publish",
            details: json!({"reason": "no rule matches"}),
            ttl: None,
        },
    )
    .await
    .unwrap()
    .id
}
