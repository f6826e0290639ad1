//! Inline tests: `test SUBJECT ACTION RESOURCE -> DECISION` lines checked
//! against the policy they are written in.

use crate::decision::Decision;
use crate::policy::{InlineTest, PolicySet, Request, Subject};

/// The result of one inline test.
#[derive(Debug, Clone)]
pub struct TestOutcome<'p> {
    pub test: &'p InlineTest,
    pub decision: Decision<'p>,
}

impl TestOutcome<'_> {
    pub fn passed(&self) -> bool {
        self.decision.verdict == self.test.expected
    }

    /// `PASS FILE:LINE: TEXT`, or `FAIL FILE:LINE: TEXT` with a second line
    /// saying what was expected, what the policy decided and why.
    pub fn report(&self) -> String {
        let t = self.test;
        if self.passed() {
            format!("PASS {}: {}", t.origin, t.origin.text)
        } else {
            format!(
                "FAIL {}: {}\n     expected {}, got {}: {}",
                t.origin,
                t.origin.text,
                t.expected,
                self.decision.verdict,
                self.decision.reason()
            )
        }
    }
}

impl PolicySet {
    /// Runs every inline test of the set, in file order.
    pub fn run_tests(&self) -> Vec<TestOutcome<'_>> {
        self.tests
            .iter()
            .filter_map(|test| {
                // The parser only keeps tests whose subject is valid.
                let subject = Subject::parse(&test.subject).ok()?;
                let decision = self.evaluate(&Request {
                    subject,
                    action: &test.action,
                    resource: &test.resource,
                });
                Some(TestOutcome { test, decision })
            })
            .collect()
    }
}
