//! Signing in with GitHub: the web application flow of a GitHub App
//! (GitHub Docs, "Generating a user access token for a GitHub App"), an
//! OAuth 2.0 authorization code flow (RFC 6749 §4.1) with a `state` and
//! PKCE (RFC 7636, `S256`).
//!
//! ```text
//! begin   a sign-in stored: SHA-256 of the state, the PKCE verifier,
//!         10 minutes → {web}/login/oauth/authorize?client_id&redirect_uri
//!         &state&code_challenge&code_challenge_method=S256
//! finish  the sign-in taken once by its state → POST
//!         {web}/login/oauth/access_token (client id and secret, code,
//!         redirect_uri, code_verifier) → GET {api}/user with the user
//!         access token → `login` mapped to an existing user → a session
//! ```
//!
//! The person is the user the GitHub App linked to their numeric GitHub
//! id (a member it made a user), else the user whose name is their GitHub
//! `login`; either way one who already exists in the configured
//! organization: nobody is created.
//! GitHub's numeric `id` (stable across renames of the login) is recorded
//! with every sign-in. Every refusal a stored sign-in can be attributed to
//! is recorded as `user.login_failed`; a state that matches nothing is
//! refused unrecorded. The user access token is used for the one request
//! to `/user` and dropped: it is never stored, logged, audited or put in
//! an error, nor are the code and the client secret.

use std::fmt;
use std::time::Duration;

use openidconnect::PkceCodeChallenge;
use smithers_api::{Error, ErrorKind};
use smithers_store::{NewSignIn, Taken};

use crate::error::store_error;
use crate::secret::{new_secret, sha256_hex};
use crate::sessions::{Client, OpenedSession};
use crate::{App, Via};

/// How long a GitHub sign-in may take, from the redirect to GitHub to the
/// callback.
pub const GITHUB_SIGN_IN_TTL: Duration = Duration::from_secs(10 * 60);

/// The sign-in method's name in the store and the audit log.
const METHOD: &str = "github";

/// How long one request to GitHub may take.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(15);

/// The REST API version asked for (GitHub Docs, "API Versions").
const API_VERSION: &str = "2022-11-28";

/// The most of an answer from GitHub that is read: a token response or a
/// user is a few kilobytes.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// How a server signs people in with GitHub.
#[derive(Clone)]
pub struct GithubSettings {
    /// GitHub's web origin, where people authorize the App:
    /// `https://github.com`, or a GitHub Enterprise Server's
    /// `https://HOST`.
    pub web_url: String,
    /// GitHub's REST API: `https://api.github.com`, or a GitHub Enterprise
    /// Server's `https://HOST/api/v3`.
    pub api_url: String,
    /// The GitHub App's client id (not its app id).
    pub client_id: String,
    /// The GitHub App's client secret (GitHub requires it to redeem a
    /// code).
    pub client_secret: String,
    /// The organization whose users people sign in as.
    pub organization: String,
    /// Where GitHub sends the browser back:
    /// `<public origin>/sign-in/github/callback`, the App's callback URL.
    pub redirect_uri: String,
}

impl fmt::Debug for GithubSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubSettings")
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("organization", &self.organization)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// A sign-in begun: where to send the browser, and the state to bind to
/// it (a front end keeps it in a short-lived cookie and hands it back to
/// [`GithubSignIn::finish`], so that a callback started in another
/// browser is refused: a login CSRF).
#[derive(Debug, Clone)]
pub struct GithubStarted {
    /// GitHub's authorization URL, with every parameter.
    pub url: String,
    /// The `state` parameter (a secret of this browser's).
    pub state: String,
}

/// What GitHub's redirect back carried (RFC 6749 §4.1.2 and §4.1.2.1),
/// and the state this browser began with.
#[derive(Clone, Default)]
pub struct GithubCallback {
    /// The code (never logged: `Debug` hides it).
    pub code: Option<String>,
    /// The `state` this server sent, as it came back.
    pub state: Option<String>,
    /// GitHub's error code, when it refused (`access_denied`, ...).
    pub error: Option<String>,
    /// GitHub's words about the error, for people.
    pub error_description: Option<String>,
    /// The state the browser kept from [`GithubSignIn::begin`].
    pub browser_state: Option<String>,
}

