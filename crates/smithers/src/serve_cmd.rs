//! `smithers serve`: the HTTP API over this data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::context::{self, ActorArgs, StateArgs};

#[derive(Debug, Args)]
#[command(after_help = "\
People sign in from a browser: at start the server prints a one-time sign-in link for the user
named by --as (default admin), good for 15 minutes; `smithers serve --new-sign-in-link` prints
another for a server that runs. With --oidc-issuer and --oidc-client-id they may sign in with
that OpenID Connect provider instead, as users that exist already; with --github-client-id (and
SMITHERS_GITHUB_CLIENT_SECRET), with GitHub through a GitHub App, as the user whose name is their
GitHub login (nobody is created: add the users first). Scripts authenticate with
API tokens (`smithers tokens create NAME --scope …`) sent as `Authorization: Bearer …`;
refusals are RFC 9457 problems (application/problem+json).
GET /healthz and /readyz answer without a token. The server carries out the runs started
through it (--run-slots at once) and, when it starts, the runs it finds interrupted. On SIGINT
or SIGTERM it takes no more work, finishes the requests under way, and leaves every run at its
last committed point; the next start carries them on.")]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Runs carried out at once; more wait, queued.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    run_slots: u16,
    /// A directory whose git repositories `POST /api/v1/runs` may start runs on (repeatable);
    /// without one, runs are started from the command line only.
    #[arg(long = "repository-root", value_name = "DIR")]
    repository_roots: Vec<PathBuf>,
    /// Where people reach the server, when not at the address it listens on (behind a
    /// proxy): https://smithers.example. Browsers' changes must come from this origin.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Print a new one-time sign-in link (for the server at --listen or --public-url) and
    /// exit without serving.
    #[arg(long)]
    new_sign_in_link: bool,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Sign people in with this OpenID Connect provider too (its issuer URL; discovered at
    /// URL/.well-known/openid-configuration). The client secret is read from
    /// SMITHERS_OIDC_CLIENT_SECRET (none: a public client, PKCE alone); register
    /// <public URL>/sign-in/oidc/callback at the provider as the redirect URI.
    #[arg(
        long,
        env = "SMITHERS_OIDC_ISSUER",
        value_name = "URL",
        requires = "oidc_client_id"
    )]
    oidc_issuer: Option<String>,
    /// This server's client id at the OpenID Connect provider.
    #[arg(
        long,
        env = "SMITHERS_OIDC_CLIENT_ID",
        value_name = "ID",
        requires = "oidc_issuer"
    )]
    oidc_client_id: Option<String>,
    /// The organization whose users people sign in as with the provider.
    #[arg(
        long,
        env = "SMITHERS_OIDC_ORGANIZATION",
        value_name = "ORG",
        default_value = "local"
    )]
    oidc_organization: String,
    /// The claim that names the Smithers user: preferred_username, email (its local part, when
    /// email_verified; the domain is not checked) or sub. The user must exist already.
    #[arg(
        long,
        env = "SMITHERS_OIDC_USER_CLAIM",
        value_name = "CLAIM",
        default_value = "preferred_username",
        value_parser = parse_user_claim
    )]
    oidc_user_claim: smithers_app::UserClaim,
    /// Sign people in with GitHub too: this GitHub App's client id (not its app id). The
    /// client secret is read from SMITHERS_GITHUB_CLIENT_SECRET; set the App's callback URL to
    /// <public URL>/sign-in/github/callback. A person signs in as the existing user whose name is
    /// their GitHub login; no user is created.
    #[arg(long, env = "SMITHERS_GITHUB_CLIENT_ID", value_name = "ID")]
    github_client_id: Option<String>,
    /// The organization whose users people sign in as with GitHub.
    #[arg(
        long,
        env = "SMITHERS_GITHUB_ORGANIZATION",
        value_name = "ORG",
        default_value = "local"
    )]
    github_organization: String,
    /// GitHub's web address (a GitHub Enterprise Server's: https://HOST).
    #[arg(
        long,
        env = "SMITHERS_GITHUB_URL",
        value_name = "URL",
        default_value = "https://github.com"
    )]
    github_url: String,
    /// GitHub's REST API (a GitHub Enterprise Server's: https://HOST/api/v3).
    #[arg(
        long,
        env = "SMITHERS_GITHUB_API_URL",
        value_name = "URL",
        default_value = "https://api.github.com"
    )]
    github_api_url: String,
    /// Run the GitHub App with this app id (not its client id): take its webhooks at
    /// <public URL>/github/webhook. Its private key and webhook secret are Smithers secrets of
    /// --github-organization, named by --github-private-key-secret and --github-webhook-secret
    /// (see `smithers github manifest` and docs/github-app.md).
    #[arg(long, env = "SMITHERS_GITHUB_APP_ID", value_name = "ID")]
    github_app_id: Option<u64>,
    /// The secret holding the GitHub App's private key (PEM).
    #[arg(
        long,
        env = "SMITHERS_GITHUB_PRIVATE_KEY_SECRET",
        value_name = "NAME",
        default_value = smithers_github::DEFAULT_PRIVATE_KEY_SECRET
    )]
    github_private_key_secret: String,
    /// The secret holding the GitHub App's webhook secret.
    #[arg(
        long,
        env = "SMITHERS_GITHUB_WEBHOOK_SECRET_NAME",
        value_name = "NAME",
        default_value = smithers_github::DEFAULT_WEBHOOK_SECRET
    )]
    github_webhook_secret: String,
    /// How often, in seconds, every stack of pull requests is read back
    /// from GitHub without an event saying it changed (a pull request or
    /// push event has it read back at once).
    #[arg(
        long,
        env = "SMITHERS_GITHUB_STACK_INTERVAL",
        value_name = "SECONDS",
        default_value_t = smithers_github::DEFAULT_STACK_INTERVAL.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    github_stack_interval: u64,
    /// How often, in seconds, a retention pass drops each organization's
    /// run logs, tool-call outputs and audit events older than its
    /// retention (`smithers org retention`); one runs at start. 0: never.
    #[arg(
        long,
        env = "SMITHERS_RETENTION_INTERVAL",
        value_name = "SECONDS",
        default_value_t = smithers_app::RETENTION_INTERVAL.as_secs()
    )]
    retention_interval: u64,
    /// The environment of the GitHub App's two secrets.
    #[arg(
        long,
        env = "SMITHERS_GITHUB_SECRETS_ENVIRONMENT",
        value_name = "ENV",
        default_value = "prod"
    )]
    github_secrets_environment: String,
    /// Give the workflows' secrets to pull requests from forks too (by default they get none,
    /// and a step that needs one fails, saying why).
    #[arg(long, env = "SMITHERS_GITHUB_FORK_SECRETS")]
    github_fork_secrets: bool,
    /// Make the GitHub organization's members users of --github-organization (keyed by GitHub's
    /// user id), kept current from the organization, membership, member and team webhooks and a
    /// reconcile every five minutes; a member who leaves is removed (sessions end, tokens go).
    #[arg(long, env = "SMITHERS_GITHUB_MEMBERS")]
    github_members: bool,
    /// With --github-members: members of this GitHub team (its slug) are admins; the others are
    /// members. Repeatable.
    #[arg(
        long = "github-admin-team",
        value_name = "SLUG",
        requires = "github_members"
    )]
    github_admin_teams: Vec<String>,
    #[command(flatten)]
    actor: ActorArgs,
}

