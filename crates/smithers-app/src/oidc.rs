//! Signing in with an OpenID Connect provider: the authorization code flow
//! of OpenID Connect Core 1.0 §3.1 (OAuth 2.0, RFC 6749 §4.1) with PKCE
//! (RFC 7636, `S256`), a `state` and a `nonce`.
//!
//! ```text
//! begin   discovery (ISSUER/.well-known/openid-configuration, cached)
//!         a sign-in stored: SHA-256 of the state, the nonce, the PKCE
//!         verifier, 10 minutes → the provider's authorization URL
//! finish  the sign-in taken once by its state → the code exchanged with
//!         the verifier at the token endpoint → the ID token verified
//!         (signature by the provider's JWKS, iss, aud, azp, exp, iat,
//!         nonce) → the person mapped to an existing user → a session
//! ```
//!
//! The person is the user named by one claim (`preferred_username` unless
//! configured otherwise) who already exists in the configured
//! organization: nobody is created. Every refusal that a stored sign-in
//! can be attributed to is recorded as `user.login_failed` with the
//! issuer and, once known, the provider's subject; a state that matches
//! nothing is refused unrecorded. Neither a code, a token nor the client
//! secret is ever logged, audited or put in an error.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenClaims,
    CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, SubjectIdentifier, TokenResponse,
};
use smithers_api::{Error, ErrorKind};
use smithers_store::{NewSignIn, Taken};

use crate::error::store_error;
use crate::secret::{new_secret, sha256_hex};
use crate::sessions::{Client, OpenedSession};
use crate::{App, Via};

/// How long an OpenID Connect sign-in may take, from the redirect to the
/// provider to the callback.
pub const OIDC_SIGN_IN_TTL: Duration = Duration::from_secs(10 * 60);

/// The sign-in method's name in the store and the audit log.
const METHOD: &str = "oidc";

/// How far the provider's clock may be from ours (`exp`, `iat`).
const CLOCK_LEEWAY: Duration = Duration::from_secs(60);

/// How long discovered metadata (and its key set) is used before it is
/// fetched again.
const METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

/// Metadata younger than this is not fetched again after a failed
/// verification: a stream of bad tokens does not become a stream of
/// requests to the provider.
const METADATA_MIN_AGE: Duration = Duration::from_secs(30);

/// How long one request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// The signature algorithms an ID token may use: public-key ones only.
/// `none` is never accepted, nor HMAC (`HS*`), whose "key" a forger could
/// take to be a public key or a secret shared with others.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Which claim names the Smithers user a person signs in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserClaim {
    /// `preferred_username` (OpenID Connect Core 1.0 §5.1), as it is.
    #[default]
    PreferredUsername,
    /// The local part of `email`, and only when `email_verified` is true.
    /// The domain is not looked at: for a provider whose every address is
    /// the organization's.
    Email,
    /// `sub`, the provider's own identifier of the person.
    Subject,
}

impl UserClaim {
    /// The claim's name: `preferred_username`, `email` or `sub`.
    pub fn name(self) -> &'static str {
        match self {
            UserClaim::PreferredUsername => "preferred_username",
            UserClaim::Email => "email",
            UserClaim::Subject => "sub",
        }
    }

    /// The scope that asks the provider for the claim.
    fn scope(self) -> Option<&'static str> {
        match self {
            UserClaim::PreferredUsername => Some("profile"),
            UserClaim::Email => Some("email"),
            UserClaim::Subject => None,
        }
    }
}

impl FromStr for UserClaim {
    type Err = String;

    fn from_str(s: &str) -> Result<UserClaim, String> {
        match s {
            "preferred_username" => Ok(UserClaim::PreferredUsername),
            "email" => Ok(UserClaim::Email),
            "sub" => Ok(UserClaim::Subject),
            other => Err(format!(
                "{other:?} is not a user claim: preferred_username, email or sub"
            )),
        }
    }
}

