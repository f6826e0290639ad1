#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Workflow runs over the store, on SQLite and PostgreSQL: every state
//! change is a compare-and-set committed with its audit event, finished
//! runs and steps are frozen by the database, and the log is append-only.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;
use smithers_secrets::Keyring;
use smithers_store::{
    Answer, ApprovalKind, ApprovalState, Error, LogStream, ModelTurn, NewApproval, NewModelTurn,
    NewRun, NewToolCall, Role, RunState, Runs, Secrets, StepState, StepUpdate, Store, ToolCallKey,
    ToolCallState, ToolResult,
};
use smithers_test_support::audit::all_events;
use smithers_test_support::engine::KEYRING;
use smithers_test_support::{on_both_backends, signer};
use sqlx::Executor;

fn runs(store: &Store) -> Runs {
    Runs::new(store.clone(), Arc::new(signer()))
}

fn new_run() -> NewRun<'static> {
    NewRun {
        organization_id: "local",
        workflow: "fix-tests",
        repository: "/srv/repo",
        trigger: "manual",
        definition: json!({"steps": ["plan", "test"]}),
        requested_by: "admin",
        steps: vec![
            ("plan".into(), "agent".into()),
            ("test".into(), "run".into()),
        ],
    }
}

/// The organization's audit log verifies.
async fn verify(store: &Store) {
    let report = store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap();
    assert!(report.is_ok());
}

async fn actions(store: &Store) -> Vec<String> {
    all_events(store)
        .await
        .into_iter()
        .map(|e| e.event.action)
        .collect()
}

