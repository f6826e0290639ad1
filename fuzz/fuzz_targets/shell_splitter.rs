//! Any bytes as a command line: splitting never panics nor recurses without
//! bound, and every part it returns can be decided.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_policy::shell::split_command;
use smithers_policy::{PolicySet, Request, Subject};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parts) = split_command(line) {
        for part in &parts {
            let _ = part.display();
        }
    }
    let policy = PolicySet::parse("p", "* run_command \"rm *\" -> deny\n* run_command * -> allow\n")
        .expect("the fixed policy parses");
    let _ = policy.evaluate(&Request {
        subject: Subject { role: Some("dev"), user: None },
        action: "run_command",
        resource: line,
    });
});
