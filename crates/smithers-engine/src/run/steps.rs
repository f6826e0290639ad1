//! The steps of a run, in order: each one's condition, its approval gate,
//! its attempts (retries), and what each kind does — a command decided as
//! `run_tests` or `run_command`, a human gate, a commit pushed from
//! outside the sandbox, an agent whose every call passes the kernel.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use smithers_policy::{Request, Subject, Verdict};
use smithers_sandbox::{OutputChunk, Provider, Resolved};
use smithers_store::{
    ApprovalKind, ApprovalState, RunStep, StepState, StepUpdate, ToolCallKey, ToolCallState,
    ToolResult,
};
use tokio::sync::mpsc;

use super::gate::{Answer, Gate, Touched};
use super::secrets::Release;
use super::{Ctx, Interrupt, git, humanize, log, workspace};
use crate::Error;
use crate::agent::{CallOutcome, CallResult};
use crate::tools::{self, ToolCall, ToolLimits};
use crate::workflow::{Outcome, Step, StepKind};

/// The gate of a step's `needs_approval` or `approval` step, as approvals'
/// details name it.
const STEP_GATE: &str = "step";

/// The kernel subject of a workflow's own commands (`run` and `commit` steps).
pub const WORKFLOW_SUBJECT: &str = "workflow";

/// How one attempt of a step ended.
pub(crate) enum Attempt {
    Succeeded,
    Failed {
        error: String,
        exit_code: Option<i32>,
    },
    TimedOut(String),
}

/// `run_tests` when the kernel would decide `command` as one (every
/// program it starts is a test runner, the policy's own included), else
/// `run_command`: the one classification the kernel also applies.
pub fn run_tool(policy: &smithers_policy::PolicySet, command: &str) -> ToolCall {
    if policy.is_test_command(command) {
        ToolCall::RunTests {
            command: command.to_string(),
        }
    } else {
        ToolCall::RunCommand {
            command: command.to_string(),
        }
    }
}

fn outcome_of(state: StepState) -> Option<Outcome> {
    match state {
        StepState::Succeeded => Some(Outcome::Succeeded),
        StepState::Failed | StepState::TimedOut => Some(Outcome::Failed),
        StepState::Skipped => Some(Outcome::Skipped),
        _ => None,
    }
}

/// A command, whose output is streamed to the run log as it runs (other
/// tools' results are logged when they are done).
fn streams_output(call: &ToolCall) -> bool {
    matches!(
        call,
        ToolCall::RunCommand { .. } | ToolCall::RunTests { .. }
    )
}

fn is_mutating(call: &ToolCall) -> bool {
    matches!(
        call,
        ToolCall::WriteFile { .. }
            | ToolCall::ApplyPatch { .. }
            | ToolCall::RunCommand { .. }
            | ToolCall::RunTests { .. }
            | ToolCall::CreateCommit { .. }
    )
}

