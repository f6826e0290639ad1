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
//! Commits to several branches, each building on the one before (a
//! run's consecutive commit steps), become a chain: each branch's pull
//! request is based on the previous branch, the bottom on the run's
//! result base, and the chain is recorded as a stack that the `stacks`
//! reconciler keeps current from then on.
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
use smithers_store::{GithubRun, NewGithubStack, NewStackMember, ResultState, StackState};

use crate::client::{Auth, Context, Request};
use crate::mirror::{Mirrors, push_refusal};
use crate::neutral::{neutralize, neutralize_line};
use crate::pull_open::{NewPull, Target, create_pull, open_pull};
use crate::stacks::Stacks;
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
    /// Reconciles a chain as soon as it is recorded.
    pub stacks: Stacks<'a>,
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
        let mut commits = Vec::with_capacity(branches.len());
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
            commits.push((branch.clone(), sha));
        }
        let chained = commits.len() > 1 && self.in_a_line(run, &commits).await?;
        // This run's pushes take the branches over. No stack pass runs
        // meanwhile, and an earlier run's stack on them stops once the
        // first push is in (not before: a refused push leaves it as it
        // was), so that its reconciler never takes them for someone
        // else's push.
        let no_pass = self.stacks.pass.lock().await;
        let mut delivered: Vec<(String, i64)> = Vec::new();
        for (i, (branch, sha)) in commits.iter().enumerate() {
            if let Some(refused) = self.push(run, branch, sha).await? {
                return Ok(Settled::Refused(refused));
            }
            if i == 0 {
                self.supersede_stacks(run, &branches).await?;
            }
            let base = match (chained, i.checked_sub(1)) {
                (true, Some(below)) => commits[below].0.as_str(),
                _ => run.result_base.as_str(),
            };
            let pull = self.offer(run, &shown, branch, sha, base).await?;
            delivered.push((branch.clone(), pull));
        }
        drop(no_pass);
        if chained {
            self.record_stack(run, &shown, &commits, &delivered).await?;
        }
        let detail = delivered
            .iter()
            .map(|(b, n)| format!("{b} as #{n}"))
            .collect::<Vec<_>>()
            .join(if chained { " ← " } else { ", " });
        let last = delivered.last().map_or(0, |(_, n)| *n);
        Ok(Settled::Delivered { pull: last, detail })
    }

    /// Marks the active or paused stacks of other runs with a member on
    /// one of `branches` superseded by `run`, each audited
    /// (`github.stack_superseded`). The caller holds the stack pass lock.
    ///
    /// Errors: the store's and the audit log's.
    async fn supersede_stacks(&self, run: &GithubRun, branches: &[String]) -> Result<(), Error> {
        let store = self.app.store().github();
        for older in store
            .stacks_on_branches(run.repository_id, branches, &run.run_id)
            .await?
        {
            if store
                .set_stack_state(
                    &older,
                    &[StackState::Active, StackState::Paused],
                    StackState::Superseded,
                    None,
                )
                .await?
            {
                self.github
                    .audit(
                        "github.stack_superseded",
                        ("github_stack", &older),
                        json!({"repository": run.repository, "by_run": run.run_id}),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether each of `commits` builds on the one before it: a chain.
    async fn in_a_line(
        &self,
        run: &GithubRun,
        commits: &[(String, String)],
    ) -> Result<bool, Error> {
        for pair in commits.windows(2) {
            let ((_, below), (_, above)) = (&pair[0], &pair[1]);
            if below == above
                || !self
                    .mirrors
                    .is_ancestor(run.repository_id, below, above)
                    .await?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Records the chain `commits` (bottom first, offered as `pulls`) as
    /// the run's stack and reconciles it once (a failure there is the
    /// next pass's to mend).
    ///
    /// Errors: the store's and the audit log's.
    async fn record_stack(
        &self,
        run: &GithubRun,
        shown: &Run,
        commits: &[(String, String)],
        pulls: &[(String, i64)],
    ) -> Result<(), Error> {
        let store = self.app.store().github();
        let titles: Vec<String> = commits
            .iter()
            .map(|(branch, _)| self.title(run, shown, Some(branch)))
            .collect();
        let id = format!("stk_{}", uuid::Uuid::now_v7().simple());
        let members = commits
            .iter()
            .enumerate()
            .map(|(i, (branch, head))| NewStackMember {
                branch,
                title: &titles[i],
                built_on: match i.checked_sub(1) {
                    Some(below) => &commits[below].1,
                    None => &run.head_sha,
                },
                head,
            })
            .collect();
        let created = store
            .create_stack(&NewGithubStack {
                id: &id,
                organization_id: self.organization,
                installation_id: run.installation_id,
                repository_id: run.repository_id,
                repository: &run.repository,
                run_id: &run.run_id,
                base: &run.result_base,
                members,
            })
            .await?;
        let Some(mut stack) = store.stack_of_run(&run.run_id).await? else {
            return Err(Error::Malformed(format!(
                "run {}'s stack is not recorded",
                run.run_id
            )));
        };
        for (m, (_, number)) in stack.members.iter_mut().zip(pulls) {
            if m.pull_number != Some(*number) {
                m.pull_number = Some(*number);
                store.update_stack_member(&stack.id, m).await?;
            }
        }
        if created {
            // Where the repository has native stacks, GitHub shows the
            // chain as one too; an error there is no reason to hold up
            // the delivery.
            let native = match self.stacks.create_native(&stack).await {
                Ok(native) => native,
                Err(e) => {
                    tracing::warn!(stack = %stack.id, error = %e, "no native stack was made");
                    None
                }
            };
            self.github
                .audit(
                    "github.stack_created",
                    ("github_stack", &stack.id),
                    json!({
                        "repository": run.repository,
                        "run": run.run_id,
                        "base": run.result_base,
                        "members": pulls
                            .iter()
                            .map(|(b, n)| json!({"branch": b, "pull": n}))
                            .collect::<Vec<_>>(),
                        "native_stack": native,
                    }),
                )
                .await?;
        }
        if let Err(e) = self.stacks.reconcile(&stack.id).await {
            tracing::warn!(stack = %stack.id, error = %e, "a new stack could not be reconciled yet");
        }
        Ok(())
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
            Err(e) if push_refusal(&e).is_some() => Ok(Some(format!(
                "{branch} on GitHub is not where Smithers left it (someone pushed to it?): \
                     Smithers does not overwrite it ({e})"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Opens the pull request of `branch` onto `base` (the run's result
    /// base, or the branch below it in a chain), or updates the one open
    /// already; its number.
    async fn offer(
        &self,
        run: &GithubRun,
        shown: &Run,
        branch: &str,
        sha: &str,
        base: &str,
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
        let body = self.body(run, shown, branch, sha);
        let target = Target {
            owner,
            name,
            scope: &scope,
            context,
        };
        let number = match open_pull(self.github, &target, branch).await? {
            Some(number) => {
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
                number
            }
            None => {
                let title = self.title(run, shown, Some(branch));
                let pull = NewPull {
                    title: &title,
                    head: branch,
                    base,
                    body: &body,
                };
                create_pull(self.github, &target, &pull).await?
            }
        };
        i64::try_from(number).map_err(|_| Error::Malformed(format!("pull request number {number}")))
    }

    /// `smithers/WORKFLOW: ` and the first line of the first commit
    /// message to `branch` (of the run's, when none).
    fn title(&self, run: &GithubRun, shown: &Run, branch: Option<&str>) -> String {
        let message = commit_messages(shown, branch)
            .into_iter()
            .next()
            .or_else(|| commit_messages(shown, None).into_iter().next())
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
    fn body(&self, run: &GithubRun, shown: &Run, branch: &str, sha: &str) -> String {
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
        for message in commit_messages(shown, Some(branch)) {
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

/// The messages of the run's commits, to `branch` only when given.
fn commit_messages(run: &Run, branch: Option<&str>) -> Vec<String> {
    run.tool_calls
        .iter()
        .filter(|c| c.tool == "create_commit" && c.ok == Some(true))
        .filter(|c| {
            branch.is_none_or(|b| c.arguments.get("branch").and_then(Value::as_str) == Some(b))
        })
        .filter_map(|c| c.arguments.get("message").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}
