//! The rule index: rules bucketed by action and subject, each bucket sorted
//! from most to least specific resource, so a decision looks at a handful of
//! rules and stops at the first that cannot be beaten.

use std::collections::HashMap;

use crate::pattern::Resource;
use crate::policy::{ActionPattern, Rule, Subject, SubjectPattern};

#[derive(Debug, Clone, Default)]
struct Buckets {
    users: HashMap<String, Vec<u32>>,
    roles: HashMap<String, Vec<u32>>,
    any: Vec<u32>,
}

impl Buckets {
    fn insert(&mut self, subject: &SubjectPattern, at: u32) {
        match subject {
            SubjectPattern::Any => self.any.push(at),
            SubjectPattern::Role(r) => self.roles.entry(r.clone()).or_default().push(at),
            SubjectPattern::User(u) => self.users.entry(u.clone()).or_default().push(at),
        }
    }

    fn sort(&mut self, rules: &[Rule]) {
        let key = |&i: &u32| {
            let r = &rules[i as usize];
            (std::cmp::Reverse(r.resource.specificity()), r.order)
        };
        for list in self.users.values_mut().chain(self.roles.values_mut()) {
            list.sort_by_key(key);
        }
        self.any.sort_by_key(key);
    }

    /// The rule lists a subject can match, most specific subject first.
    fn for_subject(&self, subject: Subject<'_>) -> [&[u32]; 3] {
        fn get<'m>(map: &'m HashMap<String, Vec<u32>>, key: Option<&str>) -> &'m [u32] {
            key.and_then(|k| map.get(k)).map_or(&[], Vec::as_slice)
        }
        [
            get(&self.users, subject.user),
            get(&self.roles, subject.role),
            &self.any,
        ]
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    by_action: HashMap<String, Buckets>,
    any_action: Buckets,
}

/// The candidate rules for one subject and action: the named-action group
/// (which beats any `*` rule) and the `*`-action group.
pub(crate) struct Candidates<'i> {
    groups: [[&'i [u32]; 3]; 2],
}

impl Index {
    pub(crate) fn build(rules: &[Rule], keep: impl Fn(&Rule) -> bool) -> Index {
        let mut index = Index::default();
        for (at, rule) in rules.iter().enumerate() {
            if !keep(rule) {
                continue;
            }
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            let buckets = match &rule.action {
                ActionPattern::Any => &mut index.any_action,
                ActionPattern::Tool(t) => index.by_action.entry(t.clone()).or_default(),
            };
            buckets.insert(&rule.subject, at);
        }
        for buckets in index.by_action.values_mut() {
            buckets.sort(rules);
        }
        index.any_action.sort(rules);
        index
    }

    pub(crate) fn candidates(&self, subject: Subject<'_>, action: &str) -> Candidates<'_> {
        let named = self
            .by_action
            .get(action)
            .map_or([&[][..]; 3], |b| b.for_subject(subject));
        Candidates {
            groups: [named, self.any_action.for_subject(subject)],
        }
    }
}

impl Candidates<'_> {
    /// The rule that decides `resource`, by specificity, then restrictiveness,
    /// then file order. `only_any_resource` restricts the search to rules
    /// whose resource is `*` (for commands that cannot be analysed).
    pub(crate) fn best<'r>(
        &self,
        rules: &'r [Rule],
        resource: Resource<'_>,
        only_any_resource: bool,
    ) -> Option<&'r Rule> {
        for group in &self.groups {
            let mut best: Option<&Rule> = None;
            for bucket in group {
                for &at in *bucket {
                    let rule = &rules[at as usize];
                    if let Some(b) = best {
                        // Buckets are sorted by resource specificity and
                        // their action and subject are fixed, so nothing
                        // further down can beat the best found so far.
                        if rule.specificity() < b.specificity() {
                            break;
                        }
                    }
                    let matched = if only_any_resource {
                        rule.resource.is_any()
                    } else {
                        rule.resource.matches(resource)
                    };
                    if matched && best.is_none_or(|b| beats(rule, b)) {
                        best = Some(rule);
                    }
                }
            }
            if best.is_some() {
                return best;
            }
        }
        None
    }
}

/// Whether `a` decides over `b` when both match.
pub(crate) fn beats(a: &Rule, b: &Rule) -> bool {
    let (sa, sb) = (a.specificity(), b.specificity());
    if sa != sb {
        return sa > sb;
    }
    let (va, vb) = (a.effect.verdict(), b.effect.verdict());
    if va != vb {
        return va > vb;
    }
    a.order < b.order
}
