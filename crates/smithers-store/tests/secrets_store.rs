#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Secrets over the store, on SQLite and PostgreSQL: versions,
//! check-and-set, grants, fail-closed reads, rewrap and key usage.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use smithers_secrets::{Keyring, SecretValue};
use smithers_store::{
    Actor, Backend, Error, GrantBinding, GrantFilter, GrantRequest, GrantState, NewRun,
    ReadRequest, Role, Runs, SecretRef, Secrets, Store, VersionState,
};
use smithers_test_support::audit::all_events;
use smithers_test_support::{on_both_backends, signer};
use sqlx::Executor;

const K_OLD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K_NEW: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const VALUE: &str = "ghp_correct-horse-battery-staple";

fn secrets(store: &Store, keyring: &str) -> Secrets {
    Secrets::new(
        store.clone(),
        Arc::new(Keyring::parse(keyring).unwrap()),
        Arc::new(signer()),
    )
}

fn token(env: &str) -> SecretRef<'_> {
    SecretRef {
        environment: env,
        name: "GITHUB_TOKEN",
    }
}

fn admin() -> Actor {
    Actor::new("local", "admin")
}

fn bob() -> Actor {
    Actor::new("local", "bob")
}

/// `bob` (admin) and `carol` (member) join the default organization.
async fn add_users(store: &Store) {
    let orgs = store.organizations();
    orgs.add_user("local", "bob", Role::Admin).await.unwrap();
    orgs.add_user("local", "carol", Role::Member).await.unwrap();
}

fn purpose(secret: SecretRef<'_>, single_use: bool) -> GrantRequest<'_> {
    GrantRequest {
        secret,
        binding: GrantBinding::Purpose("debug the deploy".into()),
        ttl: Duration::from_secs(600),
        single_use,
    }
}

/// `requester` asks, `admin` (or bob, if admin asked) approves.
async fn approved_grant(s: &Secrets, requester: &Actor, request: &GrantRequest<'_>) -> String {
    let grant = s.request_grant(requester, request).await.unwrap();
    let approver = Actor::new(
        &requester.organization_id,
        if requester.user == "admin" {
            "bob"
        } else {
            "admin"
        },
    );
    s.decide_grant(&approver, &grant.id, true, Some("ok"))
        .await
        .unwrap();
    grant.id
}

async fn actions(store: &Store) -> Vec<String> {
    all_events(store)
        .await
        .into_iter()
        .map(|e| e.event.action)
        .collect()
}

async fn raw_count(store: &Store, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(store.pool()).await.unwrap();
    n
}

/// Makes every audit append fail, as a full disk or a broken log would.
async fn break_audit(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'audit storage failed'; END; $$; \
             CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION audit_broken();"
        }
    };
    store.pool().execute(sql).await.unwrap();
}

async fn repair_audit(store: &Store) {
    let sql = match store.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_broken",
        Backend::Postgres => "DROP TRIGGER audit_broken ON audit_events",
    };
    store.pool().execute(sql).await.unwrap();
}

