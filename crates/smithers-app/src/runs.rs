//! Runs: start, carry out, follow, resume and cancel, behind the
//! authorization table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use smithers_api::{
    Cancelled, CursoredEvent, Error, EventCursor, Launched, LogLine, LogStream, ModelTurn, Page,
    Run, RunChange, RunEvent, RunEvents, RunPolicies, RunSandbox, RunState, RunSummary, Step,
    StepState, Timestamp, ToolCall, ToolCallState,
};
use smithers_engine::run::{Definition, Pinned, StartRun};
use smithers_engine::workflow::ProviderKind;

use crate::authz::{Operation, authorize};
use crate::error::{engine_error, store_error};
use crate::sandboxes::{EgressObserver, audited_egress};
use crate::{App, Principal, approval_dto};

/// How many runs a list holds at most.
pub const RUN_LIST_LIMIT: u32 = 1000;

/// Has a run carried out somewhere other than the caller's own task: the
/// command line starts `smithers runs resume ID` in the background; the
/// server hands it to its pool of run tasks.
pub trait RunLauncher: Send + Sync {
    /// Starts carrying out `run` (created, or interrupted) on behalf of
    /// `principal`, and returns once it is under way.
    ///
    /// Errors: `unavailable` when it cannot be started.
    fn launch<'a>(
        &'a self,
        principal: &'a Principal,
        run: &'a RunSummary,
    ) -> BoxFuture<'a, Result<Launched, Error>>;

    /// Stops carrying out run `id` where it stands (its last committed
    /// point), leaving it unfinished for a later [`RunLauncher::launch`];
    /// returns once its sandbox is gone, `true` if this launcher was
    /// carrying it out.
    ///
    /// Errors: `unavailable` from a launcher that hands runs to processes
    /// it does not control (the default).
    fn pause<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            Err(Error::unavailable(format!(
                "run {id} cannot be paused: it is carried out by a process of its own"
            )))
        })
    }
}

/// A boxed future, as [`RunLauncher`] returns (the sandbox's alias).
pub use smithers_sandbox::egress::BoxFuture;

/// The longest a follower goes without looking at its run: a change wakes
/// it at once; this bounds what a missed wake-up costs.
pub const FOLLOW_FALLBACK: std::time::Duration = std::time::Duration::from_secs(1);

/// Which runs a list shows: unfinished ones unless `all` (or a `state`
/// is named), of a state, workflow, repository or starter, after a
/// cursor, at most `limit` (and [`RUN_LIST_LIMIT`]).
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub all: bool,
    pub state: Option<RunState>,
    pub workflow: Option<String>,
    pub repository: Option<String>,
    pub requested_by: Option<String>,
    /// The `next` of the page before.
    pub cursor: Option<String>,
    pub limit: u32,
}

/// The repository `asked` names, as its real path, when it lies under one
/// of `roots` (each taken as its real path too).
///
/// Errors: `forbidden` for a path outside every root, or when there is
/// none; `invalid` for a path that does not exist.
async fn allowed_repository(roots: &[PathBuf], asked: &Path) -> Result<PathBuf, Error> {
    if roots.is_empty() {
        return Err(Error::forbidden(
            "this server starts runs on no repository: it was given no --repository-root",
        ));
    }
    let real = tokio::fs::canonicalize(asked)
        .await
        .map_err(|e| Error::invalid(format!("repository {}: {e}", asked.display())))?;
    for root in roots {
        if let Ok(root) = tokio::fs::canonicalize(root).await
            && real.starts_with(&root)
        {
            return Ok(real);
        }
    }
    Err(Error::forbidden(format!(
        "repository {} is not under a repository root of this server",
        asked.display()
    )))
}