on_both_backends!(a_run_lives_through_its_states_with_an_event_each, |db| {
    let r = runs(&db.store);
    let run = r.create(new_run()).await.unwrap();
    assert_eq!(run.state, RunState::Queued);
    let steps = r.steps(&run.id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.state == StepState::Pending));
    assert_eq!(
        r.get(&run.id).await.unwrap().definition,
        json!({"steps": ["plan", "test"]})
    );

    let started = r
        .transition(
            &run.id,
            &[RunState::Queued],
            RunState::Running,
            Some("owner-1"),
            None,
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(started.state, RunState::Running);
    assert_eq!(started.owner.as_deref(), Some("owner-1"));
    assert!(started.started_at.is_some());
    let step = r
        .step_transition(
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
    assert_eq!((step.state, step.attempts), (StepState::Running, 1));
    let step = r
        .step_transition(
            &run.id,
            0,
            &[StepState::Running],
            StepState::Succeeded,
            StepUpdate {
                exit_code: Some(0),
                details: Some(json!({"turns": 3})),
                ..StepUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (step.state, step.exit_code),
        (StepState::Succeeded, Some(0))
    );
    assert!(step.finished_at.is_some());
    // A step that is already done cannot start again: compare-and-set.
    let e = r
        .step_transition(
            &run.id,
            0,
            &[StepState::Pending],
            StepState::Running,
            StepUpdate::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    r.step_transition(
        &run.id,
        1,
        &[StepState::Pending],
        StepState::Running,
        StepUpdate {
            attempt: true,
            ..StepUpdate::default()
        },
    )
    .await
    .unwrap();
    r.step_transition(
        &run.id,
        1,
        &[StepState::Running],
        StepState::Failed,
        StepUpdate {
            exit_code: Some(101),
            error: Some("tests failed"),
            ..StepUpdate::default()
        },
    )
    .await
    .unwrap();
    r.record_purge(
        &run.id,
        &json!({"removed": ["directory x"], "remaining": []}),
    )
    .await
    .unwrap();
    let failed = r
        .transition(
            &run.id,
            &[RunState::Running],
            RunState::Failed,
            None,
            Some("step test failed"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(failed.state, RunState::Failed);
    assert_eq!(failed.error.as_deref(), Some("step test failed"));
    assert!(failed.finished_at.is_some());
    assert_eq!(failed.purge.unwrap()["remaining"], json!([]));
    assert_eq!(
        actions(&db.store).await,
        [
            "run.created",
            "run.running",
            "step.running",
            "step.succeeded",
            "step.running",
            "step.failed",
            "run.failed",
            "run.history_destroyed"
        ]
    );
    // A finished run does not move again, through the service or by hand.
    let e = r
        .transition(
            &run.id,
            &[RunState::Running],
            RunState::Succeeded,
            None,
            None,
            json!(null),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    let by_hand = db
        .store
        .pool()
        .execute(sqlx::query("UPDATE runs SET state = 'succeeded' WHERE id = $1").bind(&run.id))
        .await;
    assert!(by_hand.is_err(), "a finished run was changed by hand");
    let by_hand = db
        .store
        .pool()
        .execute(
            sqlx::query(
                "UPDATE run_steps SET state = 'succeeded' WHERE run_id = $1 AND position = 1",
            )
            .bind(&run.id),
        )
        .await;
    assert!(by_hand.is_err(), "a finished step was changed by hand");
    for delete in ["DELETE FROM runs", "DELETE FROM run_steps"] {
        assert!(db.store.pool().execute(delete).await.is_err(), "{delete}");
    }
    verify(&db.store).await;
});

on_both_backends!(a_resumed_run_changes_hands_and_says_so, |db| {
    let r = runs(&db.store);
    let run = r.create(new_run()).await.unwrap();
    r.transition(
        &run.id,
        &[RunState::Queued],
        RunState::Running,
        Some("dead-owner"),
        None,
        json!(null),
    )
    .await
    .unwrap();
    r.transition(
        &run.id,
        &[RunState::Running],
        RunState::WaitingApproval,
        None,
        None,
        json!({"approval": "a1"}),
    )
    .await
    .unwrap();
    r.transition(
        &run.id,
        &[RunState::WaitingApproval],
        RunState::Running,
        None,
        None,
        json!(null),
    )
    .await
    .unwrap();
    let resumed = r
        .transition(
            &run.id,
            &[RunState::Running],
            RunState::Running,
            Some("new-owner"),
            None,
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(resumed.owner.as_deref(), Some("new-owner"));
    assert_eq!(resumed.started_at, r.get(&run.id).await.unwrap().started_at);
    let all = actions(&db.store).await;
    assert_eq!(
        all[1..],
        [
            "run.running",
            "run.waiting_approval",
            "run.continued",
            "run.resumed"
        ]
    );
    // Listing: newest first; unfinished only on request.
    let other = r.create(new_run()).await.unwrap();
    r.transition(
        &other.id,
        &[RunState::Queued],
        RunState::Cancelled,
        None,
        Some("by admin"),
        json!(null),
    )
    .await
    .unwrap();
    let listed: Vec<String> = r
        .list("local", false, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [other.id.clone(), run.id.clone()]);
    let active: Vec<String> = r
        .list("local", true, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active.as_slice(), std::slice::from_ref(&run.id));
    assert!(matches!(
        r.get("no-such-run").await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert!(matches!(
        r.create(NewRun {
            steps: Vec::new(),
            ..new_run()
        })
        .await
        .unwrap_err(),
        Error::Invalid(_)
    ));
    verify(&db.store).await;
});

on_both_backends!(the_log_is_numbered_in_order_and_append_only, |db| {
    let r = runs(&db.store);
    let run = r.create(new_run()).await.unwrap();
    // Concurrent writers still number every line once.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let r = r.clone();
        let id = run.id.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                r.log(&id, Some(0), LogStream::Stdout, &format!("w{i} line {j}"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    r.log(&run.id, None, LogStream::Smithers, "done")
        .await
        .unwrap();
    let lines = r.logs(&run.id, 0, 1000).await.unwrap();
    assert_eq!(lines.len(), 81);
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=81).collect::<Vec<_>>());
    assert_eq!(lines[80].stream, LogStream::Smithers);
    assert_eq!(lines[80].position, None);
    // Paging from a line on.
    let tail = r.logs(&run.id, 78, 10).await.unwrap();
    assert_eq!(tail.iter().map(|l| l.seq).collect::<Vec<_>>(), [79, 80, 81]);
    for tamper in ["UPDATE run_log SET text = 'x'", "DELETE FROM run_log"] {
        assert!(db.store.pool().execute(tamper).await.is_err(), "{tamper}");
    }
    assert!(matches!(
        r.log("no-such-run", None, LogStream::Stdout, "x")
            .await
            .unwrap_err(),
        Error::NotFound(_)
    ));
});

on_both_backends!(model_turns_are_recorded_once_and_never_change, |db| {
    let r = runs(&db.store);
    let secrets = Secrets::new(
        db.store.clone(),
        Arc::new(Keyring::parse(KEYRING).unwrap()),
        Arc::new(signer()),
    );
    let run = running(&r).await;
    let key = secrets.history_key(&run).await.unwrap();
    let answer = |n: u32| json!({"id": format!("resp-{n}"), "choices": [{"index": 0}]});
    let seal = |n: u32, value: &serde_json::Value| {
        let item = ModelTurn::item(0, 1, n);
        key.seal(
            &item.each_ref().map(String::as_str),
            value.to_string().as_bytes(),
        )
        .unwrap()
    };
    for n in 0..2 {
        r.record_model_turn(
            &run,
            NewModelTurn {
                position: 0,
                attempt: 1,
                turn: n,
                driver: "openai",
                model: "gpt-4.1",
                sealed_response: &seal(n, &answer(n)),
                calls: 1 - n,
                input_tokens: Some(100 + u64::from(n)),
                output_tokens: None,
            },
        )
        .await
        .unwrap();
    }
    let turns = r.model_turns(&run, 0, 1).await.unwrap();
    assert_eq!(turns.len(), 2);
    // Stored sealed; the same key, fetched again, opens it.
    let Answer::Sealed(sealed) = &turns[0].response else {
        panic!("stored plain: {:?}", turns[0].response)
    };
    assert!(!String::from_utf8_lossy(sealed).contains("resp-0"));
    let again = secrets.history_key(&run).await.unwrap();
    let item = ModelTurn::item(0, 1, 0);
    let opened = again
        .open(&item.each_ref().map(String::as_str), sealed)
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&opened).unwrap(),
        answer(0)
    );
    assert_eq!(turns[1].calls, 0);
    assert_eq!(turns[1].input_tokens, Some(101));
    assert_eq!(turns[1].output_tokens, None);
    assert!(r.model_turns(&run, 0, 2).await.unwrap().is_empty());
    assert_eq!(r.all_model_turns(&run).await.unwrap().len(), 2);
    // A second answer for a recorded turn never replaces the first.
    let conflict = r
        .record_model_turn(
            &run,
            NewModelTurn {
                position: 0,
                attempt: 1,
                turn: 1,
                driver: "openai",
                model: "gpt-4.1",
                sealed_response: &seal(1, &json!({"id": "other"})),
                calls: 3,
                input_tokens: None,
                output_tokens: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(conflict, Error::Conflict(_)), "{conflict}");
    assert_eq!(
        r.model_turns(&run, 0, 1).await.unwrap()[1].response,
        turns[1].response
    );
    // An answer recorded plain, as before history keys existed.
    db.store
        .pool()
        .execute(
            format!(
                "INSERT INTO model_turns (run_id, position, attempt, turn, driver, model, \
                   response, calls, created_at) \
                 VALUES ('{run}', 0, 1, 2, 'openai', 'gpt-4.1', '{{\"id\": \"legacy\"}}', 0, 1)"
            )
            .as_str(),
        )
        .await
        .unwrap();
    for tamper in [
        "UPDATE model_turns SET response = '{}'",
        "UPDATE model_turns SET sealed_response = NULL",
        "DELETE FROM model_turns",
        "DELETE FROM model_turns WHERE sealed_response IS NULL",
    ] {
        assert!(db.store.pool().execute(tamper).await.is_err(), "{tamper}");
    }

    // The run ends: its key goes in the same transaction.
    r.transition(
        &run,
        &[RunState::Running],
        RunState::Succeeded,
        None,
        None,
        json!({}),
    )
    .await
    .unwrap();
    let ended = r.get(&run).await.unwrap();
    assert_eq!(ended.history_destroyed_at, ended.finished_at);
    let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM run_history_keys")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(keys, 0);
    let gone = secrets.history_key(&run).await.unwrap_err();
    assert!(
        matches!(&gone, Error::Conflict(m) if m.contains("destroyed")),
        "{gone}"
    );
    // The sealed answers stay, as ciphertext; the plain one is gone.
    let left = r.all_model_turns(&run).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|t| matches!(t.response, Answer::Sealed(_))));
    for tamper in [
        "DELETE FROM model_turns",
        "UPDATE model_turns SET calls = 9",
        "UPDATE runs SET history_destroyed_at = NULL",
        "UPDATE runs SET history_destroyed_at = 5",
    ] {
        assert!(db.store.pool().execute(tamper).await.is_err(), "{tamper}");
    }
    let events = all_events(&db.store).await;
    let destroyed: Vec<_> = events
        .iter()
        .filter(|e| e.event.action == "run.history_destroyed")
        .collect();
    assert_eq!(destroyed.len(), 1);
    let details = &destroyed[0].event.details;
    assert_eq!(details["key_destroyed"], true);
    assert_eq!(details["sealed_answers"], 2);
    assert_eq!(details["plain_answers_deleted"], 1);
    let actions = actions(&db.store).await;
    assert_eq!(actions.iter().filter(|a| *a == "agent.turn").count(), 2);
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "run.history_key_created")
            .count(),
        1
    );
    // It follows the run's own end.
    let end = actions.iter().position(|a| a == "run.succeeded").unwrap();
    assert_eq!(actions[end + 1], "run.history_destroyed");
    verify(&db.store).await;
});

on_both_backends!(retention_drops_old_runs_logs_and_outputs_only, |db| {
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let c = clock.clone();
    let r = runs(&db.store).with_clock(move || c.load(Ordering::SeqCst));
    let key = ToolCallKey {
        position: 0,
        attempt: 1,
        seq: 0,
    };
    let mut ids = Vec::new();
    for n in 0..2 {
        let run = running(&r).await;
        r.log(
            &run,
            Some(0),
            LogStream::Stdout,
            &format!("line of run {n}"),
        )
        .await
        .unwrap();
        r.decide_tool_call(
            &run,
            NewToolCall {
                key,
                tool: "run_command",
                subject: "implementer",
                arguments: json!({"command": "make"}),
                verdict: "allow",
                decision: json!({}),
                refusal: None,
            },
        )
        .await
        .unwrap();
        r.start_tool_call(&run, key).await.unwrap();
        r.finish_tool_call(
            &run,
            key,
            ToolCallState::Completed,
            &ToolResult {
                ok: true,
                exit_code: Some(0),
                output: format!("output of run {n}"),
            },
            None,
        )
        .await
        .unwrap();
        ids.push(run);
    }
    // The first ends at 2 s; the second is still running.
    clock.store(2_000_000, Ordering::SeqCst);
    r.transition(
        &ids[0],
        &[RunState::Running],
        RunState::Succeeded,
        None,
        None,
        json!({}),
    )
    .await
    .unwrap();
    for refused in ["DELETE FROM run_log", "UPDATE tool_calls SET output = NULL"] {
        assert!(db.store.pool().execute(refused).await.is_err(), "{refused}");
    }

    let would = r.drop_logs("local", 3_000_000, true).await.unwrap();
    assert_eq!((would.runs, would.lines, would.outputs), (1, 1, 1));
    assert_eq!(r.logs(&ids[0], 0, 10).await.unwrap().len(), 1);
    // Finished after the cutoff: nothing due.
    assert_eq!(
        r.drop_logs("local", 1_500_000, false).await.unwrap().runs,
        0
    );

    let dropped = r.drop_logs("local", 3_000_000, false).await.unwrap();
    assert_eq!(dropped, would);
    assert!(r.logs(&ids[0], 0, 10).await.unwrap().is_empty());
    let call = r.tool_call(&ids[0], key).await.unwrap().unwrap();
    let result = call.result.unwrap();
    assert_eq!(
        (result.ok, result.exit_code, result.output.as_str()),
        (true, Some(0), "")
    );
    assert_eq!(call.arguments, json!({"command": "make"}));
    assert!(r.get(&ids[0]).await.unwrap().logs_dropped_at.is_some());
    // A live run cannot be marked: that would unlock deleting its rows.
    for marker in [
        format!(
            "UPDATE runs SET logs_dropped_at = 1 WHERE id = '{}'",
            ids[1]
        ),
        format!(
            "UPDATE runs SET history_destroyed_at = 1 WHERE id = '{}'",
            ids[1]
        ),
    ] {
        assert!(
            db.store.pool().execute(marker.as_str()).await.is_err(),
            "{marker}"
        );
    }
    // The running run keeps everything, and its rows stay protected.
    assert_eq!(r.logs(&ids[1], 0, 10).await.unwrap().len(), 1);
    let kept = r.tool_call(&ids[1], key).await.unwrap().unwrap();
    assert_eq!(kept.result.unwrap().output, "output of run 1");
    assert!(
        db.store
            .pool()
            .execute("DELETE FROM run_log")
            .await
            .is_err()
    );
    // A dropped call still cannot change otherwise.
    assert!(
        db.store
            .pool()
            .execute("UPDATE tool_calls SET ok = 0 WHERE output IS NULL")
            .await
            .is_err()
    );
    let actions = actions(&db.store).await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "retention.logs_dropped")
            .count(),
        1
    );
    // Again: nothing more.
    assert_eq!(
        r.drop_logs("local", 3_000_000, false).await.unwrap().runs,
        0
    );
    verify(&db.store).await;
});

on_both_backends!(
    a_run_that_ended_before_history_keys_loses_its_plain_answers,
    |db| {
        let r = runs(&db.store);
        let run = running(&r).await;
        // As it was before migration 0016: an answer recorded plain, and the
        // run ended without its history being destroyed.
        db.store
            .pool()
            .execute(
                format!(
                    "INSERT INTO model_turns (run_id, position, attempt, turn, driver, model, \
                   response, calls, created_at) \
                 VALUES ('{run}', 0, 1, 0, 'openai', 'gpt-4.1', '{{\"id\": \"old\"}}', 0, 1)"
                )
                .as_str(),
            )
            .await
            .unwrap();
        r.transition(
            &run,
            &[RunState::Running],
            RunState::Succeeded,
            None,
            None,
            json!({}),
        )
        .await
        .unwrap();
        // Set once and never taken back: refused…
        let unset = format!("UPDATE runs SET history_destroyed_at = NULL WHERE id = '{run}'");
        assert!(db.store.pool().execute(unset.as_str()).await.is_err());
        // …so the state a run that ended before migration 0016 is in takes
        // the guard out of the way, as the database had no guard then.
        let unguard = match db.store.backend() {
            smithers_store::Backend::Sqlite => "DROP TRIGGER runs_markers_are_final",
            smithers_store::Backend::Postgres => {
                "ALTER TABLE runs DISABLE TRIGGER runs_markers_are_final"
            }
        };
        db.store.pool().execute(unguard).await.unwrap();
        db.store.pool().execute(unset.as_str()).await.unwrap();
        db.store
            .pool()
            .execute(
                format!(
                    "INSERT INTO model_turns (run_id, position, attempt, turn, driver, model, \
                   response, calls, created_at) \
                 VALUES ('{run}', 0, 1, 1, 'openai', 'gpt-4.1', '{{\"id\": \"older\"}}', 0, 1)"
                )
                .as_str(),
            )
            .await
            .unwrap();
        assert_eq!(r.all_model_turns(&run).await.unwrap().len(), 1);
        assert_eq!(r.destroy_leftover_histories("local").await.unwrap(), 1);
        assert!(r.all_model_turns(&run).await.unwrap().is_empty());
        assert!(r.get(&run).await.unwrap().history_destroyed_at.is_some());
        assert_eq!(r.destroy_leftover_histories("local").await.unwrap(), 0);
        verify(&db.store).await;
    }
);

/// A run started by `admin`, running its first step.
async fn running(r: &Runs) -> String {
    let run = r.create(new_run()).await.unwrap();
    r.transition(
        &run.id,
        &[RunState::Queued],
        RunState::Running,
        Some("o"),
        None,
        json!(null),
    )
    .await
    .unwrap();
    r.step_transition(
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
    run.id
}

fn ask(admin_only: bool, ttl: Option<std::time::Duration>) -> NewApproval<'static> {
    NewApproval {
        position: 0,
        kind: ApprovalKind::ToolCall,
        admin_only,
        role: Some("implementer"),
        summary: "run_command: cargo publish",
        details: json!({"tool": "run_command", "command": "cargo publish"}),
        ttl,
    }
}

on_both_backends!(
    approvals_are_decided_once_by_someone_else_and_admins_for_admin_only,
    |db| {
        let orgs = db.store.organizations();
        orgs.add_user("local", "bob", Role::Admin).await.unwrap();
        orgs.add_user("local", "carol", Role::Member).await.unwrap();
        let r = runs(&db.store);
        let run = running(&r).await;
        let asked = r.request_approval(&run, ask(false, None)).await.unwrap();
        assert_eq!(asked.state, ApprovalState::Pending);
        assert_eq!(asked.requested_by, "admin");
        assert_eq!(r.get(&run).await.unwrap().state, RunState::WaitingApproval);
        assert_eq!(
            r.steps(&run).await.unwrap()[0].state,
            StepState::WaitingApproval
        );
        // Only a running step can ask.
        assert!(matches!(
            r.request_approval(&run, ask(false, None))
                .await
                .unwrap_err(),
            Error::Conflict(_)
        ));
        assert_eq!(r.approvals("local", true, 10).await.unwrap().len(), 1);
        // Not by the one who started the run; not by a stranger; a rejection has a reason.
        let e = r
            .decide_approval("local", "admin", &asked.id, true, None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Denied(_)) && e.to_string().contains("started run"),
            "{e}"
        );
        let e = r
            .decide_approval("local", "mallory", &asked.id, true, None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Denied(_)), "{e}");
        let e = r
            .decide_approval("local", "carol", &asked.id, false, Some(" "))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        let e = r
            .decide_approval("elsewhere", "carol", &asked.id, true, None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e}");
        // A member approves, once.
        let decided = r
            .decide_approval("local", "carol", &asked.id, true, Some("fine"))
            .await
            .unwrap();
        assert_eq!(decided.state, ApprovalState::Approved);
        assert_eq!(decided.decided_by.as_deref(), Some("carol"));
        let e = r
            .decide_approval("local", "bob", &asked.id, false, Some("no"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("already approved by carol"), "{e}");
        assert!(r.approvals("local", true, 10).await.unwrap().is_empty());
        let by_hand = db
            .store
            .pool()
            .execute(
                sqlx::query("UPDATE approvals SET state = 'rejected' WHERE id = $1")
                    .bind(&asked.id),
            )
            .await;
        assert!(by_hand.is_err(), "a decided approval was changed by hand");

        // Admin-only: a member cannot, an admin can; a rejection keeps its reason.
        r.transition(
            &run,
            &[RunState::WaitingApproval],
            RunState::Running,
            None,
            None,
            json!(null),
        )
        .await
        .unwrap();
        r.step_transition(
            &run,
            0,
            &[StepState::WaitingApproval],
            StepState::Running,
            StepUpdate::default(),
        )
        .await
        .unwrap();
        let admin_only = r.request_approval(&run, ask(true, None)).await.unwrap();
        let e = r
            .decide_approval("local", "carol", &admin_only.id, true, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("admin-only"), "{e}");
        let rejected = r
            .decide_approval(
                "local",
                "bob",
                &admin_only.id,
                false,
                Some("not on a Friday"),
            )
            .await
            .unwrap();
        assert_eq!(rejected.state, ApprovalState::Rejected);
        assert_eq!(rejected.comment.as_deref(), Some("not on a Friday"));
        let all = actions(&db.store).await;
        for expected in [
            "approval.requested",
            "step.waiting_approval",
            "run.waiting_approval",
            "approval.approved",
            "approval.rejected",
        ] {
            assert!(all.iter().any(|a| a == expected), "{expected} in {all:?}");
        }
        verify(&db.store).await;
    }
);

on_both_backends!(an_expired_approval_is_a_rejection, |db| {
    db.store
        .organizations()
        .add_user("local", "bob", Role::Admin)
        .await
        .unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let at = clock.clone();
    let r = runs(&db.store).with_clock(move || at.load(Ordering::SeqCst));
    let run = running(&r).await;
    let asked = r
        .request_approval(&run, ask(false, Some(std::time::Duration::from_secs(60))))
        .await
        .unwrap();
    assert_eq!(asked.expires_at, Some(1_000_000 + 60_000_000));
    clock.fetch_add(59_000_000, Ordering::SeqCst);
    assert!(r.expire_approvals(&run).await.unwrap().is_empty());
    clock.fetch_add(1_000_000, Ordering::SeqCst);
    let e = r
        .decide_approval("local", "bob", &asked.id, true, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(
        r.approval(&asked.id).await.unwrap().state,
        ApprovalState::Expired
    );
    assert!(r.expire_approvals(&run).await.unwrap().is_empty());
    assert!(
        actions(&db.store)
            .await
            .iter()
            .any(|a| a == "approval.expired")
    );
});