impl fmt::Debug for GithubCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        f.debug_struct("GithubCallback")
            .field("code", &hidden(&self.code))
            .field("state", &hidden(&self.state))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("browser_state", &hidden(&self.browser_state))
            .finish()
    }
}

/// Sign-in with GitHub: built once from [`GithubSettings`], shared by
/// every request.
pub struct GithubSignIn {
    settings: GithubSettings,
    /// `{web}/login/oauth/authorize`.
    authorize_url: url::Url,
    /// `{web}/login/oauth/access_token`.
    token_url: url::Url,
    /// `{api}/user`.
    user_url: url::Url,
    http: reqwest::Client,
}

impl fmt::Debug for GithubSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubSignIn")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Who GitHub says the person is (`GET /user`, "Get the authenticated
/// user"): the two fields a sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GithubUser {
    login: String,
    id: u64,
}

/// Why a sign-in was refused, and who it is known to be so far.
struct Refusal {
    why: String,
    user: Option<GithubUser>,
    kind: ErrorKind,
}

impl Refusal {
    fn new(why: impl Into<String>) -> Refusal {
        Refusal {
            why: why.into(),
            user: None,
            kind: ErrorKind::Unauthenticated,
        }
    }

    fn unavailable(why: impl Into<String>) -> Refusal {
        Refusal {
            kind: ErrorKind::Unavailable,
            ..Refusal::new(why)
        }
    }
}

/// The user access token, for the one request it is used for: no
/// `Debug`, no `Clone`, dropped with the sign-in's request.
struct AccessToken(String);

