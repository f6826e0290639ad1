//! Pull request events start the workflows they trigger (GitHub Docs,
//! "Webhook events and payloads: pull_request"):
//!
//! ```text
//! pull_request opened | synchronize | reopened   (push: a branch's tip)
//!   → the installation is live and the repository connected
//!   → mirror fetched (contents-read token): the default branch and
//!     refs/pull/N/head
//!   → the workflows whose `on` names the event, read from the DEFAULT
//!     BRANCH's smithers.toml (never the pull request's)
//!   → each started pinned: rules from the default branch's tip, code from
//!     the pull request's head; no secrets for a fork's pull request
//!     unless the organization allows it
//!   → its earlier unfinished runs of the same pull request and workflow
//!     cancelled as superseded; each new run launched, its status pending
//! ```

use std::sync::Arc;

use serde::Deserialize;
use smithers_app::{App, NewRun, Pinned, Principal, RunLauncher};
use smithers_store::{Delivery, NewGithubRun, Outcome};

use crate::client::Context;
use crate::mirror::Mirrors;
use crate::statuses::Statuses;
use crate::token::TokenScope;
use crate::{Error, Github};

/// Whether a pull request from a fork gets the workflow's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForkSecrets {
    /// It gets none: a step that needs one fails, saying why.
    #[default]
    Withheld,
    /// It gets them like any other (the organization trusts its forks).
    Allowed,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    number: i64,
    pull_request: PullRequest,
    repository: Repository,
    installation: crate::events::InstallationId,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    head: End,
}

#[derive(Debug, Deserialize)]
struct End {
    sha: String,
    #[serde(rename = "ref")]
    branch: String,
    /// `null` when the fork was deleted.
    repo: Option<RepositoryId>,
}

#[derive(Debug, Deserialize)]
struct RepositoryId {
    id: i64,
}

/// `push` (GitHub Docs: "push"): the fields Smithers reads.
#[derive(Debug, Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    installation: crate::events::InstallationId,
}

/// A repository as events name it.
#[derive(Debug, Deserialize)]
pub(crate) struct Repository {
    pub id: i64,
    pub full_name: String,
    pub default_branch: String,
}

/// What a delivery came to, and why.
pub(crate) struct Done {
    pub outcome: Outcome,
    pub detail: Option<String>,
}

impl Done {
    fn ignored(why: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Ignored,
            detail: Some(why.into()),
        }
    }
}

/// Starts pull requests' runs.
pub(crate) struct PullRuns<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
    pub mirrors: &'a Mirrors,
    /// GitHub's web origin, which repositories are fetched from.
    pub web_url: &'a str,
    /// Where statuses link to.
    pub public_url: Option<&'a str>,
    pub fork_secrets: ForkSecrets,
    pub organization: &'a str,
}

/// What an event asks to run: a pull request's head, a pushed branch's
/// tip, or the default branch's for a schedule.
pub(crate) struct Target<'t> {
    pub installation: i64,
    pub repository: &'t Repository,
    /// `pull_request.opened`, `push`, `schedule`, …
    pub trigger: String,
    /// The ref whose tip is the code to run, fetched into the mirror as
    /// itself (`refs/pull/N/head`, `refs/heads/BRANCH`).
    pub head_ref: String,
    /// The commit the event names: an event is stale (nothing started)
    /// when the ref has moved on; `None`: whatever the ref's tip is.
    pub head_sha: Option<&'t str>,
    pub pull_number: Option<i64>,
    /// Where the run's work is offered.
    pub result_base: String,
    /// Whether the code under test is a fork's.
    pub from_fork: bool,
    pub secrets_withheld: Option<&'static str>,
    /// Only these of the workflows the trigger starts (the schedules
    /// due); `None`: all of them.
    pub only: Option<&'t [String]>,
    /// Whether a workflow runs once per head commit (a delivery seen late
    /// or twice starts nothing again); a schedule runs at every firing.
    pub once_per_head: bool,
}

