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
//! GET /app/installations/{id}   (JWT)   404 → deleted; suspended_at → suspended or not
//! GET /installation/repositories (installation token, metadata read, every page)
//!   → connected here but not there: removed; there but not here: added
//! ```

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
    /// The changes that bring the store's installation `id` (and its
    /// repositories) to what GitHub says now, in the order to apply them;
    /// none for an installation the store does not have, or has as
    /// deleted (an installation id is never used again).
    ///
    /// Errors: GitHub's (other than a 404 for the installation, which
    /// means it is gone); the store's.
    pub(crate) async fn corrections(
        &self,
        id: i64,
        delivery: Option<&str>,
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
                .context(context),
            )
            .await;
        let installation: Installation = match answer {
            Ok(answer) => serde_json::from_value(answer.body)
                .map_err(|e| Error::Malformed(format!("GitHub's installation {id}: {e}")))?,
            Err(Error::Api { status: 404, .. }) => {
                return Ok(vec![InstallationChange::Deleted(id)]);
            }
            Err(e) => return Err(e),
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
        let removed: Vec<RepositoryRef> = connected
            .into_iter()
            .filter(|r| !there_ids.contains(&r.id))
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
