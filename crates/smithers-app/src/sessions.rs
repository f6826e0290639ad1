//! People signed in from a browser: sign-ins (a one-time local link; the
//! OAuth and OpenID Connect flows build on the same records), sessions
//! whose cookie holds only a random secret (its SHA-256 is what is
//! stored), and signing out. Signing in, failing to and signing out are
//! audited (`user.login`, `user.login_failed`, `user.logout`).

use std::time::Duration;

use smithers_api::{Error, Timestamp};
use smithers_store::{NewSession, NewSignIn, Taken};

use crate::error::store_error;
use crate::secret::{new_secret, sha256_hex};
use crate::{App, Principal, Via};

/// What a session's cookie value starts with.
pub const SESSION_PREFIX: &str = "sms_";

/// What a one-time local sign-in token starts with.
pub const SIGN_IN_PREFIX: &str = "smi_";

/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long a one-time local sign-in link can be used.
pub const SIGN_IN_LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// Where a sign-in came from, for its audit event.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The peer's address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Client {
    pub(crate) fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        if let Some(ip) = &self.ip {
            map.insert("ip".into(), ip.clone().into());
        }
        if let Some(agent) = &self.user_agent {
            // Bounded: the header is the client's to fill.
            let agent: String = agent.chars().take(200).collect();
            map.insert("user_agent".into(), agent.into());
        }
        map
    }
}

/// A session just opened: the cookie's secret, given this once, and who
/// it is.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// The session's id (not a secret: it names the session in the audit
    /// log and in a list).
    pub id: String,
    /// The cookie's value.
    pub secret: String,
    pub principal: Principal,
    pub expires_at: Timestamp,
}

/// A live session's principal and its id.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    pub principal: Principal,
    pub session: String,
}

impl App {
    /// A one-time sign-in token for `user` of `organization`, good for
    /// [`SIGN_IN_LINK_TTL`]: what `smithers serve` prints as a link so that
    /// the machine's owner signs in with nothing configured. Only the
    /// process serving may ask for one (there is no principal: it holds
    /// the data directory).
    ///
    /// Errors: `unauthenticated` for no such user; the store's.
    pub async fn local_sign_in_token(
        &self,
        organization: &str,
        user: &str,
    ) -> Result<String, Error> {
        self.principal(organization, user, Via::Session).await?;
        let (secret, sha256) = new_secret(SIGN_IN_PREFIX)?;
        self.store()
            .sessions()
            .begin_sign_in(NewSignIn {
                sha256: &sha256,
                method: "local",
                organization_id: organization,
                user: Some(user),
                nonce: None,
                pkce_verifier: None,
                expires_at: micros_from_now(SIGN_IN_LINK_TTL),
            })
            .await
            .map_err(store_error)?;
        Ok(secret)
    }

    /// Opens a session with a one-time local sign-in token. A token used
    /// before or expired is refused and the refusal audited; one that is
    /// not known is refused unrecorded (there is nobody to record it
    /// against).
    ///
    /// Errors: `unauthenticated`, saying why, never echoing the token.
    pub async fn sign_in_with_token(
        &self,
        token: &str,
        client: &Client,
    ) -> Result<OpenedSession, Error> {
        let refused = |why: &str| Error::unauthenticated(format!("this sign-in link {why}"));
        if !token.starts_with(SIGN_IN_PREFIX) {
            return Err(refused("is not one"));
        }
        let taken = self
            .store()
            .sessions()
            .take_sign_in(&sha256_hex(token))
            .await
            .map_err(store_error)?;
        let (sign_in, why) = match taken {
            Taken::Fresh(s) if s.method == "local" => (s, None),
            Taken::Fresh(s) => (s, Some("is not a local sign-in link")),
            Taken::Used(s) => (s, Some("was used already")),
            Taken::Expired(s) => (s, Some("has expired")),
            Taken::Unknown => {
                tracing::info!("an unknown sign-in link was refused");
                return Err(refused("is not one"));
            }
        };
        if let Some(why) = why {
            self.login_failed(
                &sign_in.organization_id,
                sign_in.user.as_deref(),
                "local",
                why,
                client,
            )
            .await?;
            return Err(refused(why));
        }
        let user = sign_in
            .user
            .as_deref()
            .ok_or_else(|| Error::internal("a local sign-in names no user"))?;
        self.open_session(
            &sign_in.organization_id,
            user,
            "local",
            client,
            serde_json::Map::new(),
        )
        .await
    }

