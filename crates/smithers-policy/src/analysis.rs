//! Static analysis of a policy: rules that can never decide, rules that
//! disagree at the same specificity, and who can reach a given call.
//!
//! Findings are only reported when proven: coverage between globs is
//! checked conservatively and every conflict comes with a request that both
//! rules match.

use crate::decision::Decision;
use crate::index::beats;
use crate::policy::{ActionPattern, PolicySet, Request, Rule, Subject, SubjectPattern};
use crate::tool::{self, ResourceKind};
use crate::{Effect, PatternClass};

/// Why a rule can never decide anything.
#[derive(Debug, Clone)]
pub enum ShadowCause<'p> {
    /// Every request the rule matches, this other rule matches and wins.
    Rule(&'p Rule),
    /// The rule only matches requests an invariant refuses first.
    Invariant(String),
}

#[derive(Debug, Clone)]
pub struct Shadowed<'p> {
    pub rule: &'p Rule,
    pub cause: ShadowCause<'p>,
}

/// Two equally specific rules with different effects that both match
/// `witness`: the more restrictive one wins there.
#[derive(Debug, Clone)]
pub struct Conflict<'p> {
    pub winner: &'p Rule,
    pub loser: &'p Rule,
    /// A resource both rules match.
    pub witness: String,
}

/// A `deny` or `forbid` on a program by name under an `allow` of any
/// command: the program can run under another name (a copy, a link,
/// `busybox NAME`, an interpreter, a wrapper the kernel does not know), so
/// the refusal is a tripwire, not a boundary.
#[derive(Debug, Clone)]
pub struct Tripwire<'p> {
    pub refusal: &'p Rule,
    pub allow: &'p Rule,
}

#[derive(Debug, Clone, Default)]
pub struct Analysis<'p> {
    pub shadowed: Vec<Shadowed<'p>>,
    pub conflicts: Vec<Conflict<'p>>,
    pub tripwires: Vec<Tripwire<'p>>,
}

impl Analysis<'_> {
    pub fn is_clean(&self) -> bool {
        self.shadowed.is_empty() && self.conflicts.is_empty() && self.tripwires.is_empty()
    }
}

/// Whether a rule may decide a command tool (`run_command`, `run_tests`).
fn on_commands(rule: &Rule) -> bool {
    match &rule.action {
        ActionPattern::Any => true,
        ActionPattern::Tool(t) => tool::resource_kind(t) == ResourceKind::Command,
    }
}

/// Whether some subject falls under both patterns.
fn subjects_meet(a: &SubjectPattern, b: &SubjectPattern) -> bool {
    a == b || *a == SubjectPattern::Any || *b == SubjectPattern::Any
}

/// Whether the actions of two rules share a tool.
fn actions_meet(a: &ActionPattern, b: &ActionPattern) -> bool {
    a == b || *a == ActionPattern::Any || *b == ActionPattern::Any
}

/// A command pattern whose program word is literal (`touch *`, `rm -rf *`).
fn names_a_program(rule: &Rule) -> bool {
    let first = rule
        .resource
        .as_str()
        .split([' ', '\t'])
        .find(|w| !w.is_empty() && !w.contains('='));
    first.is_some_and(|w| !w.contains(['*', '?', '[']))
}

/// A command pattern that lets any program run (`*`, `* *`, `?* *`).
fn allows_any_program(rule: &Rule) -> bool {
    if rule.resource.is_any() {
        return true;
    }
    let first = rule
        .resource
        .as_str()
        .split([' ', '\t'])
        .find(|w| !w.is_empty() && !w.contains('='));
    first.is_some_and(|w| w.contains('*') && !w.contains('/'))
}

/// Who reaches a call, and how.
#[derive(Debug, Clone)]
pub struct Reach<'p> {
    /// A subject named in the policy, or "any other subject".
    pub subject: String,
    pub decision: Decision<'p>,
}

/// The kinds of resource two rules can both be asked about.
fn shared_kinds(a: &Rule, b: &Rule) -> Vec<ResourceKind> {
    match (&a.action, &b.action) {
        (ActionPattern::Tool(t), _) | (_, ActionPattern::Tool(t)) => vec![tool::resource_kind(t)],
        _ => ResourceKind::ALL.to_vec(),
    }
}

/// Whether every request `inner` matches, `outer` matches too.
fn covers(outer: &Rule, inner: &Rule) -> bool {
    outer.subject.covers(&inner.subject)
        && outer.action.covers(&inner.action)
        && shared_kinds(outer, inner)
            .into_iter()
            .all(|k| outer.resource.covers(&inner.resource, k))
}

