//! A repository's policy bounded by its organization's: a call is decided
//! by both and the more restrictive decision wins, so a repository can
//! tighten what its organization allows, never loosen it. Each policy
//! decides on its own terms (its own rules, defaults and test runners): a
//! repository that names a program its test runner does not make it one
//! for the organization.

use crate::decision::Decision;
use crate::effect::Verdict;
use crate::policy::{PolicySet, Request};

/// Both sides of a bounded decision.
#[derive(Debug, Clone)]
pub struct Bounded<'p> {
    /// The repository policy's decision.
    pub repository: Decision<'p>,
    /// The organization policy's decision, when it has a policy in force.
    pub organization: Option<Decision<'p>>,
}

impl<'p> Bounded<'p> {
    /// Decides `request` under `repository`, bounded by `organization`.
    pub fn decide(
        repository: &'p PolicySet,
        organization: Option<&'p PolicySet>,
        request: &Request<'_>,
    ) -> Bounded<'p> {
        Bounded {
            repository: repository.evaluate(request),
            organization: organization.map(|o| o.evaluate(request)),
        }
    }

    /// Whether the organization's decision is the one that holds: it is
    /// strictly more restrictive than the repository's.
    pub fn by_organization(&self) -> bool {
        self.organization
            .as_ref()
            .is_some_and(|o| o.verdict > self.repository.verdict)
    }

    /// The decision that holds: the more restrictive (the repository's
    /// when both agree).
    pub fn winner(&self) -> &Decision<'p> {
        match &self.organization {
            Some(o) if o.verdict > self.repository.verdict => o,
            _ => &self.repository,
        }
    }

    /// The verdict that holds.
    pub fn verdict(&self) -> Verdict {
        self.winner().verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Subject;
    use proptest::prelude::*;

    fn set(text: &str) -> PolicySet {
        PolicySet::parse("p", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn request<'a>(action: &'a str, resource: &'a str) -> Request<'a> {
        Request {
            subject: Subject {
                role: Some("implementer"),
                user: None,
            },
            action,
            resource,
        }
    }

    #[test]
    fn a_repository_tightens_never_loosens() {
        let org =
            set("implementer run_command * -> ask\nimplementer run_command \"curl *\" -> deny\n");
        let loose = set("implementer run_command * -> allow\n");
        let tight =
            set("implementer run_command \"git *\" -> deny\nimplementer run_command * -> allow\n");
        let d = Bounded::decide(&loose, Some(&org), &request("run_command", "curl x"));
        assert_eq!((d.verdict(), d.by_organization()), (Verdict::Deny, true));
        let d = Bounded::decide(&loose, Some(&org), &request("run_command", "ls"));
        assert_eq!((d.verdict(), d.by_organization()), (Verdict::Ask, true));
        let d = Bounded::decide(&tight, Some(&org), &request("run_command", "git push"));
        assert_eq!((d.verdict(), d.by_organization()), (Verdict::Deny, false));
        let d = Bounded::decide(&loose, None, &request("run_command", "curl x"));
        assert_eq!((d.verdict(), d.by_organization()), (Verdict::Allow, false));
    }

    #[test]
    fn a_repositorys_test_runner_is_not_the_organizations() {
        let org = set("implementer run_tests * -> allow\nimplementer run_command * -> deny\n");
        let repo = set("test-runner \"curl *\"\nimplementer run_tests * -> allow\n");
        let d = Bounded::decide(&repo, Some(&org), &request("run_tests", "curl http://x"));
        assert_eq!(d.repository.verdict, Verdict::Allow);
        assert_eq!(
            d.verdict(),
            Verdict::Deny,
            "the organization decides it as run_command"
        );
    }

    proptest! {
        /// The bounded verdict is the maximum of the two, whatever the rules.
        #[test]
        fn the_more_restrictive_wins(
            repo_effect in 0usize..4,
            org_effect in 0usize..4,
            words in "[a-z]{1,6}( [a-z]{1,6})?",
        ) {
            // A line the rules decide (a program the kernel decides on its
            // own, such as a shell wrapper like `sg`, would get the same
            // verdict from both sides).
            let resource = format!("echo {words}");
            let effects = ["allow", "ask", "admin-only", "deny"];
            let repo = set(&format!("implementer run_command * -> {}\n", effects[repo_effect]));
            let org = set(&format!("implementer run_command * -> {}\n", effects[org_effect]));
            let d = Bounded::decide(&repo, Some(&org), &request("run_command", &resource));
            prop_assert_eq!(d.verdict(), d.repository.verdict.max(d.organization.as_ref().map_or(Verdict::Allow, |o| o.verdict)));
            prop_assert_eq!(d.by_organization(), org_effect > repo_effect);
        }
    }
}
