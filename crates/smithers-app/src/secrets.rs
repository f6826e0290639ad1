//! Secrets and grants: the secrets service of the store, behind the
//! authorization table. Listing, writing, reading under a grant and
//! requesting grants are a member's; destroying a version, the keyring's
//! use and rewrap, and deciding grants are an admin's. The store checks
//! again what it always did (a known user; a grant decided by an admin
//! who did not request it; a read under the reader's own usable grant).
//!
//! A value comes in and goes out as a [`SecretValue`], zeroed when
//! dropped, and is never part of a wire type.

use std::time::Duration;

use smithers_api::{
    Error, Grant, GrantBinding, GrantRequest, GrantState, KeyUsage, RewrapFailure, RewrapSummary,
    SecretSummary, SecretVersion, SecretVersionState, Timestamp,
};
use smithers_secrets::{KEYRING_ENV, SecretValue};
use smithers_store::{Actor, GrantFilter, ReadRequest, SecretRef, Secrets};

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// Sets, reads, lists, rotates and destroys secrets; the keyring's use;
/// grants. Obtained from [`App::secrets`].
pub struct SecretsService<'a> {
    pub(crate) app: &'a App,
}

impl App {
    /// Secrets and the grants to read them.
    pub fn secrets(&self) -> SecretsService<'_> {
        SecretsService { app: self }
    }
}

/// What a read asks for besides the secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecretReadOptions<'a> {
    /// A version other than the active one.
    pub version: Option<u32>,
    /// The grant to read under; by default the reader's approved grant on
    /// the secret that expires first.
    pub grant: Option<&'a str>,
    /// The run reading, for grants bound to a run.
    pub run: Option<&'a str>,
}

/// A value released under a grant. Deliberately not a wire type: the
/// value is zeroed when this is dropped and never serialized.
#[derive(Debug)]
pub struct RevealedSecret {
    pub value: SecretValue,
    /// The version read.
    pub version: u32,
    /// The grant it was read under.
    pub grant: String,
}

