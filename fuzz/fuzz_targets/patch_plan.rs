//! Patches an agent sends: never a panic, and every path a planned patch
//! would touch went through the reader (so through the workspace checks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_sandbox::patch::plan;

fuzz_target!(|input: (&str, &str)| {
    let (patch, existing) = input;
    let mut asked: Vec<String> = Vec::new();
    let result = plan(patch, |path| {
        asked.push(path.to_string());
        Ok((path == "x").then(|| existing.as_bytes().to_vec()))
    });
    if let Ok(changes) = result {
        for path in changes.keys() {
            assert!(asked.contains(path), "{path} was never checked");
        }
    }
});
