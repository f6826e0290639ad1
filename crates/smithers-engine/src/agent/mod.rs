//! Agent drivers: what decides the next tool call of an agent step. The
//! executor asks a driver for a turn, puts the call through the kernel,
//! carries it out (or refuses it) and hands the result back.
//!
//! `scripted` plays a fixed list of calls ([`scripted`]); `openai` and
//! `anthropic` ask a model over its HTTP API ([`model`], with the wire
//! formats in [`openai`] and [`anthropic`]), and every answer the model
//! gives is handed to the run to record before it is acted on, so a
//! resumed run replays the conversation instead of asking again.

mod anthropic;
mod http;
mod model;
mod openai;
mod scripted;

use serde::Deserialize;
use serde_json::Value;

pub use model::{Answer, Model, ModelCall, ModelSetup, Reply, Stop, Wire};
pub use scripted::{Script, Scripted};

use crate::Error;

/// How a call ended, as the agent is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// Carried out and succeeded.
    Ok,
    /// Carried out and failed (a non-zero exit, a patch that did not apply),
    /// or not a valid call.
    Failed,
    /// The kernel refused it.
    Denied,
    /// A human refused it (or nobody decided in time).
    Rejected,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Failed => "failed",
            CallOutcome::Denied => "denied",
            CallOutcome::Rejected => "rejected",
        }
    }
}

/// What the agent is shown of its last call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    pub outcome: CallOutcome,
    /// Redacted and capped.
    pub text: String,
}

/// What the agent does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    Call {
        tool: String,
        arguments: Value,
    },
    /// The agent is done: `ok` false fails the step with `summary`.
    Done {
        ok: bool,
        summary: String,
    },
}

/// One agent's side of a step.
#[allow(async_fn_in_trait)] // used through generics
pub trait Driver {
    /// The next turn, given the result of the previous call (`None` first).
    async fn next(&mut self, last: Option<&CallResult>) -> Result<Turn, Error>;

    /// An answer the last [`Driver::next`] got from a model, which the run
    /// records before acting on it (drivers that ask no one have none).
    fn take_answer(&mut self) -> Option<Answer> {
        None
    }
}