impl PullRuns<'_> {
    /// Carries out a `pull_request` delivery.
    pub(crate) async fn on_pull_request(
        &self,
        delivery: &Delivery,
        launcher: &dyn RunLauncher,
    ) -> Result<Done, Error> {
        let event: PullRequestEvent = serde_json::from_str(&delivery.body)
            .map_err(|e| Error::Malformed(format!("the pull_request payload: {e}")))?;
        if !matches!(event.action.as_str(), "opened" | "synchronize" | "reopened") {
            return Ok(Done::ignored(format!("action {}", event.action)));
        }
        // Smithers' own pull requests (a run's delivered work) start
        // nothing: a run must not trigger runs, nor launder the code it
        // tested into a trusted pull request.
        if event
            .pull_request
            .head
            .branch
            .starts_with(smithers_engine::workflow::SMITHERS_BRANCH_PREFIX)
        {
            return Ok(Done::ignored(format!(
                "{} is Smithers' own pull request",
                event.pull_request.head.branch
            )));
        }
        let from_fork = event
            .pull_request
            .head
            .repo
            .as_ref()
            .is_none_or(|r| r.id != event.repository.id);
        // The run's work is offered as a pull request onto the one that
        // triggered it (a chain) — onto the default branch when that one
        // lives in a fork, where the App cannot push.
        let result_base = if from_fork {
            event.repository.default_branch.clone()
        } else {
            event.pull_request.head.branch.clone()
        };
        let target = Target {
            installation: event.installation.id,
            repository: &event.repository,
            trigger: format!("pull_request.{}", event.action),
            head_ref: format!("refs/pull/{}/head", event.number),
            head_sha: Some(&event.pull_request.head.sha),
            pull_number: Some(event.number),
            result_base,
            from_fork,
            secrets_withheld: (from_fork && self.fork_secrets == ForkSecrets::Withheld).then_some(
                "the pull request comes from a fork, and the organization gives forks no secrets",
            ),
            only: None,
            once_per_head: true,
        };
        self.start_runs(&delivery.guid, &target, launcher).await
    }

    /// Carries out a `push` delivery: a branch's new tip runs the
    /// workflows `on = ["push"]` names (never for Smithers' own
    /// `smithers/…` branches, a tag or a deleted branch).
    pub(crate) async fn on_push(
        &self,
        delivery: &Delivery,
        launcher: &dyn RunLauncher,
    ) -> Result<Done, Error> {
        let event: PushEvent = serde_json::from_str(&delivery.body)
            .map_err(|e| Error::Malformed(format!("the push payload: {e}")))?;
        let Some(branch) = event.git_ref.strip_prefix("refs/heads/") else {
            return Ok(Done::ignored(format!("{} is not a branch", event.git_ref)));
        };
        if event.deleted || event.after.bytes().all(|b| b == b'0') {
            return Ok(Done::ignored(format!("{branch} was deleted")));
        }
        if branch.starts_with(smithers_engine::workflow::SMITHERS_BRANCH_PREFIX) {
            return Ok(Done::ignored(format!("{branch} is Smithers' own")));
        }
        if !is_branch_name(branch) {
            return Err(Error::Malformed(format!("{branch:?} is not a branch name")));
        }
        let target = Target {
            installation: event.installation.id,
            repository: &event.repository,
            trigger: "push".into(),
            head_ref: format!("refs/heads/{branch}"),
            head_sha: Some(&event.after),
            pull_number: None,
            result_base: branch.to_string(),
            from_fork: false,
            secrets_withheld: None,
            only: None,
            once_per_head: true,
        };
        self.start_runs(&delivery.guid, &target, launcher).await
    }

    /// Starts the workflows `target` triggers (the module says how);
    /// `cause` is the delivery's GUID, or what else started them (a
    /// schedule's firing), recorded with each run.
    pub(crate) async fn start_runs(
        &self,
        cause: &str,
        target: &Target<'_>,
        launcher: &dyn RunLauncher,
    ) -> Result<Done, Error> {
        let repository = target.repository;
        let github = self.app.store().github();
        let installation = github.installation(target.installation).await?;
        match installation {
            Some(i) if i.organization_id == self.organization => {
                if i.deleted_at.is_some() {
                    return Ok(Done::ignored("the installation was deleted"));
                }
                if i.suspended_at.is_some() {
                    return Ok(Done::ignored("the installation is suspended"));
                }
            }
            _ => return Ok(Done::ignored("an installation Smithers does not know")),
        }
        let connected = github.repository(repository.id).await?.is_some_and(|r| {
            r.organization_id == self.organization
                && r.installation_id == target.installation
                && r.disconnected_at.is_none()
        });
        if !connected {
            return Ok(Done::ignored(format!(
                "{} is not connected",
                repository.full_name
            )));
        }
        let default = &repository.default_branch;
        if !is_branch_name(default) {
            return Err(Error::Malformed(format!(
                "default branch {default:?} is not a branch name"
            )));
        }
        let mut refs = vec![format!("refs/heads/{default}")];
        if target.head_ref != refs[0] {
            refs.push(target.head_ref.clone());
        }
        let mirror = self
            .fetch(target.installation, repository, &refs, cause)
            .await?;
        let principal = Principal::github_installation(self.organization);
        let runs = self.app.runs();
        let resolve = |rev: String| {
            let mirror = mirror.clone();
            async move {
                smithers_engine::run::resolve_commit(&mirror, &rev)
                    .await
                    .map_err(|e| Error::App(smithers_app::engine_error(e)))
            }
        };
        let rules = resolve(format!("refs/heads/{default}")).await?;
        // Deliveries come late, twice or out of order: only the current
        // head is run, once per workflow.
        let current = resolve(target.head_ref.clone()).await?;
        if let Some(named) = target.head_sha
            && current != named
        {
            return Ok(Done::ignored(format!(
                "stale: {} is at {} now, not {}",
                target.head_ref,
                short(&current),
                short(named)
            )));
        }
        let head_sha = current.as_str();
        let mut workflows = runs
            .workflows_triggered(&principal, &mirror, &rules, &target.trigger)
            .await?;
        if let Some(only) = target.only {
            workflows.retain(|w| only.contains(w));
        }
        if workflows.is_empty() {
            return Ok(Done::ignored(format!(
                "no workflow of {default} ({}) is triggered by {}",
                short(&rules),
                target.trigger
            )));
        }
        let mut started = Vec::new();
        for workflow in &workflows {
            if target.once_per_head
                && let Some(earlier) = github
                    .run_of_head(repository.id, target.pull_number, workflow, head_sha)
                    .await?
            {
                started.push(format!("{workflow}: run {} already", earlier.run_id));
                continue;
            }
            let run = runs
                .start(
                    &principal,
                    NewRun {
                        repo: &mirror,
                        workflow,
                        trigger: &target.trigger,
                        provider: None,
                        image: None,
                        roots: None,
                        pinned: Some(Pinned {
                            rules: &rules,
                            code: head_sha,
                            secrets_withheld: target.secrets_withheld,
                        }),
                    },
                )
                .await?;
            // The earlier runs of this pull request and workflow test a
            // head that is no longer the pull request's.
            if let Some(number) = target.pull_number {
                for older in github
                    .open_runs_of_pull(repository.id, number, workflow)
                    .await?
                {
                    github.set_superseded(&older.run_id, head_sha).await?;
                    if let Err(e) = runs.cancel(&principal, &older.run_id).await {
                        tracing::warn!(run = %older.run_id, error = %e.message, "a superseded run could not be cancelled");
                    }
                }
            }
            github
                .record_run(NewGithubRun {
                    run_id: &run.id,
                    organization_id: self.organization,
                    installation_id: target.installation,
                    repository_id: repository.id,
                    repository: &repository.full_name,
                    pull_number: target.pull_number,
                    head_sha,
                    workflow,
                    delivery: cause,
                    result_base: &target.result_base,
                    from_fork: target.from_fork,
                })
                .await?;
            // `pending` before anything runs: a run that ends quickly still
            // shows it was queued (the reporter catches up if GitHub is
            // away).
            if let Err(e) = (Statuses {
                app: self.app,
                github: self.github,
                public_url: self.public_url,
            })
            .post_now(&run.id)
            .await
            {
                tracing::warn!(run = %run.id, error = %e, "the pending status could not be posted");
            }
            runs.launch(&principal, &run.id, launcher).await?;
            started.push(format!("{workflow}: run {}", run.id));
        }
        Ok(Done {
            outcome: Outcome::Handled,
            detail: Some(format!(
                "started {} at {} with the rules of {default} ({})",
                started.join(", "),
                short(head_sha),
                short(&rules)
            )),
        })
    }
}

