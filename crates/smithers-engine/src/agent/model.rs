//! A model as an agent: the conversation with an OpenAI-compatible or
//! Anthropic API, one tool call handed to the run at a time. A model may
//! ask for several calls in one answer; they are carried out in order and
//! their results go back together in the next request.
//!
//! Every answer that came over the network is handed to the run
//! ([`Driver::take_answer`]) to record before any of its calls is
//! decided. A resumed run passes the recorded answers back in, and they
//! are replayed in place of asking again: the calls come out the same,
//! and the run's store gives their recorded results.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::http::Client;
use super::{CallOutcome, CallResult, Driver, Turn, anthropic, openai};
use crate::Error;

/// Which API a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
}

impl Wire {
    pub fn name(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Anthropic => "anthropic",
        }
    }

    /// Where the API is unless the step says otherwise.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Wire::OpenAi => openai::DEFAULT_BASE_URL,
            Wire::Anthropic => anthropic::DEFAULT_BASE_URL,
        }
    }

    pub fn endpoint(self, base_url: &str) -> String {
        match self {
            Wire::OpenAi => openai::endpoint(base_url),
            Wire::Anthropic => anthropic::endpoint(base_url),
        }
    }

    fn headers(self, key: &str) -> Vec<(&'static str, String)> {
        match self {
            Wire::OpenAi => openai::headers(key),
            Wire::Anthropic => anthropic::headers(key),
        }
    }

    /// The request body for the conversation so far.
    pub fn request(self, model: &str, system: &str, messages: &[Value]) -> Value {
        match self {
            Wire::OpenAi => openai::request(model, system, messages),
            Wire::Anthropic => anthropic::request(model, system, messages),
        }
    }

    fn opening(self, prompt: &str) -> Vec<Value> {
        match self {
            Wire::OpenAi => openai::opening(prompt),
            Wire::Anthropic => anthropic::opening(prompt),
        }
    }

    /// Reads an answer: what to send back, the calls asked for, the text.
    pub fn parse(self, response: &Value) -> Result<Reply, Error> {
        match self {
            Wire::OpenAi => openai::parse(response),
            Wire::Anthropic => anthropic::parse(response),
        }
    }

    /// The messages carrying the results of an answer's calls.
    pub fn results(self, results: &[(String, CallResult)]) -> Vec<Value> {
        match self {
            Wire::OpenAi => openai::results(results),
            Wire::Anthropic => anthropic::results(results),
        }
    }
}

/// A call a model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall {
    /// The API's id for it, which its result must name.
    pub id: String,
    pub name: String,
    /// Parsed; arguments that were not JSON stay a string, which the tool
    /// refuses with the reason.
    pub arguments: Value,
    /// As the model wrote them (sent back unchanged).
    pub raw_arguments: String,
}

/// Why an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// It asks for calls.
    Calls,
    /// It is done: its text is the summary.
    Finished,
    /// It stopped without finishing (out of tokens, filtered, refused).
    Cut(String),
}

/// One answer, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The assistant message to send back in the next request.
    pub message: Value,
    pub calls: Vec<ModelCall>,
    pub text: String,
    pub stop: Stop,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// An answer from the network, for the run to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The request's number within the step's attempt (from 0).
    pub turn: u32,
    pub response: Value,
    pub calls: u32,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// What a call's result reads as to a model: the outcome first when it
/// is not plain success, so a refusal is never mistaken for output.
pub(crate) fn result_text(result: &CallResult) -> String {
    let text = if result.text.trim().is_empty() {
        "(no output)"
    } else {
        result.text.as_str()
    };
    match result.outcome {
        CallOutcome::Ok => text.to_string(),
        CallOutcome::Failed => format!("[failed] {text}"),
        CallOutcome::Denied => format!("[denied by policy] {text}"),
        CallOutcome::Rejected => format!("[rejected by a human] {text}"),
    }
}

/// What tells a model where it is and what it may count on.
fn system_prompt(role: &str) -> String {
    format!(
        "You are the {role} agent of a Smithers workflow run. The repository is checked out \
         in your workspace; work on it only through the tools. Every tool call is decided by \
         a policy before it runs: it may be carried out, wait for a human's approval, or be \
         refused, and a refusal comes back as the call's result (do not repeat a refused call \
         unchanged). Commands run in a sandbox with no network unless the workflow allows \
         hosts. Secret values in outputs show as ***. Branches you commit or push must be \
         under smithers/; humans merge. When you are done, answer with a short summary of what \
         you did and no tool call."
    )
}