impl PolicySet {
    pub fn analyze(&self) -> Analysis<'_> {
        let mut analysis = Analysis::default();
        for rule in &self.rules {
            if let Some(cause) = self.shadow_cause(rule) {
                analysis.shadowed.push(Shadowed { rule, cause });
            }
        }
        for (i, a) in self.rules.iter().enumerate() {
            for b in &self.rules[i + 1..] {
                if let Some(conflict) = conflict(a, b) {
                    analysis.conflicts.push(conflict);
                }
            }
        }
        for refusal in self.rules.iter().filter(|r| {
            matches!(r.effect, Effect::Deny | Effect::Forbid)
                && on_commands(r)
                && names_a_program(r)
        }) {
            let allow = self.rules.iter().find(|a| {
                a.effect == Effect::Allow
                    && on_commands(a)
                    && actions_meet(&a.action, &refusal.action)
                    && subjects_meet(&a.subject, &refusal.subject)
                    && allows_any_program(a)
            });
            if let Some(allow) = allow {
                analysis.tripwires.push(Tripwire { refusal, allow });
            }
        }
        analysis
    }

    fn shadow_cause(&self, rule: &Rule) -> Option<ShadowCause<'_>> {
        if let (ActionPattern::Tool(t), PatternClass::Literal) =
            (&rule.action, rule.resource.specificity().class)
            && tool::resource_kind(t) == ResourceKind::Branch
        {
            let name = rule.resource.as_str();
            let name = name.strip_prefix("refs/heads/").unwrap_or(name);
            if self.protection(&name.to_ascii_lowercase()).is_some() {
                return Some(ShadowCause::Invariant(format!(
                    "`{name}` is a protected branch: writes to it are always denied"
                )));
            }
        }
        let forbid = |r: &Rule| r.effect == Effect::Forbid;
        self.rules
            .iter()
            .filter(|other| other.order != rule.order)
            .filter(|other| {
                let wins = match (forbid(other), forbid(rule)) {
                    (true, false) => true,
                    (false, true) => false,
                    _ => beats(other, rule),
                };
                wins && covers(other, rule)
            })
            .min_by_key(|other| (!forbid(other), other.order))
            .map(ShadowCause::Rule)
    }

    /// For every subject the policy names (and for anyone else), the
    /// decision on `action` over `resource`.
    pub fn who_can(&self, action: &str, resource: &str) -> Vec<Reach<'_>> {
        let mut subjects: Vec<&SubjectPattern> = Vec::new();
        for rule in &self.rules {
            if rule.subject != SubjectPattern::Any && !subjects.contains(&&rule.subject) {
                subjects.push(&rule.subject);
            }
        }
        let mut reach: Vec<Reach<'_>> = subjects
            .into_iter()
            .map(|s| {
                let subject = match s {
                    SubjectPattern::Role(r) => Subject {
                        role: Some(r),
                        user: None,
                    },
                    SubjectPattern::User(u) => Subject {
                        role: None,
                        user: Some(u),
                    },
                    SubjectPattern::Any => Subject::default(),
                };
                Reach {
                    subject: s.to_string(),
                    decision: self.evaluate(&Request {
                        subject,
                        action,
                        resource,
                    }),
                }
            })
            .collect();
        reach.push(Reach {
            subject: "*".into(),
            decision: self.evaluate(&Request {
                subject: Subject::default(),
                action,
                resource,
            }),
        });
        reach
    }
}

fn conflict<'p>(a: &'p Rule, b: &'p Rule) -> Option<Conflict<'p>> {
    if a.effect == Effect::Forbid
        || b.effect == Effect::Forbid
        || a.effect.verdict() == b.effect.verdict()
        || a.specificity() != b.specificity()
        || a.subject != b.subject
        || a.action != b.action
    {
        return None;
    }
    let (winner, loser) = if beats(a, b) { (a, b) } else { (b, a) };
    if covers(winner, loser) {
        // The loser never decides: reported as shadowed instead.
        return None;
    }
    for kind in shared_kinds(a, b) {
        if let Some(witness) = witness(a, b, kind) {
            return Some(Conflict {
                winner,
                loser,
                witness,
            });
        }
    }
    None
}

/// A resource of `kind` both rules match, if one is easy to find.
fn witness(a: &Rule, b: &Rule, kind: ResourceKind) -> Option<String> {
    let mut fills = vec!["x".to_string()];
    for w in a
        .resource
        .witnesses(kind, "x")
        .into_iter()
        .chain(b.resource.witnesses(kind, "x"))
    {
        if let Some(last) = w.rsplit(['/', ' ']).next() {
            fills.push(last.to_string());
        }
        fills.push(w);
    }
    fills.iter().find_map(|fill| {
        a.resource
            .witnesses(kind, fill)
            .into_iter()
            .chain(b.resource.witnesses(kind, fill))
            .find(|w| a.resource.matches_text(w, kind) && b.resource.matches_text(w, kind))
    })
}
