//! The tools the kernel knows, what kind of resource each one takes, and
//! the decision each one gets when no rule matches.

use crate::Verdict;

/// How a tool's resource string is interpreted and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A workspace-relative path, matched with gitignore-style globs.
    Path,
    /// A shell command line, split into simple commands matched by word prefix.
    Command,
    /// A git branch name, matched with anchored globs.
    Branch,
    /// Anything else: a plain glob where `*` matches any text.
    Opaque,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Path,
        ResourceKind::Command,
        ResourceKind::Branch,
        ResourceKind::Opaque,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Path => "path",
            ResourceKind::Command => "command",
            ResourceKind::Branch => "branch",
            ResourceKind::Opaque => "text",
        }
    }
}

/// A tool the kernel knows by name.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub kind: ResourceKind,
    /// The verdict when no rule matches: safe tools allow, tools that change
    /// something or run code ask.
    pub default: Verdict,
}

/// The built-in tools, in the order they are documented.
pub const TOOLS: &[Tool] = &[
    tool("read_file", ResourceKind::Path, Verdict::Allow),
    tool("search_files", ResourceKind::Path, Verdict::Allow),
    tool("list_directory", ResourceKind::Path, Verdict::Allow),
    tool("inspect_repo", ResourceKind::Opaque, Verdict::Allow),
    tool("get_git_diff", ResourceKind::Opaque, Verdict::Allow),
    tool("run_tests", ResourceKind::Command, Verdict::Allow),
    tool("write_file", ResourceKind::Path, Verdict::Ask),
    tool("apply_patch", ResourceKind::Path, Verdict::Ask),
    tool("run_command", ResourceKind::Command, Verdict::Ask),
    tool("create_commit", ResourceKind::Branch, Verdict::Ask),
    tool("push_branch", ResourceKind::Branch, Verdict::Ask),
];

const fn tool(name: &'static str, kind: ResourceKind, default: Verdict) -> Tool {
    Tool {
        name,
        kind,
        default,
    }
}

/// The built-in tool of that name, if there is one.
pub fn lookup(action: &str) -> Option<&'static Tool> {
    TOOLS.iter().find(|t| t.name == action)
}

/// How the resource of `action` is matched; unknown tools take opaque text.
pub fn resource_kind(action: &str) -> ResourceKind {
    lookup(action).map_or(ResourceKind::Opaque, |t| t.kind)
}

/// The verdict when no rule matches; an unknown tool asks.
pub fn default_verdict(action: &str) -> Verdict {
    lookup(action).map_or(Verdict::Ask, |t| t.default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        for safe in [
            "read_file",
            "search_files",
            "list_directory",
            "inspect_repo",
            "get_git_diff",
            "run_tests",
        ] {
            assert_eq!(default_verdict(safe), Verdict::Allow, "{safe}");
        }
        for risky in [
            "write_file",
            "apply_patch",
            "run_command",
            "create_commit",
            "push_branch",
        ] {
            assert_eq!(default_verdict(risky), Verdict::Ask, "{risky}");
        }
        assert_eq!(default_verdict("launch_missiles"), Verdict::Ask);
        assert_eq!(resource_kind("launch_missiles"), ResourceKind::Opaque);
    }
}
