//! The stacks service on both backends: a member lists and shows the
//! organization's stacks (another organization's user sees none), syncs an active or paused one
//! (recorded with its audit event, by whom), and is refused a finished
//! one; a token needs runs:read to read and runs:write to sync.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role, Scope};
use smithers_app::{App, Config, Principal, Via};
use smithers_store::{AuditQuery, DEFAULT_ORGANIZATION, StackState};
use smithers_test_support::stacks::recorded_stack;
use smithers_test_support::{TestDb, on_both_backends};

async fn app(db: &TestDb) -> App {
    App::open(Config {
        data_dir: Some(db.dir.path().to_path_buf()),
        database_url: db.url(),
        ..Config::default()
    })
    .await
    .unwrap()
}

async fn member(app: &App) -> Principal {
    let admin = app
        .principal(DEFAULT_ORGANIZATION, "admin", Via::Cli)
        .await
        .unwrap();
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    app.principal(DEFAULT_ORGANIZATION, "carol", Via::Cli)
        .await
        .unwrap()
}

on_both_backends!(a_member_reads_and_syncs_the_organizations_stacks, |db| {
    let app = app(db).await;
    let (id, run) = recorded_stack(
        app.store(),
        &app.engine().runs,
        app.signer(),
        1,
        &[
            ("smithers/parts/1", "Add part a"),
            ("smithers/parts/2", "Add part b"),
            ("smithers/parts/3", "Add part c"),
        ],
    )
    .await;
    let carol = member(&app).await;
    let stacks = app.stacks();

    let list = stacks.list(&carol, false, 50).await.unwrap();
    assert_eq!(list.len(), 1);
    let s = &list[0];
    assert_eq!((&s.id, &s.run), (&id, &run));
    assert_eq!(s.state, "active");
    let shape: Vec<_> = s
        .members
        .iter()
        .map(|m| (m.pull, m.branch.as_str(), m.based_on.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            (Some(101), "smithers/parts/1", Some("main")),
            (Some(102), "smithers/parts/2", Some("smithers/parts/1")),
            (Some(103), "smithers/parts/3", Some("smithers/parts/2")),
        ]
    );

    let of_run = stacks.of_run(&carol, &run).await.unwrap().unwrap();
    assert_eq!(of_run.id, id);
    assert!(
        stacks
            .of_run(&carol, "no-such-run")
            .await
            .unwrap()
            .is_none()
    );

    let synced = stacks.sync(&carol, &id).await.unwrap();
    assert!(synced.sync_requested);
    assert!(stacks.show(&carol, &id).await.unwrap().sync_requested);
    let events = app
        .store()
        .audit()
        .query(&AuditQuery {
            organization_id: DEFAULT_ORGANIZATION.into(),
            action: Some("github.stack_sync_requested".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.actor_id, "carol");
    assert_eq!(events[0].event.resource_id, id);

    // Finished: no longer listed by default, and not synced.
    app.store()
        .github()
        .set_stack_state(&id, &[StackState::Active], StackState::Finished, None)
        .await
        .unwrap();
    assert!(stacks.list(&carol, false, 50).await.unwrap().is_empty());
    assert_eq!(stacks.list(&carol, true, 50).await.unwrap().len(), 1);
    let refused = stacks.sync(&carol, &id).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Conflict, "{refused}");

    let missing = stacks.show(&carol, "stk_nope").await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let bad = stacks.list(&carol, false, 0).await.unwrap_err();
    assert_eq!(bad.kind, ErrorKind::Invalid);
});

on_both_backends!(another_organization_and_narrow_tokens_are_refused, |db| {
    let app = app(db).await;
    let (id, run) = recorded_stack(
        app.store(),
        &app.engine().runs,
        app.signer(),
        2,
        &[
            ("smithers/parts/1", "Add part a"),
            ("smithers/parts/2", "Add part b"),
        ],
    )
    .await;
    let carol = member(&app).await;
    let stacks = app.stacks();

    // Someone of another organization sees none of these, by list or by
    // id, and syncs none.
    let mut stranger = carol.clone();
    stranger.organization = "other".into();
    assert!(stacks.list(&stranger, true, 50).await.unwrap().is_empty());
    let refused = stacks.show(&stranger, &id).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotFound);
    let refused = stacks.sync(&stranger, &id).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotFound);
    assert!(stacks.of_run(&stranger, &run).await.unwrap().is_none());

    // A token reading runs reads stacks but does not sync them.
    let mut reader = carol.clone();
    reader.scopes = Some(vec![Scope::RunsRead]);
    assert_eq!(stacks.show(&reader, &id).await.unwrap().id, id);
    let refused = stacks.sync(&reader, &id).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Forbidden);
    assert!(!stacks.show(&carol, &id).await.unwrap().sync_requested);

    let mut writer = carol.clone();
    writer.scopes = Some(vec![Scope::RunsWrite]);
    assert!(stacks.sync(&writer, &id).await.unwrap().sync_requested);
});
