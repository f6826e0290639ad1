//! Any bytes as smithers.toml: parsing never panics, every diagnostic
//! points inside the text, and what parses has what the file promises
//! (steps, unique ids, conditions on earlier steps, commits under smithers/).

#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_engine::workflow::{StepKind, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse("smithers.toml", text) {
        Ok(file) => {
            assert!(!file.workflows.is_empty());
            for workflow in &file.workflows {
                assert!(!workflow.steps.is_empty());
                for (i, step) in workflow.steps.iter().enumerate() {
                    assert!(workflow.steps[..i].iter().all(|s| s.id != step.id));
                    if let Some(condition) = &step.condition {
                        assert!(workflow.steps[..i].iter().any(|s| s.id == condition.step));
                    }
                    if let StepKind::Commit { branch: Some(branch), .. } = &step.kind {
                        assert!(branch.starts_with("smithers/"));
                    }
                }
            }
        }
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            let lines = text.split('\n').count() as u32;
            for d in diagnostics {
                assert!(d.line >= 1 && d.line <= lines.max(1) && d.column >= 1, "{d}");
            }
        }
    }
});