/// The environment variable holding the OpenID Connect client secret: not a
/// flag, which any user of the machine could read in the process list.
const OIDC_CLIENT_SECRET_ENV: &str = "SMITHERS_OIDC_CLIENT_SECRET";

fn parse_user_claim(value: &str) -> Result<smithers_app::UserClaim, String> {
    value.parse()
}

/// The OpenID Connect sign-in the flags configure, with the redirect URI at
/// `origin`.
fn oidc_sign_in(args: &ServeArgs, origin: &str) -> Result<Option<Arc<smithers_app::OidcSignIn>>> {
    let (Some(issuer), Some(client_id)) = (&args.oidc_issuer, &args.oidc_client_id) else {
        return Ok(None);
    };
    let client_secret = std::env::var(OIDC_CLIENT_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let oidc = smithers_app::OidcSignIn::new(smithers_app::OidcSettings {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret,
        organization: args.oidc_organization.clone(),
        user_claim: args.oidc_user_claim,
        redirect_uri: format!("{origin}/sign-in/oidc/callback"),
    })
    .map_err(|e| anyhow::anyhow!("--oidc-issuer: {}", e.message))?;
    Ok(Some(Arc::new(oidc)))
}

/// The environment variable holding the GitHub App's client secret: not a
/// flag, for the same reason as the OpenID Connect one.
const GITHUB_CLIENT_SECRET_ENV: &str = "SMITHERS_GITHUB_CLIENT_SECRET";

/// The GitHub sign-in the flags configure, with the redirect URI at
/// `origin`.
fn github_sign_in(
    args: &ServeArgs,
    origin: &str,
) -> Result<Option<Arc<smithers_app::GithubSignIn>>> {
    let Some(client_id) = &args.github_client_id else {
        return Ok(None);
    };
    let client_secret = std::env::var(GITHUB_CLIENT_SECRET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--github-client-id: set {GITHUB_CLIENT_SECRET_ENV} to the GitHub App's client secret"
            )
        })?;
    let github = smithers_app::GithubSignIn::new(smithers_app::GithubSettings {
        web_url: args.github_url.clone(),
        api_url: args.github_api_url.clone(),
        client_id: client_id.clone(),
        client_secret,
        organization: args.github_organization.clone(),
        redirect_uri: format!("{origin}/sign-in/github/callback"),
    })
    .map_err(|e| anyhow::anyhow!("--github-client-id: {}", e.message))?;
    Ok(Some(Arc::new(github)))
}

