//! Workflows as `smithers.toml` declares them: what triggers a workflow,
//! what it may reach and read, and its ordered steps. [`parse`] reads a
//! file and reports every problem at its line and column; [`check`] adds
//! what needs the repository (the policy file, agent scripts) and the
//! secret store (secrets that exist).

mod check;
mod parse;
mod source;

use std::time::Duration;

pub use check::{CheckContext, FILE_NAME, check};
pub use parse::parse;
pub use parse::{SMITHERS_BRANCH_PREFIX, branch_problem, ref_name_problem};

/// The name a value has in its table of (name, value) pairs; every table
/// lists every value.
fn name_in<T: PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(name, _)| name)
}

/// The value `name` stands for in a table of (name, value) pairs.
pub(crate) fn named<T: Copy>(table: &[(&'static str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The default wall-clock limit of a workflow.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long an approval waits for a decision unless the workflow says.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// The default turn limit of an agent step.
pub const DEFAULT_MAX_TURNS: u32 = 20;
/// The most retries a step may ask for.
pub const MAX_RETRIES: u32 = 10;

/// Everything `smithers.toml` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowFile {
    /// In the order of the file.
    pub workflows: Vec<Workflow>,
    /// What is allowed but deserves a second look (an agent's commands
    /// given secrets), each at its line and column.
    pub warnings: Vec<smithers_policy::Diagnostic>,
}

impl WorkflowFile {
    pub fn get(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    pub triggers: Vec<Trigger>,
    /// The cron expression (five fields) when `schedule` is a trigger.
    pub schedule: Option<String>,
    /// Hosts the sandbox may reach through the egress proxy; empty: none.
    pub egress: Vec<String>,
    pub secrets: Vec<SecretRef>,
    pub timeout: Duration,
    /// An approval nobody decides within this expires, which is a
    /// rejection.
    pub approval_timeout: Duration,
    pub provider: ProviderKind,
    /// The policy file, relative to the repository; `None`: the built-in one.
    pub policy: Option<String>,
    pub steps: Vec<Step>,
    /// Where the workflow's table starts (1-based line), for messages.
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    PullRequest(PullRequestEvent),
    Push,
    Schedule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestEvent {
    Opened,
    Synchronize,
    Reopened,
}

impl Trigger {
    /// Every trigger as `on` spells it.
    pub const ALL: [(&'static str, Trigger); 6] = [
        ("manual", Trigger::Manual),
        (
            "pull_request.opened",
            Trigger::PullRequest(PullRequestEvent::Opened),
        ),
        (
            "pull_request.synchronize",
            Trigger::PullRequest(PullRequestEvent::Synchronize),
        ),
        (
            "pull_request.reopened",
            Trigger::PullRequest(PullRequestEvent::Reopened),
        ),
        ("push", Trigger::Push),
        ("schedule", Trigger::Schedule),
    ];

    pub fn as_str(self) -> &'static str {
        name_in(&Trigger::ALL, self)
    }
}

/// A secret the workflow's commands get as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub name: String,
    pub env: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Native,
    Docker,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Native => "native",
            ProviderKind::Docker => "docker",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// A human approves before the step runs.
    pub needs_approval: bool,
    /// Overrides the workflow's timeout for this step.
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// A failure of this step does not fail the run.
    pub continue_on_error: bool,
    /// Runs only if an earlier step ended this way.
    pub condition: Option<Condition>,
    /// 1-based line of the step's table.
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    Agent(AgentStep),
    /// A command, decided by the kernel as `run_command` (or `run_tests`
    /// when it is a test command).
    Run {
        command: String,
    },
    /// A human gate.
    Approval {
        message: String,
    },
    /// Commits the workspace to `branch` (under `smithers/`), or to
    /// `smithers/<run-id>`.
    Commit {
        branch: Option<String>,
        message: String,
    },
}

impl StepKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::Agent(_) => "agent",
            StepKind::Run { .. } => "run",
            StepKind::Approval { .. } => "approval",
            StepKind::Commit { .. } => "commit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStep {
    /// The subject the kernel decides the agent's tool calls for.
    pub role: String,
    pub driver: Driver,
    pub model: Option<String>,
    pub prompt: String,
    pub max_turns: u32,
    /// `scripted`: the file of tool calls, relative to the repository.
    pub script: Option<String>,
    /// HTTP drivers: the API's base URL (the provider's own by default).
    pub base_url: Option<String>,
    /// HTTP drivers: the secret holding the API key (one of the workflow's).
    pub key: Option<String>,
    /// The workflow's secrets the agent's commands get in their
    /// environment; none unless named (the model sees what its commands
    /// print).
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Scripted,
    OpenAi,
    Anthropic,
}

impl Driver {
    pub const ALL: [(&'static str, Driver); 3] = [
        ("scripted", Driver::Scripted),
        ("openai", Driver::OpenAi),
        ("anthropic", Driver::Anthropic),
    ];

    pub fn as_str(self) -> &'static str {
        name_in(&Driver::ALL, self)
    }

    /// The secret an HTTP driver reads its key from unless told otherwise.
    pub fn default_key(self) -> Option<&'static str> {
        match self {
            Driver::Scripted => None,
            Driver::OpenAi => Some("OPENAI_API_KEY"),
            Driver::Anthropic => Some("ANTHROPIC_API_KEY"),
        }
    }
}

/// `if = "STEP.OUTCOME"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub step: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
}

impl Outcome {
    pub const ALL: [(&'static str, Outcome); 3] = [
        ("succeeded", Outcome::Succeeded),
        ("failed", Outcome::Failed),
        ("skipped", Outcome::Skipped),
    ];

    pub fn as_str(self) -> &'static str {
        name_in(&Outcome::ALL, self)
    }
}
