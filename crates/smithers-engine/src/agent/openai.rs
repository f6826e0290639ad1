//! OpenAI-compatible chat completions with tool calling: the request a
//! conversation makes, the answer read strictly, the calls' results as
//! `tool` messages.

use serde_json::{Value, json};

use super::CallResult;
use super::model::{ModelCall, Reply, Stop, result_text};
use crate::Error;
use crate::tools::specs;

pub(crate) const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub(crate) fn endpoint(base: &str) -> String {
    format!("{}/chat/completions", base.trim_end_matches('/'))
}

pub(crate) fn headers(key: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {key}"))]
}

pub(crate) fn request(model: &str, system: &str, messages: &[Value]) -> Value {
    let tools: Vec<Value> = specs()
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            })
        })
        .collect();
    let mut all = Vec::with_capacity(messages.len() + 1);
    all.push(json!({"role": "system", "content": system}));
    all.extend(messages.iter().cloned());
    json!({
        "model": model,
        "messages": all,
        "tools": tools,
        "tool_choice": "auto",
    })
}

pub(crate) fn opening(prompt: &str) -> Vec<Value> {
    vec![json!({"role": "user", "content": prompt})]
}

fn bad(detail: impl std::fmt::Display) -> Error {
    Error::Model(format!(
        "the openai API's answer is not a chat completion: {detail}"
    ))
}

fn tokens(usage: Option<&Value>, name: &str) -> Option<u64> {
    usage?.get(name)?.as_u64()
}

pub(crate) fn parse(response: &Value) -> Result<Reply, Error> {
    let choice = response
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| bad("no choices"))?;
    let message = choice.get("message").ok_or_else(|| bad("no message"))?;
    let text = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(bad(format!("content is {other}"))),
    };
    let mut calls = Vec::new();
    match message.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for call in list {
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| bad("a tool call without an id"))?;
                let function = call
                    .get("function")
                    .ok_or_else(|| bad(format!("tool call {id} has no function")))?;
                let name = function
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("tool call {id} has no name")))?;
                let raw = function
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}");
                // Arguments a model wrote that are not JSON go to the
                // tool as they are, which refuses them with the reason.
                let arguments = if raw.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
                };
                calls.push(ModelCall {
                    id: id.to_string(),
                    name: name.to_string(),
                    arguments,
                    raw_arguments: raw.to_string(),
                });
            }
        }
        Some(other) => return Err(bad(format!("tool_calls is {other}"))),
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    let stop = if !calls.is_empty() {
        Stop::Calls
    } else {
        match finish {
            "stop" | "tool_calls" => Stop::Finished,
            "length" => Stop::Cut("it ran out of output tokens (finish_reason length)".into()),
            "content_filter" => {
                Stop::Cut("its answer was filtered (finish_reason content_filter)".into())
            }
            other => Stop::Cut(format!("finish_reason {other}")),
        }
    };
    let refusal = message.get("refusal").and_then(Value::as_str);
    let text = match (text.is_empty(), refusal) {
        (true, Some(r)) => format!("refused: {r}"),
        _ => text,
    };
    // The assistant message goes back as the model sent it, minus what
    // the API does not take back (refusal, annotations).
    let mut echo = json!({"role": "assistant", "content": message.get("content").cloned().unwrap_or(Value::Null)});
    if !calls.is_empty() {
        echo["tool_calls"] = Value::Array(
            calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.raw_arguments},
                    })
                })
                .collect(),
        );
    }
    let usage = response.get("usage");
    Ok(Reply {
        message: echo,
        calls,
        text,
        stop,
        input_tokens: tokens(usage, "prompt_tokens"),
        output_tokens: tokens(usage, "completion_tokens"),
    })
}

pub(crate) fn results(results: &[(String, CallResult)]) -> Vec<Value> {
    results
        .iter()
        .map(|(id, result)| {
            json!({
                "role": "tool",
                "tool_call_id": id,
                "content": result_text(result),
            })
        })
        .collect()
}