impl GithubSignIn {
    /// Checks the settings; no request is made.
    ///
    /// Errors: `invalid` for a web or API URL or a redirect URI that is
    /// not an http(s) URL, an empty client id or secret, or an HTTP client
    /// that cannot be built.
    pub fn new(settings: GithubSettings) -> Result<GithubSignIn, Error> {
        let base = |what: &str, value: &str| -> Result<url::Url, Error> {
            let refused =
                || Error::invalid(format!("the GitHub {what} {value:?} is not an http(s) URL"));
            let parsed = url::Url::parse(value).map_err(|_| refused())?;
            if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
                return Err(refused());
            }
            Ok(parsed)
        };
        let web = base("URL", &settings.web_url)?;
        let api = base("API URL", &settings.api_url)?;
        base("redirect URI", &settings.redirect_uri)?;
        if settings.client_id.is_empty() {
            return Err(Error::invalid("the GitHub App's client id is empty"));
        }
        if settings.client_secret.is_empty() {
            return Err(Error::invalid("the GitHub App's client secret is empty"));
        }
        let under = |base: &url::Url, path: &str| -> url::Url {
            // Joined to the base's own path, so that `https://HOST/api/v3`
            // gives `https://HOST/api/v3/user`.
            let mut joined = base.clone();
            let prefix = base.path().trim_end_matches('/').to_string();
            joined.set_path(&format!("{prefix}/{path}"));
            joined.set_query(None);
            joined.set_fragment(None);
            joined
        };
        let authorize_url = under(&web, "login/oauth/authorize");
        let token_url = under(&web, "login/oauth/access_token");
        let user_url = under(&api, "user");
        // No redirects: an endpoint that redirects could send a request
        // (with the code, the secret or the token) anywhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(GITHUB_TIMEOUT)
            .user_agent(concat!("smithers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::invalid(format!("no HTTP client for GitHub: {e}")))?;
        Ok(GithubSignIn {
            settings,
            authorize_url,
            token_url,
            user_url,
            http,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &GithubSettings {
        &self.settings
    }

    /// GitHub's name for people: `GitHub`, or a GitHub Enterprise Server's
    /// host.
    pub fn provider_name(&self) -> String {
        match self.authorize_url.host_str() {
            Some("github.com") | None => "GitHub".to_string(),
            Some(host) => format!("GitHub ({host})"),
        }
    }

    /// Begins a sign-in: stores it (method `github`, the state's SHA-256,
    /// the PKCE verifier, [`GITHUB_SIGN_IN_TTL`]) and gives GitHub's
    /// authorization URL to send the browser to.
    ///
    /// Errors: the store's.
    pub async fn begin(&self, app: &App) -> Result<GithubStarted, Error> {
        let (state, state_sha256) = new_secret("")?;
        // RFC 7636 §4.1–4.2: 32 random bytes as the verifier, its SHA-256
        // as the challenge.
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut url = self.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        app.store()
            .sessions()
            .begin_sign_in(NewSignIn {
                sha256: &state_sha256,
                method: METHOD,
                organization_id: &self.settings.organization,
                user: None,
                nonce: None,
                pkce_verifier: Some(verifier.secret()),
                expires_at: micros_from_now(GITHUB_SIGN_IN_TTL),
            })
            .await
            .map_err(store_error)?;
        Ok(GithubStarted {
            url: url.to_string(),
            state,
        })
    }

    /// Finishes a sign-in from GitHub's redirect back: takes the sign-in
    /// named by the state once, redeems the code with the verifier, asks
    /// GitHub who the token's user is, maps their login to a user of the
    /// organization and opens a session (`user.login`, method `github`,
    /// with the GitHub login and id).
    ///
    /// Errors: `unauthenticated`, saying why, for every refusal (recorded
    /// as `user.login_failed` when the state names a sign-in); the same
    /// with `unavailable` when GitHub cannot be reached; the store's.
    pub async fn finish(
        &self,
        app: &App,
        callback: &GithubCallback,
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
            tracing::info!("a GitHub callback without this browser's state was refused");
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
            Taken::Fresh(s) => (s, Some("is not a GitHub sign-in")),
            Taken::Used(s) => (s, Some("was used already")),
            Taken::Expired(s) => (s, Some("has expired")),
            Taken::Unknown => {
                tracing::info!("an unknown GitHub state was refused");
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
                    sign_in.pkce_verifier.as_deref(),
                )
                .await
            }
        };
        let (user, name) = match outcome {
            Ok(found) => found,
            Err(refusal) => return Err(self.refuse(app, &organization, client, refusal).await),
        };
        let mut details = serde_json::Map::new();
        details.insert("github".into(), self.settings.web_url.clone().into());
        details.insert("github_login".into(), user.login.clone().into());
        details.insert("github_id".into(), user.id.into());
        app.open_session(&organization, &name, METHOD, client, details)
            .await
    }

    /// From the callback to the GitHub user it signs in, who is a user of
    /// `organization`.
    async fn identify(
        &self,
        app: &App,
        organization: &str,
        callback: &GithubCallback,
        verifier: Option<&str>,
    ) -> Result<(GithubUser, String), Refusal> {
        if let Some(error) = &callback.error {
            let mut why = format!("was refused by GitHub: {}", bounded(error));
            if let Some(description) = &callback.error_description {
                why.push_str(&format!(" ({})", bounded(description)));
            }
            return Err(Refusal::new(why));
        }
        let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(Refusal::new("came back without a code"));
        };
        let Some(verifier) = verifier else {
            return Err(Refusal::new("was stored without its verifier"));
        };
        // The token lives for this one request, then is dropped.
        let user = {
            let token = self.redeem(code, verifier).await?;
            self.user(&token).await?
        };
        // A GitHub member the App made a user is that user by GitHub's
        // numeric id, whatever the login is now; anyone else is the user
        // named as their login. No account is made: it must exist already.
        let id = i64::try_from(user.id).unwrap_or(-1);
        let members = match app.store().github().members(organization).await {
            Ok(members) => members,
            Err(e) => {
                return Err(Refusal {
                    user: Some(user.clone()),
                    ..Refusal::new(format!("could not be checked: {e}"))
                });
            }
        };
        let name = match members.iter().find(|m| m.github_id == id) {
            Some(linked) => linked.user_name.clone(),
            None => {
                // A user linked to another GitHub account is that account's:
                // a login freed by a rename and taken by someone else does
                // not sign in as them.
                if members.iter().any(|m| m.user_name == user.login) {
                    return Err(Refusal {
                        user: Some(user.clone()),
                        ..Refusal::new(format!(
                            "is by GitHub user {:?} (id {}), but user {:?} belongs to another \
                             GitHub account",
                            user.login, user.id, user.login
                        ))
                    });
                }
                user.login.clone()
            }
        };
        if app
            .principal(organization, &name, Via::Session)
            .await
            .is_err()
        {
            return Err(Refusal {
                user: Some(user.clone()),
                ..Refusal::new(format!(
                    "is by GitHub user {:?}, who is not a user of organization {:?}",
                    user.login, organization
                ))
            });
        }
        Ok((user, name))
    }

    /// Redeems the code for a user access token (GitHub Docs, "Generating
    /// a user access token for a GitHub App", step 3): the client id and
    /// secret, the code, the redirect URI and the PKCE verifier, as a
    /// form, the answer asked for as JSON.
    async fn redeem(&self, code: &str, verifier: &str) -> Result<AccessToken, Refusal> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", &self.settings.client_secret)
            .append_pair("code", code)
            .append_pair("redirect_uri", &self.settings.redirect_uri)
            .append_pair("code_verifier", verifier)
            .finish();
        let answer = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|_| Refusal::unavailable("could not reach GitHub to redeem the code"))?;
        let status = answer.status();
        let json = read_json(answer).await;
        // GitHub answers a refused code with 200 and an `error` member
        // (GitHub Docs, "Troubleshooting OAuth app access token request
        // errors"); RFC 6749 §5.2 says 400. Either is a refusal.
        if let Some(error) = json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(|e| e.as_str())
        {
            let mut why = format!("was refused by GitHub: {}", bounded(error));
            if let Some(description) = json
                .as_ref()
                .and_then(|j| j.get("error_description"))
                .and_then(|d| d.as_str())
            {
                why.push_str(&format!(" ({})", bounded(description)));
            }
            return Err(Refusal::new(why));
        }
        if !status.is_success() {
            return Err(Refusal::unavailable(format!(
                "got {status} from GitHub redeeming the code"
            )));
        }
        let Some(json) = json else {
            return Err(Refusal::new(
                "got a token response from GitHub that is not JSON",
            ));
        };
        // RFC 6749 §5.1: `token_type` is case-insensitive; GitHub says
        // `bearer`.
        let bearer = json
            .get("token_type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        match json.get("access_token").and_then(|t| t.as_str()) {
            Some(token) if bearer && !token.is_empty() => Ok(AccessToken(token.to_string())),
            _ => Err(Refusal::new(
                "got a token response from GitHub without a bearer access token",
            )),
        }
    }

    /// Who the token's user is: `GET {api}/user` (GitHub Docs, REST API
    /// "Get the authenticated user").
    async fn user(&self, token: &AccessToken) -> Result<GithubUser, Refusal> {
        let answer = self
            .http
            .get(self.user_url.clone())
            .bearer_auth(&token.0)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await
            .map_err(|_| Refusal::unavailable("could not reach GitHub's API to name the user"))?;
        let status = answer.status();
        if !status.is_success() {
            let refusal = format!("got {status} from GitHub's API naming the user");
            return Err(if status.is_server_error() {
                Refusal::unavailable(refusal)
            } else {
                Refusal::new(refusal)
            });
        }
        let Some(json) = read_json(answer).await else {
            return Err(Refusal::new("got a user from GitHub that is not JSON"));
        };
        parse_user(&json)
            .ok_or_else(|| Refusal::new("got a user from GitHub without a login and an id"))
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
        details.insert("github".into(), self.settings.web_url.clone().into());
        if let Some(user) = &refusal.user {
            details.insert("github_login".into(), user.login.clone().into());
            details.insert("github_id".into(), user.id.into());
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
                self.provider_name(),
                refusal.why
            ),
        )
    }
}

