//! `init` as PID 1 of a container: it waits for the command, reaps every
//! orphan the command leaves, and exits when the command does or at the
//! deadline. When PID 1 of a PID namespace exits, the kernel kills every
//! other process in it, so its exit is everyone's.

use std::time::Duration;

use rustix::process::{WaitOptions, wait};

/// The exit status of a command the deadline ended (as `timeout(1)`).
const TIMED_OUT: i32 = 124;

/// Waits for `command` (a child) until `deadline`; exits with its status
/// (128 + signal when killed).
pub(super) fn run(command: u32, deadline: Duration) -> ! {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!(
            "smithers sandbox: the time limit ({} s) passed",
            deadline.as_secs()
        );
        std::process::exit(TIMED_OUT);
    });
    loop {
        match wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() as u32 == command => {
                let code = status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|s| 128 + s))
                    .unwrap_or(1);
                std::process::exit(code);
            }
            // An orphan reaped.
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            // No children left, which cannot be before the command ended.
            Err(_) => std::process::exit(1),
        }
    }
}
