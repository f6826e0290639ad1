//! Allowlist entries and the hosts checked against them: never a panic,
//! and a host matched by an entry is a valid name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_sandbox::egress::Allowlist;

fuzz_target!(|input: (&str, &str, u16)| {
    let (entry, host, port) = input;
    if let Ok(list) = Allowlist::parse(&[entry]) {
        if list.allowing(host, port).is_some() {
            assert!(!host.trim_end_matches('.').is_empty());
        }
    }
});