impl fmt::Display for UserClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a server signs people in with an OpenID provider.
#[derive(Clone)]
pub struct OidcSettings {
    /// The provider's issuer identifier, an `https://` (or, for a provider
    /// on this machine, `http://`) URL; its metadata is at
    /// `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// The client secret; none for a public client (PKCE alone).
    pub client_secret: Option<String>,
    /// The organization whose users people sign in as.
    pub organization: String,
    /// Which claim names the user.
    pub user_claim: UserClaim,
    /// Where the provider sends the browser back:
    /// `<public origin>/sign-in/oidc/callback`, registered at the provider.
    pub redirect_uri: String,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("organization", &self.organization)
            .field("user_claim", &self.user_claim)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// A sign-in begun: where to send the browser, and the state to bind to
/// it (a front end keeps it in a short-lived cookie and hands it back to
/// [`OidcSignIn::finish`], so that a callback started in another browser
/// is refused: a login CSRF).
#[derive(Debug, Clone)]
pub struct OidcStarted {
    /// The provider's authorization URL, with every parameter.
    pub url: String,
    /// The `state` parameter (a secret of this browser's).
    pub state: String,
}

/// What the provider's redirect back carried (RFC 6749 §4.1.2 and
/// §4.1.2.1; `iss` from RFC 9207), and the state this browser began
/// with.
#[derive(Clone, Default)]
pub struct OidcCallback {
    /// The authorization code (never logged: `Debug` hides it).
    pub code: Option<String>,
    /// The `state` this server sent, as it came back.
    pub state: Option<String>,
    /// The provider's error code, when it refused (`access_denied`, ...).
    pub error: Option<String>,
    /// The provider's words about the error, for people.
    pub error_description: Option<String>,
    /// The issuer that answered (RFC 9207), when the provider says.
    pub iss: Option<String>,
    /// The state the browser kept from [`OidcSignIn::begin`].
    pub browser_state: Option<String>,
}

impl fmt::Debug for OidcCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        f.debug_struct("OidcCallback")
            .field("code", &hidden(&self.code))
            .field("state", &hidden(&self.state))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("iss", &self.iss)
            .field("browser_state", &hidden(&self.browser_state))
            .finish()
    }
}

/// The metadata discovered, and when.
struct Discovered {
    metadata: CoreProviderMetadata,
    at: Instant,
}

/// Whether cached metadata will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Metadata up to [`METADATA_MAX_AGE`] old.
    Cached,
    /// Metadata fetched again, unless it is younger than
    /// [`METADATA_MIN_AGE`] (the keys may have rotated).
    Refetched,
}

/// The client built from the provider's metadata: authorization and
/// token endpoints set, user info when the provider has one.
type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// OpenID Connect sign-in with one provider: built once from
/// [`OidcSettings`], shared by every request.
pub struct OidcSignIn {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    provider: tokio::sync::Mutex<Option<Discovered>>,
}

impl fmt::Debug for OidcSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSignIn")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in was refused, and who it is known to be so far.
struct Refusal {
    why: String,
    subject: Option<String>,
    claimed: Option<String>,
    kind: ErrorKind,
}

impl Refusal {
    fn new(why: impl Into<String>) -> Refusal {
        Refusal {
            why: why.into(),
            subject: None,
            claimed: None,
            kind: ErrorKind::Unauthenticated,
        }
    }

    fn unavailable(why: impl Into<String>) -> Refusal {
        Refusal {
            kind: ErrorKind::Unavailable,
            ..Refusal::new(why)
        }
    }

    fn of(mut self, subject: &SubjectIdentifier) -> Refusal {
        self.subject = Some(bounded(subject.as_str()));
        self
    }
}

/// Why an ID token was refused: a key that may be new (worth fetching
/// the key set again for), or anything else.
#[derive(Debug)]
enum Rejected {
    Key(String),
    Claims(String),
}

