//! What the stand-in knows: the App, its installations, repositories,
//! tokens, pull requests, statuses, organizations, webhook deliveries, and
//! what it was asked and answered. One lock holds it all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::members::Org;
use super::pulls::{Comment, CommitStatus, Pull};
use super::stacks::NativeStack;
use super::webhooks::Hooks;

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: Bearer <App JWT>`.
    Jwt,
    /// An installation access token (`Bearer`/`token` header, or HTTP
    /// basic for git).
    Token,
    /// No credentials, or credentials of neither kind.
    None,
}

/// A request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path and query as sent.
    pub path: String,
    /// The operation's path template, when the description has one (git
    /// requests have none).
    pub operation: Option<String>,
    pub status: u16,
    pub auth: AuthKind,
}

/// An account an App is installed on.
#[derive(Debug, Clone)]
pub struct Account {
    pub login: String,
    pub id: u64,
    /// `Organization` or `User`.
    pub kind: String,
}

pub(crate) struct Installation {
    pub id: u64,
    pub account: Account,
    pub permissions: BTreeMap<String, String>,
    pub suspended: bool,
    pub created_at: SystemTime,
}

pub(crate) struct Repo {
    pub id: u64,
    pub installation: Option<u64>,
    pub owner: Account,
    pub name: String,
    pub default_branch: String,
    pub private: bool,
    pub fork: bool,
    pub protected: BTreeSet<String>,
    /// The bare repository.
    pub dir: PathBuf,
    pub created_at: SystemTime,
    /// The number the next issue or pull request gets.
    pub next_number: u64,
}

impl Repo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner.login, self.name)
    }
}

pub(crate) struct Token {
    pub installation: u64,
    /// The repositories it reaches; `None`: all of the installation's.
    pub repos: Option<Vec<u64>>,
    pub permissions: BTreeMap<String, String>,
    pub expires_at: SystemTime,
}

/// A rate-limit window of one principal (an installation, or the App).
pub(crate) struct Window {
    pub limit: u64,
    pub used: u64,
    pub reset: SystemTime,
}

/// A scripted failure, taken by the next matching requests.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub method: String,
    pub path: String,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FaultKind {
    /// This status, before anything happens.
    Status(u16),
    /// The operation takes effect, then this status is answered.
    AfterEffect(u16),
    /// 403, `retry-after`, "You have exceeded a secondary rate limit".
    Secondary { retry_after: u64 },
    /// 403 or 429 with `x-ratelimit-remaining: 0`.
    Primary { status: u16 },
}

pub(crate) struct State {
    pub base: String,
    pub app_id: u64,
    pub app_slug: String,
    pub public_key_pem: String,
    pub installations: BTreeMap<u64, Installation>,
    pub repos: BTreeMap<u64, Repo>,
    pub tokens: HashMap<String, Token>,
    pub tokens_issued: Vec<String>,
    pub token_lifetime: Duration,
    pub windows: HashMap<String, Window>,
    pub requests: Vec<Recorded>,
    pub violations: Vec<String>,
    pub faults: Vec<Fault>,
    pub pulls: Vec<Pull>,
    pub statuses: Vec<CommitStatus>,
    pub comments: Vec<Comment>,
    pub native_stacks: Vec<NativeStack>,
    /// The repositories with native pull request stacks.
    pub native_stack_repos: BTreeSet<u64>,
    pub orgs: BTreeMap<String, Org>,
    pub hooks: Hooks,
    pub next_id: u64,
    pub repos_dir: PathBuf,
}

impl State {
    /// A fresh id for anything (installations, repositories, statuses,
    /// pull requests, deliveries): unique across kinds, which GitHub's
    /// are not, but nothing may rely on that either way.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo_named(&self, owner: &str, name: &str) -> Option<&Repo> {
        self.repos.values().find(|r| {
            r.owner.login.eq_ignore_ascii_case(owner) && r.name.eq_ignore_ascii_case(name)
        })
    }

    /// The account of a login the stand-in knows (an installation's, an
    /// organization member's), or a user made up for it.
    pub fn account(&self, login: &str) -> Account {
        if let Some(i) = self
            .installations
            .values()
            .find(|i| i.account.login.eq_ignore_ascii_case(login))
        {
            return i.account.clone();
        }
        for org in self.orgs.values() {
            if let Some((l, id)) = org
                .members
                .iter()
                .find(|(l, _)| l.eq_ignore_ascii_case(login))
            {
                return Account {
                    login: l.clone(),
                    id: *id,
                    kind: "User".into(),
                };
            }
        }
        Account {
            login: login.into(),
            id: 100_000 + login.bytes().map(u64::from).sum::<u64>(),
            kind: "User".into(),
        }
    }

    /// The App's bot user, as GitHub shows it as the creator of what the
    /// App makes.
    pub fn bot(&self) -> Account {
        Account {
            login: format!("{}[bot]", self.app_slug),
            id: 41_000_000 + self.app_id,
            kind: "Bot".into(),
        }
    }
}

/// `t` as GitHub writes times: RFC 3339, UTC, whole seconds.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds since the epoch.
pub fn epoch(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A user (`simple-user`) as GitHub shows one in answers and payloads.
pub fn simple_user(account: &Account) -> Value {
    let login = &account.login;
    let id = account.id;
    // A bot's login (`slug[bot]`) is percent-encoded in its URLs, and
    // its page is the App's.
    let in_url = login.replace('[', "%5B").replace(']', "%5D");
    let api = format!("https://api.github.com/users/{in_url}");
    let html = match login.strip_suffix("[bot]") {
        Some(slug) if account.kind == "Bot" => format!("https://github.com/apps/{slug}"),
        _ => format!("https://github.com/{in_url}"),
    };
    serde_json::json!({
        "login": login,
        "id": id,
        "node_id": base64_id(if account.kind == "Organization" { "12:Organization" } else { "04:User" }, id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": html,
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": account.kind,
        "site_admin": false,
        "user_view_type": "public",
    })
}

/// A legacy global node id: base64 of `{kind}{id}` (`MDQ6VXNlcjE=` is
/// `04:User1`).
pub fn base64_id(kind: &str, id: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}{id}"))
}