impl<P: Provider> Ctx<'_, P> {
    /// Every step from the first unfinished one; stops at a failure that
    /// fails the run.
    pub(crate) async fn steps(&mut self) -> Result<(), Interrupt> {
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        let steps = self.workflow.steps.clone();
        // Where each step stood when this process took the run; from here
        // on only this process moves them.
        let records = self.engine.runs.steps(&self.run.id).await?;
        for (step, record) in steps.iter().zip(&records) {
            let (position, state) = (record.position, record.state);
            if let Some(outcome) = outcome_of(state) {
                outcomes.insert(step.id.clone(), outcome);
                if outcome == Outcome::Failed && !step.continue_on_error {
                    return Ok(());
                }
                continue;
            }
            self.check_interrupt().await?;
            if let Some(condition) = &step.condition {
                let happened = outcomes.get(&condition.step).copied();
                if happened != Some(condition.outcome) {
                    let why = format!(
                        "`if = \"{}.{}\"`: {} {}",
                        condition.step,
                        condition.outcome.as_str(),
                        condition.step,
                        happened.map_or("did not run", Outcome::as_str)
                    );
                    self.transition(position, state, StepState::Skipped, None, Some(&why), false)
                        .await?;
                    self.say(Some(position), &format!("step {} skipped: {why}", step.id))
                        .await?;
                    outcomes.insert(step.id.clone(), Outcome::Skipped);
                    continue;
                }
            }
            let end = self.step(step, record).await?;
            let (to, exit_code, error) = match end {
                Attempt::Succeeded => (StepState::Succeeded, None, None),
                Attempt::Failed { error, exit_code } => (StepState::Failed, exit_code, Some(error)),
                Attempt::TimedOut(error) => (StepState::TimedOut, Some(124), Some(error)),
            };
            self.transition(
                position,
                StepState::Running,
                to,
                exit_code,
                error.as_deref(),
                false,
            )
            .await?;
            self.say(
                Some(position),
                &match &error {
                    None => format!("step {} succeeded", step.id),
                    Some(e) => format!("step {} {to}: {e}", step.id),
                },
            )
            .await?;
            let outcome = outcome_of(to).unwrap_or(Outcome::Failed);
            outcomes.insert(step.id.clone(), outcome);
            if outcome == Outcome::Failed && !step.continue_on_error {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn transition(
        &self,
        position: u32,
        from: StepState,
        to: StepState,
        exit_code: Option<i32>,
        error: Option<&str>,
        attempt: bool,
    ) -> Result<(), Error> {
        self.engine
            .runs
            .step_transition(
                &self.run.id,
                position,
                &[from],
                to,
                StepUpdate {
                    attempt,
                    exit_code,
                    error,
                    details: None,
                },
            )
            .await?;
        Ok(())
    }

    /// Starts (or carries on) one step and runs its attempts.
    async fn step(&mut self, step: &Step, record: &RunStep) -> Result<Attempt, Interrupt> {
        let position = record.position;
        // The first attempt counts when the step starts.
        let mut attempt = record.attempts.max(1);
        if record.state == StepState::Pending {
            attempt = record.attempts + 1;
            self.transition(
                position,
                StepState::Pending,
                StepState::Running,
                None,
                None,
                true,
            )
            .await?;
            self.say(
                Some(position),
                &format!("step {} ({}) started", step.id, step.kind.as_str()),
            )
            .await?;
        }
        // A gate asked for in an earlier life is waited on, not asked again.
        if step.needs_approval || matches!(step.kind, StepKind::Approval { .. }) {
            let message = match &step.kind {
                StepKind::Approval { message } => message.clone(),
                other => format!("run step {} ({})", step.id, self.describe(other)),
            };
            if let Answer::Rejected(why) = self.gate_step(position, &message).await? {
                return Ok(Attempt::Failed {
                    error: format!("approval refused — {why}"),
                    exit_code: None,
                });
            }
            if matches!(step.kind, StepKind::Approval { .. }) {
                return Ok(Attempt::Succeeded);
            }
        }
        if matches!(step.kind, StepKind::Run { .. } | StepKind::Agent(_)) {
            // Withheld secrets are the step's failure, not an error to
            // resume from: no later try can change it.
            if let Some(why) = &self.definition.secrets_withheld
                && !self.workflow.secrets.is_empty()
            {
                return Ok(Attempt::Failed {
                    error: format!(
                        "workflow {} names secrets, and this run gets none: {why}",
                        self.workflow.name
                    ),
                    exit_code: None,
                });
            }
            self.ensure_grants(position).await?;
        }
        self.take_up_decision(position).await?;
        loop {
            let end = self.attempt(position, step, attempt).await?;
            if matches!(end, Attempt::TimedOut(_)) {
                // Cut by the workflow's deadline rather than the step's own
                // limit: the run is what timed out, and nothing retries.
                self.check_interrupt().await?;
            }
            match end {
                Attempt::Failed { ref error, .. } | Attempt::TimedOut(ref error)
                    if attempt <= step.retries =>
                {
                    self.say(
                        Some(position),
                        &format!(
                            "step {} attempt {attempt} of {} failed ({error}); retrying",
                            step.id,
                            step.retries + 1
                        ),
                    )
                    .await?;
                    self.transition(
                        position,
                        StepState::Running,
                        StepState::Running,
                        None,
                        None,
                        true,
                    )
                    .await?;
                    attempt += 1;
                }
                end => return Ok(end),
            }
        }
    }

    /// A step still waiting though its gate is approved (decided while no
    /// process carried the run out) takes the decision up: the step and
    /// the run go back to running, as a wait that saw the decision would
    /// have left them.
    async fn take_up_decision(&mut self, position: u32) -> Result<(), Interrupt> {
        if self.step_state(position).await? != StepState::WaitingApproval {
            return Ok(());
        }
        let decided = self
            .engine
            .runs
            .approvals_of_run(&self.run.id)
            .await?
            .into_iter()
            .rfind(|a| a.position == position && a.state == ApprovalState::Approved);
        if let Some(approval) = decided {
            self.wait(&approval).await?;
        }
        Ok(())
    }

    fn describe(&self, kind: &StepKind) -> String {
        match kind {
            StepKind::Run { command } => format!("`{command}`"),
            StepKind::Commit { branch, message } => format!(
                "commit {:?} to {}",
                message,
                branch.clone().unwrap_or_else(|| self.run_branch())
            ),
            StepKind::Agent(agent) => format!("agent {} ({})", agent.role, agent.driver.as_str()),
            StepKind::Approval { message } => message.clone(),
        }
    }

    pub(crate) fn run_branch(&self) -> String {
        format!("smithers/{}", self.run.id)
    }

    /// A step's human gate: the approval already asked (pending or
    /// decided), or a new one.
    async fn gate_step(&mut self, position: u32, message: &str) -> Result<Answer, Interrupt> {
        let approval = match self.earlier_gate(position, STEP_GATE).await? {
            Some(a) if a.state == ApprovalState::Approved => return Ok(Answer::Approved),
            Some(a) => a,
            None => {
                self.ask(
                    position,
                    ApprovalKind::Step,
                    false,
                    None,
                    message,
                    json!({"gate": STEP_GATE, "workflow": self.workflow.name}),
                )
                .await?
            }
        };
        self.wait(&approval).await
    }

    async fn attempt(
        &mut self,
        position: u32,
        step: &Step,
        attempt: u32,
    ) -> Result<Attempt, Interrupt> {
        let timeout = step
            .timeout
            .unwrap_or(self.workflow.timeout)
            .min(self.remaining());
        match &step.kind {
            StepKind::Approval { .. } => Ok(Attempt::Succeeded),
            StepKind::Run { command } => {
                let key = ToolCallKey {
                    position,
                    attempt,
                    seq: 0,
                };
                let call = run_tool(&self.policy.repo, command);
                let touched = self.touched(&call).await;
                match self.gate(key, WORKFLOW_SUBJECT, &call, &touched).await? {
                    Gate::Refused { text, .. } => Ok(Attempt::Failed {
                        error: text,
                        exit_code: None,
                    }),
                    Gate::Done(record) => Ok(match record.result {
                        Some(r) if r.ok => Attempt::Succeeded,
                        Some(r) => Attempt::Failed {
                            error: format!("`{command}` exited {}", r.exit_code.unwrap_or(-1)),
                            exit_code: r.exit_code,
                        },
                        None => Attempt::Failed {
                            error: "no result recorded".into(),
                            exit_code: None,
                        },
                    }),
                    Gate::Go => self.run_command(key, command, timeout).await,
                }
            }
            StepKind::Commit { branch, message } => {
                let branch = branch.clone().unwrap_or_else(|| self.run_branch());
                let commit = ToolCall::CreateCommit {
                    message: message.clone(),
                    branch: branch.clone(),
                };
                let result = self
                    .call(
                        ToolCallKey {
                            position,
                            attempt,
                            seq: 0,
                        },
                        WORKFLOW_SUBJECT,
                        &commit,
                        timeout,
                        Release::Only(&[]),
                    )
                    .await?;
                if result.outcome != CallOutcome::Ok {
                    return Ok(Attempt::Failed {
                        error: result.text,
                        exit_code: None,
                    });
                }
                if git::remote_url(&self.repo, &self.engine.settings.remote)
                    .await
                    .is_none()
                {
                    self.say(
                        Some(position),
                        &format!(
                            "the repository has no remote `{}`: {branch} stays in {}",
                            self.engine.settings.remote,
                            self.repo.display()
                        ),
                    )
                    .await?;
                    return Ok(Attempt::Succeeded);
                }
                let push = ToolCall::PushBranch { branch };
                let result = self
                    .call(
                        ToolCallKey {
                            position,
                            attempt,
                            seq: 1,
                        },
                        WORKFLOW_SUBJECT,
                        &push,
                        timeout,
                        Release::Only(&[]),
                    )
                    .await?;
                Ok(if result.outcome == CallOutcome::Ok {
                    Attempt::Succeeded
                } else {
                    Attempt::Failed {
                        error: result.text,
                        exit_code: None,
                    }
                })
            }
            StepKind::Agent(agent) => self.agent(position, attempt, agent, timeout).await,
        }
    }

    /// Where a command of step `position` sends its output for the log.
    fn log_pump(&self, position: u32) -> (mpsc::Sender<OutputChunk>, log::Pump) {
        log::Pump::start(
            self.engine.runs.clone(),
            self.run.id.clone(),
            position,
            self.redactor.clone(),
        )
    }

    /// A `run` step's command: its output streamed, redacted, to the log.
    async fn run_command(
        &mut self,
        key: ToolCallKey,
        command: &str,
        timeout: Duration,
    ) -> Result<Attempt, Interrupt> {
        let env = self.secret_env(Release::All).await?;
        self.engine.runs.start_tool_call(&self.run.id, key).await?;
        let (tx, pump) = self.log_pump(key.position);
        let mut request = tools::Shell::Kernel.request(command);
        request.env = env;
        request.timeout = Some(timeout);
        let outcome = self
            .watched(self.provider.exec(&self.sandbox, request, tx))
            .await;
        let lines = pump.finish().await?;
        let outcome = outcome??;
        let (ok, text) = if outcome.timed_out {
            (
                false,
                format!(
                    "`{command}` was stopped at its time limit ({})",
                    humanize(timeout)
                ),
            )
        } else if let Some(limit) = outcome.limit_hit() {
            (false, format!("`{command}` was killed at {limit}"))
        } else {
            (
                outcome.exit_code == 0,
                format!("`{command}` exited {}", outcome.exit_code),
            )
        };
        let result = ToolResult {
            ok,
            exit_code: Some(outcome.exit_code),
            output: format!("{text} ({lines} lines in the run log)"),
        };
        self.complete(key, &result, true).await?;
        Ok(if ok {
            Attempt::Succeeded
        } else if outcome.timed_out {
            Attempt::TimedOut(text)
        } else {
            Attempt::Failed {
                error: text,
                exit_code: Some(outcome.exit_code),
            }
        })
    }

    /// Finishes call `key` as completed with `result`. After a call that
    /// may have changed the workspace, the snapshot taken now is named in
    /// the same transaction, and the earlier ones go.
    async fn complete(
        &self,
        key: ToolCallKey,
        result: &ToolResult,
        changed: bool,
    ) -> Result<(), Error> {
        let snapshot = if changed {
            let name = format!("{}-{}-{}.tar", key.position, key.attempt, key.seq);
            workspace::snapshot(self.provider, &self.sandbox, &self.dir, &name).await?;
            Some(name)
        } else {
            None
        };
        self.engine
            .runs
            .finish_tool_call(
                &self.run.id,
                key,
                ToolCallState::Completed,
                result,
                snapshot.as_deref(),
            )
            .await?;
        let Some(keep) = snapshot else {
            return Ok(());
        };
        // Older snapshots go; one that will not is only disk space.
        if let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".tar") && name != keep {
                    let _ = tokio::fs::remove_file(entry.path()).await;
                }
            }
        }
        Ok(())
    }

    /// One call through the kernel and, if it may go, carried out; its
    /// result as the agent is told it.
    pub(crate) async fn call(
        &mut self,
        key: ToolCallKey,
        subject: &str,
        call: &ToolCall,
        timeout: Duration,
        release: Release<'_>,
    ) -> Result<CallResult, Interrupt> {
        let touched = self.touched(call).await;
        match self.gate(key, subject, call, &touched).await? {
            Gate::Refused { rejected, text } => Ok(CallResult {
                outcome: if rejected {
                    CallOutcome::Rejected
                } else {
                    CallOutcome::Denied
                },
                text,
            }),
            Gate::Done(record) => Ok(match (record.state, record.result.clone()) {
                (ToolCallState::Denied, r) => CallResult {
                    outcome: CallOutcome::Denied,
                    text: r.map(|r| r.output).unwrap_or_default(),
                },
                (ToolCallState::Rejected, r) => CallResult {
                    outcome: CallOutcome::Rejected,
                    text: r.map(|r| r.output).unwrap_or_default(),
                },
                (_, Some(r)) => CallResult {
                    outcome: if r.ok {
                        CallOutcome::Ok
                    } else {
                        CallOutcome::Failed
                    },
                    text: r.output,
                },
                (_, None) => CallResult {
                    outcome: CallOutcome::Failed,
                    text: "no result recorded".into(),
                },
            }),
            Gate::Go => {
                self.engine.runs.start_tool_call(&self.run.id, key).await?;
                let result = self
                    .carry_out(key.position, subject, call, timeout, release, &touched)
                    .await?;
                let recorded = ToolResult {
                    ok: result.outcome == CallOutcome::Ok,
                    exit_code: None,
                    output: result.text.clone(),
                };
                self.complete(key, &recorded, is_mutating(call)).await?;
                let logged = if streams_output(call) { 0 } else { 200 };
                for line in result.text.lines().take(logged) {
                    self.engine
                        .runs
                        .log(
                            &self.run.id,
                            Some(key.position),
                            smithers_store::LogStream::Stdout,
                            line,
                        )
                        .await?;
                }
                Ok(result)
            }
        }
    }

    /// What `call` touches besides what it names (see [`Touched`]): a file
    /// tool's path resolved in the sandbox; a command's redirection
    /// targets resolved the same way, where a link leads elsewhere. A path
    /// that cannot be resolved adds nothing: carrying the call out then
    /// refuses the link.
    pub(crate) async fn touched(&self, call: &ToolCall) -> Touched {
        let mut touched = Touched::default();
        match call {
            ToolCall::ReadFile { path }
            | ToolCall::ListDirectory { path }
            | ToolCall::SearchFiles { path, .. } => {
                match self.provider.resolve(&self.sandbox, path).await {
                    Ok(Resolved::Inside(inside)) => {
                        touched.extra.push((call.name(), inside.clone()));
                        touched.resolved = Some(inside);
                    }
                    Ok(Resolved::Outside(outside)) => touched.extra.push((call.name(), outside)),
                    Err(_) => {}
                }
            }
            ToolCall::RunCommand { command } | ToolCall::RunTests { command } => {
                let Ok(parts) = smithers_policy::shell::split_command(command) else {
                    return touched;
                };
                if parts.iter().any(|p| p.changes_directory) {
                    // Relative targets are asked about already.
                    return touched;
                }
                for redirect in parts.iter().flat_map(|p| p.redirects.iter()) {
                    let target = redirect.target.as_str();
                    if redirect.computed
                        || (target.starts_with('/') && !target.starts_with("/workspace"))
                    {
                        continue;
                    }
                    let Ok(named) = smithers_policy::path::normalize(target, "/workspace") else {
                        continue;
                    };
                    let action = match redirect.access {
                        smithers_policy::shell::Access::Read => "read_file",
                        smithers_policy::shell::Access::Write => "write_file",
                    };
                    match self.provider.resolve(&self.sandbox, target).await {
                        Ok(Resolved::Inside(inside)) if inside != named => {
                            touched.extra.push((action, inside));
                        }
                        Ok(Resolved::Outside(outside)) => touched.extra.push((action, outside)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        touched
    }

    /// Carries out an allowed call, on exactly what was decided: a file
    /// tool on the path its path resolved to, a listing or a search showing
    /// only what `subject` may read.
    async fn carry_out(
        &mut self,
        position: u32,
        subject: &str,
        call: &ToolCall,
        timeout: Duration,
        release: Release<'_>,
        touched: &Touched,
    ) -> Result<CallResult, Interrupt> {
        let outcome = |ok: bool| {
            if ok {
                CallOutcome::Ok
            } else {
                CallOutcome::Failed
            }
        };
        match call {
            ToolCall::CreateCommit { message, branch } => {
                let head = workspace::commit(self.provider, &self.sandbox, message).await?;
                if head == self.definition.base {
                    return Ok(CallResult {
                        outcome: CallOutcome::Failed,
                        text: "nothing to commit: the workspace has no changes".into(),
                    });
                }
                let bundle = self.dir.join("commit.bundle");
                workspace::bundle(self.provider, &self.sandbox, &self.definition.base, &bundle)
                    .await?;
                let landed = git::import_bundle(&self.repo, &bundle, branch, &head).await;
                let _ = tokio::fs::remove_file(&bundle).await;
                Ok(match landed {
                    Ok(commit) => CallResult {
                        outcome: CallOutcome::Ok,
                        text: format!("committed {commit} to {branch}"),
                    },
                    Err(e) => CallResult {
                        outcome: CallOutcome::Failed,
                        text: e.to_string(),
                    },
                })
            }
            ToolCall::PushBranch { branch } => {
                let remote = self.engine.settings.remote.clone();
                Ok(match git::push(&self.repo, &remote, branch).await {
                    Ok(commit) => CallResult {
                        outcome: CallOutcome::Ok,
                        text: format!("pushed {branch} at {commit} to {remote}"),
                    },
                    Err(e) => CallResult {
                        outcome: CallOutcome::Failed,
                        text: e.to_string(),
                    },
                })
            }
            other => {
                let env = self.secret_env(release).await?;
                let limits = ToolLimits {
                    timeout: timeout.min(self.engine.settings.tools.timeout),
                    ..self.engine.settings.tools
                };
                // A command's output reaches the run log as it comes.
                let (live, pump) = if streams_output(other) {
                    let (tx, pump) = self.log_pump(position);
                    (Some(tx), Some(pump))
                } else {
                    (None, None)
                };
                let policy = &self.policy;
                let who = Subject::parse(subject).map_err(|e| Error::Invalid(e.to_string()))?;
                let tool = other.name();
                let may_read = move |path: &str| {
                    let allowed = |action: &str| {
                        policy
                            .decide(&Request {
                                subject: who,
                                action,
                                resource: path,
                            })
                            .verdict()
                            == Verdict::Allow
                    };
                    allowed("read_file") && (tool != "search_files" || allowed("search_files"))
                };
                let carry = tools::Carry {
                    limits,
                    redactor: self.redactor.as_deref(),
                    env,
                    live,
                    access: tools::Access {
                        resolved: touched.resolved.as_deref(),
                        may_read: &may_read,
                    },
                };
                let output = self
                    .watched(tools::execute(self.provider, &self.sandbox, other, carry))
                    .await;
                if let Some(pump) = pump {
                    pump.finish().await?;
                }
                let output = output??;
                Ok(CallResult {
                    outcome: outcome(output.ok),
                    text: output.text,
                })
            }
        }
    }
}