impl OidcSignIn {
    /// Checks the settings' URLs; no request is made (the provider is
    /// discovered on first use, see [`OidcSignIn::check`]).
    ///
    /// Errors: `invalid` for an issuer or redirect URI that is not an
    /// http(s) URL, an empty client id, or an HTTP client that cannot be
    /// built.
    pub fn new(settings: OidcSettings) -> Result<OidcSignIn, Error> {
        let http_url = |what: &str, value: &str| -> Result<(), Error> {
            match value.split_once("://") {
                Some(("https" | "http", rest)) if !rest.is_empty() => Ok(()),
                _ => Err(Error::invalid(format!(
                    "the OpenID Connect {what} {value:?} is not an http(s) URL"
                ))),
            }
        };
        http_url("issuer", &settings.issuer)?;
        http_url("redirect URI", &settings.redirect_uri)?;
        if settings.client_id.is_empty() {
            return Err(Error::invalid("the OpenID Connect client id is empty"));
        }
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| Error::invalid(format!("the OpenID Connect issuer: {e}")))?;
        let redirect = RedirectUrl::new(settings.redirect_uri.clone())
            .map_err(|e| Error::invalid(format!("the OpenID Connect redirect URI: {e}")))?;
        // No redirects: a provider's endpoint that redirects could send a
        // request (with the code or the secret) anywhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| Error::invalid(format!("no HTTP client for the provider: {e}")))?;
        Ok(OidcSignIn {
            settings,
            issuer,
            redirect,
            http,
            provider: tokio::sync::Mutex::new(None),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The issuer's host (and port), to name the provider to people.
    pub fn issuer_host(&self) -> String {
        let url = self.issuer.url();
        match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => self.settings.issuer.clone(),
        }
    }

    /// Discovers the provider now (a server checks at start).
    ///
    /// Errors: `unavailable` when the provider or its metadata cannot be
    /// had.
    pub async fn check(&self) -> Result<(), Error> {
        self.metadata(Freshness::Cached)
            .await
            .map(drop)
            .map_err(|r| Error::new(r.kind, r.why))
    }

    /// Begins a sign-in: stores it (method `oidc`, the state's SHA-256,
    /// the nonce, the PKCE verifier, [`OIDC_SIGN_IN_TTL`]) and gives the
    /// provider's authorization URL to send the browser to.
    ///
    /// Errors: `unavailable` when the provider cannot be discovered or
    /// takes none of the client authentications this client can do; the
    /// store's.
    pub async fn begin(&self, app: &App) -> Result<OidcStarted, Error> {
        let metadata = self
            .metadata(Freshness::Cached)
            .await
            .map_err(|r| Error::new(r.kind, r.why))?;
        let client = self
            .client(metadata)
            .map_err(|r| Error::new(r.kind, r.why))?;
        let (state, state_sha256) = new_secret("")?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                {
                    let state = state.clone();
                    move || CsrfToken::new(state)
                },
                {
                    let nonce = nonce.clone();
                    move || nonce
                },
            )
            .set_pkce_challenge(challenge);
        if let Some(scope) = self.settings.user_claim.scope() {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        let (url, _, _) = request.url();
        app.store()
            .sessions()
            .begin_sign_in(NewSignIn {
                sha256: &state_sha256,
                method: METHOD,
                organization_id: &self.settings.organization,
                user: None,
                nonce: Some(nonce.secret()),
                pkce_verifier: Some(verifier.secret()),
                expires_at: micros_from_now(OIDC_SIGN_IN_TTL),
            })
            .await
            .map_err(store_error)?;
        Ok(OidcStarted {
            url: url.to_string(),
            state,
        })
    }

    /// Finishes a sign-in from the provider's redirect back: takes the
    /// sign-in named by the state once, exchanges the code, verifies the
    /// ID token, maps the person to a user of the organization and opens
    /// a session (`user.login`, method `oidc`, with the issuer and the
    /// subject).
    ///
    /// Errors: `unauthenticated`, saying why, for every refusal (recorded
    /// as `user.login_failed` when the state names a sign-in); the same
    /// with `unavailable` when the provider cannot be reached; the
    /// store's.
    pub async fn finish(
        &self,
        app: &App,
        callback: &OidcCallback,
        client: &Client,
    ) -> Result<OpenedSession, Error> {
        let refused = |why: &str| Error::unauthenticated(format!("this sign-in {why}"));
        let Some(state) = callback.state.as_deref().filter(|s| !s.is_empty()) else {
            return Err(refused("names no sign-in (no state)"));
        };
        // Compared as digests: equal lengths, no early exit on content.
        let same_browser = callback
            .browser_state
            .as_deref()
            .is_some_and(|kept| sha256_hex(kept) == sha256_hex(state));
        if !same_browser {
            tracing::info!("an OpenID Connect callback without this browser's state was refused");
            return Err(refused("was not begun in this browser: sign in again"));
        }
        let taken = app
            .store()
            .sessions()
            .take_sign_in(&sha256_hex(state))
            .await
            .map_err(store_error)?;
        let (sign_in, why) = match taken {
            Taken::Fresh(s) if s.method == METHOD => (s, None),
            Taken::Fresh(s) => (s, Some("is not an OpenID Connect sign-in")),
            Taken::Used(s) => (s, Some("was used already")),
            Taken::Expired(s) => (s, Some("has expired")),
            Taken::Unknown => {
                tracing::info!("an unknown OpenID Connect state was refused");
                return Err(refused("is not one of this server's"));
            }
        };
        let organization = sign_in.organization_id.clone();
        let outcome = match why {
            Some(why) => Err(Refusal::new(why)),
            None => {
                self.identify(
                    app,
                    &organization,
                    callback,
                    sign_in.nonce.as_deref(),
                    sign_in.pkce_verifier.as_deref(),
                )
                .await
            }
        };
        let (user, subject) = match outcome {
            Ok(found) => found,
            Err(refusal) => return Err(self.refuse(app, &organization, client, refusal).await),
        };
        let mut details = serde_json::Map::new();
        details.insert("issuer".into(), self.settings.issuer.clone().into());
        details.insert("subject".into(), subject.into());
        app.open_session(&organization, &user, METHOD, client, details)
            .await
    }

    /// From the callback to the user it signs in and the provider's
    /// subject.
    async fn identify(
        &self,
        app: &App,
        organization: &str,
        callback: &OidcCallback,
        nonce: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<(String, String), Refusal> {
        if let Some(error) = &callback.error {
            let mut why = format!("was refused by the provider: {}", bounded(error));
            if let Some(description) = &callback.error_description {
                why.push_str(&format!(" ({})", bounded(description)));
            }
            return Err(Refusal::new(why));
        }
        // RFC 9207: an answer that names another issuer is a mix-up.
        if let Some(iss) = &callback.iss
            && iss != self.issuer.as_str()
        {
            return Err(Refusal::new(format!(
                "was answered by another issuer ({})",
                bounded(iss)
            )));
        }
        let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(Refusal::new("came back without a code"));
        };
        let (Some(nonce), Some(verifier)) = (nonce, verifier) else {
            return Err(Refusal::new("was stored without its nonce or verifier"));
        };
        let nonce = Nonce::new(nonce.to_string());
        let metadata = self.metadata(Freshness::Cached).await?;
        let keys = metadata.jwks().clone();
        let client = self.client(metadata)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Refusal::unavailable(format!("cannot redeem the code: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Refusal::new("got no ID token from the provider"))?;
        let claims = match self.verify(keys, id_token, &nonce) {
            Ok(claims) => claims,
            // The provider may have rotated its keys since discovery.
            Err(Rejected::Key(_)) => {
                let metadata = self.metadata(Freshness::Refetched).await?;
                self.verify(metadata.jwks().clone(), id_token, &nonce)
                    .map_err(|r| Refusal::new(rejected_why(r)))?
            }
            Err(r) => return Err(Refusal::new(rejected_why(r))),
        };
        let subject = claims.subject().clone();
        let from_token = claimed_user(self.settings.user_claim, &claims);
        let user = match from_token {
            Claimed::Found(user) => user,
            Claimed::Refused(why) => return Err(Refusal::new(why).of(&subject)),
            // Many providers give profile claims at the user info endpoint
            // only (OpenID Connect Core 1.0 §5.4); its answer must be about
            // the same subject (§5.3.2).
            Claimed::Absent => {
                let info = self.user_info(&client, &tokens, &subject).await?;
                match claimed_user(self.settings.user_claim, &info) {
                    Claimed::Found(user) => user,
                    Claimed::Refused(why) => return Err(Refusal::new(why).of(&subject)),
                    Claimed::Absent => {
                        return Err(Refusal::new(format!(
                            "gave no {} claim for this person",
                            self.settings.user_claim
                        ))
                        .of(&subject));
                    }
                }
            }
        };
        // No account is made: the person must be a user already.
        if app
            .principal(organization, &user, Via::Session)
            .await
            .is_err()
        {
            let mut refusal = Refusal::new(format!(
                "names {} {:?}, who is not a user of organization {:?}",
                self.settings.user_claim,
                bounded(&user),
                organization
            ))
            .of(&subject);
            refusal.claimed = Some(bounded(&user));
            return Err(refusal);
        }
        Ok((user, subject.as_str().to_string()))
    }

    /// The claims of the user info endpoint, about `subject`.
    async fn user_info(
        &self,
        client: &ProviderClient,
        tokens: &openidconnect::core::CoreTokenResponse,
        subject: &SubjectIdentifier,
    ) -> Result<CoreUserInfoClaims, Refusal> {
        let request = client
            .user_info(tokens.access_token().clone(), Some(subject.clone()))
            .map_err(|_| {
                Refusal::new(format!(
                    "gave no {} claim in the ID token and has no user info endpoint",
                    self.settings.user_claim
                ))
                .of(subject)
            })?;
        request.request_async(&self.http).await.map_err(|e| {
            use openidconnect::UserInfoError as U;
            let why = match e {
                U::ClaimsVerification(e) => format!("gave user info that is not valid: {e}"),
                U::Request(_) => "could not read the user info endpoint".to_string(),
                U::Response(status, _, _) => format!("got {status} from the user info endpoint"),
                U::Parse(_) => "got user info that is not JSON claims".to_string(),
                _ => "could not read the user info".to_string(),
            };
            Refusal::new(why).of(subject)
        })
    }

    /// The ID token's claims, verified against the provider's keys and
    /// this client.
    fn verify(
        &self,
        keys: CoreJsonWebKeySet,
        id_token: &CoreIdToken,
        nonce: &Nonce,
    ) -> Result<CoreIdTokenClaims, Rejected> {
        // Not the client's own verifier: that one would take an HMAC
        // signature keyed with the client secret.
        verify_id_token(
            id_token,
            &Expected {
                client_id: &self.settings.client_id,
                issuer: &self.issuer,
                keys,
                nonce,
                now: Utc::now(),
            },
        )
    }

    /// Records a refusal (`user.login_failed`) and gives the error to
    /// answer with.
    async fn refuse(
        &self,
        app: &App,
        organization: &str,
        client: &Client,
        refusal: Refusal,
    ) -> Error {
        let mut details = client.details();
        details.insert("method".into(), METHOD.into());
        details.insert("why".into(), refusal.why.clone().into());
        details.insert("issuer".into(), self.settings.issuer.clone().into());
        if let Some(subject) = &refusal.subject {
            details.insert("subject".into(), subject.clone().into());
        }
        if let Some(claimed) = &refusal.claimed {
            details.insert("claimed_user".into(), claimed.clone().into());
        }
        let recorded = app
            .store()
            .sessions()
            .record_failure(
                app.signer(),
                organization,
                None,
                serde_json::Value::Object(details),
            )
            .await;
        if let Err(e) = recorded {
            return store_error(e);
        }
        app.deliver_audit().await;
        Error::new(
            refusal.kind,
            format!(
                "signing in with {} failed: this sign-in {}",
                self.issuer_host(),
                refusal.why
            ),
        )
    }

    /// The provider's metadata (and key set), discovered when there is
    /// none, it is old, or `freshness` asks for it again.
    async fn metadata(&self, freshness: Freshness) -> Result<CoreProviderMetadata, Refusal> {
        // Held across the discovery so that concurrent sign-ins wait for
        // one request instead of each making its own.
        let mut cached = self.provider.lock().await;
        if let Some(found) = cached.as_ref() {
            let young_enough = match freshness {
                Freshness::Cached => METADATA_MAX_AGE,
                Freshness::Refetched => METADATA_MIN_AGE,
            };
            if found.at.elapsed() < young_enough {
                return Ok(found.metadata.clone());
            }
        }
        match CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await {
            Ok(metadata) => {
                *cached = Some(Discovered {
                    metadata: metadata.clone(),
                    at: Instant::now(),
                });
                Ok(metadata)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.settings.issuer, error = %discovery_why(&e), "OpenID Connect discovery failed");
                Err(Refusal::unavailable(format!(
                    "could not discover the provider {}: {}",
                    self.settings.issuer,
                    discovery_why(&e)
                )))
            }
        }
    }

    /// A client of the provider described by `metadata`, authenticating
    /// at the token endpoint as the metadata allows.
    fn client(&self, metadata: CoreProviderMetadata) -> Result<ProviderClient, Refusal> {
        let secret = self.settings.client_secret.clone().map(ClientSecret::new);
        let auth = match &secret {
            None => AuthType::RequestBody,
            Some(_) => {
                token_auth(metadata.token_endpoint_auth_methods_supported()).ok_or_else(|| {
                    Refusal::unavailable(
                        "the provider takes neither client_secret_basic nor client_secret_post",
                    )
                })?
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            secret,
        )
        .set_redirect_uri(self.redirect.clone())
        .set_auth_type(auth))
    }
}

/// How to send the client secret: HTTP Basic unless the provider lists
/// only `client_secret_post` (no list means Basic, OpenID Connect
/// Discovery 1.0 §3); none when it lists neither.
fn token_auth(supported: Option<&Vec<CoreClientAuthMethod>>) -> Option<AuthType> {
    let Some(supported) = supported else {
        return Some(AuthType::BasicAuth);
    };
    if supported.contains(&CoreClientAuthMethod::ClientSecretBasic) {
        Some(AuthType::BasicAuth)
    } else if supported.contains(&CoreClientAuthMethod::ClientSecretPost) {
        Some(AuthType::RequestBody)
    } else {
        None
    }
}

/// What an ID token must say (OpenID Connect Core 1.0 §3.1.3.7).
struct Expected<'a> {
    client_id: &'a str,
    issuer: &'a IssuerUrl,
    keys: CoreJsonWebKeySet,
    nonce: &'a Nonce,
    now: DateTime<Utc>,
}

/// Verifies an ID token: its signature by one of the provider's keys with
/// a public-key algorithm, `iss`, `aud` (this client, no untrusted other
/// audience), `azp` (this client when present), `exp` and `iat` within
/// [`CLOCK_LEEWAY`], `iat` no older than a sign-in lasts, and `nonce`.
fn verify_id_token(
    id_token: &CoreIdToken,
    expected: &Expected<'_>,
) -> Result<CoreIdTokenClaims, Rejected> {
    let leeway = chrono::Duration::from_std(CLOCK_LEEWAY).unwrap_or_default();
    let oldest = chrono::Duration::from_std(OIDC_SIGN_IN_TTL).unwrap_or_default() + leeway;
    let now = expected.now;
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_string()),
        expected.issuer.clone(),
        expected.keys.clone(),
    )
    .set_allowed_algs(ALLOWED_ALGS)
    // `exp` is compared with this time: the leeway is on the token's side.
    .set_time_fn(move || now - leeway)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + leeway {
            Err(format!("issued in the future ({iat})"))
        } else if iat < now - oldest {
            Err(format!("issued too long ago ({iat})"))
        } else {
            Ok(())
        }
    });
    let claims = id_token
        .claims(&verifier, expected.nonce)
        .map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                ref inner @ (SignatureVerificationError::NoMatchingKey
                | SignatureVerificationError::CryptoError(_)),
            ) => Rejected::Key(format!("its signature does not verify: {inner}")),
            ClaimsVerificationError::SignatureVerification(inner) => {
                Rejected::Claims(format!("its signature is refused: {inner}"))
            }
            other => Rejected::Claims(other.to_string()),
        })?;
    // OpenID Connect Core 1.0 §3.1.3.7, 4–5: the library leaves `azp` to
    // the client. It must be this client when present, and be present
    // when there are several audiences.
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != expected.client_id => {
            return Err(Rejected::Claims(format!(
                "it was issued to another party ({})",
                bounded(azp.as_str())
            )));
        }
        None if claims.audiences().len() > 1 => {
            return Err(Rejected::Claims(
                "it has several audiences and no authorized party".into(),
            ));
        }
        _ => {}
    }
    Ok(claims.clone())
}

