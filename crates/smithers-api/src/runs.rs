//! Runs as front ends show them: a run with its steps, tool calls (each
//! with the kernel's decision), model answers and approvals, and its log.

use serde::{Deserialize, Serialize};

use crate::{Approval, Timestamp};

/// Where a run stands: `queued → running ⇄ waiting_approval → succeeded |
/// failed | cancelled | timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    WaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

impl RunState {
    /// The state's wire name (`waiting_approval`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::WaitingApproval => "waiting_approval",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::TimedOut => "timed_out",
        }
    }

    /// A state nothing leaves.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled | RunState::TimedOut
        )
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a step stands: `pending → running ⇄ waiting_approval → succeeded
/// | failed | skipped | cancelled | timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    WaitingApproval,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
    TimedOut,
}

impl StepState {
    /// The state's wire name (`waiting_approval`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::WaitingApproval => "waiting_approval",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
            StepState::TimedOut => "timed_out",
        }
    }

    /// A state nothing leaves.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            StepState::Pending | StepState::Running | StepState::WaitingApproval
        )
    }
}

impl ToolCallState {
    /// The state's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallState::Allowed => "allowed",
            ToolCallState::Asked => "asked",
            ToolCallState::Running => "running",
            ToolCallState::Completed => "completed",
            ToolCallState::Denied => "denied",
            ToolCallState::Rejected => "rejected",
        }
    }
}

/// Where a tool call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ToolCallState {
    /// The kernel allowed it; not started yet.
    Allowed,
    /// The kernel asked a human; waiting for the approval.
    Asked,
    /// Being carried out.
    Running,
    Completed,
    /// The kernel denied it (the refusal is its output).
    Denied,
    /// A human rejected it, or the approval expired.
    Rejected,
}

/// A run in a list: `{"id", "workflow", "repository", "trigger",
/// "state", "requested_by", "created_at", "error"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    pub id: String,
    pub workflow: String,
    /// The repository it runs on (the checkout's path).
    pub repository: String,
    /// `manual`, or the event that started it.
    pub trigger: String,
    pub state: RunState,
    /// Who started it.
    pub requested_by: String,
    pub created_at: Timestamp,
    /// Why it failed, for a failed, cancelled or timed-out run.
    pub error: Option<String>,
}

/// The sandbox a run is carried out in: `{"provider", "image"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSandbox {
    /// `native` or `docker`.
    pub provider: String,
    /// The Docker image, when one was named.
    pub image: Option<String>,
}

/// The policies that decide a run's tool calls: `{"repository",
/// "organization_version"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunPolicies {
    /// The repository's policy, by name (`.smithers/policy`, or the
    /// embedded default).
    pub repository: String,
    /// The organization's policy version that bounded it, if one was
    /// published when the run started.
    pub organization_version: Option<u32>,
}

/// A step of a run: `{"position", "id", "kind", "state", "attempts",
/// "exit_code", "error"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// Its place in the workflow, from 0.
    pub position: u32,
    /// Its id in the workflow.
    pub id: String,
    /// `run`, `agent`, `approval`, …
    pub kind: String,
    pub state: StepState,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// The rule that decided: `{"file", "line", "text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleRef {
    /// The policy file (or the organization's policy, by name).
    pub file: String,
    /// Its line, from 1.
    pub line: u32,
    /// The rule as written.
    pub text: String,
}

/// The organization's policy's side of a decision it bounded:
/// `{"version", "decision", "decides"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrganizationDecision {
    /// The version of the organization's policy.
    pub version: u32,
    /// What it decided on its own.
    pub decision: String,
    /// Whether its decision is the one that holds (it is stricter).
    pub decides: bool,
}

/// The kernel's decision on a tool call's resource, as the run recorded
/// it: `{"resource", "decided_as", "decision", "source", "rule", "reason",
/// "organization"}`. `decision` is `allow`, `ask`, `admin-only` or
/// `deny`; `source` what made it (`rule`, `default`, `invariant`);
/// `decided_as` the tool it was decided as (`run_command` for a
/// `run_tests` line that starts other programs); `organization` is there
/// when the organization's policy bounded the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCallDecision {
    pub resource: String,
    pub decided_as: String,
    pub decision: String,
    pub source: String,
    pub rule: Option<RuleRef>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationDecision>,
}

/// A tool call and the kernel's decision on it: `{"position", "attempt",
/// "seq", "tool", "subject", "arguments", "decision", "state", "approval",
/// "ok"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCall {
    /// The step's position.
    pub position: u32,
    /// The step's attempt, from 1.
    pub attempt: u32,
    /// The call's number within the attempt.
    pub seq: u32,
    pub tool: String,
    /// The agent's role that called.
    pub subject: String,
    pub arguments: serde_json::Value,
    pub decision: ToolCallDecision,
    pub state: ToolCallState,
    /// The approval it waited for, if it was asked.
    pub approval: Option<String>,
    /// Whether it succeeded, once carried out.
    pub ok: Option<bool>,
}

/// A model answer recorded for a step (replayed on resume, never asked
/// twice): `{"position", "attempt", "turn", "driver", "model", "calls",
/// "input_tokens", "output_tokens", "at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelTurn {
    pub position: u32,
    pub attempt: u32,
    /// The answer's number within the attempt, from 0.
    pub turn: u32,
    pub driver: String,
    pub model: String,
    /// How many tool calls it asked for.
    pub calls: u32,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub at: Timestamp,
}

/// A run with everything it did: the summary's fields and `repository`,
/// `trigger`, `started_at`, `finished_at`, `sandbox`, `policies`, `purge`
/// (what destroying its sandbox found), `history_destroyed_at`, `steps`,
/// `tool_calls`, `model_turns`, `approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    pub workflow: String,
    pub repository: String,
    /// `manual`, or the event that started it.
    pub trigger: String,
    pub requested_by: String,
    pub state: RunState,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub sandbox: RunSandbox,
    pub policies: RunPolicies,
    /// The sandbox purge's report (`{"clean": bool, …}`) once destroyed.
    pub purge: Option<serde_json::Value>,
    /// When the key its model answers were sealed under was destroyed (when
    /// it ended): from then on no one can read them, from this server or
    /// from a backup. `None` while it runs.
    pub history_destroyed_at: Option<Timestamp>,
    pub steps: Vec<Step>,
    pub tool_calls: Vec<ToolCall>,
    pub model_turns: Vec<ModelTurn>,
    pub approvals: Vec<Approval>,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// What Smithers says of the run (decisions, transitions).
    Smithers,
}

/// A line of a run's log, redacted before it was stored: `{"seq",
/// "position", "stream", "at", "text"}`. `seq` grows by one per line of
/// the run; read on after the last one seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLine {
    pub seq: u64,
    /// The step's position, for a step's output.
    pub position: Option<u32>,
    pub stream: LogStream,
    pub at: Timestamp,
    pub text: String,
}

/// A run started to be carried out elsewhere (`run --detach`): `{"id",
/// "state", "output"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Launched {
    pub id: String,
    pub state: RunState,
    /// Where the process carrying it out writes what it prints, when it
    /// is one.
    pub output: Option<String>,
}

/// A cancelled run: `{"id", "state", "stopped_by_its_process"}`; when no
/// process was carrying it out, cancelling closed its steps and approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cancelled {
    pub id: String,
    pub state: RunState,
    pub stopped_by_its_process: bool,
}