impl PullRuns<'_> {
    /// Fetches `refs` (each as itself) of `repository` into its mirror
    /// with a contents-read token of `installation`, audited as
    /// `github.repository_fetched` with `cause`; the mirror's path.
    ///
    /// Errors: GitHub's, when no token is given; the fetch's; the audit
    /// log's.
    pub(crate) async fn fetch(
        &self,
        installation: i64,
        repository: &Repository,
        refs: &[String],
        cause: &str,
    ) -> Result<std::path::PathBuf, Error> {
        let context = Context {
            repository: Some(&repository.full_name),
            delivery: Some(cause),
        };
        let scope = TokenScope::contents_read(installation, repository.id);
        let token = self.github.installation_token(&scope, context).await?;
        let url = format!(
            "{}/{}.git",
            self.web_url.trim_end_matches('/'),
            repository.full_name
        );
        let refspecs: Vec<String> = refs.iter().map(|r| format!("+{r}:{r}")).collect();
        let fetched = self
            .mirrors
            .fetch(repository.id, &url, &token, &refspecs)
            .await;
        drop(token);
        self.github
            .audit(
                "github.repository_fetched",
                ("repository", &repository.full_name),
                serde_json::json!({
                    "refs": refspecs,
                    "delivery": cause,
                    "installation": installation,
                    "error": fetched.as_ref().err().map(ToString::to_string),
                }),
            )
            .await?;
        fetched
    }
}

/// A commit's first 12 hexadecimal digits, for people to read.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Whether `name` is one branch name git and a refspec take (the
/// engine's check, the one its own pushes pass).
fn is_branch_name(name: &str) -> bool {
    smithers_engine::workflow::ref_name_problem(name).is_none()
}

#[cfg(test)]
mod tests {
    use super::is_branch_name;

    #[test]
    fn branch_names_are_single_refs() {
        for good in ["main", "release/1.2", "feature_x", "dev-2"] {
            assert!(is_branch_name(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            "a b",
            "a:b",
            "a..b",
            "main:refs/heads/x",
            "a\nb",
            "x.lock",
            "/a",
            "a/",
            "a//b",
            "a@{1}",
            "*",
        ] {
            assert!(!is_branch_name(bad), "{bad:?}");
        }
    }
}