fn rejected_why(rejected: Rejected) -> String {
    match rejected {
        Rejected::Key(why) | Rejected::Claims(why) => format!("got an ID token refused: {why}"),
    }
}

/// What a set of claims says of the user.
enum Claimed {
    Found(String),
    /// The claim is not there.
    Absent,
    /// It is there and cannot be used, saying why.
    Refused(String),
}

/// The claims an ID token and the user info endpoint both carry.
trait ProfileClaims {
    fn subject(&self) -> &SubjectIdentifier;
    fn preferred_username(&self) -> Option<&str>;
    fn email(&self) -> Option<&str>;
    fn email_verified(&self) -> Option<bool>;
}

impl ProfileClaims for CoreIdTokenClaims {
    fn subject(&self) -> &SubjectIdentifier {
        CoreIdTokenClaims::subject(self)
    }
    fn preferred_username(&self) -> Option<&str> {
        CoreIdTokenClaims::preferred_username(self).map(|u| u.as_str())
    }
    fn email(&self) -> Option<&str> {
        CoreIdTokenClaims::email(self).map(|e| e.as_str())
    }
    fn email_verified(&self) -> Option<bool> {
        CoreIdTokenClaims::email_verified(self)
    }
}

impl ProfileClaims for CoreUserInfoClaims {
    fn subject(&self) -> &SubjectIdentifier {
        CoreUserInfoClaims::subject(self)
    }
    fn preferred_username(&self) -> Option<&str> {
        CoreUserInfoClaims::preferred_username(self).map(|u| u.as_str())
    }
    fn email(&self) -> Option<&str> {
        CoreUserInfoClaims::email(self).map(|e| e.as_str())
    }
    fn email_verified(&self) -> Option<bool> {
        CoreUserInfoClaims::email_verified(self)
    }
}

