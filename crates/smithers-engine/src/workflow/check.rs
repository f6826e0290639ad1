//! A workflow file checked in its repository, for `smithers workflow check`
//! and before every run.

use std::collections::BTreeSet;
use std::path::Path;

use smithers_policy::{Diagnostic, Severity};

use super::WorkflowFile;
use super::parse::{Repository, parse_in};

/// Where workflows live in a repository.
pub const FILE_NAME: &str = "smithers.toml";

/// What a check may consult beyond the repository.
#[derive(Debug, Clone, Default)]
pub struct CheckContext {
    /// The secrets that exist, as (name, environment); `None`: not checked.
    pub known_secrets: Option<BTreeSet<(String, String)>>,
}

/// Reads and checks `dir/smithers.toml`: the file itself, the policy and
/// script files it names, and the secrets it lists when `context` knows
/// which exist. Every problem is returned.
pub fn check(dir: &Path, context: &CheckContext) -> Result<WorkflowFile, Vec<Diagnostic>> {
    let path = dir.join(FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no {FILE_NAME} in {} (`smithers init` writes a starter one)",
                dir.display()
            )
        } else {
            format!("cannot read {}: {e}", path.display())
        };
        vec![Diagnostic {
            severity: Severity::Error,
            file: FILE_NAME.to_string(),
            line: 1,
            column: 1,
            message,
            source_line: String::new(),
        }]
    })?;
    parse_in(FILE_NAME, &text, Some(Repository { root: dir, context }))
}
