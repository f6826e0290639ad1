//! A local stand-in for GitHub as a GitHub App sees it (no test may reach
//! GitHub): the REST API (version 2022-11-28) of the App and of its
//! installations, repositories over git's smart HTTP, and webhooks sent
//! to the App.
//!
//! It is honest: every request is matched to its operation in GitHub's
//! published OpenAPI description ([`openapi`], named by
//! [`openapi::OPENAPI_ENV`]) and checked against it, and so is every
//! answer; what fails, a route the description does not have, and an
//! operation the stand-in does not implement (answered 404) are kept as
//! violations, which a test ends with [`GithubApi::assert_honest`].
//!
//! ```ignore
//! let gh = GithubApi::start().await;
//! let inst = gh.add_installation("acme", "Organization", &[("contents", "write")]);
//! let repo = gh.add_repository(inst, "acme", "widgets", "main", true);
//! // … Smithers signs `app_jwt(APP_ID)`, mints a token, clones gh.clone_url(repo) …
//! gh.assert_honest();
//! ```

mod apps;
mod auth;
mod git_http;
mod keys;
mod members;
pub mod openapi;
mod pulls;
mod repos;
mod server;
mod stacks;
mod state;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

pub use auth::{RATE_LIMIT, TOKEN_PREFIX};
pub use keys::{
    APP_ID, APP_PRIVATE_KEY_PEM, APP_PUBLIC_KEY_PEM, APP_SLUG, app_jwt, app_private_key_path,
    app_public_key_path, sign_app_jwt,
};
pub use pulls::{Comment, CommitStatus, MergeMethod, Merged, Pull};
pub use stacks::NativeStack;
pub use state::{Account, AuthKind, Recorded};
pub use webhooks::{Chaos, Delivery, WEBHOOK_EXAMPLES_ENV, example as webhook_example, signature};

use state::{Fault, FaultKind, Installation, Repo, State};

/// What the stand-in's tasks share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Sends webhooks.
    client: reqwest::Client,
    /// Holds the repositories.
    _dir: tempfile::TempDir,
}

