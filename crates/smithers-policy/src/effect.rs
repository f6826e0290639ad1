//! Rule effects and the verdicts a decision can carry.

use std::fmt;

/// What a rule says should happen when it decides a request.
///
/// `Forbid` is a guardrail: a matching `forbid` rule wins over every other
/// rule, however specific, and yields [`Verdict::Deny`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Ask,
    AdminOnly,
    Deny,
    Forbid,
}

impl Effect {
    /// Every effect, in the order they are listed to users.
    pub const ALL: [Effect; 5] = [
        Effect::Allow,
        Effect::Ask,
        Effect::AdminOnly,
        Effect::Deny,
        Effect::Forbid,
    ];

    /// Parses the spelling used in policy files.
    pub fn from_keyword(word: &str) -> Option<Effect> {
        Effect::ALL.into_iter().find(|e| e.keyword() == word)
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Ask => "ask",
            Effect::AdminOnly => "admin-only",
            Effect::Deny => "deny",
            Effect::Forbid => "forbid",
        }
    }

    /// The verdict a request gets when this effect decides it.
    pub fn verdict(self) -> Verdict {
        match self {
            Effect::Allow => Verdict::Allow,
            Effect::Ask => Verdict::Ask,
            Effect::AdminOnly => Verdict::AdminOnly,
            Effect::Deny | Effect::Forbid => Verdict::Deny,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// The outcome of a decision.
///
/// The derived order is restrictiveness: `Allow < Ask < AdminOnly < Deny`,
/// so "the most restrictive" is simply the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// The call runs.
    Allow,
    /// The call waits for a human approval.
    Ask,
    /// The call waits for an approval that only an organization admin can grant.
    AdminOnly,
    /// The call is refused.
    Deny,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Allow,
        Verdict::Ask,
        Verdict::AdminOnly,
        Verdict::Deny,
    ];

    pub fn from_keyword(word: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.keyword() == word)
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::AdminOnly => "admin-only",
            Verdict::Deny => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip() {
        for e in Effect::ALL {
            assert_eq!(Effect::from_keyword(e.keyword()), Some(e));
        }
        for v in Verdict::ALL {
            assert_eq!(Verdict::from_keyword(v.keyword()), Some(v));
        }
        assert_eq!(Effect::from_keyword("Allow"), None);
        assert_eq!(Verdict::from_keyword("forbid"), None);
    }

    #[test]
    fn restrictiveness_order() {
        assert!(Verdict::Deny > Verdict::AdminOnly);
        assert!(Verdict::AdminOnly > Verdict::Ask);
        assert!(Verdict::Ask > Verdict::Allow);
        assert_eq!(Effect::Forbid.verdict(), Verdict::Deny);
    }
}
