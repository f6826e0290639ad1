#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Chained pull requests' records over the store, on SQLite and
//! PostgreSQL: one stack per run, members bottom first each built on the
//! one below, a member's pending push kept until it is known to have
//! landed, and only the stacks of live installations reconciled.

use std::sync::Arc;

use serde_json::json;
use smithers_store::{
    Cause, InstallationChange, InstallationRef, NewGithubStack, NewRun, NewStackMember,
    RepositoryRef, Runs, StackState, Store,
};
use smithers_test_support::{on_both_backends, signer};

const CAUSE: Cause<'static> = Cause {
    delivery: "d-1",
    sender: Some("octocat"),
};

async fn installed(store: &Store) {
    let created = InstallationChange::Created(
        InstallationRef {
            id: 7,
            account_login: "acme".into(),
            account_id: 900,
            account_type: "Organization".into(),
            permissions: json!({"contents": "write"}),
            repository_selection: "selected".into(),
        },
        vec![RepositoryRef {
            id: 1,
            full_name: "acme/api".into(),
            private: true,
        }],
    );
    store
        .github()
        .apply(&signer(), "local", &created, CAUSE)
        .await
        .unwrap();
}

async fn run(store: &Store) -> String {
    Runs::new(store.clone(), Arc::new(signer()))
        .create(NewRun {
            organization_id: "local",
            workflow: "fix",
            repository: "acme/api",
            trigger: "pull_request",
            definition: json!({"steps": ["fix"]}),
            requested_by: "github",
            steps: vec![("fix".into(), "agent".into())],
        })
        .await
        .unwrap()
        .id
}

fn stack<'a>(id: &'a str, run_id: &'a str, branches: &'a [&'a str]) -> NewGithubStack<'a> {
    const SHAS: [&str; 4] = ["base", "h1", "h2", "h3"];
    NewGithubStack {
        id,
        organization_id: "local",
        installation_id: 7,
        repository_id: 1,
        repository: "acme/api",
        run_id,
        base: "feature",
        members: branches
            .iter()
            .enumerate()
            .map(|(i, b)| NewStackMember {
                branch: b,
                title: "a step",
                built_on: SHAS[i],
                head: SHAS[i + 1],
            })
            .collect(),
    }
}

on_both_backends!(a_run_has_one_stack_its_members_bottom_first, |db| {
    installed(&db.store).await;
    let run_id = run(&db.store).await;
    let github = db.store.github();
    let branches = ["smithers/fix/1", "smithers/fix/2", "smithers/fix/3"];
    assert!(
        github
            .create_stack(&stack("stk_a", &run_id, &branches))
            .await
            .unwrap()
    );
    // The same run's delivery again keeps the first stack.
    assert!(
        !github
            .create_stack(&stack("stk_b", &run_id, &branches))
            .await
            .unwrap()
    );
    assert!(github.stack("stk_b").await.unwrap().is_none());

    let s = github.stack_of_run(&run_id).await.unwrap().unwrap();
    assert_eq!(s.id, "stk_a");
    assert_eq!(s.state, StackState::Active);
    let shape: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            (
                m.position,
                m.branch.as_str(),
                m.parent,
                m.built_on.as_str(),
                m.head.as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (0, "smithers/fix/1", -1, "base", "h1"),
            (1, "smithers/fix/2", 0, "h1", "h2"),
            (2, "smithers/fix/3", 1, "h2", "h3"),
        ]
    );
    assert!(
        s.members
            .iter()
            .all(|m| !m.merged && m.pull_number.is_none())
    );
});

on_both_backends!(a_pending_push_is_kept_until_recorded, |db| {
    installed(&db.store).await;
    let run_id = run(&db.store).await;
    let github = db.store.github();
    github
        .create_stack(&stack(
            "stk_a",
            &run_id,
            &["smithers/fix/1", "smithers/fix/2"],
        ))
        .await
        .unwrap();
    let mut m = github.stack("stk_a").await.unwrap().unwrap().members[1].clone();
    m.pull_number = Some(12);
    m.pending = Some(("h2b".into(), "main2".into(), -1));
    github.update_stack_member("stk_a", &m).await.unwrap();
    let read = github.stack("stk_a").await.unwrap().unwrap();
    assert_eq!(read.members[1], m);
    // The first member is untouched.
    assert_eq!(read.members[0].pull_number, None);

    m.head = "h2b".into();
    m.built_on = "main2".into();
    m.parent = -1;
    m.pending = None;
    m.merged = true;
    github.update_stack_member("stk_a", &m).await.unwrap();
    assert_eq!(github.stack("stk_a").await.unwrap().unwrap().members[1], m);
});

on_both_backends!(
    only_live_stacks_of_live_installations_are_reconciled,
    |db| {
        installed(&db.store).await;
        let github = db.store.github();
        let (r1, r2, r3) = (
            run(&db.store).await,
            run(&db.store).await,
            run(&db.store).await,
        );
        github
            .create_stack(&stack("stk_1", &r1, &["smithers/a/1"]))
            .await
            .unwrap();
        github
            .create_stack(&stack("stk_2", &r2, &["smithers/b/1"]))
            .await
            .unwrap();
        github
            .create_stack(&stack("stk_3", &r3, &["smithers/a/1", "smithers/a/2"]))
            .await
            .unwrap();

        // A paused stack is still reconciled (its cause may go away); a
        // finished or superseded one is not.
        assert!(
            github
                .set_stack_state(
                    "stk_1",
                    &[StackState::Active],
                    StackState::Paused,
                    Some("pushed")
                )
                .await
                .unwrap()
        );
        let s1 = github.stack("stk_1").await.unwrap().unwrap();
        assert_eq!(
            (s1.state, s1.paused_reason.as_deref()),
            (StackState::Paused, Some("pushed"))
        );
        assert!(
            github
                .set_stack_state(
                    "stk_2",
                    &[StackState::Active, StackState::Paused],
                    StackState::Finished,
                    None
                )
                .await
                .unwrap()
        );
        // A finished stack does not come back.
        assert!(
            !github
                .set_stack_state("stk_2", &[StackState::Active], StackState::Paused, None)
                .await
                .unwrap()
        );
        assert_eq!(
            github.stacks_to_reconcile().await.unwrap(),
            ["stk_1", "stk_3"]
        );
        assert!(!github.request_stack_sync("stk_2", true).await.unwrap());
        assert!(github.request_stack_sync("stk_1", true).await.unwrap());
        assert!(github.stack("stk_1").await.unwrap().unwrap().sync_requested);

        // Another run's stacks on the same branches, for superseding.
        assert_eq!(
            github
                .stacks_on_branches(1, &["smithers/a/1".into()], &r3)
                .await
                .unwrap(),
            ["stk_1"]
        );
        assert_eq!(
            github
                .stacks("local", Some(StackState::Paused), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(github.stacks("local", None, 10).await.unwrap().len(), 3);

        // A suspended installation's stacks wait.
        github
            .apply(&signer(), "local", &InstallationChange::Suspended(7), CAUSE)
            .await
            .unwrap();
        assert!(github.stacks_to_reconcile().await.unwrap().is_empty());
    }
);