/// The user `claims` name by `claim`.
fn claimed_user(claim: UserClaim, claims: &impl ProfileClaims) -> Claimed {
    match claim {
        UserClaim::Subject => Claimed::Found(claims.subject().as_str().to_string()),
        UserClaim::PreferredUsername => match claims.preferred_username() {
            Some(name) => Claimed::Found(name.to_string()),
            None => Claimed::Absent,
        },
        UserClaim::Email => match claims.email() {
            None => Claimed::Absent,
            Some(_) if claims.email_verified() != Some(true) => {
                Claimed::Refused("gave an email address that is not verified".into())
            }
            Some(email) => match email.rsplit_once('@') {
                Some((local, _)) if !local.is_empty() => Claimed::Found(local.to_string()),
                _ => Claimed::Refused("gave an email claim that is not an address".into()),
            },
        },
    }
}

/// A token endpoint's refusal as a reason, never with what was sent.
fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> Refusal {
    match e {
        RequestTokenError::ServerResponse(response) => {
            let mut why = format!(
                "was refused at the token endpoint: {}",
                bounded(response.error().as_ref())
            );
            if let Some(description) = response.error_description() {
                why.push_str(&format!(" ({})", bounded(description)));
            }
            Refusal::new(why)
        }
        RequestTokenError::Request(_) => {
            Refusal::unavailable("could not reach the provider's token endpoint")
        }
        RequestTokenError::Parse(_, _) => {
            Refusal::new("got a token response that is not one (OpenID Connect Core 1.0 §3.1.3.3)")
        }
        RequestTokenError::Other(why) => {
            Refusal::new(format!("got an unusable token response: {}", bounded(&why)))
        }
    }
}

