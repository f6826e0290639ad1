//! A chain of pull requests recorded in a store as the GitHub App records
//! one on delivering a run, for the tests of what reads and syncs stacks.

use serde_json::json;
use smithers_audit::CheckpointSigner;
use smithers_store::{
    Cause, InstallationChange, InstallationRef, NewGithubStack, NewRun, NewStackMember,
    RepositoryRef, Runs, Store,
};

/// The workflow of [`recorded_stack`]'s run.
const STACKED_WORKFLOW: &str = r#"[workflows.fix]
on = ["pull_request.opened"]

[[workflows.fix.steps]]
id = "fix"
run = "sh fix.sh"
"#;

/// Records stack number `n` of pull requests on `acme/api` of
/// organization `local` as the GitHub App does on delivering a run: the
/// App's installation 7 there (again, which changes nothing; its events
/// signed by `signer`), a run of that repository made through `runs`,
/// and its stack `stk_` + `n` in 32 hexadecimal digits onto `main`, with
/// one member per `(branch, title)`, bottom first, each member's pull
/// request opened (#`100n + 1`, #`100n + 2`, …). Answers the stack's id
/// and the run's. Panics on a store error.
pub async fn recorded_stack(
    store: &Store,
    runs: &Runs,
    signer: &CheckpointSigner,
    n: u32,
    members: &[(&str, &str)],
) -> (String, String) {
    let installed = InstallationChange::Created(
        InstallationRef {
            id: 7,
            account_login: "acme".into(),
            account_id: 900,
            account_type: "Organization".into(),
            permissions: json!({"contents": "write", "pull_requests": "write"}),
            repository_selection: "selected".into(),
        },
        vec![RepositoryRef {
            id: 1,
            full_name: "acme/api".into(),
            private: true,
        }],
    );
    let delivery = format!("d-stack-{n}");
    let github = store.github();
    github
        .apply(
            signer,
            "local",
            &installed,
            Cause {
                delivery: &delivery,
                sender: Some("octocat"),
            },
        )
        .await
        .expect("the installation is recorded");
    let run = runs
        .create(NewRun {
            organization_id: "local",
            workflow: "fix",
            repository: "acme/api",
            trigger: "pull_request",
            // A real definition, so that the run can be shown like any
            // other (a stack's pages and answers link to it).
            definition: json!({
                "file": STACKED_WORKFLOW,
                "workflow": "fix",
                "policy_name": ".smithers/policy",
                "policy": "workflow run_command \"sh *\" -> allow\n",
                "scripts": {},
                "base": "0".repeat(40),
            }),
            requested_by: "github",
            steps: vec![("fix".into(), "run".into())],
        })
        .await
        .expect("the run is recorded")
        .id;
    let id = format!("stk_{n:032x}");
    let shas: Vec<String> = (0..=members.len())
        .map(|i| format!("{:040x}", u64::from(n) * 1000 + i as u64))
        .collect();
    let made = github
        .create_stack(&NewGithubStack {
            id: &id,
            organization_id: "local",
            installation_id: 7,
            repository_id: 1,
            repository: "acme/api",
            run_id: &run,
            base: "main",
            members: members
                .iter()
                .enumerate()
                .map(|(i, (branch, title))| NewStackMember {
                    branch,
                    title,
                    built_on: &shas[i],
                    head: &shas[i + 1],
                })
                .collect(),
        })
        .await
        .expect("the stack is recorded");
    assert!(made, "stack {id} is new");
    let recorded = github
        .stack(&id)
        .await
        .expect("the stack reads back")
        .expect("the stack exists");
    for mut member in recorded.members {
        member.pull_number = Some(i64::from(n) * 100 + member.position + 1);
        github
            .update_stack_member(&id, &member)
            .await
            .expect("the pull request is recorded");
    }
    (id, run)
}
