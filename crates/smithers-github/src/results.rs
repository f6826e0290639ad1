//! A run's work, delivered as a pull request: when a run the App started
//! succeeds, each `smithers/…` branch its commit steps made in the mirror
//! is pushed to GitHub by Smithers (never from the sandbox) with a token of
//! `contents: write` on that one repository, leased against the commit
//! Smithers last pushed there (a person's push onto the branch is never
//! overwritten), and a pull request is opened from it onto the branch the
//! run's pull request came from — a chain — or updated if one is open
//! already. Its body summarizes the run; every piece of text someone else
//! wrote is neutralized. Nothing is ever merged by Smithers.
//!
//! Level-triggered like the statuses: a run whose work is not settled is
//! tried again on the next pass. Creating a pull request is not retried
//! blindly: an uncertain answer is followed by a look for it.

use std::fmt::Write as _;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use smithers_api::Run;
use smithers_app::{App, Principal};
use smithers_store::{GithubRun, ResultState};

use crate::client::{Auth, Context, Request};
use crate::mirror::Mirrors;
use crate::neutral::{neutralize, neutralize_line};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// Delivers runs' work.
pub(crate) struct Results<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
    pub mirrors: &'a Mirrors,
    pub web_url: &'a str,
    pub public_url: Option<&'a str>,
    pub organization: &'a str,
}

