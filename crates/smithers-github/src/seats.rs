//! Members become seats: the members of each GitHub organization the App
//! is installed on are users of the Smithers organization, keyed by
//! GitHub's numeric user id; members of the admin teams named in the
//! settings are admins, the others members. Level-triggered: a reconcile
//! reads the members and the admin teams (conditionally, with ETags) and
//! brings the users to them — adds, role changes, removals (a removed
//! user's sessions end and tokens go at once) — each through the users
//! service, so each is audited. The `organization`, `membership`,
//! `member` and `team` webhooks reconcile at once; the server also
//! reconciles periodically.
//!
//! Only users the App linked are ever changed or removed: a user added by
//! hand whose name is no member's login is left alone; one whose name is
//! a member's login is linked to that member.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use smithers_api::Role;
use smithers_app::{App, Principal};

use crate::client::{Auth, PageCache, Request};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// What a reconcile changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatChanges {
    pub added: Vec<String>,
    pub linked: Vec<String>,
    pub role_changed: Vec<String>,
    pub removed: Vec<String>,
    /// Whether GitHub said nothing changed since the last read (every list
    /// answered 304).
    pub unchanged: bool,
}

/// Keeps an organization's users in step with its GitHub members.
pub(crate) struct Seats<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
    pub organization: &'a str,
    /// Slugs of the teams whose members are admins.
    pub admin_teams: &'a [String],
    pub cache: &'a PageCache,
}

impl Seats<'_> {
    /// Reads the members of every live organization installation and
    /// brings the users to them.
    ///
    /// Errors: GitHub's (nothing is changed when the members cannot all
    /// be read); the users service's.
    pub(crate) async fn reconcile(&self) -> Result<SeatChanges, Error> {
        let mut changes = SeatChanges {
            unchanged: true,
            ..SeatChanges::default()
        };
        // GitHub id → (login, role).
        let mut wanted: BTreeMap<i64, (String, Role)> = BTreeMap::new();
        let installations = self
            .app
            .store()
            .github()
            .installations(self.organization)
            .await?;
        for installation in installations.iter().filter(|i| {
            i.deleted_at.is_none()
                && i.suspended_at.is_none()
                && i.account_type == "Organization"
                && i.permissions.get("members").is_some()
        }) {
            let scope = TokenScope::new(installation.id, &[]).with("members", Access::Read);
            let org = installation.account_login.as_str();
            let (members, unchanged) = self
                .github
                .list_cached(
                    Request::new(
                        Method::GET,
                        "/orgs/{org}/members",
                        &[org],
                        Auth::Installation(scope.clone()),
                    ),
                    self.cache,
                )
                .await?;
            changes.unchanged &= unchanged;
            for member in &members {
                if let Some((id, login)) = account(member) {
                    wanted.insert(id, (login, Role::Member));
                }
            }
            for team in self.admin_teams {
                let listed = self
                    .github
                    .list_cached(
                        Request::new(
                            Method::GET,
                            "/orgs/{org}/teams/{team_slug}/members",
                            &[org, team],
                            Auth::Installation(scope.clone()),
                        ),
                        self.cache,
                    )
                    .await;
                let (admins, unchanged) = match listed {
                    Ok(listed) => listed,
                    Err(Error::Api { status: 404, .. }) => {
                        tracing::warn!(org, team = %team, "the admin team does not exist");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                changes.unchanged &= unchanged;
                for admin in &admins {
                    // Only an organization member is anyone here.
                    if let Some((id, _)) = account(admin)
                        && let Some(entry) = wanted.get_mut(&id)
                    {
                        entry.1 = Role::Admin;
                    }
                }
            }
        }
        self.apply(&wanted, &mut changes).await?;
        Ok(changes)
    }

    async fn apply(
        &self,
        wanted: &BTreeMap<i64, (String, Role)>,
        changes: &mut SeatChanges,
    ) -> Result<(), Error> {
        let principal = Principal::github_seats(self.organization);
        let users = self.app.users();
        let store = self.app.store().github();
        let existing: BTreeMap<String, Role> = users
            .list(&principal)
            .await?
            .into_iter()
            .map(|u| (u.name, u.role))
            .collect();
        let linked: BTreeMap<i64, _> = store
            .members(self.organization)
            .await?
            .into_iter()
            .map(|m| (m.github_id, m))
            .collect();
        // Adds and role changes first, so an admin who replaces another is
        // in before the other goes (the last admin is never removed).
        for (id, (login, role)) in wanted {
            let name = match linked.get(id) {
                Some(link) => {
                    if link.login != *login {
                        store
                            .link_member(self.organization, *id, login, &link.user_name)
                            .await?;
                    }
                    link.user_name.clone()
                }
                None => {
                    if existing.contains_key(login) {
                        changes.linked.push(login.clone());
                    } else {
                        users.add(&principal, login, *role).await?;
                        changes.added.push(login.clone());
                    }
                    store
                        .link_member(self.organization, *id, login, login)
                        .await?;
                    login.clone()
                }
            };
            let current = existing.get(&name).copied().unwrap_or(*role);
            if current != *role && existing.contains_key(&name) {
                match users.set_role(&principal, &name, *role).await {
                    Ok(_) => changes.role_changed.push(name),
                    Err(e) => {
                        tracing::warn!(user = %name, error = %e.message, "a member's role could not be changed")
                    }
                }
            }
        }
        for (id, link) in &linked {
            if wanted.contains_key(id) {
                continue;
            }
            if existing.contains_key(&link.user_name) {
                match users.remove(&principal, &link.user_name).await {
                    Ok(_) => changes.removed.push(link.user_name.clone()),
                    Err(e) => {
                        tracing::warn!(user = %link.user_name, error = %e.message, "a former member could not be removed");
                        continue;
                    }
                }
            }
            store.unlink_member(self.organization, *id).await?;
        }
        Ok(())
    }
}

/// A listed account's id and login.
fn account(value: &Value) -> Option<(i64, String)> {
    Some((
        value.get("id")?.as_i64()?,
        value.get("login")?.as_str()?.to_string(),
    ))
}
