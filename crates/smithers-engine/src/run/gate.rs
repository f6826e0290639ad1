//! The kernel in front of every call: the decision (recorded with its
//! audit event before anything happens), the approval an `ask` or
//! `admin-only` waits for, and the refusal a `deny` turns into.

use std::time::Duration;

use serde_json::{Value, json};
use smithers_policy::{Bounded, Decision, Request, Subject, Verdict};
use smithers_store::{
    Approval, ApprovalKind, ApprovalState, NewApproval, NewToolCall, RunState, StepState,
    ToolCallKey, ToolCallRecord, ToolCallState, ToolResult,
};

use super::{Ctx, Interrupt, RunPolicy};
use crate::Error;
use crate::tools::ToolCall;

/// What the kernel (and a human, if asked) made of a call.
pub(crate) enum Gate {
    /// Carry it out.
    Go,
    /// Finished in an earlier life of the run: its result, not carried out again.
    Done(Box<ToolCallRecord>),
    /// Refused: denied by the kernel or rejected by a human; the text says why.
    Refused { rejected: bool, text: String },
}

/// How a human answered.
pub(crate) enum Answer {
    Approved,
    Rejected(String),
}

fn decision_json(decision: &Decision<'_>, resource: &str) -> Value {
    json!({
        "resource": resource,
        "decided_as": decision.action(),
        "decision": decision.verdict.keyword(),
        "source": decision.source().as_str(),
        "rule": decision.rule().map(|r| json!({
            "file": &*r.origin.file,
            "line": r.origin.line,
            "text": r.origin.text,
        })),
        "reason": decision.reason(),
    })
}

/// The decision that holds, with the organization policy's beside it when
/// one bounds the run (`organization`: its version and decision).
fn bounded_json(bounded: &Bounded<'_>, org_version: Option<u32>, resource: &str) -> Value {
    let mut value = decision_json(bounded.winner(), resource);
    if let (Some(org), Some(version)) = (&bounded.organization, org_version) {
        value["organization"] = json!({
            "version": version,
            "decision": org.verdict.keyword(),
            "decides": bounded.by_organization(),
        });
    }
    value
}