/// A discovery failure as a reason.
fn discovery_why<RE: std::error::Error + 'static>(e: &openidconnect::DiscoveryError<RE>) -> String {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Request(_) => "it cannot be reached".into(),
        D::Response(status, _, _) => format!("it answered {status}"),
        D::Parse(_) => "its metadata is not valid JSON metadata".into(),
        D::Validation(why) => format!("its metadata is not valid: {why}"),
        D::UrlParse(e) => format!("a URL in its metadata is not one: {e}"),
        D::Other(why) => why.clone(),
        _ => "unexpected".into(),
    }
}

/// Text from the provider or a claim, bounded for the audit log and a
/// page.
fn bounded(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Microseconds since the epoch, `ttl` from now.
fn micros_from_now(ttl: Duration) -> i64 {
    smithers_store::now_micros().saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::{Signer as _, SigningKey};
    use serde_json::{Value, json};
    use sha2::{Digest as _, Sha256};

    use super::*;

    const ISSUER: &str = "https://id.example";
    const CLIENT: &str = "smithers";
    const NONCE: &str = "n-0123456789";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The provider's key set: key 1, as `k1`.
    fn keys() -> CoreJsonWebKeySet {
        serde_json::from_value(json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "k1",
            "x": b64(key(1).verifying_key().as_bytes()),
        }]}))
        .unwrap()
    }

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "aud": CLIENT, "sub": "0001", "exp": now() + 300,
            "iat": now(), "nonce": NONCE, "preferred_username": "alice",
        })
    }

    fn header() -> Value {
        json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"})
    }

    /// A JWS in compact form, signed by key `seed`.
    fn signed_by(seed: u8, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
        let signature = key(seed).sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes()))
    }

    fn signed(payload: &Value) -> String {
        signed_by(1, &header(), payload)
    }

    /// HMAC-SHA-256 (RFC 2104), for a forger's token.
    fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .to_vec()
    }

    /// The token verified as the provider's, with the nonce stored.
    fn verify(jwt: &str) -> Result<CoreIdTokenClaims, String> {
        verify_with(jwt, NONCE)
    }

    fn verify_with(jwt: &str, nonce: &str) -> Result<CoreIdTokenClaims, String> {
        // A token the library cannot even read is refused as well.
        let token: CoreIdToken = serde_json::from_value(Value::String(jwt.into()))
            .map_err(|e| format!("unreadable: {e}"))?;
        let issuer = IssuerUrl::new(ISSUER.into()).unwrap();
        let nonce = Nonce::new(nonce.into());
        verify_id_token(
            &token,
            &Expected {
                client_id: CLIENT,
                issuer: &issuer,
                keys: keys(),
                nonce: &nonce,
                now: Utc::now(),
            },
        )
        .map_err(|r| format!("{r:?}"))
    }

    fn with(changes: Value) -> Value {
        let mut c = claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    #[test]
    fn a_token_of_the_provider_for_this_client_and_sign_in_is_accepted() {
        let claims = verify(&signed(&claims())).unwrap();
        assert_eq!(claims.subject().as_str(), "0001");
        assert!(matches!(
            claimed_user(UserClaim::PreferredUsername, &claims),
            Claimed::Found(u) if u == "alice"
        ));
        assert!(matches!(
            claimed_user(UserClaim::Subject, &claims),
            Claimed::Found(u) if u == "0001"
        ));
        // Within the clock's leeway, and with this client as azp.
        let late = with(json!({"exp": now() - 20, "iat": now() - 200, "azp": CLIENT}));
        verify(&signed(&late)).unwrap();
    }

    #[test]
    fn a_nonce_other_than_the_one_stored_is_refused() {
        let e = verify_with(&signed(&claims()), "n-other").unwrap_err();
        assert!(e.contains("nonce mismatch"), "{e}");
        let e = verify(&signed(&with(json!({"nonce": null})))).unwrap_err();
        assert!(e.contains("missing nonce"), "{e}");
    }

    #[test]
    fn a_tampered_or_forged_signature_is_refused() {
        // The payload changed after signing.
        let jwt = signed(&claims());
        let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
        parts[1] = b64(with(json!({"preferred_username": "admin"})).to_string());
        let e = verify(&parts.join(".")).unwrap_err();
        assert!(e.starts_with("Key("), "{e}");
        // Signed by a key the provider does not have, under its key id.
        let e = verify(&signed_by(2, &header(), &claims())).unwrap_err();
        assert!(e.starts_with("Key("), "{e}");
        // Under a key id it does not have.
        let e = verify(&signed_by(
            1,
            &json!({"alg": "EdDSA", "kid": "k9"}),
            &claims(),
        ))
        .unwrap_err();
        assert!(e.contains("No matching key"), "{e}");
    }

    #[test]
    fn none_and_hmac_are_refused() {
        let payload = b64(claims().to_string());
        let unsigned = format!("{}.{payload}.", b64(json!({"alg": "none"}).to_string()));
        let e = verify(&unsigned).unwrap_err();
        assert!(e.contains("No signature"), "{e}");
        // HMAC keyed with the public key, as a forger would.
        let public = key(1).verifying_key().to_bytes();
        let input = format!(
            "{}.{payload}",
            b64(json!({"alg": "HS256", "kid": "k1"}).to_string())
        );
        let forged = format!("{input}.{}", b64(hmac_sha256(&public, input.as_bytes())));
        let e = verify(&forged).unwrap_err();
        assert!(e.contains("Disallowed"), "{e}");
    }

    #[test]
    fn another_issuer_audience_party_or_time_is_refused() {
        let cases = [
            (json!({"iss": "https://evil.example"}), "Invalid issuer"),
            (json!({"aud": "someone-else"}), "Invalid audiences"),
            (json!({"aud": [CLIENT, "someone-else"]}), "not a trusted"),
            (json!({"azp": "someone-else"}), "another party"),
            (json!({"exp": now() - 120}), "Expired"),
            (json!({"iat": now() + 600}), "in the future"),
            (
                json!({"iat": now() - 3600, "exp": now() + 300}),
                "too long ago",
            ),
        ];
        for (changes, expected) in cases {
            let e = verify(&signed(&with(changes.clone()))).unwrap_err();
            assert!(e.contains(expected), "{changes}: {e}");
        }
    }

    #[test]
    fn an_email_names_its_local_part_only_when_verified() {
        let claims = |verified: Value| {
            verify(&signed(&with(json!({
                "email": "alice@corp.example", "email_verified": verified,
            }))))
            .unwrap()
        };
        assert!(matches!(
            claimed_user(UserClaim::Email, &claims(json!(true))),
            Claimed::Found(u) if u == "alice"
        ));
        for unverified in [json!(false), Value::Null] {
            assert!(matches!(
                claimed_user(UserClaim::Email, &claims(unverified)),
                Claimed::Refused(_)
            ));
        }
        let none = verify(&signed(&with(json!({"preferred_username": null})))).unwrap();
        assert!(matches!(
            claimed_user(UserClaim::PreferredUsername, &none),
            Claimed::Absent
        ));
    }

    #[test]
    fn the_secret_goes_basic_unless_only_post_is_taken() {
        use CoreClientAuthMethod as M;
        let auth = |methods: Option<Vec<M>>| token_auth(methods.as_ref());
        assert!(matches!(auth(None), Some(AuthType::BasicAuth)));
        assert!(matches!(
            auth(Some(vec![M::ClientSecretPost, M::ClientSecretBasic])),
            Some(AuthType::BasicAuth)
        ));
        assert!(matches!(
            auth(Some(vec![M::ClientSecretPost])),
            Some(AuthType::RequestBody)
        ));
        assert!(auth(Some(vec![M::PrivateKeyJwt])).is_none());
    }

    #[test]
    fn settings_are_checked_and_the_secret_never_shown() {
        let settings = OidcSettings {
            issuer: "https://id.example/realms/x".into(),
            client_id: "smithers".into(),
            client_secret: Some("s3cr3t-value".into()),
            organization: "local".into(),
            user_claim: UserClaim::default(),
            redirect_uri: "https://smithers.example/sign-in/oidc/callback".into(),
        };
        let oidc = OidcSignIn::new(settings.clone()).unwrap();
        assert_eq!(oidc.issuer_host(), "id.example");
        assert!(!format!("{oidc:?}").contains("s3cr3t"));
        for bad in [
            OidcSettings {
                issuer: "id.example".into(),
                ..settings.clone()
            },
            OidcSettings {
                redirect_uri: "ftp://x".into(),
                ..settings.clone()
            },
            OidcSettings {
                client_id: String::new(),
                ..settings.clone()
            },
        ] {
            assert_eq!(OidcSignIn::new(bad).unwrap_err().kind, ErrorKind::Invalid);
        }
        assert_eq!("sub".parse::<UserClaim>(), Ok(UserClaim::Subject));
        assert!("name".parse::<UserClaim>().is_err());
    }
}
