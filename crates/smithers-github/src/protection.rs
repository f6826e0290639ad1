//! The App can push (it has `contents: write`), so a repository's default
//! branch must be protected by a rule on GitHub's side too, not only by
//! Smithers' kernel. When a repository is connected (and hourly after),
//! its default branch is looked up (`GET /repos/{owner}/{repo}`) and
//! whether a protection rule covers it (`GET
//! /repos/{owner}/{repo}/branches/{branch}`, `protected`); an unprotected
//! one is recorded (`repository.default_branch_unprotected`) and shown by
//! `smithers github status`. Whether the App could bypass the rule needs
//! the administration permission, which the App does not ask for: a rule
//! that covers the branch is reported as protection.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use smithers_app::App;
use smithers_store::Repository;

use crate::client::{Auth, Request};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// How long a check holds before the periodic pass checks again.
pub(crate) const RECHECK_AFTER: Duration = Duration::from_secs(3600);

pub(crate) struct Protection<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
}

impl Protection<'_> {
    /// Checks every connected repository of `organization` not checked
    /// within [`RECHECK_AFTER`] (all of them with `force`); answers how
    /// many were checked. A repository that cannot be checked now is
    /// tried on the next pass.
    pub(crate) async fn check_due(&self, organization: &str) -> Result<usize, Error> {
        let due_before = smithers_store::now_micros()
            - i64::try_from(RECHECK_AFTER.as_micros()).unwrap_or(i64::MAX);
        let mut checked = 0;
        for repository in self.app.store().github().repositories(organization).await? {
            if repository.disconnected_at.is_some()
                || repository
                    .protection_checked_at
                    .is_some_and(|at| at > due_before)
            {
                continue;
            }
            match self.check(&repository).await {
                Ok(()) => checked += 1,
                Err(e) => {
                    tracing::warn!(repository = %repository.full_name, error = %e, "the default branch's protection could not be checked")
                }
            }
        }
        Ok(checked)
    }

    /// Checks one repository's default branch and records what it found.
    async fn check(&self, repository: &Repository) -> Result<(), Error> {
        let (owner, name) = repository
            .full_name
            .split_once('/')
            .ok_or_else(|| Error::Malformed(format!("repository {:?}", repository.full_name)))?;
        let scope = TokenScope::new(repository.installation_id, &[repository.id])
            .with("metadata", Access::Read);
        let context = crate::client::Context {
            repository: Some(&repository.full_name),
            delivery: None,
        };
        let repo = self
            .github
            .send(
                &Request::new(
                    Method::GET,
                    "/repos/{owner}/{repo}",
                    &[owner, name],
                    Auth::Installation(scope.clone()),
                )
                .context(context),
            )
            .await?;
        let default = repo
            .body
            .get("default_branch")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Malformed("GitHub's repository has no default branch".into()))?
            .to_string();
        let branch = self
            .github
            .send(
                &Request::new(
                    Method::GET,
                    "/repos/{owner}/{repo}/branches/{branch}",
                    &[owner, name, &default],
                    Auth::Installation(scope),
                )
                .context(context),
            )
            .await?;
        let protected = branch
            .body
            .get("protected")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let store = self.app.store().github();
        let before = repository.default_protected;
        store
            .set_protection(repository.id, &default, protected)
            .await?;
        if !protected && before != Some(false) {
            tracing::warn!(repository = %repository.full_name, branch = %default, "the default branch is not protected on GitHub");
            self.github
                .audit(
                    "repository.default_branch_unprotected",
                    ("repository", &repository.full_name),
                    json!({"branch": default}),
                )
                .await?;
        }
        Ok(())
    }
}