/// What a call touches besides the resources it names, found in the
/// sandbox: the path a file tool's path resolves to once links are
/// followed, or the file a command's redirection really opens. Each is
/// decided under its own tool (`read_file`, `write_file`, …).
#[derive(Debug, Clone, Default)]
pub(crate) struct Touched {
    /// (tool, resource) pairs decided with the call's own resources.
    pub extra: Vec<(&'static str, String)>,
    /// For a file tool: the workspace-relative path its path resolves to,
    /// which is what is carried out.
    pub resolved: Option<String>,
}

/// Every resource of the call, and every resource it touches, decided; the
/// most restrictive decides.
pub(crate) fn decide(
    policy: &RunPolicy,
    subject: &str,
    call: &ToolCall,
    touched: &Touched,
) -> Result<(Verdict, Value, String), Error> {
    let subject = Subject::parse(subject).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut worst: Option<(Verdict, Value, String)> = None;
    let resources: Vec<(&str, String)> = call
        .resources()?
        .into_iter()
        .map(|r| (call.name(), r))
        .chain(touched.extra.iter().cloned())
        .collect();
    let several = resources.len() > 1;
    for (action, resource) in resources {
        let bounded = policy.decide(&Request {
            subject,
            action,
            resource: &resource,
        });
        let decision = bounded.winner();
        if worst.as_ref().is_none_or(|(v, _, _)| decision.verdict > *v) {
            let mut reason = decision.reason();
            if bounded.by_organization()
                && let Some(version) = policy.org_version()
            {
                reason =
                    format!("the organization's policy (version {version}) is stricter: {reason}");
            }
            if action != call.name() || touched.resolved.as_deref() == Some(resource.as_str()) {
                reason = format!("it touches `{resource}` ({action}): {reason}");
            } else if several {
                reason = format!("`{resource}`: {reason}");
            }
            worst = Some((
                decision.verdict,
                bounded_json(&bounded, policy.org_version(), &resource),
                reason,
            ));
        }
    }
    worst.ok_or_else(|| Error::Tool(format!("{}: nothing to decide on", call.name())))
}

impl<P: smithers_sandbox::Provider> Ctx<'_, P> {
    /// Puts `call` (by `subject`, as call `key`) through the kernel and,
    /// if it asks, through a human.
    pub(crate) async fn gate(
        &mut self,
        key: ToolCallKey,
        subject: &str,
        call: &ToolCall,
        touched: &Touched,
    ) -> Result<Gate, Interrupt> {
        if let Some(done) = self.engine.runs.tool_call(&self.run.id, key).await?
            && done.state.is_finished()
        {
            return Ok(Gate::Done(Box::new(done)));
        }
        let (verdict, decision, reason) = decide(&self.policy, subject, call, touched)?;
        let arguments = self.redact_json(&call.arguments());
        let refusal = format!("denied by the policy: {reason}");
        let record = self
            .engine
            .runs
            .decide_tool_call(
                &self.run.id,
                NewToolCall {
                    key,
                    tool: call.name(),
                    subject,
                    arguments: arguments.clone(),
                    verdict: verdict.keyword(),
                    decision,
                    refusal: Some(&refusal),
                },
            )
            .await?;
        self.say(
            Some(key.position),
            &format!("{subject} {} → {}: {reason}", call.name(), record.verdict),
        )
        .await?;
        match record.state {
            ToolCallState::Denied => Ok(Gate::Refused {
                rejected: false,
                text: record.result.map(|r| r.output).unwrap_or(refusal),
            }),
            ToolCallState::Allowed | ToolCallState::Running => Ok(Gate::Go),
            ToolCallState::Completed | ToolCallState::Rejected => Ok(Gate::Done(Box::new(record))),
            ToolCallState::Asked => {
                let approval = match &record.approval_id {
                    Some(id) => self.engine.runs.approval(id).await?,
                    None => {
                        let summary = self.redact_text(&format!(
                            "{subject} wants to {}: {}",
                            call.name(),
                            summary_of(call)
                        ));
                        let approval = self
                            .ask(
                                key.position,
                                ApprovalKind::ToolCall,
                                record.verdict == "admin-only",
                                Some(subject),
                                &summary,
                                json!({
                                    "tool_call": {"attempt": key.attempt, "seq": key.seq},
                                    "tool": call.name(),
                                    "arguments": arguments,
                                    "reason": reason,
                                }),
                            )
                            .await?;
                        self.engine
                            .runs
                            .link_tool_call_approval(&self.run.id, key, &approval.id)
                            .await?;
                        approval
                    }
                };
                match self.wait(&approval).await? {
                    Answer::Approved => Ok(Gate::Go),
                    Answer::Rejected(why) => {
                        let text = format!("rejected: {why}");
                        self.engine
                            .runs
                            .finish_tool_call(
                                &self.run.id,
                                key,
                                ToolCallState::Rejected,
                                &ToolResult {
                                    ok: false,
                                    exit_code: None,
                                    output: text.clone(),
                                },
                                None,
                            )
                            .await?;
                        Ok(Gate::Refused {
                            rejected: true,
                            text,
                        })
                    }
                }
            }
        }
    }

    /// The latest approval of step `position` for the gate `gate` (its
    /// `details.gate`), asked in this or an earlier life of the run.
    pub(crate) async fn earlier_gate(
        &self,
        position: u32,
        gate: &str,
    ) -> Result<Option<Approval>, Error> {
        Ok(self
            .engine
            .runs
            .approvals_of_run(&self.run.id)
            .await?
            .into_iter()
            .rfind(|a| a.position == position && a.details["gate"] == gate))
    }

