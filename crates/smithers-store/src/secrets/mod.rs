//! Secrets over the store: sealed versions, grants to read them, key usage
//! and rewrap. Every change and every value read commits in one
//! transaction with the audit event that records it, so a value is never
//! released, and nothing changes, unless the event is durable.

mod grants;
mod history;
mod keys;
mod versions;

use std::sync::Arc;

use serde_json::Value;
use smithers_audit::{ActorType, AuditEvent, CheckpointSigner};
use smithers_secrets::Keyring;
use sqlx::{Any, Transaction};

use crate::audit::ChainLock;
use crate::{Error, Role, Store, now_micros};

pub use grants::{Grant, GrantBinding, GrantFilter, GrantRequest, GrantState, MAX_GRANT_TTL};
pub use keys::{KeyUsage, RewrapProgress, RewrapSummary};
pub use versions::{
    ReadRequest, SecretRead, SecretSummary, SecretVersion, VersionState, readable_secrets,
};

/// Who is acting: a user of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub organization_id: String,
    pub user: String,
}

impl Actor {
    pub fn new(organization_id: &str, user: &str) -> Actor {
        Actor {
            organization_id: organization_id.to_string(),
            user: user.to_string(),
        }
    }
}

/// A secret's place: organization, environment and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretRef<'a> {
    pub environment: &'a str,
    pub name: &'a str,
}

impl SecretRef<'_> {
    /// The audit resource id: `environment/name`.
    fn resource_id(&self) -> String {
        format!("{}/{}", self.environment, self.name)
    }

    /// See [`smithers_secrets::names`].
    fn validate(&self) -> Result<(), Error> {
        match smithers_secrets::names::name_problem(self.name)
            .or_else(|| smithers_secrets::names::environment_problem(self.environment))
        {
            Some(problem) => Err(Error::Invalid(problem)),
            None => Ok(()),
        }
    }
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The secrets service of one process: the store, the keyring and the
/// audit signing key (checkpoints may fall due inside a secrets
/// transaction).
#[derive(Clone)]
pub struct Secrets {
    store: Store,
    keyring: Arc<Keyring>,
    signer: Arc<CheckpointSigner>,
    clock: Clock,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(store: Store, keyring: Arc<Keyring>, signer: Arc<CheckpointSigner>) -> Secrets {
        Secrets {
            store,
            keyring,
            signer,
            clock: Arc::new(now_micros),
        }
    }

    /// Replaces the clock (microseconds since the epoch), for grant expiry.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Secrets {
        self.clock = Arc::new(clock);
        self
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Begins a transaction holding the organization's audit chain lock:
    /// every secrets change of an organization is serialized behind it, so
    /// check-and-set reads see the latest committed state.
    async fn begin(
        &self,
        organization_id: &str,
    ) -> Result<(Transaction<'static, Any>, ChainLock), Error> {
        crate::audited::begin(&self.store, organization_id).await
    }

    /// Seals `events` into the locked chain inside `tx` and commits both.
    async fn commit_with(
        &self,
        tx: Transaction<'static, Any>,
        chain: ChainLock,
        events: Vec<AuditEvent>,
    ) -> Result<(), Error> {
        crate::audited::commit(&self.store, tx, chain, events, &self.signer, self.now()).await
    }

    fn event(
        &self,
        actor_type: ActorType,
        organization_id: &str,
        actor_id: &str,
        action: &str,
        resource: &str,
        details: Value,
    ) -> AuditEvent {
        crate::audited::event(
            organization_id,
            (actor_type, actor_id),
            action,
            ("secret", resource),
            details,
            self.now(),
        )
    }

    fn user_event(
        &self,
        actor: &Actor,
        action: &str,
        resource: &str,
        details: Value,
    ) -> AuditEvent {
        self.event(
            ActorType::User,
            &actor.organization_id,
            &actor.user,
            action,
            resource,
            details,
        )
    }

    /// The acting user's role; unknown users may do nothing.
    async fn role_of(&self, actor: &Actor) -> Result<Role, Error> {
        self.store
            .organizations()
            .user(&actor.organization_id, &actor.user)
            .await?
            .map(|u| u.role)
            .ok_or_else(|| {
                Error::Denied(format!(
                    "{:?} is not a user of organization {:?}",
                    actor.user, actor.organization_id
                ))
            })
    }
}

/// Reads a non-negative integer column as `u32`.
fn to_u32(n: i64, table: &'static str, column: &str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::Corrupt {
        table,
        detail: format!("{column} {n} is out of range"),
    })
}
