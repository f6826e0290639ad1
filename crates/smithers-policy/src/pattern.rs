//! Resource patterns: how the third field of a rule is compiled and matched
//! for each kind of resource, and how specific it is.

use crate::glob::{GlobError, SegmentGlob, SegmentMode, TextGlob, literal_prefix};
use crate::shell::program_name;
use crate::tool::ResourceKind;

/// Directories whose programs are matched by name: `/usr/bin/rm` is `rm`.
/// A program anywhere else (`./cargo`, `/workspace/bin/cargo`) could have
/// been written by the agent itself, so it only matches a pattern that names
/// its path.
const SYSTEM_BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// How much of a request a resource pattern pins down.
///
/// Ordered so that the greater value is the more specific: any literal beats
/// any pattern, a pattern with a longer literal prefix beats a shorter one,
/// and `*` comes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceSpecificity {
    pub class: PatternClass,
    /// Characters before the first wildcard (the whole length for literals).
    pub literal_prefix: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternClass {
    /// `*`: every resource.
    Any,
    /// Contains a wildcard.
    Glob,
    /// No wildcard.
    Literal,
}

/// A resource as the kernel matches it: normalized for its kind.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'r> {
    /// A normalized workspace-relative path, split on `/` (empty for the root).
    Path(&'r [&'r str]),
    /// The words of one simple command.
    Command(&'r [String]),
    /// A command that runs with, or sets, variables that can change what
    /// runs: only a pattern naming every one of `significant` matches it,
    /// against its `NAME=value` assignments and then its words.
    Assigned {
        assignments: &'r [String],
        significant: &'r [String],
        words: &'r [String],
    },
    /// A valid branch name, split on `/`.
    Branch(&'r [&'r str]),
    Opaque(&'r str),
}

/// A command pattern: words matched one by one, the program by name, and a
/// final lone `*` standing for any further arguments (none included).
/// Leading `NAME=glob` words match the command's assignments: a pattern
/// holding them only matches a command that runs with such variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPattern {
    assigns: Vec<TextGlob>,
    words: Vec<TextGlob>,
    any_rest: bool,
    program_has_path: bool,
    /// Every variable a word of the pattern sets (`NAME=` at its start).
    names: Vec<String>,
}

/// The variable a pattern word sets, if it starts with a plain `NAME=`.
fn assigned_name(piece: &str) -> Option<&str> {
    let (name, _) = piece.split_once('=')?;
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then_some(name)
}

impl CommandPattern {
    pub fn parse(raw: &str) -> Result<CommandPattern, GlobError> {
        let mut assigns = Vec::new();
        let mut words = Vec::new();
        let mut names = Vec::new();
        let mut any_rest = false;
        let mut pieces = word_spans(raw).peekable();
        let mut program_has_path = false;
        while let Some((at, piece)) = pieces.next() {
            if piece == "*" && pieces.peek().is_none() {
                any_rest = true;
                break;
            }
            if let Some(name) = assigned_name(piece) {
                names.push(name.to_string());
                if words.is_empty() {
                    assigns.push(TextGlob::parse(piece, at)?);
                    continue;
                }
            }
            if words.is_empty() {
                program_has_path = piece.contains('/');
            }
            words.push(TextGlob::parse(piece, at)?);
        }
        Ok(CommandPattern {
            assigns,
            words,
            any_rest,
            program_has_path,
            names,
        })
    }

    /// Matches a command that runs with no variable that matters.
    pub fn matches(&self, command: &[String]) -> bool {
        self.assigns.is_empty() && self.matches_words(command)
    }

    /// Matches a command with `assignments` (as written, `NAME=value`),
    /// of which `significant` can change what runs: the pattern must name
    /// each of those, and its own `NAME=glob` words must each match one of
    /// the assignments.
    pub fn matches_assigned(
        &self,
        assignments: &[String],
        significant: &[String],
        words: &[String],
    ) -> bool {
        let named = significant.iter().all(|n| self.names.contains(n));
        let prefixes_named = assignments.iter().all(|a| {
            let name = a.split('=').next().unwrap_or_default();
            !significant.iter().any(|n| n == name) || self.assigns.iter().any(|g| g.matches(a))
        });
        let prefixes_present = self
            .assigns
            .iter()
            .all(|g| assignments.iter().any(|a| g.matches(a)));
        named && prefixes_named && prefixes_present && self.matches_words(words)
    }