/// An answer's body as JSON, none when it is not JSON or too long.
async fn read_json(answer: reqwest::Response) -> Option<serde_json::Value> {
    if answer
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return None;
    }
    let bytes = answer.bytes().await.ok()?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// The login and id of a user object; none unless both are there. A
/// login is bounded (GitHub's are 39 characters at most).
fn parse_user(json: &serde_json::Value) -> Option<GithubUser> {
    let login = json.get("login")?.as_str()?;
    let id = json.get("id")?.as_u64()?;
    if login.is_empty() || login.chars().count() > 100 {
        return None;
    }
    Some(GithubUser {
        login: login.to_string(),
        id,
    })
}

/// Text from GitHub, bounded for the audit log and a page.
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

    use serde_json::json;

    use super::*;

    fn settings() -> GithubSettings {
        GithubSettings {
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            client_id: "Iv1.0123456789abcdef".into(),
            client_secret: "s3cr3t-value".into(),
            organization: "local".into(),
            redirect_uri: "https://smithers.example/sign-in/github/callback".into(),
        }
    }

    #[test]
    fn endpoints_follow_github_and_enterprise_server() {
        let github = GithubSignIn::new(settings()).unwrap();
        assert_eq!(
            github.authorize_url.as_str(),
            "https://github.com/login/oauth/authorize"
        );
        assert_eq!(
            github.token_url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(github.user_url.as_str(), "https://api.github.com/user");
        assert_eq!(github.provider_name(), "GitHub");
        let ghes = GithubSignIn::new(GithubSettings {
            web_url: "https://ghe.example/".into(),
            api_url: "https://ghe.example/api/v3".into(),
            ..settings()
        })
        .unwrap();
        assert_eq!(
            ghes.authorize_url.as_str(),
            "https://ghe.example/login/oauth/authorize"
        );
        assert_eq!(ghes.user_url.as_str(), "https://ghe.example/api/v3/user");
        assert_eq!(ghes.provider_name(), "GitHub (ghe.example)");
    }

    #[test]
    fn settings_are_checked_and_the_secret_never_shown() {
        let github = GithubSignIn::new(settings()).unwrap();
        assert!(!format!("{github:?}").contains("s3cr3t"));
        for bad in [
            GithubSettings {
                web_url: "github.com".into(),
                ..settings()
            },
            GithubSettings {
                api_url: "ftp://api.github.com".into(),
                ..settings()
            },
            GithubSettings {
                redirect_uri: "/sign-in/github/callback".into(),
                ..settings()
            },
            GithubSettings {
                client_id: String::new(),
                ..settings()
            },
            GithubSettings {
                client_secret: String::new(),
                ..settings()
            },
        ] {
            assert_eq!(GithubSignIn::new(bad).unwrap_err().kind, ErrorKind::Invalid);
        }
        let callback = GithubCallback {
            code: Some("the-code".into()),
            state: Some("the-state".into()),
            ..GithubCallback::default()
        };
        let shown = format!("{callback:?}");
        assert!(!shown.contains("the-code") && !shown.contains("the-state"));
    }

    #[test]
    fn a_user_needs_a_login_and_a_numeric_id() {
        assert_eq!(
            parse_user(&json!({"login": "octocat", "id": 1, "type": "User"})),
            Some(GithubUser {
                login: "octocat".into(),
                id: 1
            })
        );
        for bad in [
            json!({"login": "octocat"}),
            json!({"id": 1}),
            json!({"login": "octocat", "id": "1"}),
            json!({"login": "", "id": 1}),
            json!({"login": 7, "id": 1}),
        ] {
            assert_eq!(parse_user(&bad), None, "{bad}");
        }
    }
}
