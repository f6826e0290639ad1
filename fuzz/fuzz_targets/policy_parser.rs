//! Any bytes as a policy file: parsing never panics, errors point inside
//! the text, and what loads can be evaluated, explained and analysed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_policy::{Error, PolicySet, Request, Subject};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicySet::parse("fuzz.policy", text) {
        Ok(policy) => {
            for rule in policy.rules() {
                let again = PolicySet::parse("again.policy", &rule.canonical())
                    .expect("a canonical rule parses");
                assert_eq!(again.rules()[0].resource.as_str(), rule.resource.as_str());
            }
            let _ = policy.run_tests();
            if policy.rules().len() <= 64 {
                let _ = policy.analyze();
            }
            for action in ["read_file", "run_command", "push_branch", "custom"] {
                let request = Request {
                    subject: Subject { role: Some("r"), user: Some("u") },
                    action,
                    resource: "src/main.rs && x",
                };
                let _ = policy.explain(&request);
            }
        }
        Err(Error::InvalidPolicy(diagnostics)) => {
            assert!(!diagnostics.is_empty());
            for d in diagnostics {
                assert!(d.line >= 1 && d.column >= 1);
                let _ = d.to_string();
            }
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
});