    /// Opens a session for `user` of `organization` signed in by `method`,
    /// recording `user.login` with `details` and the client.
    ///
    /// Errors: `unauthenticated` when the user does not exist (then the
    /// failure is recorded); the store's.
    pub async fn open_session(
        &self,
        organization: &str,
        user: &str,
        method: &str,
        client: &Client,
        mut details: serde_json::Map<String, serde_json::Value>,
    ) -> Result<OpenedSession, Error> {
        let principal = match self.principal(organization, user, Via::Session).await {
            Ok(p) => p,
            Err(e) => {
                self.login_failed(organization, Some(user), method, "no such user", client)
                    .await?;
                return Err(e);
            }
        };
        let (secret, sha256) = new_secret(SESSION_PREFIX)?;
        details.extend(client.details());
        let record = self
            .store()
            .sessions()
            .start(
                self.signer(),
                NewSession {
                    organization_id: organization,
                    user,
                    sha256: &sha256,
                    method,
                    expires_at: micros_from_now(SESSION_TTL),
                    details: serde_json::Value::Object(details),
                },
            )
            .await
            .map_err(store_error)?;
        self.deliver_audit().await;
        Ok(OpenedSession {
            id: record.id,
            secret,
            principal,
            expires_at: Timestamp(record.expires_at),
        })
    }

    /// Records a refused sign-in (`user.login_failed`).
    ///
    /// Errors: the audit log's.
    pub async fn login_failed(
        &self,
        organization: &str,
        user: Option<&str>,
        method: &str,
        why: &str,
        client: &Client,
    ) -> Result<(), Error> {
        let mut details = client.details();
        details.insert("method".into(), method.into());
        details.insert("why".into(), why.into());
        self.store()
            .sessions()
            .record_failure(
                self.signer(),
                organization,
                user,
                serde_json::Value::Object(details),
            )
            .await
            .map_err(store_error)?;
        self.deliver_audit().await;
        Ok(())
    }

    /// Who a session's cookie speaks for: its user with the role the
    /// store gives them now.
    ///
    /// Errors: `unauthenticated` for anything but a live session of a user
    /// who still exists.
    pub async fn principal_from_session(&self, secret: &str) -> Result<SessionPrincipal, Error> {
        let refused =
            |why: &str| Error::unauthenticated(format!("the session {why}: sign in again"));
        if !secret.starts_with(SESSION_PREFIX) {
            return Err(refused("is not one"));
        }
        let Some(session) = self
            .store()
            .sessions()
            .by_sha256(&sha256_hex(secret))
            .await
            .map_err(store_error)?
        else {
            return Err(refused("is not known"));
        };
        if session.ended_at.is_some() {
            return Err(refused(&format!(
                "has ended ({})",
                session.ended_why.as_deref().unwrap_or("ended")
            )));
        }
        if session.expires_at <= smithers_store::now_micros() {
            return Err(refused("has expired"));
        }
        let principal = self
            .principal(&session.organization_id, &session.user, Via::Session)
            .await
            .map_err(|_| refused("belongs to a user who is no longer"))?;
        Ok(SessionPrincipal {
            principal,
            session: session.id,
        })
    }

    /// Ends session `id` of the principal (`user.logout`).
    ///
    /// Errors: `not_found` for a session that is not the principal's; the
    /// store's.
    pub async fn sign_out(&self, principal: &Principal, id: &str) -> Result<(), Error> {
        self.store()
            .sessions()
            .sign_out(self.signer(), &principal.organization, &principal.user, id)
            .await
            .map_err(store_error)?;
        self.deliver_audit().await;
        Ok(())
    }
}

/// Microseconds since the epoch, `ttl` from now.
fn micros_from_now(ttl: Duration) -> i64 {
    smithers_store::now_micros().saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}
