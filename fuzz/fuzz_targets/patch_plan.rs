//! Patches an agent sends: never a panic; every path a planned patch
//! would touch went through the reader (so through the workspace checks)
//! and is among the paths the parse gives to be decided on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_sandbox::patch::{Current, ParsedPatch, plan};

fuzz_target!(|input: (&str, &str)| {
    let (patch, existing) = input;
    let Ok(parsed) = ParsedPatch::parse(patch) else {
        return;
    };
    let decided = parsed.paths();
    let mut asked: Vec<String> = Vec::new();
    let result = plan(&parsed, |path| {
        asked.push(path.to_string());
        Ok((path == "x").then(|| Current {
            contents: existing.as_bytes().to_vec(),
            executable: false,
        }))
    });
    for path in &asked {
        assert!(decided.contains(path), "{path} was read but not decided on");
    }
    if let Ok(changes) = result {
        for path in changes.keys() {
            assert!(asked.contains(path), "{path} was never checked");
        }
    }
});