    fn matches_words(&self, command: &[String]) -> bool {
        let fixed = self.words.len();
        if command.len() < fixed || (!self.any_rest && command.len() != fixed) {
            return false;
        }
        self.words
            .iter()
            .zip(command)
            .enumerate()
            .all(|(i, (glob, word))| {
                if i == 0 && !self.program_has_path {
                    program_by_name(word).is_some_and(|name| glob.matches(name))
                } else {
                    glob.matches(word)
                }
            })
    }

    /// Whether every command this pattern matches, `other` matches too.
    fn covers(&self, other: &CommandPattern) -> bool {
        if self.assigns != other.assigns || self.names != other.names {
            return false;
        }
        if self.program_has_path != other.program_has_path && !self.words.is_empty() {
            return false;
        }
        let fixed = self.words.len();
        let lengths_fit = if self.any_rest {
            other.words.len() >= fixed
        } else {
            !other.any_rest && other.words.len() == fixed
        };
        lengths_fit
            && self.words.iter().zip(&other.words).all(|(mine, theirs)| {
                mine == theirs
                    || mine.is_star()
                    || theirs.as_literal().is_some_and(|l| mine.matches(l))
            })
    }

    fn instantiate(&self, fill: &str) -> Vec<String> {
        self.assigns
            .iter()
            .chain(&self.words)
            .map(|w| w.instantiate(fill))
            .collect()
    }
}

/// The name a program word is matched by, or `None` when only a pattern
/// naming its path may match it.
fn program_by_name(word: &str) -> Option<&str> {
    match word.rfind('/') {
        None => Some(word),
        Some(slash) if SYSTEM_BIN_DIRS.contains(&&word[..slash]) => Some(program_name(word)),
        Some(_) => None,
    }
}

fn word_spans(raw: &str) -> impl Iterator<Item = (usize, &str)> {
    raw.split([' ', '\t'])
        .scan(0usize, |at, piece| {
            let start = *at;
            *at += piece.len() + 1;
            Some((start, piece))
        })
        .filter(|(_, piece)| !piece.is_empty())
}

/// The third field of a rule, compiled for each kind of resource the rule's
/// action can take (all four when the action is `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    raw: String,
    specificity: ResourceSpecificity,
    path: Option<SegmentGlob>,
    command: Option<CommandPattern>,
    branch: Option<SegmentGlob>,
    opaque: Option<TextGlob>,
}