on_both_backends!(set_grant_read_round_trip, |db| {
    add_users(&db.store).await;
    let s = secrets(&db.store, &format!("k1:{K_OLD}"));
    let v = s
        .set(&admin(), token("prod"), &SecretValue::from(VALUE), None)
        .await
        .unwrap();
    assert_eq!((v.version, v.state), (1, VersionState::Active));
    assert_eq!(v.key_id.as_deref(), Some("k1"));

    // No grant, no value; the refusal is recorded.
    let refused = s
        .read(&bob(), token("prod"), &ReadRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Denied(_)), "{refused}");

    let grant = approved_grant(&s, &bob(), &purpose(token("prod"), false)).await;
    let read = s
        .read(&bob(), token("prod"), &ReadRequest::default())
        .await
        .unwrap();
    assert_eq!(read.value.expose(), VALUE.as_bytes());
    assert_eq!((read.version, read.grant_id.as_str()), (1, grant.as_str()));
    // A multi-use grant reads again until it expires.
    s.read(&bob(), token("prod"), &ReadRequest::default())
        .await
        .unwrap();
    // It is bob's, and for prod only.
    let other_env = s.read(&bob(), token("dev"), &ReadRequest::default()).await;
    assert!(other_env.is_err());
    let not_his = s
        .read(
            &Actor::new("local", "carol"),
            token("prod"),
            &ReadRequest {
                grant_id: Some(&grant),
                ..ReadRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        not_his.to_string().contains("belongs to \"bob\""),
        "{not_his}"
    );

    assert_eq!(
        actions(&db.store).await,
        [
            "secret.set",
            "secret.read_refused",
            "secret.grant.requested",
            "secret.grant.approved",
            "secret.read",
            "secret.read",
            "secret.read_refused",
            "secret.read_refused",
        ]
    );
    // The value is in no event, no listing, no error.
    let events = all_events(&db.store).await;
    for e in &events {
        let text = String::from_utf8(e.event.canonical_bytes(e.seq)).unwrap();
        assert!(!text.contains("horse"), "{text}");
    }
    let listing = format!(
        "{:?} {:?} {:?}",
        s.list("local", None).await.unwrap(),
        s.versions("local", None, "GITHUB_TOKEN").await.unwrap(),
        s.grants("local", GrantFilter::default()).await.unwrap()
    );
    assert!(!listing.contains("horse"));
    assert!(!format!("{read:?}").contains("horse"));
    let report = db
        .store
        .audit()
        .verify("local", &[signer().verifying_key()])
        .await
        .unwrap();
    assert!(report.is_ok());
});

on_both_backends!(versions_rotate_destroy_and_check_and_set, |db| {
    add_users(&db.store).await;
    let s = secrets(&db.store, &format!("k1:{K_OLD}"));
    let a = admin();
    s.set(&a, token("dev"), &SecretValue::from("first-value"), Some(0))
        .await
        .unwrap();
    let again = s
        .set(&a, token("dev"), &SecretValue::from("other-value"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&again, Error::Conflict(m) if m.contains("use rotate")),
        "{again}"
    );
    let missing = s
        .rotate(&a, token("staging"), &SecretValue::from("x-value"), None)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing}");

    let v2 = s
        .rotate(
            &a,
            token("dev"),
            &SecretValue::from("second-value"),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let stale = s
        .rotate(&a, token("dev"), &SecretValue::from("third-value"), Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&stale, Error::Conflict(m) if m.contains("at version 2, not 1")),
        "{stale}"
    );

    let versions = s
        .versions("local", Some("dev"), "GITHUB_TOKEN")
        .await
        .unwrap();
    let states: Vec<_> = versions.iter().map(|v| (v.version, v.state)).collect();
    assert_eq!(
        states,
        [(1, VersionState::Inactive), (2, VersionState::Active)]
    );
    assert!(versions[0].deactivated_at.is_some());

    // The old version stays readable by number, the active one by default.
    approved_grant(&s, &a, &purpose(token("dev"), false)).await;
    let read = |version| {
        let s = s.clone();
        async move {
            s.read(
                &admin(),
                token("dev"),
                &ReadRequest {
                    version,
                    ..ReadRequest::default()
                },
            )
            .await
        }
    };
    assert_eq!(read(None).await.unwrap().value.expose(), b"second-value");
    assert_eq!(read(Some(1)).await.unwrap().value.expose(), b"first-value");

    let destroyed = s.destroy(&a, token("dev"), 1).await.unwrap();
    assert_eq!(destroyed.state, VersionState::Destroyed);
    assert_eq!(
        raw_count(
            &db.store,
            "SELECT COUNT(*) FROM secret_versions WHERE version = 1 \
             AND ciphertext IS NULL AND wrapped_key IS NULL AND key_id IS NULL"
        )
        .await,
        1
    );
    let gone = read(Some(1)).await.unwrap_err();
    assert!(
        matches!(&gone, Error::NotFound(m) if m.contains("destroyed")),
        "{gone}"
    );
    let twice = s.destroy(&a, token("dev"), 1).await.unwrap_err();
    assert!(matches!(twice, Error::Conflict(_)), "{twice}");
    let nine = s.destroy(&a, token("dev"), 9).await.unwrap_err();
    assert!(matches!(nine, Error::NotFound(_)), "{nine}");

    // History is kept: versions cannot be deleted, destroyed ones cannot change.
    assert!(
        db.store
            .pool()
            .execute("DELETE FROM secret_versions")
            .await
            .is_err()
    );
    assert!(
        db.store
            .pool()
            .execute("UPDATE secret_versions SET state = 'active' WHERE version = 1")
            .await
            .is_err()
    );

    // Destroying the active version leaves the secret without a value.
    s.destroy(&a, token("dev"), 2).await.unwrap();
    let none = read(None).await.unwrap_err();
    assert!(
        matches!(&none, Error::NotFound(m) if m.contains("no active version")),
        "{none}"
    );
    let summary = &s.list("local", Some("dev")).await.unwrap()[0];
    assert_eq!(
        (
            summary.active_version,
            summary.latest_version,
            summary.versions
        ),
        (None, 2, 2)
    );
    // A rotation after that gives it a value again, at version 3.
    s.rotate(&a, token("dev"), &SecretValue::from("third-value"), Some(2))
        .await
        .unwrap();
    assert_eq!(read(None).await.unwrap().version, 3);
});