    /// Asks for an approval (the step and the run wait for it).
    pub(crate) async fn ask(
        &mut self,
        position: u32,
        kind: ApprovalKind,
        admin_only: bool,
        role: Option<&str>,
        summary: &str,
        details: Value,
    ) -> Result<Approval, Interrupt> {
        let approval = self
            .engine
            .runs
            .request_approval(
                &self.run.id,
                NewApproval {
                    position,
                    kind,
                    admin_only,
                    role,
                    summary,
                    details,
                    ttl: Some(self.workflow.approval_timeout),
                },
            )
            .await?;
        self.say(
            Some(position),
            &format!(
                "waiting for approval {}{}: {summary} — `smithers approvals approve {}` or `reject {} --reason …`",
                approval.id,
                if admin_only { " (an admin's)" } else { "" },
                approval.id,
                approval.id
            ),
        )
        .await?;
        Ok(approval)
    }

    /// Waits until `approval` is decided (or expires, or the run is
    /// cancelled or out of time), then puts the step and the run back to
    /// running.
    pub(crate) async fn wait(&mut self, approval: &Approval) -> Result<Answer, Interrupt> {
        let position = approval.position;
        // Woken at once by a decision (of any process); the fallback bounds
        // how late an expiry, a deadline or a missed wake-up is seen.
        let mut changes = self
            .engine
            .runs
            .store()
            .run_changes(&self.run.id, self.engine.settings.poll);
        let decided = loop {
            let mut now = self.engine.runs.approval(&approval.id).await?;
            // Closed as expired (and recorded) only once it is due.
            if now.state == ApprovalState::Pending
                && now
                    .expires_at
                    .is_some_and(|at| self.engine.runs.now() >= at)
            {
                self.engine.runs.expire_approvals(&self.run.id).await?;
                now = self.engine.runs.approval(&approval.id).await?;
            }
            if now.state != ApprovalState::Pending {
                break now;
            }
            self.check_interrupt().await?;
            let until_expiry = approval.expires_at.map(|at| {
                let left = at.saturating_sub(self.engine.runs.now());
                Duration::from_micros(u64::try_from(left).unwrap_or(0))
            });
            let due = until_expiry.map_or(self.remaining(), |e| e.min(self.remaining()));
            changes.changed_within(due).await;
        };
        let step = self.step_state(position).await?;
        if step == StepState::WaitingApproval {
            self.engine
                .runs
                .step_transition(
                    &self.run.id,
                    position,
                    &[StepState::WaitingApproval],
                    StepState::Running,
                    Default::default(),
                )
                .await?;
        }
        if self.engine.runs.state(&self.run.id).await? == RunState::WaitingApproval {
            self.engine
                .runs
                .transition(
                    &self.run.id,
                    &[RunState::WaitingApproval],
                    RunState::Running,
                    None,
                    None,
                    json!({"approval": decided.id, "decision": decided.state.as_str()}),
                )
                .await?;
        }
        let by = decided
            .decided_by
            .clone()
            .unwrap_or_else(|| "nobody".into());
        let answer = match decided.state {
            ApprovalState::Approved => Answer::Approved,
            ApprovalState::Expired => {
                Answer::Rejected("the approval expired before anyone decided".into())
            }
            _ => Answer::Rejected(format!(
                "{by}: {}",
                decided.comment.clone().unwrap_or_default()
            )),
        };
        self.say(
            Some(position),
            &match &answer {
                Answer::Approved => format!("approval {} approved by {by}", decided.id),
                Answer::Rejected(why) => format!("approval {} refused — {why}", decided.id),
            },
        )
        .await?;
        Ok(answer)
    }
}

/// The exact thing a human is asked to allow.
fn summary_of(call: &ToolCall) -> String {
    match call {
        ToolCall::ApplyPatch { patch } => format!(
            "{}\n{patch}",
            call.resources().map(|r| r.join(", ")).unwrap_or_default()
        ),
        ToolCall::WriteFile { path, contents } => {
            format!("{path} ({} bytes)\n{contents}", contents.len())
        }
        ToolCall::RunCommand { command } | ToolCall::RunTests { command } => command.clone(),
        ToolCall::CreateCommit { message, branch } => format!("{branch}: {message}"),
        other => other.resources().map(|r| r.join(", ")).unwrap_or_default(),
    }
}

/// The longest a waiting run goes without looking at its approval and its
/// state: a change wakes it at once; this bounds what a missed wake-up
/// costs.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(1);
