//! Branch names: validation by git's own rules and the protected-branch
//! invariant.

use std::borrow::Cow;

/// Branches no agent, workflow or API caller may write to, whatever the policy says.
pub const BUILTIN_PROTECTED: &[&str] = &["main", "master"];

/// Strips `refs/heads/` and checks the name the way `git check-ref-format
/// --branch` would; returns why it is not a valid branch name otherwise.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, String> {
    let name = raw.strip_prefix("refs/heads/").unwrap_or(raw);
    if name.is_empty() {
        return Err("the branch name is empty".into());
    }
    if name == "@" {
        return Err("`@` is not a branch name".into());
    }
    if name.starts_with('-') {
        return Err("a branch name cannot start with `-`".into());
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("a branch name cannot have empty `/` components".into());
    }
    if name.ends_with('.') {
        return Err("a branch name cannot end with `.`".into());
    }
    if name.contains("..") {
        return Err("a branch name cannot contain `..`".into());
    }
    if name.contains("@{") {
        return Err("a branch name cannot contain `@{`".into());
    }
    if let Some(c) = name.chars().find(|&c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err(format!("a branch name cannot contain {c:?}"));
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err("a branch name component cannot start with `.`".into());
        }
        if component.ends_with(".lock") {
            return Err("a branch name component cannot end with `.lock`".into());
        }
    }
    Ok(Cow::Borrowed(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        assert_eq!(normalize("smithers/run-1").unwrap(), "smithers/run-1");
        assert_eq!(normalize("refs/heads/main").unwrap(), "main");
        assert_eq!(normalize("release/1.2").unwrap(), "release/1.2");
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "a/", "/a",
            "a//b", ".a", "a/.b", "a.lock", "a.", "@", "a@{1}", "a\u{7}",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