on_both_backends!(concurrent_check_and_set_lets_exactly_one_writer_win, |db| {
    let s = secrets(&db.store, &format!("k1:{K_OLD}"));
    s.set(
        &admin(),
        token("prod"),
        &SecretValue::from("value-zero"),
        None,
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate(
                &admin(),
                token("prod"),
                &SecretValue::new(format!("value-{i}").into_bytes()),
                Some(1),
            )
            .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(v) => {
                assert_eq!(v.version, 2);
                won += 1;
            }
            Err(Error::Conflict(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    let versions = s
        .versions("local", Some("prod"), "GITHUB_TOKEN")
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);
});

on_both_backends!(ciphertext_moved_to_another_row_fails_to_open, |db| {
    db.store
        .organizations()
        .create("acme", "Acme")
        .await
        .unwrap();
    add_users(&db.store).await;
    for user in ["admin", "bob"] {
        db.store
            .organizations()
            .add_user("acme", user, Role::Admin)
            .await
            .unwrap();
    }
    let s = secrets(&db.store, &format!("k1:{K_OLD}"));
    let a = admin();
    s.set(&a, token("prod"), &SecretValue::from(VALUE), None)
        .await
        .unwrap();
    let decoy = SecretValue::from("decoy-value");
    s.set(&a, token("dev"), &decoy, None).await.unwrap();
    let other_name = SecretRef {
        environment: "prod",
        name: "NPM_TOKEN",
    };
    s.set(&a, other_name, &decoy, None).await.unwrap();
    s.rotate(&a, token("prod"), &SecretValue::from("rotated-value"), None)
        .await
        .unwrap();
    let acme = Actor::new("acme", "admin");
    s.set(&acme, token("prod"), &decoy, None).await.unwrap();

    // Copy prod/GITHUB_TOKEN v1's sealed value over each decoy row.
    let copy = |org: &str, env: &str, name: &str, version: i64| {
        format!(
            "UPDATE secret_versions SET \
               wrapped_key = (SELECT wrapped_key FROM secret_versions WHERE organization_id = 'local' \
                  AND environment = 'prod' AND name = 'GITHUB_TOKEN' AND version = 1), \
               ciphertext = (SELECT ciphertext FROM secret_versions WHERE organization_id = 'local' \
                  AND environment = 'prod' AND name = 'GITHUB_TOKEN' AND version = 1) \
             WHERE organization_id = '{org}' AND environment = '{env}' AND name = '{name}' AND version = {version}"
        )
    };
    for sql in [
        copy("local", "dev", "GITHUB_TOKEN", 1),
        copy("local", "prod", "NPM_TOKEN", 1),
        copy("local", "prod", "GITHUB_TOKEN", 2),
        copy("acme", "prod", "GITHUB_TOKEN", 1),
    ] {
        db.store.pool().execute(sql.as_str()).await.unwrap();
    }
    let cases = [
        (admin(), token("dev"), None),
        (admin(), other_name, None),
        (admin(), token("prod"), Some(2)),
        (acme.clone(), token("prod"), None),
    ];
    for (actor, secret, _) in &cases {
        approved_grant(&s, actor, &purpose(*secret, false)).await;
    }
    for (actor, secret, version) in cases {
        let e = s
            .read(
                &actor,
                secret,
                &ReadRequest {
                    version,
                    ..ReadRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Secrets(smithers_secrets::Error::Decrypt)),
            "{e}"
        );
    }
    let failed = actions(&db.store)
        .await
        .into_iter()
        .filter(|a| a == "secret.read_failed")
        .count();
    assert_eq!(failed, 3, "each failed open is recorded");
});

on_both_backends!(
    grants_need_another_admin_and_expire_and_can_be_single_use,
    |db| {
        add_users(&db.store).await;
        let clock = Arc::new(AtomicI64::new(1_800_000_000_000_000));
        let now = clock.clone();
        let s = secrets(&db.store, &format!("k1:{K_OLD}"))
            .with_clock(move || now.load(Ordering::SeqCst));
        let carol = Actor::new("local", "carol");
        s.set(&admin(), token("prod"), &SecretValue::from(VALUE), None)
            .await
            .unwrap();

        // Nobody decides their own request; members decide nothing.
        let own = s
            .request_grant(&bob(), &purpose(token("prod"), true))
            .await
            .unwrap();
        assert_eq!(own.state, GrantState::Pending);
        let e = s
            .decide_grant(&bob(), &own.id, true, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Denied(m) if m.contains("cannot decide it")),
            "{e}"
        );
        let e = s
            .decide_grant(&carol, &own.id, true, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Denied(m) if m.contains("only an admin")),
            "{e}"
        );
        // Pending is not approved.
        let e = s
            .read(&bob(), token("prod"), &ReadRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Denied(_)));
        // Denied stays denied.
        let denied = s
            .decide_grant(&admin(), &own.id, false, Some("not today"))
            .await
            .unwrap();
        assert_eq!(denied.state, GrantState::Denied);
        let e = s
            .decide_grant(&admin(), &own.id, true, None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        let e = s
            .read(
                &bob(),
                token("prod"),
                &ReadRequest {
                    grant_id: Some(&own.id),
                    ..ReadRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("was denied"), "{e}");

        // Single use: one read, then spent.
        let once = approved_grant(&s, &bob(), &purpose(token("prod"), true)).await;
        s.read(&bob(), token("prod"), &ReadRequest::default())
            .await
            .unwrap();
        let e = s
            .read(
                &bob(),
                token("prod"),
                &ReadRequest {
                    grant_id: Some(&once),
                    ..ReadRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("spent"), "{e}");

        // Expiry: valid until its TTL has passed since approval.
        let timed = approved_grant(&s, &carol, &purpose(token("prod"), false)).await;
        clock.fetch_add(599_000_000, Ordering::SeqCst);
        s.read(&carol, token("prod"), &ReadRequest::default())
            .await
            .unwrap();
        clock.fetch_add(1_000_000, Ordering::SeqCst);
        let e = s
            .read(
                &carol,
                token("prod"),
                &ReadRequest {
                    grant_id: Some(&timed),
                    ..ReadRequest::default()
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("has expired"), "{e}");
        let listed = s.grants("local", GrantFilter::default()).await.unwrap();
        let timed_state = listed.iter().find(|g| g.id == timed).unwrap().state;
        assert_eq!(timed_state, GrantState::Expired);
        let open = s
            .grants(
                "local",
                GrantFilter {
                    open_only: true,
                    ..GrantFilter::default()
                },
            )
            .await
            .unwrap();
        assert!(open.is_empty(), "{open:?}");

        // Bound to a run: only that run reads with it.
        let run = GrantRequest {
            secret: token("prod"),
            binding: GrantBinding::Run("run-42".into()),
            ttl: Duration::from_secs(60),
            single_use: false,
        };
        approved_grant(&s, &carol, &run).await;
        let for_run = |run_id| {
            let s = s.clone();
            let carol = carol.clone();
            async move {
                s.read(
                    &carol,
                    token("prod"),
                    &ReadRequest {
                        run_id,
                        ..ReadRequest::default()
                    },
                )
                .await
            }
        };
        assert!(for_run(None).await.is_err());
        assert!(for_run(Some("run-41")).await.is_err());
        assert!(for_run(Some("run-42")).await.is_ok());

        // Bad requests are refused before anything is stored.
        let mut bad = purpose(token("prod"), false);
        bad.ttl = Duration::ZERO;
        assert!(matches!(
            s.request_grant(&bob(), &bad).await,
            Err(Error::Invalid(_))
        ));
        bad.ttl = Duration::from_secs(8 * 24 * 3600);
        assert!(matches!(
            s.request_grant(&bob(), &bad).await,
            Err(Error::Invalid(_))
        ));
        bad.ttl = Duration::from_secs(60);
        bad.binding = GrantBinding::Purpose("  ".into());
        assert!(matches!(
            s.request_grant(&bob(), &bad).await,
            Err(Error::Invalid(_))
        ));
        let nothing = purpose(
            SecretRef {
                environment: "prod",
                name: "NOPE",
            },
            false,
        );
        assert!(matches!(
            s.request_grant(&bob(), &nothing).await,
            Err(Error::NotFound(_))
        ));
        let stranger = s
            .request_grant(
                &Actor::new("local", "mallory"),
                &purpose(token("prod"), false),
            )
            .await
            .unwrap_err();
        assert!(matches!(stranger, Error::Denied(_)), "{stranger}");

        let decisions: Vec<String> = actions(&db.store)
            .await
            .into_iter()
            .filter(|a| a.starts_with("secret.grant."))
            .collect();
        assert_eq!(
            decisions,
            [
                "secret.grant.requested",
                "secret.grant.denied",
                "secret.grant.requested",
                "secret.grant.approved",
                "secret.grant.requested",
                "secret.grant.approved",
                "secret.grant.requested",
                "secret.grant.approved",
            ]
        );
    }
);

on_both_backends!(
    nothing_is_released_or_changed_when_the_audit_append_fails,
    |db| {
        add_users(&db.store).await;
        let s = secrets(&db.store, &format!("k1:{K_OLD}"));
        s.set(&admin(), token("prod"), &SecretValue::from(VALUE), None)
            .await
            .unwrap();
        let grant = approved_grant(&s, &bob(), &purpose(token("prod"), true)).await;
        let before = actions(&db.store).await;

        break_audit(&db.store).await;
        let read = s.read(&bob(), token("prod"), &ReadRequest::default()).await;
        assert!(
            read.is_err(),
            "a value was released without its audit event"
        );
        let e = read.unwrap_err();
        assert!(!format!("{e:?}").contains("horse"));
        // Writes are refused whole: no version appears without its event.
        assert!(
            s.rotate(
                &admin(),
                token("prod"),
                &SecretValue::from("new-value"),
                None
            )
            .await
            .is_err()
        );
        assert!(
            s.set(
                &admin(),
                token("dev"),
                &SecretValue::from("new-value"),
                None
            )
            .await
            .is_err()
        );
        assert!(s.destroy(&admin(), token("prod"), 1).await.is_err());
        assert!(
            s.request_grant(&bob(), &purpose(token("prod"), false))
                .await
                .is_err()
        );
        repair_audit(&db.store).await;

        assert_eq!(actions(&db.store).await, before);
        assert_eq!(
            raw_count(&db.store, "SELECT COUNT(*) FROM secret_versions").await,
            1,
            "a write landed without its audit event"
        );
        // The single-use grant was not spent by the failed read.
        let read = s
            .read(
                &bob(),
                token("prod"),
                &ReadRequest {
                    grant_id: Some(&grant),
                    ..ReadRequest::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(read.value.expose(), VALUE.as_bytes());
    }
);

on_both_backends!(
    rewrap_moves_data_keys_to_the_primary_without_touching_values,
    |db| {
        add_users(&db.store).await;
        db.store
            .organizations()
            .create("acme", "Acme")
            .await
            .unwrap();
        db.store
            .organizations()
            .add_user("acme", "admin", Role::Admin)
            .await
            .unwrap();
        let old = secrets(&db.store, &format!("old:{K_OLD}"));
        let names = ["A_TOKEN", "B_TOKEN", "C_TOKEN"];
        for name in names {
            let secret = SecretRef {
                environment: "prod",
                name,
            };
            old.set(&admin(), secret, &SecretValue::from(VALUE), None)
                .await
                .unwrap();
        }
        old.rotate(
            &admin(),
            SecretRef {
                environment: "prod",
                name: "A_TOKEN",
            },
            &SecretValue::from("a-second"),
            None,
        )
        .await
        .unwrap();
        old.destroy(
            &admin(),
            SecretRef {
                environment: "prod",
                name: "C_TOKEN",
            },
            1,
        )
        .await
        .unwrap();
        old.set(
            &Actor::new("acme", "admin"),
            token("dev"),
            &SecretValue::from(VALUE),
            None,
        )
        .await
        .unwrap();
        let ciphertexts = || async {
            let rows: Vec<(String, String, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT organization_id, name, version, ciphertext FROM secret_versions \
             WHERE ciphertext IS NOT NULL ORDER BY organization_id, name, version",
            )
            .fetch_all(db.store.pool())
            .await
            .unwrap();
            rows
        };
        let before = ciphertexts().await;
        // A run under way has its history key wrapped by the old key too.
        let runs = Runs::new(db.store.clone(), Arc::new(signer()));
        let run = runs
            .create(NewRun {
                organization_id: "local",
                workflow: "w",
                repository: "/srv/repo",
                trigger: "manual",
                definition: serde_json::json!({}),
                requested_by: "admin",
                steps: vec![("a".into(), "agent".into())],
            })
            .await
            .unwrap();
        let sealed = old
            .history_key(&run.id)
            .await
            .unwrap()
            .seal(&["0"], b"an answer")
            .unwrap();

        // The new key comes first; the old one stays to unwrap.
        let both = secrets(&db.store, &format!("new:{K_NEW},old:{K_OLD}"));
        let usage = both.key_usage().await.unwrap();
        let counts: Vec<_> = usage
            .iter()
            .map(|k| (k.key_id.as_str(), k.versions, k.history_keys, k.removable()))
            .collect();
        assert_eq!(counts, [("new", 0, 0, false), ("old", 4, 1, false)]);
        // New writes use the new key.
        let b = SecretRef {
            environment: "prod",
            name: "B_TOKEN",
        };
        let v = both
            .rotate(&admin(), b, &SecretValue::from("b-second"), None)
            .await
            .unwrap();
        assert_eq!(v.key_id.as_deref(), Some("new"));

        let mut seen = Vec::new();
        let summary = both
            .rewrap("operator", &mut |done, total| seen.push((done, total)))
            .await
            .unwrap();
        assert_eq!(summary.rewrapped, 4);
        assert_eq!(summary.already_current, 1);
        assert_eq!(summary.history_keys, 1);
        assert_eq!(summary.by_old_key.get("old"), Some(&5));
        assert!(summary.failed.is_empty());
        assert_eq!(seen.first(), Some(&(0, 4)));
        assert_eq!(seen.last(), Some(&(4, 4)));
        let usage = both.key_usage().await.unwrap();
        let counts: Vec<_> = usage
            .iter()
            .map(|k| (k.key_id.as_str(), k.versions, k.removable()))
            .collect();
        assert_eq!(counts, [("new", 5, false), ("old", 0, true)]);
        // Values were not re-encrypted: only data keys moved.
        let after = ciphertexts().await;
        for row in &before {
            assert!(after.contains(row), "ciphertext of {row:?} changed");
        }
        // Rewrapping again has nothing to do.
        let again = both.rewrap("operator", &mut |_, _| {}).await.unwrap();
        assert_eq!((again.rewrapped, again.already_current), (0, 5));

        // The old key can go: everything reads with the new key alone.
        let new_only = secrets(&db.store, &format!("new:{K_NEW}"));
        assert!(new_only.missing_keys().await.unwrap().is_empty());
        let history = new_only.history_key(&run.id).await.unwrap();
        assert_eq!(&history.open(&["0"], &sealed).unwrap()[..], b"an answer");
        let a = SecretRef {
            environment: "prod",
            name: "A_TOKEN",
        };
        approved_grant(&new_only, &admin(), &purpose(a, false)).await;
        for (version, value) in [(1, VALUE), (2, "a-second")] {
            let read = new_only
                .read(
                    &admin(),
                    a,
                    &ReadRequest {
                        version: Some(version),
                        ..ReadRequest::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(read.value.expose(), value.as_bytes());
        }
        let rewraps = actions(&db.store)
            .await
            .iter()
            .filter(|a| *a == "secret.rewrap")
            .count();
        assert_eq!(rewraps, 3);
        let acme = db
            .store
            .audit()
            .query(&smithers_store::AuditQuery {
                organization_id: "acme".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(acme.last().unwrap().event.action, "secret.rewrap");
    }
);

on_both_backends!(
    a_key_missing_from_the_keyring_is_reported_and_nothing_opens_with_a_wrong_key,
    |db| {
        add_users(&db.store).await;
        let old = secrets(&db.store, &format!("old:{K_OLD}"));
        old.set(&admin(), token("prod"), &SecretValue::from(VALUE), None)
            .await
            .unwrap();

        // Removed too early: reported, and rewrap says which versions it cannot move.
        let early = secrets(&db.store, &format!("new:{K_NEW}"));
        let missing = early.missing_keys().await.unwrap();
        assert_eq!(missing.len(), 1);
        assert_eq!(
            (missing[0].key_id.as_str(), missing[0].versions),
            ("old", 1)
        );
        let summary = early.rewrap("operator", &mut |_, _| {}).await.unwrap();
        assert_eq!(summary.rewrapped, 0);
        assert_eq!(summary.failed.len(), 1);
        assert!(
            summary.failed[0].0.contains("GITHUB_TOKEN@1"),
            "{:?}",
            summary.failed
        );
        assert!(
            summary.failed[0].1.contains("not in the keyring"),
            "{:?}",
            summary.failed
        );

        // Same id, different bytes: nothing opens.
        let wrong = secrets(&db.store, &format!("old:{K_NEW}"));
        approved_grant(&wrong, &bob(), &purpose(token("prod"), false)).await;
        let e = wrong
            .read(&bob(), token("prod"), &ReadRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Secrets(smithers_secrets::Error::Decrypt)),
            "{e}"
        );
        let e = wrong.rewrap("operator", &mut |_, _| {}).await.unwrap();
        assert_eq!(e.rewrapped, 0);
    }
);

on_both_backends!(names_and_values_are_checked, |db| {
    let s = secrets(&db.store, &format!("k1:{K_OLD}"));
    let a = admin();
    for (env, name) in [
        ("prod", "1ABC"),
        ("prod", "A-B"),
        ("prod", ""),
        ("Prod", "A"),
        ("", "A"),
        ("a b", "A"),
    ] {
        let e = s
            .set(
                &a,
                SecretRef {
                    environment: env,
                    name,
                },
                &SecretValue::from("value-x"),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{env:?} {name:?}: {e}");
    }
    let e = s
        .set(&a, token("prod"), &SecretValue::new(Vec::new()), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
    let e = s
        .set(
            &Actor::new("nowhere", "admin"),
            token("prod"),
            &SecretValue::from("value-x"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e}");
    assert!(s.list("local", None).await.unwrap().is_empty());
});