impl Shared {
    /// The state; a test that panicked while holding it leaves it as it
    /// was, still readable by the others.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stand-in, serving on a loopback port until dropped.
pub struct GithubApi {
    shared: Arc<Shared>,
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GithubApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GithubApi {
    /// Starts the stand-in for the test App ([`APP_ID`], [`APP_SLUG`],
    /// [`APP_PUBLIC_KEY_PEM`]). Panics with what to do when GitHub's
    /// description is not installed.
    pub async fn start() -> GithubApi {
        GithubApi::start_for(APP_ID, APP_SLUG, APP_PUBLIC_KEY_PEM).await
    }

    /// Starts the stand-in for an App of this id, slug and public key
    /// (PEM, PKCS#1 or SubjectPublicKeyInfo), which its JWTs are checked
    /// against.
    #[allow(clippy::expect_used)] // a loopback listener and a temporary directory
    pub async fn start_for(app_id: u64, app_slug: &str, public_key_pem: &str) -> GithubApi {
        // Read (and fail) before anything listens.
        openapi::description();
        let dir = tempfile::tempdir().expect("a temporary directory for the repositories");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!(
            "http://{}",
            listener
                .local_addr()
                .expect("a bound listener has an address")
        );
        let state = State {
            base: base.clone(),
            app_id,
            app_slug: app_slug.into(),
            public_key_pem: public_key_pem.into(),
            installations: BTreeMap::new(),
            repos: BTreeMap::new(),
            tokens: Default::default(),
            tokens_issued: Vec::new(),
            token_lifetime: Duration::from_secs(3600),
            windows: Default::default(),
            requests: Vec::new(),
            violations: Vec::new(),
            faults: Vec::new(),
            pulls: Vec::new(),
            statuses: Vec::new(),
            comments: Vec::new(),
            native_stacks: Vec::new(),
            native_stack_repos: BTreeSet::new(),
            orgs: BTreeMap::new(),
            hooks: Default::default(),
            next_id: 1000,
            repos_dir: dir.path().to_path_buf(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            client: reqwest::Client::new(),
            _dir: dir,
        });
        let app = axum::Router::new().fallback({
            let shared = shared.clone();
            move |request| server::handle(shared.clone(), request)
        });
        let task = tokio::spawn(async move {
            // Ends when the stand-in is dropped (the task is aborted).
            let _ = axum::serve(listener, app).await;
        });
        GithubApi { shared, base, task }
    }

    /// `http://127.0.0.1:PORT`: the API base (also served under
    /// `/api/v3`, as a GitHub Enterprise Server does) and the web host
    /// repositories are cloned from.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.state().app_id
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Installs the App on an account (`kind`: `Organization` or `User`)
    /// with these permissions (`("contents", "write")`, …; `metadata:
    /// read` is always there, as on GitHub); the installation's id.
    pub fn add_installation(&self, login: &str, kind: &str, permissions: &[(&str, &str)]) -> u64 {
        let mut state = self.state();
        let id = state.id();
        let account_id = match state.orgs.get(login) {
            Some(org) => org.id,
            None => state.id(),
        };
        let mut granted: BTreeMap<String, String> = permissions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        granted
            .entry("metadata".into())
            .or_insert_with(|| "read".into());
        state.installations.insert(
            id,
            Installation {
                id,
                account: Account {
                    login: login.into(),
                    id: account_id,
                    kind: kind.into(),
                },
                permissions: granted,
                suspended: false,
                created_at: SystemTime::now(),
            },
        );
        id
    }

    /// Suspends an installation: its tokens are refused with 403 and no
    /// new ones are minted.
    pub fn suspend_installation(&self, id: u64) {
        if let Some(i) = self.state().installations.get_mut(&id) {
            i.suspended = true;
        }
    }

    /// Lifts a suspension.
    pub fn unsuspend_installation(&self, id: u64) {
        if let Some(i) = self.state().installations.get_mut(&id) {
            i.suspended = false;
        }
    }

    /// Changes what an installation is granted (an owner accepting new
    /// permissions, or taking some back); tokens already minted keep
    /// theirs until they expire, as on GitHub.
    pub fn set_installation_permissions(&self, id: u64, permissions: &[(&str, &str)]) {
        if let Some(i) = self.state().installations.get_mut(&id) {
            i.permissions = permissions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            i.permissions
                .entry("metadata".into())
                .or_insert_with(|| "read".into());
        }
    }

    /// A repository `owner/name` the installation can reach, its
    /// default branch holding one commit (`README.md`); the repository's
    /// id. Panics if git cannot make it.
    pub fn add_repository(
        &self,
        installation: u64,
        owner: &str,
        name: &str,
        default_branch: &str,
        private: bool,
    ) -> u64 {
        let mut state = self.state();
        let owner_account = state
            .installations
            .get(&installation)
            .filter(|i| i.account.login.eq_ignore_ascii_case(owner))
            .map(|i| i.account.clone())
            .unwrap_or_else(|| state.account(owner));
        let dir = repos::repo_dir(&state.repos_dir, owner, name);
        if let Err(e) = repos::init(&dir, name, default_branch) {
            panic!("the GitHub stand-in could not make {owner}/{name}: {e}");
        }
        let id = state.id();
        state.repos.insert(
            id,
            Repo {
                id,
                installation: Some(installation),
                owner: owner_account,
                name: name.into(),
                default_branch: default_branch.into(),
                private,
                fork: false,
                protected: BTreeSet::new(),
                dir,
                created_at: SystemTime::now(),
                next_number: 1,
            },
        );
        id
    }

    /// How long the next installation tokens last (GitHub's: one hour).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = lifetime;
    }

    /// Every installation token minted, in order (for a test to look for
    /// them where they must never be: stores, logs, audit).
    pub fn tokens_issued(&self) -> Vec<String> {
        self.state().tokens_issued.clone()
    }

    /// Expires a token now (as an hour passing would).
    pub fn expire_token(&self, token: &str) {
        if let Some(t) = self.state().tokens.get_mut(token) {
            t.expires_at = SystemTime::now() - Duration::from_secs(1);
        }
    }

    /// What a token was minted with: its installation, repository ids
    /// (`None`: all of the installation's) and permissions.
    pub fn token_scope(&self, token: &str) -> Option<TokenScope> {
        self.state().tokens.get(token).map(|t| TokenScope {
            installation: t.installation,
            repositories: t.repos.clone(),
            permissions: t.permissions.clone(),
        })
    }

    /// Every request answered, in order (git's included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// What the stand-in found wrong, in order: requests and answers
    /// that are not as GitHub's description says, routes it does not
    /// have, operations the stand-in does not implement.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// Forgets the violations so far (after a test provoked some on
    /// purpose).
    pub fn clear_violations(&self) {
        self.state().violations.clear();
    }

    /// Panics listing the violations, if there are any.
    pub fn assert_honest(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "the GitHub stand-in saw {} request(s) or answer(s) unlike GitHub's description:\n  {}",
            violations.len(),
            violations.join("\n  ")
        );
    }