/// A list's cursor (runs, approvals): the last item's creation time (µs)
/// and id, base64url, so that a client treats it as opaque.
pub(crate) fn encode_cursor(created_at: i64, id: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}.{id}"))
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, String), Error> {
    use base64::Engine as _;
    let bad = || Error::invalid(format!("cursor {cursor:?} is not one this list gave"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

/// What starting a run needs: the repository (a git checkout whose
/// `smithers.toml` names the workflow), the workflow, and what started it.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub repo: &'a Path,
    pub workflow: &'a str,
    /// `manual`, or the event that started it.
    pub trigger: &'a str,
    /// A sandbox provider over the workflow's own, kept for the whole run.
    pub provider: Option<ProviderKind>,
    /// A Docker image over the default, kept for the whole run.
    pub image: Option<&'a str>,
    /// The directories the repository must lie under (its real path:
    /// a symbolic link cannot lead out), for a front end that serves
    /// callers who do not own the machine; `None`: any repository the
    /// process can read (the command line's user owns the machine).
    pub roots: Option<&'a [PathBuf]>,
    /// Commits to run from instead of the repository's HEAD (a pull
    /// request's run: the rules of its base's default branch, the code of
    /// its head).
    pub pinned: Option<Pinned<'a>>,
}

/// Where a run is carried out, when not where it started.
#[derive(Clone, Default)]
pub struct Execution {
    /// Another provider than the one the run started with.
    pub provider: Option<ProviderKind>,
    /// Another Docker image.
    pub image: Option<String>,
    /// Shown each egress decision of the run's sandboxes, besides the
    /// audit log.
    pub egress_observer: Option<EgressObserver>,
}

/// Starts, carries out, shows, follows and cancels runs. Obtained from
/// [`App::runs`].
pub struct Runs<'a> {
    pub(crate) app: &'a App,
}

impl App {
    /// The organization's runs.
    pub fn runs(&self) -> Runs<'_> {
        Runs { app: self }
    }

    /// Wakes a follower of run `id` when it changes: its state, steps, log
    /// or approvals, committed by this process or another (see
    /// [`smithers_store::RunChanges`]). It tells nothing itself: the
    /// follower reads again through [`Runs`], which authorizes.
    pub fn run_changes(&self, id: &str) -> smithers_store::RunChanges {
        self.store().run_changes(id, FOLLOW_FALLBACK)
    }
}

