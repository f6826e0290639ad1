//! The approvals service on both backends: who may decide what, and that a
//! refusal changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ApprovalState, ErrorKind, Role};
use smithers_app::{App, Config, Principal, Via};
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::runs::waiting_on_approval;
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

async fn principal(app: &App, user: &str) -> Principal {
    app.principal(DEFAULT_ORGANIZATION, user, Via::Cli)
        .await
        .unwrap()
}

on_both_backends!(who_decides_and_what_a_refusal_leaves, |db| {
    let app = app(db).await;
    let admin = principal(&app, "admin").await;
    app.users()
        .add(&admin, "carol", Role::Member)
        .await
        .unwrap();
    app.users().add(&admin, "dave", Role::Member).await.unwrap();
    let carol = principal(&app, "carol").await;
    let dave = principal(&app, "dave").await;
    let approvals = app.approvals();

    let id = waiting_on_approval(&app.engine().runs, "carol", false).await;
    let listed = approvals.list(&dave, false).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].workflow.as_str(), listed[0].state),
        ("ship", ApprovalState::Pending)
    );
    // The starter may not decide; nothing changes.
    let e = approvals.decide(&carol, &id, true, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert_eq!(
        approvals.show(&dave, &id).await.unwrap().state,
        ApprovalState::Pending
    );
    // A rejection needs a reason.
    let e = approvals.decide(&dave, &id, false, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    let decided = approvals
        .decide(&dave, &id, true, Some("fine"))
        .await
        .unwrap();
    assert_eq!(
        (decided.state, decided.decided_by.as_deref()),
        (ApprovalState::Approved, Some("dave"))
    );
    // Once only.
    let e = approvals
        .decide(&admin, &id, false, Some("late"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");

    // Admin-only: a member is refused, an admin decides.
    let id = waiting_on_approval(&app.engine().runs, "carol", true).await;
    let e = approvals.decide(&dave, &id, true, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Forbidden, "{e}");
    assert_eq!(
        approvals.show(&admin, &id).await.unwrap().state,
        ApprovalState::Pending
    );
    let decided = approvals
        .decide(&admin, &id, false, Some("not today"))
        .await
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Rejected);

    // Nothing of another organization, nothing unknown.
    let e = approvals.show(&admin, "no-such-id").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(approvals.list(&admin, true).await.unwrap().len(), 2);
    assert!(approvals.list(&admin, false).await.unwrap().is_empty());
});
