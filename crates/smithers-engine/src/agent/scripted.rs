//! The `scripted` driver: a fixed list of calls, each with the outcome it
//! expects, played deterministically. Tests and fixed pipelines use it,
//! and a resumed run replays it to the same calls.

use serde::Deserialize;
use serde_json::Value;

use super::{CallOutcome, CallResult, Driver, Turn};
use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Ok,
    Failed,
    Denied,
    Rejected,
    Any,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedCall {
    tool: String,
    #[serde(default = "empty_object")]
    arguments: Value,
    #[serde(default = "any")]
    expect: Expect,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn any() -> Expect {
    Expect::Any
}

/// A scripted agent's file: `{"calls": [{"tool", "arguments", "expect"}], "summary"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    calls: Vec<ScriptedCall>,
    #[serde(default)]
    summary: Option<String>,
}

impl Script {
    /// Reads a script; `name` says which in errors.
    pub fn parse(name: &str, text: &str) -> Result<Script, Error> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("{name}: {e}")))
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// Plays a [`Script`].
#[derive(Debug)]
pub struct Scripted {
    script: Script,
    next: usize,
}

impl Scripted {
    pub fn new(script: Script) -> Scripted {
        Scripted { script, next: 0 }
    }
}

impl Driver for Scripted {
    async fn next(&mut self, last: Option<&CallResult>) -> Result<Turn, Error> {
        if let (Some(result), Some(done)) = (last, self.next.checked_sub(1)) {
            let call = &self.script.calls[done];
            let met = match call.expect {
                Expect::Any => true,
                Expect::Ok => result.outcome == CallOutcome::Ok,
                Expect::Failed => result.outcome == CallOutcome::Failed,
                Expect::Denied => result.outcome == CallOutcome::Denied,
                Expect::Rejected => result.outcome == CallOutcome::Rejected,
            };
            if !met {
                return Ok(Turn::Done {
                    ok: false,
                    summary: format!(
                        "call {} ({}) was expected to end {} but ended {}: {}",
                        done + 1,
                        call.tool,
                        format!("{:?}", call.expect).to_lowercase(),
                        result.outcome.as_str(),
                        result.text.lines().next().unwrap_or_default()
                    ),
                });
            }
        }
        let Some(call) = self.script.calls.get(self.next) else {
            return Ok(Turn::Done {
                ok: true,
                summary: self
                    .script
                    .summary
                    .clone()
                    .unwrap_or_else(|| format!("{} scripted calls done", self.script.len())),
            });
        };
        self.next += 1;
        Ok(Turn::Call {
            tool: call.tool.clone(),
            arguments: call.arguments.clone(),
        })
    }
}