impl SecretsService<'_> {
    /// The names of the principal's organization's secrets that have a
    /// readable (active) version, as (name, environment): what checking a
    /// workflow's `secrets` needs. Needs no keyring.
    ///
    /// Errors: `forbidden` for a user of another organization.
    pub async fn readable_names(
        &self,
        principal: &Principal,
    ) -> Result<std::collections::BTreeSet<(String, String)>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsList)?;
        smithers_store::readable_secrets(self.app.store(), org)
            .await
            .map_err(store_error)
    }

    /// The principal's organization's secrets (in `environment`, or in
    /// all), by environment then name. Metadata only.
    ///
    /// Errors: `unavailable` without a keyring.
    pub async fn list(
        &self,
        principal: &Principal,
        environment: Option<&str>,
    ) -> Result<Vec<SecretSummary>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsList)?;
        let list = self
            .store()?
            .list(org, environment)
            .await
            .map_err(store_error)?;
        Ok(list.into_iter().map(summary_dto).collect())
    }

    /// Every version of the secrets called `name` (in `environment`, or in
    /// every environment holding it), oldest first. Metadata only.
    ///
    /// Errors: `not_found` when there is no such secret; `unavailable`
    /// without a keyring.
    pub async fn versions(
        &self,
        principal: &Principal,
        name: &str,
        environment: Option<&str>,
    ) -> Result<Vec<SecretVersion>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsList)?;
        let all = self
            .store()?
            .versions(org, environment, name)
            .await
            .map_err(store_error)?;
        if all.is_empty() {
            return Err(Error::not_found(format!("no secret {name:?} in {org:?}")));
        }
        Ok(all.into_iter().map(version_dto).collect())
    }

    /// The environment named, or else the only one holding a secret called
    /// `name`, for commands that let the environment be left out.
    ///
    /// Errors: `not_found` when no environment holds it; `invalid` when
    /// several do (naming them); `unavailable` without a keyring.
    pub async fn environment_of(
        &self,
        principal: &Principal,
        name: &str,
        environment: Option<&str>,
    ) -> Result<String, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsList)?;
        let secrets = self.store()?;
        if let Some(env) = environment {
            return Ok(env.to_string());
        }
        let mut found = secrets
            .environments_of(org, name)
            .await
            .map_err(store_error)?;
        match found.len() {
            0 => Err(Error::not_found(format!("no secret {name:?} in {org:?}"))),
            1 => Ok(found.remove(0)),
            _ => Err(Error::invalid(format!(
                "{name:?} exists in several environments ({}); say which with --env",
                found.join(", ")
            ))),
        }
    }

    /// Creates a secret at version 1, sealed with the keyring's primary
    /// key, with its `secret.set` audit event in the same transaction.
    /// `expect_version`: check-and-set (`Some(0)`: must not exist yet).
    ///
    /// Errors: `invalid` for a bad name or environment or an empty value;
    /// `conflict` when it exists or is not at `expect_version`;
    /// `unavailable` without a keyring.
    pub async fn set(
        &self,
        principal: &Principal,
        environment: &str,
        name: &str,
        value: &SecretValue,
        expect_version: Option<u32>,
    ) -> Result<SecretVersion, Error> {
        self.write(principal, environment, name, value, expect_version, false)
            .await
    }

    /// Adds a new active version; the previous one is deactivated and kept.
    ///
    /// Errors: as [`set`](Self::set), and `not_found` when there is no
    /// such secret to rotate.
    pub async fn rotate(
        &self,
        principal: &Principal,
        environment: &str,
        name: &str,
        value: &SecretValue,
        expect_version: Option<u32>,
    ) -> Result<SecretVersion, Error> {
        self.write(principal, environment, name, value, expect_version, true)
            .await
    }

    async fn write(
        &self,
        principal: &Principal,
        environment: &str,
        name: &str,
        value: &SecretValue,
        expect_version: Option<u32>,
        rotate: bool,
    ) -> Result<SecretVersion, Error> {
        authorize(principal, &principal.organization, Operation::SecretsWrite)?;
        let secrets = self.store()?;
        let actor = actor(principal);
        let secret = SecretRef { environment, name };
        let written = if rotate {
            secrets.rotate(&actor, secret, value, expect_version).await
        } else {
            secrets.set(&actor, secret, value, expect_version).await
        }
        .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(version_dto(written))
    }

    /// Releases a value: the reader needs their own approved, unexpired
    /// grant on the secret (and for the run, if the grant is bound to
    /// one); a single-use grant is spent. The read, or its refusal, is
    /// recorded in the audit log; the value is returned only once the
    /// record has committed.
    ///
    /// Errors: `forbidden` without a usable grant (no grant, expired,
    /// spent, another run's); `not_found` for a version there is not;
    /// `unavailable` without a keyring; `internal` for a value that does
    /// not open (its key missing from the keyring, or damaged).
    pub async fn get(
        &self,
        principal: &Principal,
        environment: &str,
        name: &str,
        options: &SecretReadOptions<'_>,
    ) -> Result<RevealedSecret, Error> {
        authorize(principal, &principal.organization, Operation::SecretsReveal)?;
        let secrets = self.store()?;
        let read = secrets
            .read(
                &actor(principal),
                SecretRef { environment, name },
                &ReadRequest {
                    version: options.version,
                    grant_id: options.grant,
                    run_id: options.run,
                },
            )
            .await;
        // A refused read is recorded too.
        self.app.deliver_audit().await;
        let read = read.map_err(store_error)?;
        Ok(RevealedSecret {
            value: read.value,
            version: read.version,
            grant: read.grant_id,
        })
    }

    /// Erases one version's ciphertext and wrapped key for good; its
    /// metadata stays.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `not_found`
    /// for a version there is not; `conflict` when it is destroyed
    /// already; `unavailable` without a keyring.
    pub async fn destroy(
        &self,
        principal: &Principal,
        environment: &str,
        name: &str,
        version: u32,
    ) -> Result<SecretVersion, Error> {
        authorize(
            principal,
            &principal.organization,
            Operation::SecretsDestroy,
        )?;
        let destroyed = self
            .store()?
            .destroy(&actor(principal), SecretRef { environment, name }, version)
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(version_dto(destroyed))
    }

    /// Every key id of the keyring and every key id stored versions are
    /// wrapped by, with how many versions each wraps (in every
    /// organization: the keyring is the deployment's).
    ///
    /// Errors: `forbidden` unless the principal is an admin; `unavailable`
    /// without a keyring.
    pub async fn keys(&self, principal: &Principal) -> Result<Vec<KeyUsage>, Error> {
        authorize(principal, &principal.organization, Operation::SecretsKeys)?;
        let usage = self.store()?.key_usage().await.map_err(store_error)?;
        Ok(usage.into_iter().map(key_dto).collect())
    }

    /// The keys stored versions are wrapped by that are missing from the
    /// keyring (those versions cannot be read until the key is put back),
    /// for a front end to warn about. Any member may ask; only an admin,
    /// who may manage the keyring, is told: a member gets an empty list.
    ///
    /// Errors: `unavailable` without a keyring.
    pub async fn missing_keys(&self, principal: &Principal) -> Result<Vec<KeyUsage>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsList)?;
        let secrets = self.store()?;
        if authorize(principal, org, Operation::SecretsKeys).is_err() {
            return Ok(Vec::new());
        }
        let missing = secrets.missing_keys().await.map_err(store_error)?;
        Ok(missing.into_iter().map(key_dto).collect())
    }

    /// Re-wraps every version (of every organization) still wrapped by an
    /// older key under the keyring's primary key, in batches, each
    /// committed with its `secret.rewrap` events; values are never
    /// decrypted. `progress` is told (done, total) after each batch.
    /// Versions that cannot be moved (their key missing) are reported in
    /// `failed` and stay as they were.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `unavailable`
    /// without a keyring.
    pub async fn rewrap(
        &self,
        principal: &Principal,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RewrapSummary, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::SecretsKeys)?;
        let secrets = self.store()?;
        let operator = format!("{org}:{}", principal.user);
        let summary = secrets
            .rewrap(&operator, &mut |done, total| progress(done, total))
            .await;
        self.app.deliver_audit().await;
        let summary = summary.map_err(store_error)?;
        Ok(RewrapSummary {
            primary_key: secrets.keyring().primary_id().to_string(),
            rewrapped: summary.rewrapped,
            already_current: summary.already_current,
            history_keys: summary.history_keys,
            by_old_key: summary.by_old_key,
            failed: summary
                .failed
                .into_iter()
                .map(|(version, error)| RewrapFailure { version, error })
                .collect(),
        })
    }

    /// Files a request to read a secret, for a run or a stated purpose;
    /// it waits for an admin other than the requester.
    ///
    /// Errors: `invalid` for a bad name, an empty binding or a TTL outside
    /// 1 second to 7 days; `not_found` when there is no such secret;
    /// `unavailable` without a keyring.
    pub async fn request_grant(
        &self,
        principal: &Principal,
        request: &GrantRequest,
    ) -> Result<Grant, Error> {
        authorize(principal, &principal.organization, Operation::GrantsRequest)?;
        let secrets = self.store()?;
        let binding = match &request.binding {
            GrantBinding::Run(run) => smithers_store::GrantBinding::Run(run.clone()),
            GrantBinding::Purpose(p) => smithers_store::GrantBinding::Purpose(p.clone()),
        };
        let grant = secrets
            .request_grant(
                &actor(principal),
                &smithers_store::GrantRequest {
                    secret: SecretRef {
                        environment: &request.environment,
                        name: &request.name,
                    },
                    binding,
                    ttl: Duration::from_secs(request.ttl_seconds),
                    single_use: request.single_use,
                },
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(grant_dto(grant))
    }

    /// Approves (`approve`) or denies a pending grant; a denial needs a
    /// reason (`comment`). An approved grant lives its TTL from now.
    ///
    /// Errors: `forbidden` unless the principal is an admin, and for the
    /// grant's requester (another admin must decide); `not_found` for a
    /// grant there is not in the organization; `conflict` when it is not
    /// pending any more; `invalid` for a denial without a reason;
    /// `unavailable` without a keyring.
    pub async fn decide_grant(
        &self,
        principal: &Principal,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Grant, Error> {
        authorize(principal, &principal.organization, Operation::GrantsDecide)?;
        let secrets = self.store()?;
        if !approve && comment.is_none_or(|c| c.trim().is_empty()) {
            return Err(Error::invalid("denying a grant needs a reason"));
        }
        let grant = secrets
            .decide_grant(&actor(principal), id, approve, comment)
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(grant_dto(grant))
    }

    /// The organization's grants (on `environment`, on secrets called
    /// `name`), newest first: pending and usable ones, or every one with
    /// `all`.
    ///
    /// Errors: `unavailable` without a keyring.
    pub async fn grants(
        &self,
        principal: &Principal,
        environment: Option<&str>,
        name: Option<&str>,
        all: bool,
    ) -> Result<Vec<Grant>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::GrantsRead)?;
        let grants = self
            .store()?
            .grants(
                org,
                GrantFilter {
                    environment,
                    name,
                    open_only: !all,
                },
            )
            .await
            .map_err(store_error)?;
        Ok(grants.into_iter().map(grant_dto).collect())
    }

    /// Releases the active value of a credential the server itself uses,
    /// named by its operator at start (the GitHub App's private key and
    /// webhook secret): no principal asks, so no grant is needed, but the
    /// read is recorded as `secret.read` by the system with its `purpose`.
    ///
    /// Errors: `not_found` without an active version; `unavailable`
    /// without a keyring; `internal` for a value that does not open.
    pub async fn read_for_service(
        &self,
        organization: &str,
        environment: &str,
        name: &str,
        purpose: &str,
    ) -> Result<SecretValue, Error> {
        let read = self
            .store()?
            .read_for_service(organization, SecretRef { environment, name }, purpose)
            .await;
        self.app.deliver_audit().await;
        Ok(read.map_err(store_error)?.value)
    }

    /// The store's secrets service, which exists only with a keyring.
    fn store(&self) -> Result<&Secrets, Error> {
        self.app.engine().secrets.as_ref().ok_or_else(|| {
            Error::unavailable(format!(
                "{KEYRING_ENV} is not set: no keys to seal or open secrets with; set it to \
                 `id:base64-32-byte-key` (comma-separated, the first one encrypts)"
            ))
        })
    }
}

