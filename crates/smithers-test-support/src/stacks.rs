//! A chain of pull requests recorded in a store as the GitHub App records
//! one, for the tests of what reads and syncs stacks.

use std::sync::Arc;

use serde_json::json;
use smithers_store::{
    Cause, InstallationChange, InstallationRef, NewGithubStack, NewRun, NewStackMember,
    RepositoryRef, Runs, Store,
};

use crate::signer;

/// Records installation 7 on `acme` (repository 1, `acme/api`) of
/// organization `local` if it is not yet, a run of it, and stack `id` of
/// that run: three members on `smithers/parts/1..3` onto `feature`, with
/// pull requests #2, #3 and #4. Answers the run's id. Panics on a store
/// error.
pub async fn recorded_stack(store: &Store, id: &str) -> String {
    let github = store.github();
    let created = InstallationChange::Created(
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
    let cause = Cause {
        delivery: "d-stack",
        sender: Some("octocat"),
    };
    github
        .apply(&signer(), "local", &created, cause)
        .await
        .expect("the installation is recorded");
    let run = Runs::new(store.clone(), Arc::new(signer()))
        .create(NewRun {
            organization_id: "local",
            workflow: "parts",
            repository: "acme/api",
            trigger: "pull_request",
            definition: json!({"steps": ["parts"]}),
            requested_by: "github",
            steps: vec![("parts".into(), "run".into())],
        })
        .await
        .expect("the run is recorded")
        .id;
    let shas = [
        "0".repeat(40),
        "1".repeat(40),
        "2".repeat(40),
        "3".repeat(40),
    ];
    let branches = ["smithers/parts/1", "smithers/parts/2", "smithers/parts/3"];
    let titles = ["Add part a", "Add part b", "Add part c"];
    github
        .create_stack(&NewGithubStack {
            id,
            organization_id: "local",
            installation_id: 7,
            repository_id: 1,
            repository: "acme/api",
            run_id: &run,
            base: "feature",
            members: (0..3)
                .map(|i| NewStackMember {
                    branch: branches[i],
                    title: titles[i],
                    built_on: &shas[i],
                    head: &shas[i + 1],
                })
                .collect(),
        })
        .await
        .expect("the stack is recorded");
    let mut stack = github
        .stack(id)
        .await
        .expect("the stack reads back")
        .expect("the stack exists");
    for (n, m) in (2..).zip(stack.members.iter_mut()) {
        m.pull_number = Some(n);
        github
            .update_stack_member(id, m)
            .await
            .expect("the pull request is recorded");
    }
    run
}
