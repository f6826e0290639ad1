//! API tokens: made by a person for a script or CI, acting as that person
//! narrowed to scopes; stored as a SHA-256 only; every creation,
//! revocation and refused use audited.

use std::time::Duration;

use smithers_api::{ApiToken, Error, NewApiToken, Role, Scope, Timestamp};
use smithers_audit::ActorType;
use smithers_store::{NewToken, TokenRecord};

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::secret::{new_secret, sha256_hex};
use crate::{App, Principal, Via};

/// What every token starts with, so that a leaked one is recognised (by
/// secret scanners too).
pub const TOKEN_PREFIX: &str = "smt_";

/// How long a token lives unless told otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest a token may live.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Creates, lists and revokes API tokens. Obtained from [`App::tokens`].
pub struct Tokens<'a> {
    pub(crate) app: &'a App,
}

impl App {
    /// The organization's API tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { app: self }
    }

    /// Who a bearer token speaks for: its user (with the role the store
    /// gives them now), narrowed to its scopes. A known token that is
    /// revoked or expired is refused and the refusal audited.
    ///
    /// Errors: `unauthenticated` for anything but a live token of a user
    /// who still exists (the message never echoes the token).
    pub async fn principal_from_token(&self, token: &str) -> Result<Principal, Error> {
        let refused = || Error::unauthenticated("the API token is not valid");
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(refused());
        }
        let sha256 = sha256_hex(token);
        let Some(record) = self
            .store()
            .tokens()
            .by_sha256(&sha256)
            .await
            .map_err(store_error)?
        else {
            tracing::info!("an unknown API token was refused");
            return Err(refused());
        };
        let now = smithers_store::now_micros();
        let why = if record.revoked_at.is_some() {
            Some("revoked")
        } else if record.expires_at <= now {
            Some("expired")
        } else {
            None
        };
        if let Some(why) = why {
            self.store()
                .tokens()
                .record_refusal(self.signer(), &record, why)
                .await
                .map_err(store_error)?;
            self.deliver_audit().await;
            return Err(Error::unauthenticated(format!(
                "the API token {} is {why}",
                record.id
            )));
        }
        let mut principal = self
            .principal(&record.organization_id, &record.user, Via::ApiToken)
            .await?;
        principal.scopes = Some(scopes(&record));
        Ok(principal)
    }
}

impl Tokens<'_> {
    /// Makes a token acting as the principal, narrowed to `scopes`, living
    /// `ttl` (default 30 days, at most 366), with its `token.created`
    /// event. The secret is returned this once; only its SHA-256 is kept.
    ///
    /// Errors: `forbidden` through an API token; `invalid` for an empty
    /// name or scope list, or a lifetime of zero or over the limit.
    pub async fn create(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[Scope],
        ttl: Option<Duration>,
    ) -> Result<NewApiToken, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::TokensCreate)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "a token's name is 1 to 100 characters, none of them control characters",
            ));
        }
        if scopes.is_empty() {
            return Err(Error::invalid("a token needs at least one scope"));
        }
        let ttl = ttl.unwrap_or(DEFAULT_TOKEN_TTL);
        if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
            return Err(Error::invalid(
                "a token lives more than 0 s and at most 366 days",
            ));
        }
        let (secret, sha256) = new_secret(TOKEN_PREFIX)?;
        let mut names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let ttl_micros = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        let record = self
            .app
            .store()
            .tokens()
            .create(
                self.app.signer(),
                (ActorType::User, &principal.user),
                NewToken {
                    organization_id: org,
                    user: &principal.user,
                    name,
                    scopes: &names,
                    sha256: &sha256,
                    expires_at: smithers_store::now_micros().saturating_add(ttl_micros),
                },
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(NewApiToken {
            token: dto(&record),
            secret,
        })
    }

    /// The principal's own tokens; for an admin, the organization's.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<ApiToken>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::TokensRead)?;
        let user = (principal.role != Role::Admin).then_some(principal.user.as_str());
        let list = self
            .app
            .store()
            .tokens()
            .list(org, user)
            .await
            .map_err(store_error)?;
        Ok(list.iter().map(dto).collect())
    }

    /// Revokes token `id`: one's own, or (an admin) any of the
    /// organization's, with its `token.revoked` event.
    ///
    /// Errors: `not_found` for a token of another organization, or of
    /// another user for a member; `conflict` when it is revoked already.
    pub async fn revoke(&self, principal: &Principal, id: &str) -> Result<ApiToken, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::TokensRevoke)?;
        let tokens = self.app.store().tokens();
        let record = tokens.get(org, id).await.map_err(store_error)?;
        if record.user != principal.user && principal.role != Role::Admin {
            return Err(Error::not_found(format!("no token {id} in {org:?}")));
        }
        let revoked = tokens
            .revoke(
                self.app.signer(),
                (ActorType::User, &principal.user),
                org,
                id,
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(&revoked))
    }
}

/// The scopes a record names; a name this version does not know grants
/// nothing.
fn scopes(record: &TokenRecord) -> Vec<Scope> {
    record
        .scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect()
}

fn dto(record: &TokenRecord) -> ApiToken {
    ApiToken {
        id: record.id.clone(),
        name: record.name.clone(),
        organization: record.organization_id.clone(),
        user: record.user.clone(),
        scopes: scopes(record),
        created_at: Timestamp(record.created_at),
        expires_at: Timestamp(record.expires_at),
        revoked_at: record.revoked_at.map(Timestamp),
        revoked_by: record.revoked_by.clone(),
    }
}
