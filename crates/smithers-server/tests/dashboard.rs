//! The dashboard's secrets, audit, users, tokens and policy pages on both
//! backends, through a browser's eyes: signed in by a one-time link, the
//! session cookie sent back, forms posted as a page posts them. What
//! people rely on: every page renders for an admin and a member gets no
//! admin form (and a refusal page if they post anyway); no secret value
//! is on any page; a token's secret is shown once; a role change ends the
//! changed user's session; the last admin stays; the policy diff; the
//! audit search and its pages; the stacks of pull requests, a paused
//! one's reason in plain sight, and their sync; a hostile value is text,
//! never markup; a form from anywhere but these pages is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use smithers_api::{GrantBinding, GrantRequest, Role};
use smithers_app::{App, Config};
use smithers_secrets::SecretValue;
use smithers_store::{AuditLog, AuditLogConfig, DEFAULT_ORGANIZATION, StackState};
use smithers_test_support::audit::all_events;
use smithers_test_support::{on_both_backends, signer};

const KEYRING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VALUE: &str = "ghp_correct-horse-battery-staple";
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";

/// An application with a keyring and the test signing key, served.
async fn serve(db: &smithers_test_support::TestDb) -> common::Server {
    common::serve(
        db,
        Config {
            keyring: Some(KEYRING.to_string()),
            signing_key: Some("2a".repeat(32)), // the seed of `signer()`
            ..Config::default()
        },
    )
    .await
}

/// Signs a checkpoint over every organization's events so far, as a
/// process's audit log does when it closes.
async fn checkpoint(app: &App) {
    let (log, writer) = AuditLog::start(app.store().clone(), signer(), AuditLogConfig::default());
    drop(log);
    writer.join().await;
}

async fn add_user(app: &App, name: &str, role: Role) {
    let admin = common::principal(app, "admin").await;
    app.users().add(&admin, name, role).await.unwrap();
}

/// A browser signed in as one user: it follows no redirect, so that a
/// test sees where it is sent.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

/// What a page answered.
struct Page {
    status: u16,
    location: Option<String>,
    content_type: String,
    text: String,
}

impl Page {
    /// Asserts a 200 HTML page.
    fn ok(&self) -> &str {
        assert_eq!(self.status, 200, "{}", self.text);
        assert!(
            self.content_type.starts_with("text/html"),
            "{}",
            self.content_type
        );
        &self.text
    }

    /// Asserts a refusal page with `status`, saying `why`.
    fn refused(&self, status: u16, why: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type.starts_with("text/html"),
            "{}",
            self.content_type
        );
        assert!(self.text.contains("Refused"), "{}", self.text);
        assert!(self.text.contains(why), "{why:?} in {}", self.text);
    }

    /// Asserts a redirect (Post/Redirect/Get) to a URL starting with
    /// `to`; returns it.
    fn redirected(&self, to: &str) -> &str {
        assert_eq!(self.status, 303, "{}", self.text);
        let location = self.location.as_deref().unwrap();
        assert!(location.starts_with(to), "{location}");
        location
    }
}

/// How a form is posted.
#[derive(Clone, Copy)]
enum From {
    /// From this server's own page: `Sec-Fetch-Site: same-origin`.
    OwnPage,
    /// Without saying where from (neither Sec-Fetch-Site nor Origin).
    Nowhere,
}

