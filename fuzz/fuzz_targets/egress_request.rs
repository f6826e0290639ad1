//! Request heads a sandboxed process sends the egress proxy: never a
//! panic, and an accepted target always names a non-empty host and a port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_sandbox::egress::parse_target;

fuzz_target!(|head: &[u8]| {
    if let Ok(target) = parse_target(head) {
        assert!(!target.host.is_empty());
        assert_ne!(target.port, 0);
    }
});
