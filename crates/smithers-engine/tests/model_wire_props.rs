#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

//! Properties of the model wire formats: any JSON a server sends is read
//! or refused, never a panic; calls written in each API's answer shape
//! read back as the same calls, in order; and the results sent back name
//! every call's id, once, in order.

use proptest::prelude::*;
use serde_json::{Value, json};
use smithers_engine::agent::{CallOutcome, CallResult, Stop, Wire};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        // The keys the readers look for, so the shapes get near-misses.
        prop_oneof![
            Just("message"),
            Just("tool_use"),
            Just("text"),
            Just("function"),
            Just("stop"),
            Just("length"),
            Just("end_turn"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("choices".to_string()),
            Just("message".to_string()),
            Just("content".to_string()),
            Just("tool_calls".to_string()),
            Just("function".to_string()),
            Just("arguments".to_string()),
            Just("name".to_string()),
            Just("id".to_string()),
            Just("type".to_string()),
            Just("input".to_string()),
            Just("finish_reason".to_string()),
            Just("stop_reason".to_string()),
            Just("usage".to_string()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn calls() -> impl Strategy<Value = Vec<(String, String, Value)>> {
    let tool = prop_oneof![
        Just("read_file"),
        Just("write_file"),
        Just("run_command"),
        Just("push_branch"),
        Just("no_such_tool"),
    ];
    let args = prop::collection::btree_map("[a-z]{1,6}", ".{0,20}", 0..3)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    prop::collection::vec(("[A-Za-z0-9_]{1,12}", tool, args), 1..5).prop_map(|calls| {
        calls
            .into_iter()
            .enumerate()
            // Ids are unique within an answer, as the APIs make them.
            .map(|(i, (id, tool, args))| (format!("{id}_{i}"), tool.to_string(), args))
            .collect()
    })
}

fn openai_answer(calls: &[(String, String, Value)]) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": calls.iter().map(|(id, tool, args)| json!({
                    "id": id, "type": "function",
                    "function": {"name": tool, "arguments": args.to_string()},
                })).collect::<Vec<_>>(),
            },
            "finish_reason": "tool_calls",
        }],
    })
}

fn anthropic_answer(calls: &[(String, String, Value)]) -> Value {
    json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": calls.iter().map(|(id, tool, args)| json!({
            "type": "tool_use", "id": id, "name": tool, "input": args,
        })).collect::<Vec<_>>(),
        "stop_reason": "tool_use",
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_json_is_read_or_refused_never_a_panic(body in any_json()) {
        for wire in [Wire::OpenAi, Wire::Anthropic] {
            if let Ok(reply) = wire.parse(&body) {
                // What is read is consistent: calls and only calls stop
                // for calls.
                prop_assert_eq!(reply.stop == Stop::Calls, !reply.calls.is_empty());
                prop_assert!(reply.calls.iter().all(|c| !c.id.is_empty()));
            }
        }
    }

    #[test]
    fn calls_read_back_as_written(calls in calls(), outcome in 0..4usize) {
        for (wire, answer) in [
            (Wire::OpenAi, openai_answer(&calls)),
            (Wire::Anthropic, anthropic_answer(&calls)),
        ] {
            let reply = wire.parse(&answer).unwrap();
            prop_assert_eq!(&reply.stop, &Stop::Calls);
            let read: Vec<(String, String, Value)> = reply
                .calls
                .iter()
                .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
                .collect();
            prop_assert_eq!(&read, &calls);
            // The answer goes back as an assistant message that parses to
            // the same calls in a request.
            prop_assert_eq!(&reply.message["role"], "assistant");
            let outcome = [CallOutcome::Ok, CallOutcome::Failed, CallOutcome::Denied, CallOutcome::Rejected][outcome];
            let results: Vec<(String, CallResult)> = calls
                .iter()
                .map(|(id, _, _)| (id.clone(), CallResult { outcome, text: format!("result of {id}") }))
                .collect();
            let sent = wire.results(&results);
            let ids: Vec<String> = match wire {
                Wire::OpenAi => sent.iter().map(|m| m["tool_call_id"].as_str().unwrap().to_string()).collect(),
                Wire::Anthropic => {
                    prop_assert_eq!(sent.len(), 1);
                    sent[0]["content"].as_array().unwrap().iter()
                        .map(|b| b["tool_use_id"].as_str().unwrap().to_string()).collect()
                }
            };
            let expected: Vec<String> = calls.iter().map(|(id, _, _)| id.clone()).collect();
            prop_assert_eq!(ids, expected);
            let request = wire.request("m", "system", &[json!({"role": "user", "content": "p"}), reply.message.clone()]);
            prop_assert_eq!(request["tools"].as_array().unwrap().len(), 11);
        }
    }
}