/// How a [`Model`] is set up for one attempt of a step.
pub struct ModelSetup {
    pub wire: Wire,
    pub model: String,
    /// The API's base URL; the provider's own when `None`.
    pub base_url: Option<String>,
    pub key: Zeroizing<String>,
    pub role: String,
    pub prompt: String,
    /// Answers recorded by an earlier process, replayed first.
    pub replay: Vec<Value>,
    /// No request goes on past this.
    pub time: Duration,
}

/// The `openai` and `anthropic` drivers.
pub struct Model {
    wire: Wire,
    model: String,
    endpoint: String,
    key: Zeroizing<String>,
    client: Client,
    system: String,
    messages: Vec<Value>,
    /// Calls of the last answer not handed out yet.
    pending: VecDeque<ModelCall>,
    /// The call handed out last, whose result comes with the next turn.
    out: Option<String>,
    /// Results of the last answer's calls, to send back together.
    answered: Vec<(String, CallResult)>,
    replay: VecDeque<Value>,
    turn: u32,
    unrecorded: Option<Answer>,
    deadline: Instant,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("wire", &self.wire)
            .field("model", &self.model)
            .field("endpoint", &self.endpoint)
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

impl Model {
    pub fn new(setup: ModelSetup) -> Result<Model, Error> {
        let base = setup
            .base_url
            .unwrap_or_else(|| setup.wire.default_base_url().to_string());
        Ok(Model {
            wire: setup.wire,
            endpoint: setup.wire.endpoint(&base),
            client: Client::new(setup.wire.name())?,
            system: system_prompt(&setup.role),
            messages: setup.wire.opening(&setup.prompt),
            model: setup.model,
            key: setup.key,
            pending: VecDeque::new(),
            out: None,
            answered: Vec::new(),
            replay: setup.replay.into(),
            turn: 0,
            unrecorded: None,
            deadline: Instant::now() + setup.time,
        })
    }

    /// The next call of the last answer, if one is left.
    fn hand_out(&mut self) -> Option<Turn> {
        let call = self.pending.pop_front()?;
        self.out = Some(call.id);
        Some(Turn::Call {
            tool: call.name,
            arguments: call.arguments,
        })
    }

    /// The next answer: a recorded one while any is left, else the API's.
    async fn answer(&mut self) -> Result<Value, Error> {
        if let Some(recorded) = self.replay.pop_front() {
            return Ok(recorded);
        }
        let body = self.wire.request(&self.model, &self.system, &self.messages);
        self.client
            .post(
                &self.endpoint,
                &self.wire.headers(&self.key),
                &body,
                self.deadline,
            )
            .await
    }
}

impl Driver for Model {
    async fn next(&mut self, last: Option<&CallResult>) -> Result<Turn, Error> {
        if let Some(id) = self.out.take() {
            let result = last.cloned().unwrap_or(CallResult {
                outcome: CallOutcome::Failed,
                text: "no result".into(),
            });
            self.answered.push((id, result));
        }
        if let Some(turn) = self.hand_out() {
            return Ok(turn);
        }
        let results = std::mem::take(&mut self.answered);
        self.messages.extend(self.wire.results(&results));
        let replayed = !self.replay.is_empty();
        let response = self.answer().await?;
        let reply = self.wire.parse(&response)?;
        if !replayed {
            self.unrecorded = Some(Answer {
                turn: self.turn,
                calls: u32::try_from(reply.calls.len()).unwrap_or(u32::MAX),
                input_tokens: reply.input_tokens,
                output_tokens: reply.output_tokens,
                response,
            });
        }
        self.turn += 1;
        self.messages.push(reply.message);
        match reply.stop {
            Stop::Calls => {
                self.pending = reply.calls.into();
                self.hand_out()
                    .ok_or_else(|| Error::Model("an answer with calls had none".into()))
            }
            Stop::Finished => Ok(Turn::Done {
                ok: true,
                summary: if reply.text.trim().is_empty() {
                    "finished".into()
                } else {
                    reply.text
                },
            }),
            Stop::Cut(why) => Ok(Turn::Done {
                ok: false,
                summary: format!("the model stopped without finishing: {why}"),
            }),
        }
    }

    fn take_answer(&mut self) -> Option<Answer> {
        self.unrecorded.take()
    }
}