    fn fault(&self, method: &str, path: &str, kind: FaultKind, times: usize) {
        if times > 0 {
            self.state().faults.push(Fault {
                method: method.into(),
                path: path.into(),
                kind,
                times,
            });
        }
    }

    /// The next `times` requests of `method` (`*`: any) whose operation's
    /// template is `path` (`/repos/{owner}/{repo}/pulls`) or whose path
    /// starts with `path` are answered `status` (GitHub's error body) and
    /// nothing happens. Faults are taken in the order they were added.
    pub fn fail_next(&self, method: &str, path: &str, status: u16, times: usize) {
        self.fault(method, path, FaultKind::Status(status), times);
    }

    /// Like [`GithubApi::fail_next`], but the operation takes effect
    /// first (the pull request is made, the status set) and only the
    /// answer is lost: the failure that makes a blind retry dangerous.
    pub fn fail_after_effect(&self, method: &str, path: &str, status: u16, times: usize) {
        self.fault(method, path, FaultKind::AfterEffect(status), times);
    }

    /// A secondary rate limit: 403, `retry-after: {retry_after}`, "You
    /// have exceeded a secondary rate limit…".
    pub fn secondary_rate_limit(&self, method: &str, path: &str, retry_after: u64, times: usize) {
        self.fault(method, path, FaultKind::Secondary { retry_after }, times);
    }

    /// A primary rate limit: `status` (403 or 429) with
    /// `x-ratelimit-remaining: 0`, "API rate limit exceeded for …".
    pub fn primary_rate_limit(&self, method: &str, path: &str, status: u16, times: usize) {
        self.fault(method, path, FaultKind::Primary { status }, times);
    }

    /// Spends an installation's hourly requests but `remaining`; at 0
    /// every request of it is refused (403, `x-ratelimit-remaining: 0`)
    /// until the window's reset.
    pub fn set_rate_remaining(&self, installation: u64, remaining: u64) {
        let mut state = self.state();
        let key = format!("installation:{installation}");
        auth::spend(&mut state, &key, RATE_LIMIT, false);
        if let Some(w) = state.windows.get_mut(&key) {
            w.used = w.limit.saturating_sub(remaining);
        }
    }

    /// The clone URL of a repository, `{url}/{owner}/{name}.git`.
    pub fn clone_url(&self, repo: u64) -> String {
        let state = self.state();
        state
            .repos
            .get(&repo)
            .map(|r| repos::clone_url(&state, r))
            .unwrap_or_default()
    }

    /// The path of a repository's bare git directory (to inspect it with
    /// git directly).
    pub fn repo_path(&self, repo: u64) -> PathBuf {
        self.state()
            .repos
            .get(&repo)
            .map(|r| r.dir.clone())
            .unwrap_or_default()
    }

    /// Writes `files` (path, content) on `branch` of a repository and
    /// commits them as an administrator would (protection does not
    /// apply); a new branch starts from the default branch. The commit's
    /// sha. Panics if git fails.
    pub fn commit(&self, repo: u64, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        let (dir, default_branch) = {
            let state = self.state();
            let Some(r) = state.repos.get(&repo) else {
                panic!("the GitHub stand-in has no repository {repo}");
            };
            (r.dir.clone(), r.default_branch.clone())
        };
        match repos::commit_to(&dir, branch, &default_branch, files, message) {
            Ok(sha) => sha,
            Err(e) => panic!("the GitHub stand-in could not commit: {e}"),
        }
    }

    /// The commit `branch` points at, if it exists.
    pub fn branch_sha(&self, repo: u64, branch: &str) -> Option<String> {
        let state = self.state();
        repos::branch_sha(state.repos.get(&repo)?, branch)
    }

    /// Marks a branch protected: pushes to it are refused (GH006) and
    /// `GET …/branches/{branch}` says `protected: true`.
    pub fn protect_branch(&self, repo: u64, branch: &str) {
        let mut state = self.state();
        let Some(r) = state.repos.get_mut(&repo) else {
            return;
        };
        r.protected.insert(branch.into());
        let list: String = r
            .protected
            .iter()
            .map(|b| format!("refs/heads/{b}\n"))
            .collect();
        let file = r.dir.join("smithers-protected");
        if let Err(e) = std::fs::write(&file, list) {
            panic!("{}: {e}", file.display());
        }
    }
}

/// What an installation token was minted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    pub installation: u64,
    /// `None`: every repository of the installation.
    pub repositories: Option<Vec<u64>>,
    pub permissions: BTreeMap<String, String>,
}
