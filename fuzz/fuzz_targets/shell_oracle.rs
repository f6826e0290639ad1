//! The shell splitter against the real bash and dash: any line the
//! splitter analyses runs in a throwaway bubblewrap sandbox whose programs
//! are recorders, and every program the shell starts must be one the
//! splitter reported. Needs bubblewrap, bash and dash on the host.

#![no_main]

#[path = "../../crates/smithers-policy/tests/oracle/mod.rs"]
mod oracle;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smithers_policy::shell::Dialect;

fn oracle() -> &'static oracle::Oracle {
    static ORACLE: OnceLock<oracle::Oracle> = OnceLock::new();
    ORACLE.get_or_init(|| match oracle::Oracle::new() {
        Ok(oracle) => oracle,
        Err(why) => panic!("the shell oracle cannot run here: {why}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let dialect = if first & 1 == 0 {
        Dialect::Bash
    } else {
        Dialect::Posix
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    if line.len() > 512 {
        return;
    }
    if let Ok(run) = oracle().run(line, dialect) {
        let unexpected = run.unexpected();
        assert!(
            unexpected.is_empty(),
            "{} started {unexpected:?}, which the splitter did not report; line {line:?}; parts {:?}",
            dialect.name(),
            run.parts.iter().map(|p| p.display()).collect::<Vec<_>>()
        );
    }
});
