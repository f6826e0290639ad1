//! Any bytes as a model API's answer (OpenAI chat completion or Anthropic
//! message): reading never panics, and what is read is consistent — it
//! stops for calls exactly when it has calls, every call has an id, and
//! the results sent back name each call once.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_engine::agent::{CallOutcome, CallResult, Stop, Wire};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let Ok(reply) = wire.parse(&body) else {
            continue;
        };
        assert_eq!(reply.stop == Stop::Calls, !reply.calls.is_empty());
        let results: Vec<(String, CallResult)> = reply
            .calls
            .iter()
            .map(|c| {
                assert!(!c.id.is_empty());
                (
                    c.id.clone(),
                    CallResult {
                        outcome: CallOutcome::Denied,
                        text: String::new(),
                    },
                )
            })
            .collect();
        let sent = wire.results(&results).len();
        match wire {
            Wire::OpenAi => assert_eq!(sent, results.len()),
            Wire::Anthropic => assert_eq!(sent, usize::from(!results.is_empty())),
        }
        let _ = wire.request("m", "s", &[reply.message]);
    }
});