impl ResourcePattern {
    /// Compiles `raw` for each of `kinds`; errors carry byte offsets in `raw`.
    pub fn compile(raw: &str, kinds: &[ResourceKind]) -> Result<ResourcePattern, GlobError> {
        let (prefix, literal) = literal_prefix(raw.strip_prefix('/').unwrap_or(raw));
        let class = if raw == "*" || raw == "**" {
            PatternClass::Any
        } else if literal {
            PatternClass::Literal
        } else {
            PatternClass::Glob
        };
        let mut pattern = ResourcePattern {
            raw: raw.to_string(),
            specificity: ResourceSpecificity {
                class,
                literal_prefix: u32::try_from(prefix).unwrap_or(u32::MAX),
            },
            path: None,
            command: None,
            branch: None,
            opaque: None,
        };
        for kind in kinds {
            match kind {
                ResourceKind::Path => {
                    pattern.path = Some(SegmentGlob::parse(raw, SegmentMode::Gitignore)?);
                }
                ResourceKind::Command => pattern.command = Some(CommandPattern::parse(raw)?),
                ResourceKind::Branch => {
                    // Branch names are compared without case (a checkout on
                    // a case-insensitive disk makes `Main` and `main` one).
                    let name = raw.strip_prefix("refs/heads/").unwrap_or(raw);
                    pattern.branch = Some(SegmentGlob::parse(
                        &name.to_ascii_lowercase(),
                        SegmentMode::Anchored,
                    )?);
                }
                ResourceKind::Opaque => pattern.opaque = Some(TextGlob::parse(raw, 0)?),
            }
        }
        Ok(pattern)
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn specificity(&self) -> ResourceSpecificity {
        self.specificity
    }

    /// Whether the pattern is `*`, which matches every resource of every kind.
    pub fn is_any(&self) -> bool {
        self.specificity.class == PatternClass::Any
    }

    pub fn matches(&self, resource: Resource<'_>) -> bool {
        if let Resource::Assigned {
            assignments,
            significant,
            words,
        } = resource
        {
            // Not even `*`: only a pattern that names the variables.
            return self
                .command
                .as_ref()
                .is_some_and(|c| c.matches_assigned(assignments, significant, words));
        }
        if self.is_any() {
            return true;
        }
        match resource {
            Resource::Assigned { .. } => false,
            Resource::Path(parts) => self.path.as_ref().is_some_and(|g| g.matches(parts)),
            Resource::Command(words) => self.command.as_ref().is_some_and(|c| c.matches(words)),
            Resource::Branch(parts) => self.branch.as_ref().is_some_and(|g| g.matches(parts)),
            Resource::Opaque(text) => self.opaque.as_ref().is_some_and(|g| g.matches(text)),
        }
    }

    /// Whether every resource of `kind` that `other` matches, this pattern
    /// matches too. Conservative: `false` means "not proven".
    pub fn covers(&self, other: &ResourcePattern, kind: ResourceKind) -> bool {
        if self.is_any() || self.raw == other.raw {
            return true;
        }
        let literal = other.specificity.class == PatternClass::Literal;
        match kind {
            ResourceKind::Command => match (&self.command, &other.command) {
                (Some(mine), Some(theirs)) => mine.covers(theirs),
                _ => false,
            },
            // An unanchored literal (`main.rs`) matches at any depth, so only
            // an anchored one stands for a single path and its contents.
            ResourceKind::Path => {
                let anchored = other.raw.trim_end_matches('/').contains('/');
                literal && anchored && self.matches_text(&other.raw, kind)
            }
            ResourceKind::Branch => {
                let inner = other.raw.strip_prefix("refs/heads/").unwrap_or(&other.raw);
                if inner.ends_with('/') {
                    // `docs/` stands for every branch under `docs/`: only a
                    // pattern for a subtree that contains it covers it.
                    let outer = self.raw.strip_prefix("refs/heads/").unwrap_or(&self.raw);
                    let outer_literal = !outer.contains(['*', '?', '[', '\\']);
                    return literal
                        && outer_literal
                        && outer.ends_with('/')
                        && inner.starts_with(outer);
                }
                literal && self.matches_text(&other.raw, kind)
            }
            ResourceKind::Opaque => literal && self.matches_text(&other.raw, kind),
        }
    }

    /// Matches a resource given as text, normalizing it for `kind` the way
    /// requests are (unnormalizable text matches nothing).
    pub fn matches_text(&self, text: &str, kind: ResourceKind) -> bool {
        match kind {
            ResourceKind::Path => {
                let trimmed = text.trim_matches('/');
                let parts = split_parts(trimmed);
                self.matches(Resource::Path(&parts))
            }
            ResourceKind::Branch => {
                let name = text
                    .strip_prefix("refs/heads/")
                    .unwrap_or(text)
                    .to_ascii_lowercase();
                self.matches(Resource::Branch(&split_parts(&name)))
            }
            ResourceKind::Command => match CommandPattern::parse(text) {
                Ok(c) if !c.any_rest => {
                    let words: Vec<String> = c.instantiate("");
                    self.matches(Resource::Command(&words))
                }
                _ => false,
            },
            ResourceKind::Opaque => self.matches(Resource::Opaque(text)),
        }
    }

    /// A few resources of `kind` this pattern matches, as text, for finding
    /// a request two rules both match. `fill` replaces wildcards.
    pub fn witnesses(&self, kind: ResourceKind, fill: &str) -> Vec<String> {
        let mut out = Vec::new();
        match kind {
            ResourceKind::Path => {
                if let Some(g) = &self.path {
                    out.push(g.instantiate(fill));
                }
            }
            ResourceKind::Branch => {
                if let Some(g) = &self.branch {
                    out.push(g.instantiate(fill));
                }
            }
            ResourceKind::Command => {
                if let Some(c) = &self.command {
                    out.push(c.instantiate(fill).join(" "));
                    if c.any_rest {
                        let mut longer = c.instantiate(fill);
                        longer.push(fill.to_string());
                        out.push(longer.join(" "));
                    }
                }
            }
            ResourceKind::Opaque => {
                if let Some(g) = &self.opaque {
                    out.push(g.instantiate(fill));
                }
            }
        }
        out.retain(|w| !w.is_empty());
        out
    }
}

/// Splits normalized text on `/`; the empty text has no parts.
pub(crate) fn split_parts(text: &str) -> Vec<&str> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('/').collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn command_word_prefixes() {
        let p = CommandPattern::parse("cargo test *").unwrap();
        assert!(p.matches(&words("cargo test")));
        assert!(p.matches(&words("cargo test --all")));
        assert!(p.matches(&words("/usr/bin/cargo test")));
        assert!(
            !p.matches(&words("./cargo test")),
            "a local program is not `cargo`"
        );
        assert!(!p.matches(&words("cargo build")));
        let exact = CommandPattern::parse("cargo test").unwrap();
        assert!(!exact.matches(&words("cargo test --all")));
        let path = CommandPattern::parse("./scripts/check.sh *").unwrap();
        assert!(path.matches(&words("./scripts/check.sh x")));
        let glob = CommandPattern::parse("git log*").unwrap();
        assert!(glob.matches(&words("git log")));
        assert!(glob.matches(&words("git logx")));
        assert!(!glob.matches(&words("git log -p")));
    }