impl Runs<'_> {
    /// Starts a run of `new.workflow` as the principal: reads the workflow
    /// and the repository's policy at the repository's HEAD, and the
    /// organization's policy as published now, and records the run,
    /// queued. Nothing is carried out yet ([`Runs::execute`],
    /// [`Runs::launch`]).
    ///
    /// The run is the principal's organization's, started by the
    /// principal.
    ///
    /// Errors: `invalid` for a repository or workflow that cannot be read;
    /// `unavailable` for a workflow naming secrets without a keyring.
    pub async fn start(&self, principal: &Principal, new: NewRun<'_>) -> Result<RunSummary, Error> {
        authorize(principal, &principal.organization, Operation::RunsStart)?;
        // Only once the caller may start runs: what exists on the machine
        // is told to nobody else.
        let confined;
        let repo = match new.roots {
            Some(roots) => {
                confined = allowed_repository(roots, new.repo).await?;
                confined.as_path()
            }
            None => new.repo,
        };
        let run = self
            .app
            .engine()
            .start(StartRun {
                organization_id: &principal.organization,
                requested_by: &principal.user,
                repo,
                workflow: new.workflow,
                trigger: new.trigger,
                provider: new.provider,
                image: new.image,
                pinned: new.pinned,
            })
            .await
            .map_err(engine_error)?;
        Ok(summary(&run))
    }

    /// The workflows of the repository's `smithers.toml` in the tree of
    /// `commit` that `trigger` (`pull_request.opened`, `push`, …) starts,
    /// by name in file order; none when the file is absent there.
    ///
    /// Errors: `forbidden` for a principal who may not start runs;
    /// `invalid` for an unknown trigger, a commit the repository lacks, or
    /// a workflow file that does not parse.
    pub async fn workflows_triggered(
        &self,
        principal: &Principal,
        repo: &Path,
        commit: &str,
        trigger: &str,
    ) -> Result<Vec<String>, Error> {
        authorize(principal, &principal.organization, Operation::RunsStart)?;
        let trigger = smithers_engine::workflow::Trigger::ALL
            .iter()
            .find(|(name, _)| *name == trigger)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::invalid(format!("unknown trigger {trigger:?}")))?;
        Ok(workflows_at(repo, commit)
            .await?
            .into_iter()
            .filter(|w| w.triggers.contains(&trigger))
            .map(|w| w.name)
            .collect())
    }

    /// The scheduled workflows of the repository's `smithers.toml` in the
    /// tree of `commit`: (name, five-field cron, read in UTC), in file
    /// order; none when the file is absent there.
    ///
    /// Errors: as [`Runs::workflows_triggered`].
    pub async fn workflow_schedules(
        &self,
        principal: &Principal,
        repo: &Path,
        commit: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        authorize(principal, &principal.organization, Operation::RunsStart)?;
        Ok(workflows_at(repo, commit)
            .await?
            .into_iter()
            .filter(|w| {
                w.triggers
                    .contains(&smithers_engine::workflow::Trigger::Schedule)
            })
            .filter_map(|w| Some((w.name, w.schedule?)))
            .collect())
    }

    /// Has `launcher` carry out run `id` (`run --detach`, a resume).
    ///
    /// Errors: `not_found` for a run of another organization; `conflict`
    /// for a finished run, a paused one (its GitHub App installation is
    /// suspended), or one another live process carries out; the
    /// launcher's.
    pub async fn launch(
        &self,
        principal: &Principal,
        id: &str,
        launcher: &dyn RunLauncher,
    ) -> Result<Launched, Error> {
        authorize(principal, &principal.organization, Operation::RunsStart)?;
        let run = self.find(principal, id).await?;
        if run.state.is_finished() {
            return Err(Error::conflict(format!(
                "run {id} has ended ({}): there is nothing to carry on",
                run.state.as_str()
            )));
        }
        if self.is_paused(id).await? {
            return Err(paused(id));
        }
        let launched = self.hand_over(principal, &run, launcher).await?;
        // A suspension applied while it was handed over has found it
        // launched, or has not seen it: it is paused here then.
        if self.is_paused(id).await? {
            launcher.pause(id).await?;
        }
        Ok(launched)
    }

    /// Whether run `id` is one of a suspended GitHub App installation's.
    async fn is_paused(&self, id: &str) -> Result<bool, Error> {
        self.app
            .store()
            .github()
            .is_paused(id)
            .await
            .map_err(store_error)
    }

    /// Hands unfinished `run` to `launcher`, unless another live process
    /// carries it out.
    async fn hand_over(
        &self,
        principal: &Principal,
        run: &smithers_store::Run,
        launcher: &dyn RunLauncher,
    ) -> Result<Launched, Error> {
        let id = &run.id;
        if let Some(owner) = run.owner.as_deref()
            && owner != smithers_sandbox::owner::current()
            && !smithers_sandbox::owner::is_gone(owner)
        {
            return Err(Error::conflict(format!(
                "run {id} is being carried out by another process ({owner})"
            )));
        }
        launcher.launch(principal, &summary(run)).await
    }

    /// Pauses run `id`: `launcher` stops carrying it out where it stands
    /// and `run.paused` is recorded with `reason`; the run stays
    /// unfinished (its approvals can still be decided) until
    /// [`Runs::unpause`]. Answers whether `launcher` was carrying it out
    /// (another process carrying it out is not stopped by this); a
    /// finished run is left as it is (`None`).
    ///
    /// Errors: `not_found` for a run of another organization; the
    /// launcher's; `unavailable` when the event cannot be recorded.
    pub async fn pause(
        &self,
        principal: &Principal,
        id: &str,
        launcher: &dyn RunLauncher,
        reason: &str,
    ) -> Result<Option<bool>, Error> {
        authorize(principal, &principal.organization, Operation::RunsResume)?;
        let run = self.find(principal, id).await?;
        if run.state.is_finished() {
            return Ok(None);
        }
        let stopped = launcher.pause(id).await?;
        self.app
            .engine()
            .runs
            .record(
                id,
                "run.paused",
                json!({"reason": reason, "by": principal.user, "stopped": stopped}),
            )
            .await
            .map_err(store_error)?;
        Ok(Some(stopped))
    }

    /// Carries on run `id`, paused for `reason` before: records
    /// `run.unpaused`, then hands it to `launcher` ([`Runs::launch`]). A
    /// finished run is left as it is (`None`).
    ///
    /// Errors: as [`Runs::launch`]; `unavailable` when the event cannot be
    /// recorded.
    pub async fn unpause(
        &self,
        principal: &Principal,
        id: &str,
        launcher: &dyn RunLauncher,
        reason: &str,
    ) -> Result<Option<Launched>, Error> {
        authorize(principal, &principal.organization, Operation::RunsResume)?;
        let run = self.find(principal, id).await?;
        if run.state.is_finished() {
            return Ok(None);
        }
        self.app
            .engine()
            .runs
            .record(
                id,
                "run.unpaused",
                json!({"reason": reason, "by": principal.user}),
            )
            .await
            .map_err(store_error)?;
        self.hand_over(principal, &run, launcher).await.map(Some)
    }

    /// Runs of the organization a killed process left unfinished, each
    /// handed to `launcher` to carry on; returns what was launched. Runs of
    /// a suspended GitHub App installation stay paused.
    pub async fn resume_interrupted(
        &self,
        principal: &Principal,
        launcher: &dyn RunLauncher,
    ) -> Result<Vec<(RunSummary, Launched)>, Error> {
        authorize(principal, &principal.organization, Operation::RunsResume)?;
        let lost = self
            .app
            .engine()
            .interrupted(&principal.organization)
            .await
            .map_err(engine_error)?;
        let paused = self
            .app
            .store()
            .github()
            .paused_runs()
            .await
            .map_err(store_error)?;
        let mut launched = Vec::with_capacity(lost.len());
        for run in lost.iter().filter(|run| !paused.contains(&run.id)) {
            let run = summary(run);
            let started = launcher.launch(principal, &run).await?;
            launched.push((run, started));
        }
        Ok(launched)
    }

    /// Marks queued run `id` as this process's to carry out (a launcher
    /// that makes it wait for a free slot): if the process dies first, the
    /// next start finds it interrupted. A run under way is left as it is.
    ///
    /// Errors: `not_found` for a run of another organization; `conflict`
    /// when another live process holds it.
    pub async fn hold(&self, principal: &Principal, id: &str) -> Result<RunSummary, Error> {
        authorize(principal, &principal.organization, Operation::RunsResume)?;
        self.find(principal, id).await?;
        let run = self.app.engine().hold(id).await.map_err(engine_error)?;
        Ok(summary(&run))
    }

    /// The interrupted runs of every organization ([`Runs::resume_interrupted`]),
    /// each handed to `launcher` as [`Principal::system`]: what a server
    /// does when it starts.
    pub async fn resume_interrupted_everywhere(
        &self,
        launcher: &dyn RunLauncher,
    ) -> Result<Vec<(RunSummary, Launched)>, Error> {
        let organizations = self
            .app
            .store()
            .organizations()
            .list()
            .await
            .map_err(store_error)?;
        let mut launched = Vec::new();
        for org in organizations {
            let principal = Principal::system(&org.id);
            launched.extend(self.resume_interrupted(&principal, launcher).await?);
        }
        Ok(launched)
    }

    /// Carries out run `id` from where it stands to its end, in this task:
    /// in the sandbox chosen when it started (or `execution`'s). A
    /// workflow that names hosts has each of its sandbox's connections
    /// audited.
    ///
    /// Errors: `not_found` for a run of another organization; `invalid`
    /// when another live process carries it out; `conflict` for a paused
    /// run (its GitHub App installation is suspended); `unavailable` when
    /// the sandbox cannot be made.
    pub async fn execute(
        &self,
        principal: &Principal,
        id: &str,
        execution: Execution,
    ) -> Result<RunSummary, Error> {
        authorize(principal, &principal.organization, Operation::RunsResume)?;
        let run = self.find(principal, id).await?;
        if !run.state.is_finished() && self.is_paused(id).await? {
            return Err(paused(id));
        }
        let definition = Definition::from_json(&run.definition).map_err(engine_error)?;
        let workflow = definition.workflow().map_err(engine_error)?;
        let kind = execution
            .provider
            .unwrap_or_else(|| definition.provider_for(&workflow));
        let image = execution.image.as_deref().or(definition.image.as_deref());
        // Egress is audited: the writer runs only when there can be any.
        let audit = (!workflow.egress.is_empty()).then(|| self.app.audit_log());
        let recorder = audit.as_ref().map(|(log, _)| {
            audited_egress(
                log.clone(),
                &run.organization_id,
                execution.egress_observer.clone(),
            )
        });
        let engine = self.app.engine();
        let done = match kind {
            ProviderKind::Native => {
                let provider = self.app.config().native_provider(recorder)?;
                engine.execute(&provider, id).await
            }
            ProviderKind::Docker => {
                let provider = self.app.config().docker_provider(recorder, image).await?;
                engine.execute(&provider, id).await
            }
        };
        if let Some((log, writer)) = audit {
            drop(log);
            writer.join().await;
        }
        let done = done.map_err(engine_error)?;
        self.app.deliver_audit().await;
        Ok(summary(&done))
    }

    /// Cancels run `id`: a live process carrying it out stops it at once
    /// and destroys its sandbox; a run nobody carries out is closed here
    /// (steps cancelled, approvals withdrawn).
    ///
    /// Errors: `not_found` for a run of another organization; `conflict`
    /// for a finished run.
    pub async fn cancel(&self, principal: &Principal, id: &str) -> Result<Cancelled, Error> {
        authorize(principal, &principal.organization, Operation::RunsCancel)?;
        self.find(principal, id).await?;
        let run = self
            .app
            .engine()
            .cancel(id, &principal.user)
            .await
            .map_err(engine_error)?;
        self.app.deliver_audit().await;
        let live = run
            .owner
            .as_deref()
            .is_some_and(|o| !smithers_sandbox::owner::is_gone(o));
        Ok(Cancelled {
            id: run.id,
            state: run_state(run.state),
            stopped_by_its_process: live,
        })
    }

    /// The organization's runs, newest first: unfinished ones only unless
    /// `all`; at most `limit` (and [`RUN_LIST_LIMIT`]).
    pub async fn list(
        &self,
        principal: &Principal,
        all: bool,
        limit: u32,
    ) -> Result<Vec<RunSummary>, Error> {
        let query = RunQuery {
            all,
            limit,
            ..RunQuery::default()
        };
        Ok(self.page(principal, &query).await?.items)
    }

    /// One page of the organization's runs that pass `query`, newest
    /// first, and the cursor of the next.
    ///
    /// Errors: `invalid` for a cursor this list did not give.
    pub async fn page(
        &self,
        principal: &Principal,
        query: &RunQuery,
    ) -> Result<Page<RunSummary>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::RunsRead)?;
        let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = query.limit.clamp(1, RUN_LIST_LIMIT);
        let state = query.state.map(|s| {
            smithers_store::RunState::parse(s.as_str())
                .ok_or_else(|| Error::internal(format!("no store state for {}", s.as_str())))
        });
        let filter = smithers_store::RunFilter {
            active: !query.all && query.state.is_none(),
            state: state.transpose()?,
            workflow: query.workflow.as_deref(),
            repository: query.repository.as_deref(),
            requested_by: query.requested_by.as_deref(),
            before: before.as_ref().map(|(at, id)| (*at, id.as_str())),
            // One more than asked tells whether there is a next page.
            limit: limit + 1,
        };
        let mut runs = self
            .app
            .engine()
            .runs
            .find(org, &filter)
            .await
            .map_err(store_error)?;
        let next = if runs.len() > limit as usize {
            runs.truncate(limit as usize);
            runs.last().map(|r| encode_cursor(r.created_at, &r.id))
        } else {
            None
        };
        Ok(Page {
            items: runs.iter().map(summary).collect(),
            next,
        })
    }

    /// Where run `id` stands.
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn summary(&self, principal: &Principal, id: &str) -> Result<RunSummary, Error> {
        authorize(principal, &principal.organization, Operation::RunsRead)?;
        Ok(summary(&self.find(principal, id).await?))
    }

    /// Run `id`'s steps, in workflow order.
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn steps(&self, principal: &Principal, id: &str) -> Result<Vec<Step>, Error> {
        authorize(principal, &principal.organization, Operation::RunsRead)?;
        self.find(principal, id).await?;
        let steps = self
            .app
            .engine()
            .runs
            .steps(id)
            .await
            .map_err(store_error)?;
        Ok(steps.iter().map(step).collect())
    }

    /// Run `id` with everything it did.
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn show(&self, principal: &Principal, id: &str) -> Result<Run, Error> {
        authorize(principal, &principal.organization, Operation::RunsRead)?;
        let run = self.find(principal, id).await?;
        let runs = &self.app.engine().runs;
        let steps = runs.steps(id).await.map_err(store_error)?;
        let calls = runs.tool_calls(id).await.map_err(store_error)?;
        let approvals = runs.approvals_of_run(id).await.map_err(store_error)?;
        let turns = runs.all_model_turns(id).await.map_err(store_error)?;
        let definition = Definition::from_json(&run.definition).map_err(engine_error)?;
        let workflow = definition.workflow().map_err(engine_error)?;
        Ok(Run {
            sandbox: RunSandbox {
                provider: definition.provider_for(&workflow).as_str().to_string(),
                image: definition.image.clone(),
            },
            policies: RunPolicies {
                repository: definition.policy_name.clone(),
                organization_version: definition.org_policy.as_ref().map(|o| o.version),
            },
            steps: steps.iter().map(step).collect(),
            tool_calls: calls.iter().map(tool_call).collect::<Result<_, _>>()?,
            model_turns: turns.iter().map(model_turn).collect(),
            approvals: approvals
                .iter()
                .map(|a| approval_dto(a, &run.workflow))
                .collect(),
            id: run.id,
            workflow: run.workflow,
            repository: run.repository,
            trigger: run.trigger,
            requested_by: run.requested_by,
            state: run_state(run.state),
            error: run.error,
            created_at: Timestamp(run.created_at),
            started_at: run.started_at.map(Timestamp),
            finished_at: run.finished_at.map(Timestamp),
            purge: run.purge,
            history_destroyed_at: run.history_destroyed_at.map(Timestamp),
        })
    }

    /// Run `id`'s log lines after line `after` (0: from the start), at
    /// most `limit` of them, redacted as they were stored.
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn logs(
        &self,
        principal: &Principal,
        id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LogLine>, Error> {
        authorize(principal, &principal.organization, Operation::RunsRead)?;
        self.find(principal, id).await?;
        let lines = self
            .app
            .engine()
            .runs
            .logs(id, after, limit)
            .await
            .map_err(store_error)?;
        Ok(lines.iter().map(log_line).collect())
    }

    /// What happened to run `id` after `after`: its log lines and the
    /// changes of the run, its steps, tool calls and approvals (as the
    /// audit log recorded them), in time order, each with the cursor that
    /// stands after it; at most about `limit` of each kind. `finished` once
    /// the run has ended and everything it did has been given.
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn events(
        &self,
        principal: &Principal,
        id: &str,
        after: EventCursor,
        limit: u32,
    ) -> Result<RunEvents, Error> {
        authorize(principal, &principal.organization, Operation::RunsRead)?;
        // The state first: a run that had ended before its events are read
        // has none left to come.
        let ended = self.find(principal, id).await?.state.is_finished();
        let limit = limit.clamp(1, 10_000);
        let changes = self
            .app
            .store()
            .audit()
            .of_run(&principal.organization, id, after.change, limit)
            .await
            .map_err(store_error)?;
        let lines = self
            .app
            .engine()
            .runs
            .logs(id, after.log, limit)
            .await
            .map_err(store_error)?;
        // A full page of one kind may stop short of the other's: merge only
        // up to where both are complete, so that time order holds across
        // pages.
        let full = |n: usize| n >= limit as usize;
        let horizon = [
            full(changes.len()).then(|| changes.last().map(|c| c.event.timestamp)),
            full(lines.len()).then(|| lines.last().map(|l| l.at)),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .min()
        .unwrap_or(i64::MAX);
        let mut merged: Vec<(i64, RunEvent)> = changes
            .iter()
            .filter(|c| c.event.timestamp <= horizon)
            .map(|c| (c.event.timestamp, RunEvent::Change(run_change(c))))
            .chain(
                lines
                    .iter()
                    .filter(|l| l.at <= horizon)
                    .map(|l| (l.at, RunEvent::Log(log_line(l)))),
            )
            .collect();
        let complete = merged.len() == changes.len() + lines.len()
            && !full(changes.len())
            && !full(lines.len());
        // Stable: a change and a line of the same instant keep their kinds' order.
        merged.sort_by_key(|(at, _)| *at);
        let mut cursor = after;
        let events = merged
            .into_iter()
            .map(|(_, event)| {
                match &event {
                    RunEvent::Change(c) => cursor.change = cursor.change.max(c.seq),
                    RunEvent::Log(l) => cursor.log = cursor.log.max(l.seq),
                }
                CursoredEvent {
                    cursor: cursor.to_string(),
                    event,
                }
            })
            .collect();
        Ok(RunEvents {
            events,
            finished: ended && complete,
        })
    }

    /// The run, when it is the principal's organization's; a run of
    /// another is not found (its existence is not told).
    pub(crate) async fn find(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<smithers_store::Run, Error> {
        let not_found = || Error::not_found(format!("no run {id} in {}", principal.organization));
        match self.app.engine().runs.get(id).await {
            Ok(run) if run.organization_id == principal.organization => Ok(run),
            Ok(_) | Err(smithers_store::Error::NotFound(_)) => Err(not_found()),
            Err(e) => Err(store_error(e)),
        }
    }
}

impl App {
    pub(crate) fn signer_arc(&self) -> Arc<smithers_audit::CheckpointSigner> {
        self.signer.clone()
    }
}

fn summary(run: &smithers_store::Run) -> RunSummary {
    RunSummary {
        id: run.id.clone(),
        workflow: run.workflow.clone(),
        repository: run.repository.clone(),
        trigger: run.trigger.clone(),
        state: run_state(run.state),
        requested_by: run.requested_by.clone(),
        created_at: Timestamp(run.created_at),
        error: run.error.clone(),
    }
}

/// The store's run state as the wire's.
pub(crate) fn run_state(state: smithers_store::RunState) -> RunState {
    use smithers_store::RunState as S;
    match state {
        S::Queued => RunState::Queued,
        S::Running => RunState::Running,
        S::WaitingApproval => RunState::WaitingApproval,
        S::Succeeded => RunState::Succeeded,
        S::Failed => RunState::Failed,
        S::Cancelled => RunState::Cancelled,
        S::TimedOut => RunState::TimedOut,
    }
}

fn step_state(state: smithers_store::StepState) -> StepState {
    use smithers_store::StepState as S;
    match state {
        S::Pending => StepState::Pending,
        S::Running => StepState::Running,
        S::WaitingApproval => StepState::WaitingApproval,
        S::Succeeded => StepState::Succeeded,
        S::Failed => StepState::Failed,
        S::Skipped => StepState::Skipped,
        S::Cancelled => StepState::Cancelled,
        S::TimedOut => StepState::TimedOut,
    }
}

fn step(s: &smithers_store::RunStep) -> Step {
    Step {
        position: s.position,
        id: s.step_id.clone(),
        kind: s.kind.clone(),
        state: step_state(s.state),
        attempts: s.attempts,
        exit_code: s.exit_code,
        error: s.error.clone(),
    }
}

/// A recorded call. Its decision was written by the engine's gate in the
/// shape [`ToolCallDecision`] reads back; a record that does not read is
/// an internal error, never a blank.
fn tool_call(c: &smithers_store::ToolCallRecord) -> Result<ToolCall, Error> {
    use smithers_store::ToolCallState as S;
    let decision = serde_json::from_value(c.decision.clone()).map_err(|e| {
        Error::internal(format!(
            "run {}: the decision of call {}/{}/{} does not read: {e}",
            c.run_id, c.key.position, c.key.attempt, c.key.seq
        ))
    })?;
    Ok(ToolCall {
        position: c.key.position,
        attempt: c.key.attempt,
        seq: c.key.seq,
        tool: c.tool.clone(),
        subject: c.subject.clone(),
        arguments: c.arguments.clone(),
        decision,
        state: match c.state {
            S::Allowed => ToolCallState::Allowed,
            S::Asked => ToolCallState::Asked,
            S::Running => ToolCallState::Running,
            S::Completed => ToolCallState::Completed,
            S::Denied => ToolCallState::Denied,
            S::Rejected => ToolCallState::Rejected,
        },
        approval: c.approval_id.clone(),
        ok: c.result.as_ref().map(|r| r.ok),
    })
}

fn model_turn(t: &smithers_store::ModelTurn) -> ModelTurn {
    ModelTurn {
        position: t.position,
        attempt: t.attempt,
        turn: t.turn,
        driver: t.driver.clone(),
        model: t.model.clone(),
        calls: t.calls,
        input_tokens: t.input_tokens,
        output_tokens: t.output_tokens,
        at: Timestamp(t.created_at),
    }
}

/// An audit event about a run as the change a follower is told.
fn run_change(e: &smithers_audit::SealedEvent) -> RunChange {
    RunChange {
        seq: e.seq,
        action: e.event.action.clone(),
        resource_type: e.event.resource_type.clone(),
        resource_id: e.event.resource_id.clone(),
        actor_id: e.event.actor_id.clone(),
        at: Timestamp(e.event.timestamp),
        details: e.event.details.clone(),
    }
}

fn log_line(l: &smithers_store::LogLine) -> LogLine {
    LogLine {
        seq: l.seq,
        position: l.position,
        stream: match l.stream {
            smithers_store::LogStream::Stdout => LogStream::Stdout,
            smithers_store::LogStream::Stderr => LogStream::Stderr,
            smithers_store::LogStream::Smithers => LogStream::Smithers,
        },
        at: Timestamp(l.at),
        text: l.text.clone(),
    }
}

/// The refusal to carry on paused run `id`.
fn paused(id: &str) -> Error {
    Error::conflict(format!(
        "run {id} is paused: the GitHub App's installation that started it is suspended"
    ))
}

/// The workflows of the repository's `smithers.toml` in the tree of
/// `commit`; none when the file is absent there.
///
/// Errors: `invalid` when it does not parse.
async fn workflows_at(
    repo: &Path,
    commit: &str,
) -> Result<Vec<smithers_engine::workflow::Workflow>, Error> {
    let repo = repo.to_path_buf();
    let commit = commit.to_string();
    let text = tokio::task::spawn_blocking(move || {
        smithers_engine::run::show_file(&repo, &commit, smithers_engine::workflow::FILE_NAME)
    })
    .await
    .map_err(|e| Error::internal(format!("reading the workflow file stopped: {e}")))?;
    // A repository without the file has no workflow to start.
    let Ok(text) = text else {
        return Ok(Vec::new());
    };
    let file = smithers_engine::workflow::parse(smithers_engine::workflow::FILE_NAME, &text)
        .map_err(|diagnostics| {
            Error::invalid(format!(
                "{} does not parse: {}",
                smithers_engine::workflow::FILE_NAME,
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
    Ok(file.workflows)
}