/// The origin of `--public-url`: `scheme://host[:port]`, nothing after.
fn public_origin(url: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
        .with_context(|| format!("--public-url {url:?}: an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace)
    {
        anyhow::bail!("--public-url {url:?}: a host (and port) without user information");
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The link that signs `user` in once, at `origin`.
async fn sign_in_link(
    app: &smithers_app::App,
    actor: &ActorArgs,
    origin: &str,
) -> Result<String, smithers_api::Error> {
    let token = app.local_sign_in_token(&actor.org, &actor.user).await?;
    Ok(format!("{origin}/sign-in/local?token={token}"))
}

pub fn run(args: ServeArgs, state: &StateArgs) -> Result<ExitCode> {
    let public = args.public_url.as_deref().map(public_origin).transpose()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            smithers_server::TlsConfig::from_pem_files(cert, key).map_err(anyhow::Error::msg)?,
        ),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    context::runtime()?.block_on(async {
        let app = match context::open_app(state).await {
            Ok(app) => Arc::new(app),
            Err(e) => return Ok(context::exit(Err(e))),
        };
        // The address a browser on this machine reaches: not 0.0.0.0.
        let reachable = |address: SocketAddr| {
            let mut address = address;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("{scheme}://{address}")
        };
        if args.new_sign_in_link {
            let origin = public.clone().unwrap_or_else(|| reachable(args.listen));
            return Ok(context::exit(
                sign_in_link(&app, &args.actor, &origin).await.map(|link| {
                    outln!("{link}");
                    ExitCode::SUCCESS
                }),
            ));
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        let origin = public.clone().unwrap_or_else(|| reachable(address));
        eprintln!("smithers: serving the API on {scheme}://{address}/api/v1 (Ctrl-C to stop)");
        match sign_in_link(&app, &args.actor, &origin).await {
            Ok(link) => eprintln!(
                "smithers: sign in as {} (once, within 15 minutes): {link}",
                args.actor.user
            ),
            Err(e) => eprintln!("smithers: no sign-in link: {}", e.message),
        }
        let oidc = oidc_sign_in(&args, &origin)?;
        if let Some(oidc) = &oidc {
            let settings = oidc.settings();
            eprintln!(
                "smithers: people sign in with {} as users of {} named by {} (redirect URI: {})",
                settings.issuer, settings.organization, settings.user_claim, settings.redirect_uri
            );
            // Not fatal: discovery is tried again at each sign-in.
            if let Err(e) = oidc.check().await {
                eprintln!("smithers: warning: {}", e.message);
            }
        }
        let github = github_sign_in(&args, &origin)?;
        if let Some(github) = &github {
            let settings = github.settings();
            eprintln!(
                "smithers: people sign in with {} as users of {} named by their GitHub login (callback URL: {})",
                settings.web_url, settings.organization, settings.redirect_uri
            );
        }
        let github_app = match args.github_app_id {
            Some(app_id) => {
                let settings = smithers_github::GithubAppSettings {
                    app_id,
                    api_url: args.github_api_url.clone(),
                    web_url: args.github_url.clone(),
                    public_url: Some(origin.clone()),
                    fork_secrets: if args.github_fork_secrets {
                        smithers_github::ForkSecrets::Allowed
                    } else {
                        smithers_github::ForkSecrets::Withheld
                    },
                    admin_teams: args
                        .github_members
                        .then(|| args.github_admin_teams.clone()),
                    organization: args.github_organization.clone(),
                    secrets_environment: args.github_secrets_environment.clone(),
                    private_key_secret: args.github_private_key_secret.clone(),
                    webhook_secret: args.github_webhook_secret.clone(),
                    limits: smithers_github::RetryLimits::default(),
                    stack_interval: std::time::Duration::from_secs(args.github_stack_interval),
                };
                let github_app = smithers_github::GithubApp::open(app.clone(), &settings)
                    .await
                    .map_err(|e| anyhow::anyhow!("--github-app-id: {e}"))?;
                eprintln!(
                    "smithers: the GitHub App {app_id} takes webhooks at {origin}/github/webhook for {}",
                    settings.organization
                );
                Some(Arc::new(github_app))
            }
            None => None,
        };
        let settings = smithers_server::Settings {
            run_slots: usize::from(args.run_slots),
            repository_roots: args.repository_roots,
            public_origin: public,
            oidc,
            github,
            github_app,
            tls,
            retention_interval: (args.retention_interval > 0)
                .then(|| std::time::Duration::from_secs(args.retention_interval)),
        };
        smithers_server::serve_with(app.clone(), listener, settings, stopped())
            .await
            .context("the server stopped")?;
        app.deliver_audit().await;
        eprintln!("smithers: stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "SIGTERM cannot be caught; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
