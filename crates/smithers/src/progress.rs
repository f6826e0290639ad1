//! The live line under a run's log on a terminal: a spinner with the step
//! being carried out, how far the run is, what it is doing and for how
//! long. Off a terminal nothing is drawn (the log lines say it all).

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use smithers_api::{RunSummary, Step, StepState};

pub struct RunProgress {
    bar: ProgressBar,
}

impl RunProgress {
    /// A spinner on stderr, drawn only if stderr is a terminal.
    pub fn new() -> RunProgress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        RunProgress { bar }
    }

    /// Whether the line is drawn (stderr is a terminal).
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Says where the run is.
    pub fn show(&self, run: &RunSummary, steps: &[Step]) {
        self.bar.set_message(describe(run, steps));
    }

    /// Prints above the spinner.
    pub fn print(&self, print: impl FnOnce()) {
        self.bar.suspend(print);
    }

    /// Takes the spinner off while the terminal is used for a question.
    pub fn pause(&self) {
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
    }

    pub fn resume(&self) {
        if std::io::stderr().is_terminal() {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `step 2/3 test (run) running`, or the run's state between steps.
fn describe(run: &RunSummary, steps: &[Step]) -> String {
    let current = steps
        .iter()
        .find(|s| matches!(s.state, StepState::Running | StepState::WaitingApproval))
        .or_else(|| steps.iter().find(|s| !s.state.is_finished()));
    let done = steps.iter().filter(|s| s.state.is_finished()).count();
    match current {
        Some(step) if !run.state.is_finished() => format!(
            "step {}/{} {} ({}) {}{}",
            step.position + 1,
            steps.len(),
            step.id,
            step.kind,
            step.state.as_str().replace('_', " "),
            if step.attempts > 1 {
                format!(", attempt {}", step.attempts)
            } else {
                String::new()
            }
        ),
        _ => format!("run {} ({done}/{} steps done)", run.state, steps.len()),
    }
}
