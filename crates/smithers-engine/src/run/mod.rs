//! The durable run executor. A run is a row before it is an action: its
//! state, each step's, each tool call's and each approval's are committed
//! (with their audit events) before their effects, and the workspace is
//! snapshotted after every call that may have changed it, in the same
//! transaction that finishes the call. A run killed at any point is
//! carried on by [`Engine::execute`] from there: finished calls are read
//! back, not repeated.

mod agent_step;
mod definition;
mod gate;
mod git;
mod log;
mod secrets;
mod steps;
mod workspace;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use smithers_sandbox::{Limits, Provider, SandboxId, SandboxSpec, owner};
use smithers_secrets::Redactor;
use smithers_store::{
    Actor, Approval, ApprovalState, LogStream, NewRun, Run, RunState, Runs, Secrets, StepState,
    StepUpdate,
};

pub use definition::{BUILT_IN_POLICY, Definition, OrgPolicy, RunPolicy};
pub use git::{commit as resolve_commit, show_file};

use crate::Error;
use crate::tools::ToolLimits;
use crate::workflow::{ProviderKind, Workflow};

/// The states a run can be taken up (or cancelled) from.
const UNFINISHED: &[RunState] = &[
    RunState::Queued,
    RunState::Running,
    RunState::WaitingApproval,
];

/// How the engine carries out runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where each run keeps its checkout and workspace snapshots.
    pub runs_dir: PathBuf,
    /// The remote `push_branch` pushes to.
    pub remote: String,
    pub limits: Limits,
    pub tools: ToolLimits,
    /// The longest a waiting run goes without looking at its approval and
    /// its state. A change (a decision, a cancel, by any process) wakes it
    /// at once; this bounds what a missed wake-up costs.
    pub poll: Duration,
}

impl Settings {
    pub fn new(runs_dir: PathBuf) -> Settings {
        Settings {
            runs_dir,
            remote: "origin".into(),
            limits: Limits::default(),
            tools: ToolLimits::default(),
            poll: gate::DEFAULT_POLL,
        }
    }
}

/// Runs workflows: the store's runs, the secrets service (for workflows
/// that name secrets) and the settings.
#[derive(Clone)]
pub struct Engine {
    pub runs: Runs,
    pub secrets: Option<Secrets>,
    pub settings: Settings,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct StartRun<'a> {
    pub organization_id: &'a str,
    pub requested_by: &'a str,
    pub repo: &'a Path,
    pub workflow: &'a str,
    pub trigger: &'a str,
    /// A sandbox provider over the workflow's own, kept for the whole run.
    pub provider: Option<ProviderKind>,
    /// A Docker image over the default, kept for the whole run.
    pub image: Option<&'a str>,
    /// Commits to run from instead of the repository's HEAD: a pull
    /// request's run follows its base repository's default branch and
    /// checks out its head.
    pub pinned: Option<Pinned<'a>>,
}

/// A run whose rules and code are fixed commits of the repository.
#[derive(Debug, Clone, Copy)]
pub struct Pinned<'a> {
    /// The commit whose `smithers.toml`, policy and agent scripts the run
    /// follows: never one the code under test can change.
    pub rules: &'a str,
    /// The commit the sandbox's workspace is checked out at.
    pub code: &'a str,
    /// Why the run gets no secret at all, if it gets none.
    pub secrets_withheld: Option<&'a str>,
}

/// Why a run stopped before its end.
#[derive(Debug)]
pub(crate) enum Interrupt {
    Cancelled,
    /// The workflow's time limit passed.
    TimedOut,
    Failed(Error),
}

impl<E: Into<Error>> From<E> for Interrupt {
    fn from(e: E) -> Interrupt {
        Interrupt::Failed(e.into())
    }
}

