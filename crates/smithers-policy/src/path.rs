//! Normalization of the paths that file tools name.

use std::borrow::Cow;
use std::fmt;

/// Where the workspace is mounted inside a sandbox: absolute paths under it
/// are taken as workspace-relative.
pub const DEFAULT_WORKSPACE_ROOT: &str = "/workspace";

/// Why a path is refused before any rule is consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathProblem {
    /// `..` climbs above the workspace root.
    EscapesWorkspace,
    /// An absolute path that is not under the workspace root.
    OutsideWorkspace,
    /// A NUL byte, which no file name can hold.
    ContainsNul,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathProblem::EscapesWorkspace => "the path climbs out of the workspace with `..`",
            PathProblem::OutsideWorkspace => "the absolute path is outside the workspace",
            PathProblem::ContainsNul => "the path contains a NUL byte",
        })
    }
}

/// Makes `raw` workspace-relative with no `.`, `..` or empty segments.
///
/// The workspace root itself normalizes to the empty string. `..` is resolved
/// lexically: the kernel decides on names, and the sandbox confines what a
/// symlink could reach.
pub fn normalize<'a>(raw: &'a str, workspace_root: &str) -> Result<Cow<'a, str>, PathProblem> {
    if raw.contains('\0') {
        return Err(PathProblem::ContainsNul);
    }
    let relative = if raw.starts_with('/') {
        let root = workspace_root.trim_end_matches('/');
        match raw.strip_prefix(root) {
            Some(rest) if root.is_empty() || rest.is_empty() || rest.starts_with('/') => rest,
            _ => return Err(PathProblem::OutsideWorkspace),
        }
    } else {
        raw
    };
    if is_normal(relative) {
        return Ok(Cow::Borrowed(relative));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::EscapesWorkspace);
                }
            }
            other => parts.push(other),
        }
    }
    Ok(Cow::Owned(parts.join("/")))
}

fn is_normal(path: &str) -> bool {
    path.is_empty()
        || (!path.starts_with('/')
            && !path.ends_with('/')
            && path.split('/').all(|p| !matches!(p, "" | "." | "..")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathProblem> {
        normalize(p, DEFAULT_WORKSPACE_ROOT).map(Cow::into_owned)
    }

    #[test]
    fn normalizes() {
        assert_eq!(n("src/main.rs").unwrap(), "src/main.rs");
        assert_eq!(n("./src//./main.rs/").unwrap(), "src/main.rs");
        assert_eq!(n("src/../Cargo.toml").unwrap(), "Cargo.toml");
        assert_eq!(n("/workspace/src/lib.rs").unwrap(), "src/lib.rs");
        assert_eq!(n("/workspace").unwrap(), "");
        assert_eq!(n(".").unwrap(), "");
        assert_eq!(n("").unwrap(), "");
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(n("../etc/passwd"), Err(PathProblem::EscapesWorkspace));
        assert_eq!(n("src/../../x"), Err(PathProblem::EscapesWorkspace));
        assert_eq!(n("/etc/passwd"), Err(PathProblem::OutsideWorkspace));
        assert_eq!(n("/workspace2/x"), Err(PathProblem::OutsideWorkspace));
        assert_eq!(n("/workspace/../etc"), Err(PathProblem::EscapesWorkspace));
        assert_eq!(n("a\0b"), Err(PathProblem::ContainsNul));
    }
}