async fn sign_in(s: &common::Server, user: &str) -> Browser {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = s
        .app
        .local_sign_in_token(DEFAULT_ORGANIZATION, user)
        .await
        .unwrap();
    let answer = http
        .get(format!("{}/sign-in/local?token={token}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let set = answer.headers()[SET_COOKIE].to_str().unwrap();
    let pair = set.split(';').next().unwrap();
    assert!(pair.starts_with(smithers_server::SESSION_COOKIE), "{set}");
    Browser {
        http,
        base: s.base.clone(),
        cookie: pair.to_string(),
    }
}

impl Browser {
    async fn read(&self, request: reqwest::RequestBuilder) -> Page {
        let answer = request.header(COOKIE, &self.cookie).send().await.unwrap();
        let header = |name| {
            answer
                .headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
        };
        let location = header(LOCATION);
        let content_type = header(CONTENT_TYPE).unwrap_or_default();
        Page {
            status: answer.status().as_u16(),
            location,
            content_type,
            text: answer.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.read(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post_from(&self, from: From, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let From::OwnPage = from {
            request = request.header("sec-fetch-site", "same-origin");
        }
        self.read(request).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_from(From::OwnPage, path, form).await
    }
}

/// The target of the link whose text is `label`, as a browser reads it.
fn link(page: &str, label: &str) -> Option<String> {
    let end = page.find(&format!("\">{label}</a>"))?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&amp;", "&"))
}

on_both_backends!(admins_see_every_page_and_members_no_admin_form, |db| {
    let s = serve(db).await;
    add_user(&s.app, "alice", Role::Member).await;
    let admin = common::principal(&s.app, "admin").await;
    let alice = common::principal(&s.app, "alice").await;
    s.app
        .secrets()
        .set(
            &admin,
            "dev",
            "GITHUB_TOKEN",
            &SecretValue::new(VALUE.as_bytes().to_vec()),
            None,
        )
        .await
        .unwrap();
    // A member asks to read it, for a purpose that is markup.
    let ask = |purpose: &str| GrantRequest {
        environment: "dev".into(),
        name: "GITHUB_TOKEN".into(),
        binding: GrantBinding::Purpose(purpose.into()),
        ttl_seconds: 600,
        single_use: true,
    };
    let first = s
        .app
        .secrets()
        .request_grant(&alice, &ask(&format!("deploy {SCRIPT}")))
        .await
        .unwrap();
    let second = s
        .app
        .secrets()
        .request_grant(&alice, &ask("rotate"))
        .await
        .unwrap();
    s.app
        .policies()
        .publish(&admin, "policy", "* read_file * -> allow\n")
        .await
        .unwrap();
    checkpoint(&s.app).await;

    let admin_browser = sign_in(&s, "admin").await;
    let member = sign_in(&s, "alice").await;
    let pages = [
        "/secrets",
        "/secrets?environment=dev",
        "/secrets/dev/GITHUB_TOKEN",
        "/grants",
        "/grants?all=true",
        "/audit",
        "/audit/verify",
        "/audit/destinations",
        "/audit/events/1",
        "/users",
        "/tokens",
        "/policy",
        "/policy?version=1",
        "/policy/history",
        "/policy/diff?from=1&to=1",
        "/github",
        "/stacks",
        "/stacks?all=true",
    ];
    for path in pages {
        let page = admin_browser.get(path).await;
        let text = page.ok();
        assert!(!text.contains(VALUE), "{path} shows the secret's value");
        assert!(text.contains("Sign out"), "{path} is in the frame");
    }
    let secrets = admin_browser.get("/secrets").await;
    let text = secrets.ok();
    assert!(
        text.contains("GITHUB_TOKEN") && text.contains("k1"),
        "{text}"
    );
    let versions = admin_browser.get("/secrets/dev/GITHUB_TOKEN").await;
    assert!(versions.ok().contains("active"));
    admin_browser
        .get("/secrets/dev/NOTHING")
        .await
        .refused(404, "no secret");

    // The admin decides the member's grants; the purpose is text.
    let grants = admin_browser.get("/grants").await;
    let text = grants.ok();
    assert!(text.contains(&format!("/grants/{}/approve", first.id)));
    assert!(text.contains("deploy &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!text.contains(SCRIPT));
    admin_browser
        .post(
            &format!("/grants/{}/approve", first.id),
            &[("comment", "ok")],
        )
        .await
        .redirected("/grants?done=approved");
    admin_browser
        .post(&format!("/grants/{}/deny", second.id), &[("reason", "")])
        .await
        .refused(400, "needs a reason");
    admin_browser
        .post(&format!("/grants/{}/deny", second.id), &[("reason", "no")])
        .await
        .redirected("/grants?done=denied");
    let all = admin_browser.get("/grants?all=true").await;
    let text = all.ok();
    assert!(
        text.contains("approved") && text.contains("denied"),
        "{text}"
    );
    assert!(!text.contains(VALUE));

    // What an admin is offered, a member is not.
    let users = admin_browser.get("/users").await;
    let text = users.ok();
    for form in [
        "action=\"/users\"",
        "action=\"/users/alice/role\"",
        "action=\"/users/alice/remove\"",
    ] {
        assert!(text.contains(form), "{form}");
    }
    let users = member.get("/users").await;
    let text = users.ok();
    assert!(text.contains("alice") && text.contains("admin"));
    assert!(!text.contains("action=\"/users"), "{text}");
    let policy = admin_browser.get("/policy").await;
    assert!(policy.ok().contains("action=\"/policy\""));
    let policy = member.get("/policy").await;
    let text = policy.ok();
    assert!(text.contains("* read_file * -&gt; allow"), "{text}");
    assert!(!text.contains("action=\"/policy"), "{text}");
    let third = s
        .app
        .secrets()
        .request_grant(&alice, &ask("later"))
        .await
        .unwrap();
    let grants = member.get("/grants").await;
    let text = grants.ok();
    assert!(!text.contains("/approve\""), "{text}");
    assert!(text.contains("Only an admin"));
    let secrets = member.get("/secrets").await;
    assert!(!secrets.ok().contains(VALUE));
    // The audit log is an admin's: the service refuses, the page says so.
    member
        .get("/audit")
        .await
        .refused(403, "reading the audit log needs an admin");
    member.get("/audit/verify").await.refused(403, "admin");
    member
        .get("/audit/destinations")
        .await
        .refused(403, "admin");
    member.get("/audit/events/1").await.refused(403, "admin");

    // A member posting anyway is refused, and nothing changes.
    member
        .post("/users", &[("name", "mallory"), ("role", "admin")])
        .await
        .refused(403, "adding users needs an admin");
    member
        .post("/users/admin/role", &[("role", "member")])
        .await
        .refused(403, "changing and removing users needs an admin");
    member
        .post("/users/admin/remove", &[("confirm", "admin")])
        .await
        .refused(403, "admin");
    member
        .post("/policy", &[("text", "* * * -> allow\n")])
        .await
        .refused(403, "publishing the organization");
    member
        .post("/policy/unpublish", &[])
        .await
        .refused(403, "admin");
    member
        .post(&format!("/grants/{}/approve", third.id), &[])
        .await
        .refused(403, "admin");
    let users = s.app.users().list(&admin).await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u.name != "mallory"));

    // A form from anywhere but these pages is refused before anything.
    admin_browser
        .post_from(From::Nowhere, "/users/alice/role", &[("role", "admin")])
        .await
        .refused(403, "neither Sec-Fetch-Site nor Origin");
    admin_browser
        .post_from(From::Nowhere, "/policy/unpublish", &[])
        .await
        .refused(403, "Sec-Fetch-Site");
    assert_eq!(
        s.app.users().list(&admin).await.unwrap()[1].role,
        Role::Member
    );
    admin_browser.get("/policy").await.ok();
    assert!(s.app.policies().show(&admin, None).await.is_ok());

    // Without a session, a page sends the browser to sign in.
    let anonymous = Browser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: s.base.clone(),
        cookie: String::new(),
    };
    for path in ["/secrets", "/audit", "/users", "/tokens", "/policy"] {
        anonymous.get(path).await.redirected("/sign-in");
    }
});

on_both_backends!(a_tokens_secret_is_shown_once, |db| {
    let s = serve(db).await;
    add_user(&s.app, "alice", Role::Member).await;
    let alice = sign_in(&s, "alice").await;
    let admin = sign_in(&s, "admin").await;

    let made = alice
        .post(
            "/tokens",
            &[
                ("name", IMG),
                ("scope", "runs:read"),
                ("scope", "approvals:read"),
                ("ttl_days", "7"),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let start = made.text.find("smt_").unwrap();
    let secret: String = made.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(secret.len() > 20, "{secret}");
    assert!(made.text.contains("shown on this page only"));
    assert!(made.text.contains("runs:read") && made.text.contains("approvals:read"));
    assert!(!made.text.contains(IMG));

    // The token works, as its owner narrowed to its scopes.
    let runs = reqwest::Client::new()
        .get(format!("{}/api/v1/runs", s.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 200);

    // Never again: not on the owner's list, not on the admin's.
    let mine = alice.get("/tokens").await;
    let text = mine.ok();
    assert!(!text.contains(&secret));
    assert!(
        text.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{text}"
    );
    assert!(!text.contains(IMG));
    let all = admin.get("/tokens").await;
    let text = all.ok();
    assert!(!text.contains(&secret));
    assert!(text.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(text.contains("every token of the organization"));

    // What the service refuses, the page says.
    alice
        .post("/tokens", &[("name", "none")])
        .await
        .refused(400, "at least one scope");
    alice
        .post("/tokens", &[("name", "x"), ("scope", "root:all")])
        .await
        .refused(400, "not a scope");
    alice
        .post(
            "/tokens",
            &[("name", "x"), ("scope", "runs:read"), ("ttl_days", "400")],
        )
        .await
        .refused(400, "366 days");
    let admins_token = admin
        .post("/tokens", &[("name", "admin's"), ("scope", "runs:read")])
        .await;
    assert_eq!(admins_token.status, 201);
    let admin_principal = common::principal(&s.app, "admin").await;
    let listed = s.app.tokens().list(&admin_principal).await.unwrap();
    let theirs = listed.iter().find(|t| t.user == "admin").unwrap();
    let hers = listed.iter().find(|t| t.user == "alice").unwrap();
    // A member revokes only her own.
    alice
        .post(&format!("/tokens/{}/revoke", theirs.id), &[])
        .await
        .refused(404, "no token");
    alice
        .post_from(From::Nowhere, &format!("/tokens/{}/revoke", hers.id), &[])
        .await
        .refused(403, "Sec-Fetch-Site");
    alice
        .post(&format!("/tokens/{}/revoke", hers.id), &[])
        .await
        .redirected("/tokens?done=revoked");
    let mine = alice.get("/tokens").await;
    assert!(mine.ok().contains("revoked"));
    let runs = reqwest::Client::new()
        .get(format!("{}/api/v1/runs", s.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.status(), 401);
    alice
        .post(&format!("/tokens/{}/revoke", hers.id), &[])
        .await
        .refused(409, "revoked");
});

on_both_backends!(role_changes_end_sessions_and_the_last_admin_stays, |db| {
    let s = serve(db).await;
    add_user(&s.app, "alice", Role::Member).await;
    let admin = sign_in(&s, "admin").await;
    let alice = sign_in(&s, "alice").await;
    alice.get("/approvals").await.ok();

    // Adding, from the form.
    admin
        .post("/users", &[("name", "carol"), ("role", "member")])
        .await
        .redirected("/users?done=added&user=carol");
    admin
        .post("/users", &[("name", "carol"), ("role", "member")])
        .await
        .refused(409, "already exists");
    admin
        .post("/users", &[("name", "dan"), ("role", "owner")])
        .await
        .refused(400, "not a role");

    // A role change ends the changed user's session, not the admin's.
    let changed = admin.post("/users/alice/role", &[("role", "admin")]).await;
    let back = changed.redirected("/users?done=role&user=alice");
    alice.get("/approvals").await.redirected("/sign-in");
    alice.get("/users").await.redirected("/sign-in");
    let users = admin.get(back).await;
    let text = users.ok();
    assert!(text.contains("alice's role was changed"), "{text}");
    assert!(text.contains("<span class=\"state admin\">admin</span>"));
    admin
        .post("/users/alice/role", &[("role", "admin")])
        .await
        .refused(409, "admin already");
    admin
        .post("/users/nobody/role", &[("role", "admin")])
        .await
        .refused(404, "no user");

    // Removing needs the name typed; then the user and her session go.
    let alice = sign_in(&s, "alice").await;
    alice.get("/users").await.ok();
    admin
        .post("/users/alice/remove", &[("confirm", "alic")])
        .await
        .refused(400, "type their name");
    alice.get("/users").await.ok();
    admin
        .post("/users/alice/remove", &[("confirm", "alice")])
        .await
        .redirected("/users?done=removed&user=alice");
    alice.get("/users").await.redirected("/sign-in");
    let users = admin.get("/users").await;
    let text = users.ok();
    assert!(!text.contains("id=\"user-alice\""), "{text}");
    assert!(text.contains("id=\"user-carol\""));

    // The last admin is neither demoted nor removed; the page says why.
    admin
        .post("/users/admin/role", &[("role", "member")])
        .await
        .refused(409, "last admin");
    admin
        .post("/users/admin/remove", &[("confirm", "admin")])
        .await
        .refused(409, "last admin");
    admin.get("/users").await.ok();
    // With another admin, the admin may step down; their own session
    // ends with it.
    admin
        .post("/users/carol/role", &[("role", "admin")])
        .await
        .redirected("/users");
    admin
        .post("/users/admin/role", &[("role", "member")])
        .await
        .redirected("/users");
    admin.get("/users").await.redirected("/sign-in");
});

on_both_backends!(the_policy_diff_shows_the_changes_as_text, |db| {
    let s = serve(db).await;
    add_user(&s.app, "alice", Role::Member).await;
    let admin = sign_in(&s, "admin").await;
    let member = sign_in(&s, "alice").await;

    let none = admin.get("/policy").await;
    assert!(none.ok().contains("No policy is in force"));
    admin
        .post(
            "/policy",
            &[(
                "text",
                "implementer run_command * -> ask\n* write_file * -> ask\n",
            )],
        )
        .await
        .redirected("/policy?done=published");
    // As a browser sends a textarea: CR LF line breaks.
    let hostile = format!(
        "# {SCRIPT} {IMG}\r\nimplementer run_command * -> ask\r\n* read_file * -> allow\r\n"
    );
    admin
        .post("/policy", &[("text", &hostile)])
        .await
        .redirected("/policy?done=published");
    let shown = s
        .app
        .policies()
        .show(&common::principal(&s.app, "admin").await, None)
        .await
        .unwrap();
    assert_eq!(shown.version, 2);
    assert!(!shown.text.unwrap().contains('\r'));

    for page in [admin.get("/policy").await, member.get("/policy").await] {
        let text = page.ok();
        assert!(
            text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{text}"
        );
        assert!(text.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!text.contains(SCRIPT) && !text.contains(IMG), "{text}");
    }

    let diff = member.get("/policy/diff?from=1&to=2").await;
    let text = diff.ok();
    assert!(
        text.contains("<span class=\"add\">+# &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{text}"
    );
    assert!(text.contains("<span class=\"add\">+* read_file * -&gt; allow</span>"));
    assert!(text.contains("<span class=\"del\">-* write_file * -&gt; ask</span>"));
    assert!(text.contains("<span class=\"\"> implementer run_command * -&gt; ask</span>"));
    assert!(!text.contains(SCRIPT) && !text.contains(IMG));
    let same = member.get("/policy/diff?from=2&to=2").await;
    assert!(same.ok().contains("the same"));
    member
        .get("/policy/diff?from=1&to=9")
        .await
        .refused(404, "9");
    member
        .get("/policy/diff?from=one")
        .await
        .refused(400, "two versions");

    // Not a policy: nothing published, the diagnostics beside the text.
    let bad = admin
        .post("/policy", &[("text", &format!("{SCRIPT} -> maybe\n"))])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.text.contains("nothing was published"));
    assert!(
        bad.text
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; -&gt; maybe")
    );
    assert!(!bad.text.contains(SCRIPT));
    admin
        .post("/policy", &[("text", &hostile)])
        .await
        .refused(409, "already");

    admin
        .post("/policy/unpublish", &[])
        .await
        .redirected("/policy?done=unpublished");
    let none = admin.get("/policy").await;
    assert!(none.ok().contains("No policy is in force"));
    let history = member.get("/policy/history").await;
    let text = history.ok();
    for v in 1..=3 {
        assert!(
            text.contains(&format!("href=\"/policy?version={v}\"")),
            "{text}"
        );
    }
    assert!(text.contains("unpublished"));
    let unpublishing = member.get("/policy/diff?from=2&to=3").await;
    assert!(
        unpublishing
            .ok()
            .contains("<span class=\"del\">-* read_file * -&gt; allow</span>")
    );
    admin
        .post("/policy/unpublish", &[])
        .await
        .refused(404, "no policy");
});

on_both_backends!(the_audit_search_filters_pages_and_proves, |db| {
    let s = serve(db).await;
    for n in 1..=7 {
        add_user(&s.app, &format!("user{n}"), Role::Member).await;
    }
    checkpoint(&s.app).await;
    let admin = sign_in(&s, "admin").await;
    let rows = |page: &str| page.matches("href=\"/audit/events/").count();

    let first = admin.get("/audit?action=user.add&limit=3").await;
    let text = first.ok().to_string();
    assert_eq!(rows(&text), 3, "{text}");
    assert!(text.contains("user1") && text.contains("user3") && !text.contains("user4"));
    assert!(link(&text, "← Older").is_none());
    let second = admin.get(&link(&text, "Newer →").unwrap()).await;
    let text2 = second.ok().to_string();
    assert_eq!(rows(&text2), 3);
    assert!(text2.contains("user4") && text2.contains("user6") && !text2.contains("user3"));
    let third = admin.get(&link(&text2, "Newer →").unwrap()).await;
    let text3 = third.ok().to_string();
    assert_eq!(rows(&text3), 1);
    assert!(text3.contains("user7"));
    assert!(link(&text3, "Newer →").is_none());
    // Back, page by page, to where the search began.
    let back = admin.get(&link(&text3, "← Older").unwrap()).await;
    assert_eq!(back.ok(), text2);
    let back = admin.get(&link(&text2, "← Older").unwrap()).await;
    assert_eq!(back.ok(), text);

    let by_admin = admin.get("/audit?actor=admin&action=user.add").await;
    assert_eq!(rows(by_admin.ok()), 7);
    let nobody = admin.get("/audit?actor=nobody").await;
    assert!(nobody.ok().contains("No event matches"));
    let future = admin.get("/audit?since=2999-01-01T00:00").await;
    assert_eq!(rows(future.ok()), 0);
    let past = admin
        .get("/audit?action=user.add&since=2000-01-01T00:00")
        .await;
    assert_eq!(rows(past.ok()), 7);
    admin
        .get("/audit?since=yesterday")
        .await
        .refused(400, "not a time");
    admin
        .get("/audit?cursor=bogus")
        .await
        .refused(400, "cursor");
    // What the search says comes back as text in the form.
    let hostile = admin
        .get(&format!(
            "/audit?action={}",
            form_urlencoded::byte_serialize(SCRIPT.as_bytes()).collect::<String>()
        ))
        .await;
    let text = hostile.ok();
    assert!(
        text.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{text}"
    );
    assert!(!text.contains(SCRIPT));

    let verify = admin.get("/audit/verify").await;
    let text = verify.ok();
    assert!(text.contains("The log is intact"), "{text}");
    let event = admin.get("/audit/events/2").await;
    let text = event.ok();
    assert!(text.contains("The proof holds"), "{text}");
    assert!(text.contains("user.add"));
    admin
        .get("/audit/events/999")
        .await
        .refused(404, "no event 999");
    admin
        .get("/audit/events/x")
        .await
        .refused(400, "sequence number");

    // The export is the API's, and takes the session cookie.
    let export = admin.get("/api/v1/audit/export").await;
    assert_eq!(export.status, 200);
    assert!(export.content_type.starts_with("application/x-ndjson"));
    assert!(export.text.lines().count() >= 8);
    let audit = admin.get("/audit").await;
    assert!(audit.ok().contains("href=\"/api/v1/audit/export\""));
});

on_both_backends!(stacks_are_listed_shown_and_synced_from_their_page, |db| {
    let s = serve(db).await;
    add_user(&s.app, "alice", Role::Member).await;
    // Titles and branch names are the run's, a paused reason comes from
    // GitHub: text, whatever they hold.
    let (active, active_run) = common::stack(
        &s.app,
        1,
        &[
            ("smithers/fix/1", "Parse the config"),
            ("smithers/fix/2", &format!("Use it {SCRIPT}")),
        ],
    )
    .await;
    let (paused, paused_run) =
        common::stack(&s.app, 2, &[("smithers/docs/1", "Document it")]).await;
    let (finished, _) = common::stack(&s.app, 3, &[("smithers/old/1", "Old work")]).await;
    let github = s.app.store().github();
    let reason = format!("octocat pushed to smithers/docs/1 {IMG}");
    github
        .set_stack_state(
            &paused,
            &[StackState::Active],
            StackState::Paused,
            Some(&reason),
        )
        .await
        .unwrap();
    github
        .set_stack_state(&finished, &[StackState::Active], StackState::Finished, None)
        .await
        .unwrap();
    let escaped_reason = "octocat pushed to smithers/docs/1 &lt;img src=x onerror=alert(1)&gt;";

    // A member reads them: the ones kept current, then every one.
    let alice = sign_in(&s, "alice").await;
    // The run's page says where its work went, and why it waits.
    let run_page = alice.get(&format!("/runs/{paused_run}")).await;
    let text = run_page.ok();
    assert!(
        text.contains(&format!("href=\"/stacks/{paused}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("pull requests' stack is paused: {escaped_reason}")),
        "{text}"
    );
    assert!(text.contains("#201"), "{text}");
    let list = alice.get("/stacks").await;
    let text = list.ok();
    assert!(
        text.contains("href=\"/stacks\" class=\"here\">Stacks</a>"),
        "{text}"
    );
    for id in [&active, &paused] {
        assert!(
            text.contains(&format!("href=\"/stacks/{id}\"")),
            "{id}: {text}"
        );
    }
    assert!(!text.contains(&finished), "{text}");
    assert!(text.contains("acme/api"));
    assert!(
        text.contains(&format!("href=\"/runs/{active_run}\"")),
        "{text}"
    );
    for member in [
        "#101 <code>smithers/fix/1</code> (open)",
        "#102 <code>smithers/fix/2</code> (open)",
        "#201 <code>smithers/docs/1</code> (open)",
    ] {
        assert!(text.contains(member), "{member}: {text}");
    }
    // The paused one says why, at the top.
    assert!(text.contains("class=\"notice error\""), "{text}");
    assert!(text.contains(escaped_reason), "{text}");
    assert!(!text.contains(IMG), "{text}");
    let every = alice.get(&link(text, "Every stack").unwrap()).await;
    let text = every.ok();
    assert!(
        text.contains(&format!("href=\"/stacks/{finished}\"")),
        "{text}"
    );
    assert!(text.contains("finished"));

    // A stack's page: its members, and the sync with what it does.
    let page = alice.get(&format!("/stacks/{active}")).await;
    let text = page.ok();
    assert!(text.contains("Parse the config") && text.contains("smithers/fix/2"));
    assert!(
        text.contains("Use it &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{text}"
    );
    assert!(!text.contains(SCRIPT), "{text}");
    assert!(
        text.contains(&format!("action=\"/stacks/{active}/sync\"")),
        "{text}"
    );
    assert!(text.contains("Take the branches as they are on GitHub"));
    let page = alice.get(&format!("/stacks/{paused}")).await;
    let text = page.ok();
    assert!(text.contains("class=\"notice error\""), "{text}");
    assert!(text.contains(escaped_reason), "{text}");
    assert!(!text.contains(IMG), "{text}");
    let form = format!("action=\"/stacks/{paused}/sync\"");
    assert!(text.contains(&form), "{text}");
    // A finished stack is kept current no more: nothing to sync.
    let page = alice.get(&format!("/stacks/{finished}")).await;
    let text = page.ok();
    assert!(!text.contains("/sync\""), "{text}");
    alice
        .get("/stacks/stk_nothing")
        .await
        .refused(404, "no stack");

    // A form from anywhere but these pages is refused before anything.
    alice
        .post_from(From::Nowhere, &format!("/stacks/{paused}/sync"), &[])
        .await
        .refused(403, "Sec-Fetch-Site");
    assert!(!github.stack(&paused).await.unwrap().unwrap().sync_requested);

    // Pressed: the App is asked to take the branches, and the page says so.
    let back = alice.post(&format!("/stacks/{paused}/sync"), &[]).await;
    let location = back.redirected(&format!("/stacks/{paused}")).to_string();
    assert!(github.stack(&paused).await.unwrap().unwrap().sync_requested);
    let page = alice.get(&location).await;
    let text = page.ok();
    assert!(text.contains("Sync asked for"), "{text}");
    assert!(text.contains("yes, not carried out yet"), "{text}");
    let page = alice.get(&format!("/stacks/{paused}")).await;
    assert!(page.ok().contains("A sync is already asked for"));
    let synced: Vec<_> = all_events(s.app.store())
        .await
        .into_iter()
        .filter(|e| e.event.action == "github.stack_sync_requested")
        .map(|e| (e.event.actor_id, e.event.resource_id))
        .collect();
    assert_eq!(synced, [("alice".to_string(), paused.clone())]);

    // A finished one is refused, as the service refuses it.
    alice
        .post(&format!("/stacks/{finished}/sync"), &[])
        .await
        .refused(409, "finished");
    assert!(
        !github
            .stack(&finished)
            .await
            .unwrap()
            .unwrap()
            .sync_requested
    );
});