/// One run being carried out.
pub(crate) struct Ctx<'e, P> {
    pub engine: &'e Engine,
    pub provider: &'e P,
    pub sandbox: SandboxId,
    pub run: Run,
    pub definition: Definition,
    pub workflow: Workflow,
    pub policy: RunPolicy,
    pub repo: PathBuf,
    pub dir: PathBuf,
    /// Microseconds since the epoch.
    pub deadline: i64,
    /// Built from every value released to the run so far.
    pub redactor: Option<Arc<Redactor>>,
    /// The values released to the run so far, by secret name.
    pub released: std::collections::BTreeMap<String, smithers_secrets::SecretValue>,
    pub grants_ready: bool,
    /// The run's history key, once a model step needed it.
    pub history: Option<Arc<smithers_secrets::HistoryKey>>,
}

impl Engine {
    /// Records a new run of `workflow` of the repository (queued): the
    /// workflow file, the policy and the scripts as they are now, and the
    /// commit it starts from.
    pub async fn start(&self, start: StartRun<'_>) -> Result<Run, Error> {
        let repo = tokio::fs::canonicalize(start.repo)
            .await
            .map_err(Error::io(start.repo))?;
        // Reading the repository's files blocks: not on the async threads.
        let (mut definition, workflow) = match start.pinned {
            None => {
                let base = git::head(&repo).await?;
                let repo = repo.clone();
                let name = start.workflow.to_string();
                tokio::task::spawn_blocking(move || Definition::read(&repo, &name, base))
                    .await
                    .map_err(|e| Error::Internal(format!("reading the workflow stopped: {e}")))??
            }
            Some(pinned) => {
                let rules = git::commit(&repo, pinned.rules).await?;
                let code = git::commit(&repo, pinned.code).await?;
                let repo = repo.clone();
                let name = start.workflow.to_string();
                let (mut definition, workflow) = tokio::task::spawn_blocking(move || {
                    Definition::read_with(|path| git::show_file(&repo, &rules, path), &name, code)
                })
                .await
                .map_err(|e| Error::Internal(format!("reading the workflow stopped: {e}")))??;
                definition.secrets_withheld = pinned.secrets_withheld.map(str::to_string);
                (definition, workflow)
            }
        };
        definition.provider = start.provider;
        definition.image = start.image.map(str::to_string);
        // The organization's policy in force now bounds the run to its end.
        definition.org_policy = self
            .runs
            .store()
            .policies()
            .current(start.organization_id)
            .await?
            .and_then(|v| {
                v.text.map(|text| OrgPolicy {
                    version: v.version,
                    text,
                })
            });
        definition.run_policy()?;
        if !workflow.secrets.is_empty() && self.secrets.is_none() {
            return Err(Error::Unavailable(format!(
                "workflow {} needs secrets ({}) and no keyring is configured (SECRET_ENCRYPTION_KEYS)",
                workflow.name,
                workflow
                    .secrets
                    .iter()
                    .map(|s| format!("{}/{}", s.env, s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(self
            .runs
            .create(NewRun {
                organization_id: start.organization_id,
                workflow: start.workflow,
                repository: &repo.display().to_string(),
                trigger: start.trigger,
                definition: definition.to_json(),
                requested_by: start.requested_by,
                steps: workflow
                    .steps
                    .iter()
                    .map(|s| (s.id.clone(), s.kind.as_str().to_string()))
                    .collect(),
            })
            .await?)
    }

    /// Cancels a run that has not finished. The process carrying it out
    /// sees it, stops, and destroys the sandbox.
    pub async fn cancel(&self, run_id: &str, by: &str) -> Result<Run, Error> {
        let run = self
            .runs
            .transition(
                run_id,
                UNFINISHED,
                RunState::Cancelled,
                None,
                Some(&format!("cancelled by {by}")),
                json!({"by": by}),
            )
            .await?;
        // A live process carrying the run out stops at its next check and
        // settles it; one that is gone (or never started) cannot, so the
        // run is settled here. Its sandbox, if any, is purged as an orphan
        // by the next provider to start.
        if run.owner.as_deref().is_none_or(owner::is_gone) {
            self.settle(run_id, RunState::Cancelled).await?;
            remove_run_dir(&self.settings.runs_dir.join(run_id)).await;
        }
        Ok(run)
    }

    /// What a run that ended `state` leaves behind: steps that never
    /// finished end with it, approvals nobody decided are withdrawn.
    async fn settle(&self, run_id: &str, state: RunState) -> Result<(), Error> {
        let (to, why) = match state {
            RunState::Cancelled => (StepState::Cancelled, "the run was cancelled"),
            RunState::TimedOut => (StepState::TimedOut, "the workflow's time limit passed"),
            _ => (StepState::Skipped, "an earlier step failed"),
        };
        for step in self.runs.steps(run_id).await? {
            if !step.state.is_finished() {
                self.runs
                    .step_transition(
                        run_id,
                        step.position,
                        &[step.state],
                        to,
                        StepUpdate {
                            error: Some(why),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
        }
        self.runs
            .withdraw_approvals(run_id, &format!("the run ended {}", state.as_str()))
            .await?;
        Ok(())
    }

    /// Approves or rejects an approval as `approver`. An approval that
    /// releases secrets decides their grants first (the secrets service
    /// holds its own rules: an admin who did not ask), then itself.
    pub async fn decide(
        &self,
        organization_id: &str,
        approver: &str,
        approval_id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Approval, Error> {
        let approval = self.runs.approval(approval_id).await?;
        if approval.organization_id == organization_id
            && approval.state == ApprovalState::Pending
            && approval.details["gate"] == secrets::SECRETS_GATE
        {
            let service = self.secrets.as_ref().ok_or_else(|| {
                Error::Unavailable(
                    "this approval releases secrets: deciding it needs the keyring (SECRET_ENCRYPTION_KEYS)"
                        .into(),
                )
            })?;
            let actor = Actor::new(organization_id, approver);
            let grants = approval.details["grants"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for grant in grants.iter().filter_map(Value::as_str) {
                match service.decide_grant(&actor, grant, approve, comment).await {
                    Ok(_) => {}
                    // Decided already (an earlier attempt that stopped half-way).
                    Err(smithers_store::Error::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(self
            .runs
            .decide_approval(organization_id, approver, approval_id, approve, comment)
            .await?)
    }

    /// Runs that were being carried out by a process that is gone, and
    /// queued runs a process that is gone held ([`Engine::hold`]).
    pub async fn interrupted(&self, organization_id: &str) -> Result<Vec<Run>, Error> {
        Ok(self
            .runs
            .list(organization_id, true, 1000)
            .await?
            .into_iter()
            .filter(|r| match (r.state, r.owner.as_deref()) {
                (RunState::Queued, owner) => owner.is_some_and(owner::is_gone),
                (_, owner) => owner.is_none_or(owner::is_gone),
            })
            .collect())
    }

    /// Marks queued run `run_id` as this process's to carry out, before it
    /// starts (a server's run waiting for a free slot): if the process
    /// dies first, the run counts as interrupted and the next start
    /// carries it out. A run already under way is left as it is.
    ///
    /// Errors: [`Error::Conflict`] when another live process holds it.
    pub async fn hold(&self, run_id: &str) -> Result<Run, Error> {
        let run = self.runs.get(run_id).await?;
        if run.state != RunState::Queued {
            return Ok(run);
        }
        let me = owner::current();
        if let Some(other) = run.owner.as_deref()
            && other != me
            && !owner::is_gone(other)
        {
            return Err(Error::Conflict(format!(
                "run {run_id} is held by another process ({other})"
            )));
        }
        Ok(self
            .runs
            .transition(
                run_id,
                &[RunState::Queued],
                RunState::Queued,
                Some(&me),
                None,
                Value::Null,
            )
            .await?)
    }

    /// Carries out run `run_id` from where it stands to its end, in a
    /// sandbox of `provider`; returns the finished run.
    pub async fn execute<P: Provider>(&self, provider: &P, run_id: &str) -> Result<Run, Error> {
        let run = self.runs.get(run_id).await?;
        if run.state.is_finished() {
            return Ok(run);
        }
        let me = owner::current();
        if let Some(other) = run.owner.as_deref()
            && other != me
            && !owner::is_gone(other)
        {
            return Err(Error::Conflict(format!(
                "run {run_id} is being carried out by another process ({other})"
            )));
        }
        let definition = Definition::from_json(&run.definition)?;
        let workflow = definition.workflow()?;
        let policy = definition.run_policy()?;
        let resumed = run.state != RunState::Queued;
        let to = if run.state == RunState::WaitingApproval {
            RunState::WaitingApproval
        } else {
            RunState::Running
        };
        let run = self
            .runs
            .transition(
                run_id,
                UNFINISHED,
                to,
                Some(&me),
                None,
                json!({"resumed": resumed, "provider": provider.name()}),
            )
            .await?;
        let started = run.started_at.unwrap_or(run.created_at);
        let timeout = i64::try_from(workflow.timeout.as_micros()).unwrap_or(i64::MAX);
        let dir = self.settings.runs_dir.join(&run.id);
        create_private_dir(&dir)?;
        let repo = PathBuf::from(&run.repository);
        let sandbox = self
            .open_workspace(provider, &run, &definition, &workflow, &dir)
            .await?;
        let mut ctx = Ctx {
            engine: self,
            provider,
            sandbox,
            run,
            definition,
            workflow,
            policy,
            repo,
            dir,
            deadline: started.saturating_add(timeout),
            redactor: None,
            released: std::collections::BTreeMap::new(),
            grants_ready: false,
            history: None,
        };
        let ended = ctx.steps().await;
        self.close(ctx, ended).await
    }

    /// The sandbox, its workspace the checkout of the run's commit or the
    /// snapshot its last finished call left.
    async fn open_workspace<P: Provider>(
        &self,
        provider: &P,
        run: &Run,
        definition: &Definition,
        workflow: &Workflow,
        dir: &Path,
    ) -> Result<SandboxId, Error> {
        let snapshot = self.runs.workspace_snapshot(&run.id).await?;
        let mut spec = SandboxSpec {
            egress: workflow.egress.clone(),
            limits: self.settings.limits,
            timeout: workflow.timeout,
            ..SandboxSpec::default()
        };
        if snapshot.is_none() {
            let checkout = dir.join("checkout");
            git::checkout(Path::new(&run.repository), &definition.base, &checkout).await?;
            spec.workspace_from = Some(checkout);
        }
        let sandbox = provider.create(spec).await?;
        let ready = async {
            workspace::check_programs(provider, &sandbox).await?;
            if let Some(name) = &snapshot {
                workspace::restore(provider, &sandbox, &dir.join(name)).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = ready {
            let _ = provider.destroy(&sandbox).await;
            return Err(e);
        }
        self.runs
            .record(
                &run.id,
                "workspace.created",
                json!({
                    "sandbox": sandbox.0,
                    "provider": provider.name(),
                    "from": snapshot.as_deref().unwrap_or(&definition.base),
                }),
            )
            .await?;
        Ok(sandbox)
    }

    /// Destroys the sandbox (checking the purge), records it, and gives the
    /// run its final state. A run stopped by an error stays as it is, to
    /// be resumed; its snapshots are kept.
    async fn close<P: Provider>(
        &self,
        ctx: Ctx<'_, P>,
        ended: Result<(), Interrupt>,
    ) -> Result<Run, Error> {
        let id = ctx.run.id.clone();
        let purge = match ctx.provider.destroy(&ctx.sandbox).await {
            Ok(report) => json!({
                "sandbox": ctx.sandbox.0,
                "clean": report.is_clean(),
                "processes_killed": report.processes_killed,
                "removed": report.removed,
                "remaining": report.remaining,
            }),
            Err(e) => json!({"sandbox": ctx.sandbox.0, "clean": false, "error": e.to_string()}),
        };
        self.runs.record_purge(&id, &purge).await?;
        self.runs.record(&id, "workspace.destroyed", purge).await?;
        let (state, error) = match ended {
            Ok(()) => match ctx.failure().await? {
                None => (RunState::Succeeded, None),
                Some(why) => (RunState::Failed, Some(why)),
            },
            Err(Interrupt::Cancelled) => (RunState::Cancelled, None),
            Err(Interrupt::TimedOut) => (
                RunState::TimedOut,
                Some(format!(
                    "the workflow's time limit ({}) passed",
                    humanize(ctx.workflow.timeout)
                )),
            ),
            Err(Interrupt::Failed(e)) => return Err(e),
        };
        self.settle(&id, state).await?;
        let run = self.runs.get(&id).await?;
        let run = if run.state.is_finished() {
            run
        } else {
            self.runs
                .transition(
                    &id,
                    &[RunState::Running, RunState::WaitingApproval],
                    state,
                    None,
                    error.as_deref(),
                    Value::Null,
                )
                .await?
        };
        // The run is over: its checkout and snapshots go with it.
        remove_run_dir(&ctx.dir).await;
        Ok(run)
    }
}

/// Removes an ended run's directory (checkout, snapshots); one that
/// cannot go is said, not an error: the run is over either way.
async fn remove_run_dir(dir: &Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove an ended run's directory");
    }
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(dir))
}

pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else if secs > 0 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl<P: Provider> Ctx<'_, P> {
    /// A line of what Smithers says of the run.
    pub(crate) async fn say(&self, position: Option<u32>, text: &str) -> Result<(), Error> {
        let text = self.redact_text(text);
        self.engine
            .runs
            .log(&self.run.id, position, LogStream::Smithers, &text)
            .await?;
        Ok(())
    }

    pub(crate) fn redact_text(&self, text: &str) -> String {
        match &self.redactor {
            Some(r) => String::from_utf8_lossy(&r.redact(text.as_bytes())).into_owned(),
            None => text.to_string(),
        }
    }

    pub(crate) fn redact_json(&self, value: &Value) -> Value {
        match &self.redactor {
            Some(_) => {
                let text = self.redact_text(&value.to_string());
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            None => value.clone(),
        }
    }

    pub(crate) async fn step_state(&self, position: u32) -> Result<StepState, Error> {
        let steps = self.engine.runs.steps(&self.run.id).await?;
        steps
            .iter()
            .find(|s| s.position == position)
            .map(|s| s.state)
            .ok_or_else(|| Error::Internal(format!("run {} has no step {position}", self.run.id)))
    }

    /// `work` while the run is watched: a cancel or the workflow's
    /// deadline drops it (a command in the sandbox is killed with it)
    /// instead of waiting for it to end.
    pub(crate) async fn watched<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupt> {
        // A cancel wakes the watch at once; the fallback bounds how late
        // the deadline or a missed wake-up is seen.
        let mut changes = self
            .engine
            .runs
            .store()
            .run_changes(&self.run.id, self.engine.settings.poll);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = changes.changed_within(self.remaining()) => self.check_interrupt().await?,
            }
        }
    }

    /// Stops when the run was cancelled or its time is up.
    pub(crate) async fn check_interrupt(&self) -> Result<(), Interrupt> {
        let state = self.engine.runs.state(&self.run.id).await?;
        if state == RunState::Cancelled {
            return Err(Interrupt::Cancelled);
        }
        if smithers_store::now_micros() >= self.deadline {
            return Err(Interrupt::TimedOut);
        }
        Ok(())
    }

    /// What is left of the workflow's time.
    pub(crate) fn remaining(&self) -> Duration {
        let left = self.deadline.saturating_sub(smithers_store::now_micros());
        Duration::from_micros(u64::try_from(left).unwrap_or(0))
    }

    /// Why the run failed, if a step failed without `continue_on_error`.
    async fn failure(&self) -> Result<Option<String>, Error> {
        let steps = self.engine.runs.steps(&self.run.id).await?;
        for (step, record) in self.workflow.steps.iter().zip(&steps) {
            if matches!(record.state, StepState::Failed | StepState::TimedOut)
                && !step.continue_on_error
            {
                return Ok(Some(format!(
                    "step {} {}: {}",
                    step.id,
                    record.state,
                    record.error.as_deref().unwrap_or("no reason recorded")
                )));
            }
        }
        Ok(None)
    }
}