/// The store's actor for the principal.
fn actor(principal: &Principal) -> Actor {
    Actor::new(&principal.organization, &principal.user)
}

fn summary_dto(s: smithers_store::SecretSummary) -> SecretSummary {
    SecretSummary {
        environment: s.environment,
        name: s.name,
        active_version: s.active_version,
        latest_version: s.latest_version,
        versions: s.versions,
        key_id: s.key_id,
        updated_at: Timestamp(s.updated_at),
    }
}

fn version_dto(v: smithers_store::SecretVersion) -> SecretVersion {
    SecretVersion {
        organization: v.organization_id,
        environment: v.environment,
        name: v.name,
        version: v.version,
        state: match v.state {
            smithers_store::VersionState::Active => SecretVersionState::Active,
            smithers_store::VersionState::Inactive => SecretVersionState::Inactive,
            smithers_store::VersionState::Destroyed => SecretVersionState::Destroyed,
        },
        key_id: v.key_id,
        created_at: Timestamp(v.created_at),
        created_by: v.created_by,
        deactivated_at: v.deactivated_at.map(Timestamp),
        destroyed_at: v.destroyed_at.map(Timestamp),
        destroyed_by: v.destroyed_by,
    }
}

fn key_dto(k: smithers_store::KeyUsage) -> KeyUsage {
    KeyUsage {
        removable: k.removable(),
        key_id: k.key_id,
        versions: k.versions,
        history_keys: k.history_keys,
        in_keyring: k.in_keyring,
        primary: k.primary,
    }
}

fn grant_dto(g: smithers_store::Grant) -> Grant {
    Grant {
        id: g.id,
        organization: g.organization_id,
        environment: g.environment,
        name: g.name,
        requested_by: g.requested_by,
        run_id: g.run_id,
        purpose: g.purpose,
        ttl_seconds: g.ttl_seconds,
        single_use: g.single_use,
        state: match g.state {
            smithers_store::GrantState::Pending => GrantState::Pending,
            smithers_store::GrantState::Approved => GrantState::Approved,
            smithers_store::GrantState::Denied => GrantState::Denied,
            smithers_store::GrantState::Used => GrantState::Used,
            smithers_store::GrantState::Expired => GrantState::Expired,
        },
        requested_at: Timestamp(g.requested_at),
        decided_by: g.decided_by,
        decided_at: g.decided_at.map(Timestamp),
        comment: g.comment,
        expires_at: g.expires_at.map(Timestamp),
        used_at: g.used_at.map(Timestamp),
    }
}
