//! Installation access tokens (GitHub Docs, "Generating an installation
//! access token for a GitHub App"): minted just in time, down-scoped per
//! operation to the repositories and permissions it needs, cached per
//! scope until shortly before they expire, one mint at a time per scope
//! however many callers wait for it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use zeroize::Zeroizing;

/// A cached token is used until this long before it expires; GitHub's
/// last an hour.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// A permission's level (GitHub's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

/// What a token may touch: one installation's repositories (by GitHub's
/// numeric ids; none: no repository) and the permissions named (GitHub's
/// names: `contents`, `pull_requests`, `statuses`, `members`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenScope {
    pub installation: i64,
    /// Sorted, without repeats.
    repository_ids: Vec<i64>,
    permissions: BTreeMap<&'static str, Access>,
}

impl TokenScope {
    /// A token of `installation` for `repository_ids` with no permission
    /// yet; add them with [`TokenScope::with`].
    pub fn new(installation: i64, repository_ids: &[i64]) -> TokenScope {
        let mut ids = repository_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        TokenScope {
            installation,
            repository_ids: ids,
            permissions: BTreeMap::new(),
        }
    }

    /// This scope with `permission` at `access` as well.
    pub fn with(mut self, permission: &'static str, access: Access) -> TokenScope {
        self.permissions.insert(permission, access);
        self
    }

    /// Contents read of one repository: to fetch its code.
    pub fn contents_read(installation: i64, repository_id: i64) -> TokenScope {
        TokenScope::new(installation, &[repository_id]).with("contents", Access::Read)
    }

    /// The repositories, sorted.
    pub fn repository_ids(&self) -> &[i64] {
        &self.repository_ids
    }

    /// The permissions, by name.
    pub fn permissions(&self) -> &BTreeMap<&'static str, Access> {
        &self.permissions
    }

    /// The body of `POST /app/installations/{id}/access_tokens`.
    pub(crate) fn request_body(&self) -> serde_json::Value {
        // No repository: a token for the organization's permissions
        // (members) only — GitHub reads an absent list as "all the
        // installation's", which the permissions then narrow.
        if self.repository_ids.is_empty() {
            return serde_json::json!({ "permissions": self.permissions });
        }
        serde_json::json!({
            "repository_ids": self.repository_ids,
            "permissions": self.permissions,
        })
    }
}

/// An installation access token. Its value is zeroed when dropped and
/// never shown by `Debug`.
pub struct InstallationToken {
    value: Zeroizing<String>,
    expires_at: SystemTime,
}

impl fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallationToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl InstallationToken {
    pub(crate) fn new(value: String, expires_at: SystemTime) -> InstallationToken {
        InstallationToken {
            value: Zeroizing::new(value),
            expires_at,
        }
    }

    /// The value, for an `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        &self.value
    }

    /// When GitHub stops taking it.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether it is still good to use at `now` (not within
    /// [`REFRESH_BEFORE_EXPIRY`] of expiring).
    fn fresh_at(&self, now: SystemTime) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
    }
}

/// One scope's slot: the token, behind an async lock held while minting,
/// so concurrent callers wait for one mint instead of making their own.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<InstallationToken>>>>;

/// The tokens minted, per scope.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenScope, Slot>>,
}

impl TokenCache {
    fn slot(&self, scope: &TokenScope) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(scope.clone()).or_default().clone()
    }

    /// The cached token of `scope` if it is fresh at `now`, else the one
    /// `mint` makes (cached). Callers of one scope wait for one mint.
    pub(crate) async fn get_or_mint<F, Fut, E>(
        &self,
        scope: &TokenScope,
        now: SystemTime,
        mint: F,
    ) -> Result<Arc<InstallationToken>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<InstallationToken, E>>,
    {
        let slot = self.slot(scope);
        let mut held = slot.lock().await;
        if let Some(token) = held.as_ref()
            && token.fresh_at(now)
        {
            return Ok(token.clone());
        }
        let token = Arc::new(mint().await?);
        *held = Some(token.clone());
        Ok(token)
    }

    /// Forgets the token of `scope` (GitHub refused it).
    pub(crate) fn forget(&self, scope: &TokenScope) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(scope);
    }

    /// Forgets every token of `installation` (suspended or deleted).
    /// Answers how many were forgotten.
    pub(crate) fn revoke_installation(&self, installation: i64) -> usize {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let before = slots.len();
        slots.retain(|scope, _| scope.installation != installation);
        before - slots.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn token(value: &str, lives: Duration) -> InstallationToken {
        InstallationToken::new(value.into(), SystemTime::now() + lives)
    }

    #[tokio::test]
    async fn concurrent_callers_wait_for_one_mint() {
        let cache = Arc::new(TokenCache::default());
        let mints = Arc::new(AtomicUsize::new(0));
        let scope = TokenScope::contents_read(1, 10);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let mints = mints.clone();
            let scope = scope.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_mint(&scope, SystemTime::now(), || async {
                        mints.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(token("ghs_one", Duration::from_secs(3600)))
                    })
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().expose(), "ghs_one");
        }
        assert_eq!(mints.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_token_is_refreshed_before_it_expires_and_scopes_do_not_share() {
        let cache = TokenCache::default();
        let read = TokenScope::contents_read(1, 10);
        let write = TokenScope::new(1, &[10]).with("contents", Access::Write);
        let now = SystemTime::now();
        let first = cache
            .get_or_mint(&read, now, || async {
                Ok::<_, ()>(token("ghs_a", Duration::from_secs(600)))
            })
            .await
            .unwrap();
        assert_eq!(first.expose(), "ghs_a");
        let other = cache
            .get_or_mint(&write, now, || async {
                Ok::<_, ()>(token("ghs_w", Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        assert_eq!(other.expose(), "ghs_w", "a wider scope gets its own token");
        // Six minutes on, the first has less than five minutes left.
        let later = now + Duration::from_secs(6 * 60);
        let second = cache
            .get_or_mint(&read, later, || async {
                Ok::<_, ()>(token("ghs_b", Duration::from_secs(3600)))
            })
            .await
            .unwrap();
        assert_eq!(second.expose(), "ghs_b");
        assert_eq!(cache.revoke_installation(1), 2);
        assert_eq!(cache.revoke_installation(1), 0);
    }

    #[test]
    fn scopes_are_equal_whatever_the_order_of_repositories() {
        assert_eq!(TokenScope::new(1, &[3, 1, 3]), TokenScope::new(1, &[1, 3]));
        assert_eq!(
            TokenScope::new(1, &[1]).request_body(),
            serde_json::json!({"repository_ids": [1], "permissions": {}})
        );
        assert_eq!(
            TokenScope::new(1, &[])
                .with("members", Access::Read)
                .request_body(),
            serde_json::json!({"permissions": {"members": "read"}})
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let t = token("ghs_secretvalue", Duration::from_secs(60));
        assert!(!format!("{t:?}").contains("secretvalue"));
    }
}