impl Results<'_> {
    /// Settles the work of every run that succeeded and is not settled;
    /// answers how many were settled. A run whose work cannot be pushed
    /// or offered now (GitHub away) is left for the next pass.
    pub(crate) async fn deliver_pending(&self) -> Result<usize, Error> {
        let github = self.app.store().github();
        let mut settled = 0;
        for run in github.undelivered_runs(20).await? {
            let (result, detail, pull) = match self.deliver(&run).await {
                Ok(Settled::Delivered { pull, detail }) => {
                    (ResultState::Delivered, Some(detail), Some(pull))
                }
                Ok(Settled::Nothing) => (ResultState::Nothing, None, None),
                Ok(Settled::Refused(why)) => (ResultState::Failed, Some(why), None),
                Err(e) if passing(&e) => {
                    tracing::warn!(run = %run.run_id, error = %e, "a run's work could not be delivered yet");
                    continue;
                }
                Err(e) => (ResultState::Failed, Some(e.to_string()), None),
            };
            github
                .set_result(&run.run_id, result, detail.as_deref(), pull)
                .await?;
            settled += 1;
        }
        Ok(settled)
    }

    async fn deliver(&self, run: &GithubRun) -> Result<Settled, Error> {
        let principal = Principal::github_installation(self.organization);
        let shown = self.app.runs().show(&principal, &run.run_id).await?;
        let branches = committed_branches(&shown);
        if branches.is_empty() {
            return Ok(Settled::Nothing);
        }
        // The commits sit on a fork's code: pushed into the repository they
        // would run there as trusted code (its CI, and Smithers' own runs).
        if run.from_fork {
            return Ok(Settled::Refused(
                "the run tested a fork's code: Smithers does not push it into the repository"
                    .into(),
            ));
        }
        let mirror = self.mirrors.path(run.repository_id);
        let mut delivered = Vec::new();
        for branch in &branches {
            // The check the engine's own commits and pushes pass.
            if let Some(problem) = smithers_engine::workflow::branch_problem(branch) {
                return Ok(Settled::Refused(problem));
            }
            let sha =
                smithers_engine::run::resolve_commit(&mirror, &format!("refs/heads/{branch}"))
                    .await
                    .map_err(|e| Error::App(smithers_app::engine_error(e)))?;
            // The commit must build on the code this run tested: a branch
            // another run (or an agent's create_commit) moved in the shared
            // mirror is not this run's work.
            if !self
                .mirrors
                .is_ancestor(run.repository_id, &run.head_sha, &sha)
                .await?
            {
                return Ok(Settled::Refused(format!(
                    "{branch} is at {sha}, which does not build on the commit the run tested"
                )));
            }
            if let Some(refused) = self.owned_elsewhere(run, branch).await? {
                return Ok(Settled::Refused(refused));
            }
            if let Some(refused) = self.push(run, branch, &sha).await? {
                return Ok(Settled::Refused(refused));
            }
            let pull = self.offer(run, &shown, branch, &sha).await?;
            delivered.push((branch.clone(), pull));
        }
        let detail = delivered
            .iter()
            .map(|(b, n)| format!("{b} as #{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let last = delivered.last().map_or(0, |(_, n)| *n);
        Ok(Settled::Delivered { pull: last, detail })
    }

    /// Why `branch` is not this run's to push, if Smithers last pushed it
    /// for another pull request or workflow (a run may only move the
    /// branches of its own pull request and workflow).
    async fn owned_elsewhere(
        &self,
        run: &GithubRun,
        branch: &str,
    ) -> Result<Option<String>, Error> {
        let store = self.app.store().github();
        let Some((_, owner)) = store.pushed_branch(run.repository_id, branch).await? else {
            return Ok(None);
        };
        if owner == run.run_id {
            return Ok(None);
        }
        let same = store.run(&owner).await?.is_some_and(|o| {
            o.pull_number == run.pull_number
                && o.workflow == run.workflow
                && (o.pull_number.is_some() || o.result_base == run.result_base)
        });
        Ok((!same).then(|| {
            format!(
                "{branch} carries the work of run {owner} (another pull request or workflow): \
                 this run may not move it"
            )
        }))
    }

    /// Pushes `branch` at `sha`, leased against what Smithers last pushed
    /// there; answers why not when GitHub refuses (someone else's push).
    async fn push(
        &self,
        run: &GithubRun,
        branch: &str,
        sha: &str,
    ) -> Result<Option<String>, Error> {
        let store = self.app.store().github();
        let last = store
            .pushed_branch(run.repository_id, branch)
            .await?
            .map(|(sha, _)| sha);
        let scope = TokenScope::new(run.installation_id, &[run.repository_id])
            .with("contents", Access::Write);
        let context = Context {
            repository: Some(&run.repository),
            delivery: Some(&run.delivery),
        };
        let token = self.github.installation_token(&scope, context).await?;
        let url = format!(
            "{}/{}.git",
            self.web_url.trim_end_matches('/'),
            run.repository
        );
        let pushed = self
            .mirrors
            .push(
                run.repository_id,
                &url,
                &token,
                branch,
                sha,
                last.as_deref(),
            )
            .await;
        drop(token);
        self.github
            .audit(
                "github.branch_pushed",
                ("repository", &run.repository),
                json!({
                    "branch": branch,
                    "sha": sha,
                    "lease": last,
                    "run": run.run_id,
                    "error": pushed.as_ref().err().map(ToString::to_string),
                }),
            )
            .await?;
        match pushed {
            Ok(()) => {
                store
                    .set_pushed_branch(run.repository_id, branch, sha, &run.run_id)
                    .await?;
                Ok(None)
            }
            Err(e)
                if e.to_string().contains("stale info") || e.to_string().contains("rejected") =>
            {
                Ok(Some(format!(
                    "{branch} on GitHub is not where Smithers left it (someone pushed to it?): \
                     Smithers does not overwrite it ({e})"
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// Opens the pull request of `branch` onto the run's result base, or
    /// updates the one open already; its number.
    async fn offer(
        &self,
        run: &GithubRun,
        shown: &Run,
        branch: &str,
        sha: &str,
    ) -> Result<i64, Error> {
        let (owner, name) = run
            .repository
            .split_once('/')
            .ok_or_else(|| Error::Malformed(format!("repository {:?}", run.repository)))?;
        let scope = TokenScope::new(run.installation_id, &[run.repository_id])
            .with("pull_requests", Access::Write);
        let context = Context {
            repository: Some(&run.repository),
            delivery: Some(&run.delivery),
        };
        let body = self.body(run, shown, sha);
        if let Some(number) = self.open_pull(owner, name, branch, &scope, context).await? {
            let number_text = number.to_string();
            let update = Request::new(
                Method::PATCH,
                "/repos/{owner}/{repo}/pulls/{pull_number}",
                &[owner, name, &number_text],
                Auth::Installation(scope.clone()),
            )
            .json(json!({"body": body}))
            .context(context);
            self.github.send(&update).await?;
            return Ok(number);
        }
        let create = Request::new(
            Method::POST,
            "/repos/{owner}/{repo}/pulls",
            &[owner, name],
            Auth::Installation(scope.clone()),
        )
        .json(json!({
            "title": self.title(run, shown),
            "head": branch,
            "base": run.result_base,
            "body": body,
            "maintainer_can_modify": false,
        }))
        .context(context);
        match self.github.send(&create).await {
            Ok(answer) => number_of(&answer.body),
            // Made or not? Look before trying again, so that a lost
            // answer never makes two.
            Err(Error::Uncertain { .. }) => {
                match self.open_pull(owner, name, branch, &scope, context).await? {
                    Some(number) => Ok(number),
                    None => number_of(&self.github.send(&create).await?.body),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The open pull request whose head is `branch` of this repository.
    async fn open_pull(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
        scope: &TokenScope,
        context: Context<'_>,
    ) -> Result<Option<i64>, Error> {
        let look = Request::new(
            Method::GET,
            "/repos/{owner}/{repo}/pulls",
            &[owner, name],
            Auth::Installation(scope.clone()),
        )
        .query("head", format!("{owner}:{branch}"))
        .query("state", "open")
        .context(context);
        let answer = self.github.send(&look).await?;
        Ok(answer
            .body
            .as_array()
            .and_then(|pulls| pulls.first())
            .and_then(|p| p.get("number"))
            .and_then(Value::as_i64))
    }

    fn title(&self, run: &GithubRun, shown: &Run) -> String {
        let message = commit_messages(shown)
            .into_iter()
            .next()
            .unwrap_or_default();
        let first = message.lines().next().unwrap_or("").trim();
        let subject = if first.is_empty() {
            format!("the work of run {}", run.run_id)
        } else {
            neutralize_line(first, 180)
        };
        format!("smithers/{}: {subject}", run.workflow)
    }

    /// The pull request's body: what ran, the decisions that mattered,
    /// who approved what, and a link; everything not Smithers' own words
    /// neutralized.
    fn body(&self, run: &GithubRun, shown: &Run, sha: &str) -> String {
        let mut body = String::new();
        let link = match self.public_url {
            Some(public) => format!(
                "[run `{}`]({}/runs/{})",
                run.run_id,
                public.trim_end_matches('/'),
                run.run_id
            ),
            None => format!("run `{}`", run.run_id),
        };
        let _ = writeln!(
            body,
            "Smithers' {link} of workflow `{}` made this on `{}`{}.\n",
            neutralize_line(&run.workflow, 100),
            sha.get(..12).unwrap_or(sha),
            match run.pull_number {
                Some(n) => format!(", for pull request #{n}"),
                None => String::new(),
            }
        );
        let _ = writeln!(body, "**Steps**\n");
        for step in &shown.steps {
            let _ = writeln!(
                body,
                "- `{}` ({}): {}",
                neutralize_line(&step.id, 100),
                step.kind,
                step.state.as_str()
            );
        }
        let mattered: Vec<_> = shown
            .tool_calls
            .iter()
            .filter(|c| c.decision.decision != "allow")
            .collect();
        if !mattered.is_empty() {
            let _ = writeln!(body, "\n**Decisions that mattered**\n");
            for call in mattered {
                let _ = writeln!(
                    body,
                    "- {} `{}` {}: {} ({})",
                    neutralize_line(&call.subject, 60),
                    call.tool,
                    neutralize_line(&call.decision.resource, 120),
                    call.decision.decision,
                    neutralize_line(&call.decision.reason, 160),
                );
            }
        }
        if !shown.approvals.is_empty() {
            let _ = writeln!(body, "\n**Approvals**\n");
            for approval in &shown.approvals {
                let by = approval
                    .decided_by
                    .as_deref()
                    .map(|b| format!(" by {}", neutralize_line(b, 60)))
                    .unwrap_or_default();
                let comment = approval
                    .comment
                    .as_deref()
                    .map(|c| format!(" — “{}”", neutralize_line(c, 200)))
                    .unwrap_or_default();
                let _ = writeln!(
                    body,
                    "- {}: {}{by}{comment}",
                    neutralize_line(&approval.summary, 200),
                    approval.state.as_str(),
                );
            }
        }
        for message in commit_messages(shown) {
            let _ = writeln!(body, "\n**Commit message** (written by the run)\n");
            for line in neutralize(&message).lines().take(40) {
                let _ = writeln!(body, "> {line}");
            }
        }
        let _ = writeln!(
            body,
            "\nSmithers never merges: review this, and merge it yourself if it is right."
        );
        body
    }
}

/// What became of a run's work.
enum Settled {
    Delivered { pull: i64, detail: String },
    Nothing,
    Refused(String),
}

/// Errors worth trying again later: GitHub away or busy, the audit log
/// unavailable for a moment.
fn passing(e: &Error) -> bool {
    matches!(
        e,
        Error::Unreachable { .. }
            | Error::Uncertain { .. }
            | Error::RateLimited { .. }
            | Error::Audit(_)
            | Error::Store(_)
    ) || matches!(e, Error::Api { status, .. } if *status >= 500)
}

/// The branches the run's commits went to, in order, each once.
fn committed_branches(run: &Run) -> Vec<String> {
    let mut branches: Vec<String> = Vec::new();
    for call in &run.tool_calls {
        if call.tool == "create_commit"
            && call.ok == Some(true)
            && let Some(branch) = call.arguments.get("branch").and_then(Value::as_str)
            && !branches.iter().any(|b| b == branch)
        {
            branches.push(branch.to_string());
        }
    }
    branches
}

fn commit_messages(run: &Run) -> Vec<String> {
    run.tool_calls
        .iter()
        .filter(|c| c.tool == "create_commit" && c.ok == Some(true))
        .filter_map(|c| c.arguments.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn number_of(body: &Value) -> Result<i64, Error> {
    body.get("number")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::Malformed("GitHub's pull request has no number".into()))
}