    #[test]
    fn specificity_orders_patterns() {
        let s = |p: &str| {
            ResourcePattern::compile(p, &ResourceKind::ALL)
                .unwrap()
                .specificity()
        };
        assert!(s("src/main.rs") > s("src/*"));
        assert!(s("x") > s("src/main*"), "any literal beats any glob");
        assert!(s("src/lib/*") > s("src/*"));
        assert!(s("*.md") > s("*"));
        assert_eq!(s("*.md"), s("*.rs"));
    }

    #[test]
    fn coverage_is_conservative() {
        let c = |a: &str, b: &str, k| {
            let a = ResourcePattern::compile(a, &ResourceKind::ALL).unwrap();
            let b = ResourcePattern::compile(b, &ResourceKind::ALL).unwrap();
            a.covers(&b, k)
        };
        assert!(c("*", "src/x", ResourceKind::Path));
        assert!(c("src/*", "src/x/y.rs", ResourceKind::Path));
        assert!(!c("src/*", "x.rs", ResourceKind::Path));
        assert!(
            !c("*.md", "README.md", ResourceKind::Path),
            "unanchored literal matches deeper paths too"
        );
        assert!(c("cargo *", "cargo test *", ResourceKind::Command));
        assert!(c("cargo *", "cargo test", ResourceKind::Command));
        assert!(!c("cargo test *", "cargo *", ResourceKind::Command));
        assert!(!c("cargo test", "cargo test *", ResourceKind::Command));
        assert!(c("release/*", "release/1", ResourceKind::Branch));
        assert!(!c("release/*", "release/**", ResourceKind::Branch));
        // `docs/` is every branch under docs/, deeper than `docs/*` reaches.
        assert!(!c("docs/*", "docs/", ResourceKind::Branch));
        assert!(c("docs/", "docs/x/", ResourceKind::Branch));
        assert!(!c("docs/x/", "docs/", ResourceKind::Branch));
    }
}
