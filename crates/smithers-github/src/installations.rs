//! Installations as GitHub has them now. Webhook deliveries come late,
//! twice or out of order — an `added` after the `removed` that followed
//! it, a `created` after the `deleted`, an `unsuspend` before the
//! `suspend` — and one may never come. So after every installation event,
//! and at every sweep for every installation, Smithers reads the
//! installation and its repositories back from GitHub and applies the
//! difference: the store converges on GitHub's state whatever order the
//! events arrived in (level-triggered, as statuses are).
//!
//! ```text
//! GET /app/installations/{id}   (JWT)   suspended_at → suspended or not
//! GET /installation/repositories (installation token, metadata read, every page)
//!   → connected here but not there: removed; there but not here: added
//!     (removals only when every repository GitHub counts was listed)
//! ```
//!
//! A suspension or unsuspension is decided on GitHub's answer before it is
//! applied, so a late one never pauses or carries on runs for a moment.
//! Deletion is never inferred from a read (a wrong App key answers 404
//! too): only GitHub's `deleted` event deletes.

use std::collections::BTreeSet;

use reqwest::Method;
use smithers_app::App;
use smithers_store::{InstallationChange, RepositoryRef};

use crate::client::{Auth, Context, Request};
use crate::events::{Installation, Repository};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// Reads installations back from GitHub.
pub(crate) struct Installations<'a> {
    pub app: &'a App,
    pub github: &'a Github,
    pub organization: &'a str,
}

impl Installations<'_> {
    /// Installation `id` as GitHub has it now (`suspended_at` says whether
    /// it is suspended).
    ///
    /// Errors: GitHub's (a 404 among them); a malformed answer.
    pub(crate) async fn read(
        &self,
        id: i64,
        delivery: Option<&str>,
    ) -> Result<Installation, Error> {
        let id_text = id.to_string();
        let answer = self
            .github
            .send(
                &Request::new(
                    Method::GET,
                    "/app/installations/{installation_id}",
                    &[&id_text],
                    Auth::App,
                )
                .context(Context {
                    repository: None,
                    delivery,
                }),
            )
            .await?;
        serde_json::from_value(answer.body)
            .map_err(|e| Error::Malformed(format!("GitHub's installation {id}: {e}")))
    }

    /// The changes that bring the store's installation `id` (and its
    /// repositories) to what GitHub says now, in the order to apply them;
    /// none for an installation the store does not have, or has as
    /// deleted (an installation id is never used again). `read` is the
    /// installation as GitHub answered a moment ago, if it was read;
    /// otherwise it is read now.
    ///
    /// Errors: GitHub's; the store's.
    pub(crate) async fn corrections(
        &self,
        id: i64,
        delivery: Option<&str>,
        read: Option<Installation>,
    ) -> Result<Vec<InstallationChange>, Error> {
        let store = self.app.store().github();
        let Some(known) = store.installation(id).await? else {
            return Ok(Vec::new());
        };
        if known.organization_id != self.organization || known.deleted_at.is_some() {
            return Ok(Vec::new());
        }
        let context = Context {
            repository: None,
            delivery,
        };
        let installation = match read {
            Some(installation) => installation,
            None => self.read(id, delivery).await?,
        };
        let mut changes = Vec::new();
        match (
            installation.suspended_at.is_some(),
            known.suspended_at.is_some(),
        ) {
            (true, false) => changes.push(InstallationChange::Suspended(id)),
            (false, true) => changes.push(InstallationChange::Unsuspended(id)),
            (true, true) => return Ok(changes),
            (false, false) => {}
        }
        if installation.suspended_at.is_some() {
            // GitHub gives a suspended installation no token to list with.
            return Ok(changes);
        }
        let scope = TokenScope::new(id, &[]).with("metadata", Access::Read);
        let answer = self
            .github
            .send(
                &Request::new(
                    Method::GET,
                    "/installation/repositories",
                    &[],
                    Auth::Installation(scope.clone()),
                )
                .query("per_page", "1")
                .context(context),
            )
            .await?;
        let counted = answer
            .body
            .get("total_count")
            .and_then(serde_json::Value::as_u64);
        let listed = self
            .github
            .list(
                Request::new(
                    Method::GET,
                    "/installation/repositories",
                    &[],
                    Auth::Installation(scope),
                )
                .context(context),
                Some("repositories"),
            )
            .await?;
        let mut there = Vec::with_capacity(listed.len());
        for repository in listed {
            let repository: Repository = serde_json::from_value(repository)
                .map_err(|e| Error::Malformed(format!("a repository of installation {id}: {e}")))?;
            there.push(repository.to_ref());
        }
        let connected: Vec<_> = store
            .repositories(self.organization)
            .await?
            .into_iter()
            .filter(|r| r.installation_id == id && r.disconnected_at.is_none())
            .collect();
        let here: BTreeSet<i64> = connected.iter().map(|r| r.id).collect();
        let there_ids: BTreeSet<i64> = there.iter().map(|r| r.id).collect();
        let added: Vec<RepositoryRef> = there
            .into_iter()
            .filter(|r| !here.contains(&r.id))
            .collect();
        // A list that missed some (a change while it was paged) removes
        // nothing: a later read finishes the job.
        let complete = counted.is_some_and(|n| n == there_ids.len() as u64);
        let removed: Vec<RepositoryRef> = connected
            .into_iter()
            .filter(|r| complete && !there_ids.contains(&r.id))
            .map(|r| RepositoryRef {
                id: r.id,
                full_name: r.full_name,
                private: r.private,
            })
            .collect();
        if !added.is_empty() || !removed.is_empty() {
            changes.push(InstallationChange::Repositories {
                installation: installation.to_ref(),
                added,
                removed,
            });
        }
        Ok(changes)
    }
}
