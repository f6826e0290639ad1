//! The GitHub App as a server runs it: its credentials read from the
//! secret store once at start (recorded, never logged), its client, and
//! its webhook deliveries carried out in the background.

use std::sync::Arc;

use std::time::Duration;

use smithers_app::{App, RunLauncher};
use zeroize::Zeroizing;

use crate::mirror::Mirrors;
use crate::pulls::PullRuns;
use crate::results::Results;
use crate::schedules::{Refreshed, SCHEDULE_INTERVAL, Schedules};
use crate::seats::SeatChanges;
use crate::stack_block::MarkerKey;
use crate::stacks::Stacks;
use crate::statuses::Statuses;
use crate::sweeper::{FIRST_LOOKBACK, SWEEP_INTERVAL, Sweeper, Swept};
use crate::{AppKey, Error, ForkSecrets, Github, PageCache, PullSettings, RetryLimits, Webhooks};

/// How often runs' states are compared with what their statuses said.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// How often, by default, every chain of pull requests is read back from
/// GitHub even when no event said it changed (events GitHub never
/// delivered are caught up with at this pace).
pub const DEFAULT_STACK_INTERVAL: Duration = Duration::from_secs(60);

/// What the stack blocks' marker key is derived for.
const MARKER_PURPOSE: &str = "smithers stack marker v1";

/// The default name of the secret holding the App's private key (PEM).
pub const DEFAULT_PRIVATE_KEY_SECRET: &str = "GITHUB_APP_PRIVATE_KEY";

/// The default name of the secret holding the App's webhook secret.
pub const DEFAULT_WEBHOOK_SECRET: &str = "GITHUB_WEBHOOK_SECRET";

/// The secret purpose recorded when the App's credentials are read.
const PURPOSE: &str = "github-app";

/// How a server runs the GitHub App.
#[derive(Debug, Clone)]
pub struct GithubAppSettings {
    /// The App's id (not its client id).
    pub app_id: u64,
    /// GitHub's REST API: `https://api.github.com`, or a GitHub Enterprise
    /// Server's `https://HOST/api/v3`.
    pub api_url: String,
    /// GitHub's web origin, which repositories are fetched from:
    /// `https://github.com`, or a GitHub Enterprise Server's
    /// `https://HOST`.
    pub web_url: String,
    /// Where people reach the server (statuses link to the run's page);
    /// none: statuses carry no link.
    pub public_url: Option<String>,
    /// Whether a fork's pull request gets the workflows' secrets.
    pub fork_secrets: ForkSecrets,
    /// Slugs of the GitHub teams whose members are admins; `None`: the
    /// organization's members are not made users.
    pub admin_teams: Option<Vec<String>>,
    /// The organization the App's installations serve.
    pub organization: String,
    /// The environment of the two secrets below.
    pub secrets_environment: String,
    /// The name of the secret holding the App's private key (PEM).
    pub private_key_secret: String,
    /// The name of the secret holding the webhook secret.
    pub webhook_secret: String,
    pub limits: RetryLimits,
    /// How often every stack is read back from GitHub without an event
    /// ([`DEFAULT_STACK_INTERVAL`]); a pull request or push event has it
    /// read back within a second. Each read is a conditional request per
    /// pull request (no rate limit while unchanged, but each one an
    /// audited `github.request`) and a `git ls-remote`.
    pub stack_interval: Duration,
}

/// The running App.
pub struct GithubApp {
    app: Arc<App>,
    github: Github,
    webhooks: Webhooks,
    public_url: Option<String>,
    web_url: String,
    organization: String,
    mirrors: Mirrors,
    fork_secrets: ForkSecrets,
    /// When each repository's default branch was last fetched for its
    /// schedules.
    refreshed: Refreshed,
    /// `true` once the first sweep (start-up's catching up) is done.
    swept_once: tokio::sync::watch::Sender<bool>,
    /// Signs the stack blocks of chained pull requests' bodies.
    marker_key: MarkerKey,
    /// The stacks' pull requests as last read, for conditional requests.
    pulls_read: PageCache,
    /// One stack pass at a time.
    stack_pass: tokio::sync::Mutex<()>,
    stack_interval: Duration,
    /// Set by the webhooks on each pull request or push event.
    stacks_nudged: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("github", &self.github)
            .finish_non_exhaustive()
    }
}

impl GithubApp {
    /// Reads the App's private key and webhook secret from the secret
    /// store (each read recorded as `secret.read` with purpose
    /// `github-app`) and makes the client and the webhook handler.
    ///
    /// Errors: [`Error::App`] when a secret is missing or there is no
    /// keyring; [`Error::Settings`] for a key that is not an RSA private
    /// key, an empty webhook secret, or a bad API URL.
    pub async fn open(app: Arc<App>, settings: &GithubAppSettings) -> Result<GithubApp, Error> {
        let secrets = app.secrets();
        let read = |name: String| {
            let secrets = &secrets;
            async move {
                secrets
                    .read_for_service(
                        &settings.organization,
                        &settings.secrets_environment,
                        &name,
                        PURPOSE,
                    )
                    .await
                    .map_err(|e| {
                        Error::Settings(format!(
                            "the GitHub App's secret {name} ({}): {}",
                            settings.secrets_environment, e.message
                        ))
                    })
            }
        };
        let key = read(settings.private_key_secret.clone()).await?;
        let key = AppKey::from_pem(settings.app_id, key.expose())?;
        let webhook_secret = read(settings.webhook_secret.clone()).await?;
        if webhook_secret.expose().is_empty() {
            return Err(Error::Settings(format!(
                "the GitHub App's webhook secret {} is empty",
                settings.webhook_secret
            )));
        }
        // Each record is durable before `append` returns, so the writer
        // needs no joining: it stops when the client is dropped.
        let (log, _writer) = app.audit_log();
        let github = Github::new(
            &settings.api_url,
            key,
            log,
            &settings.organization,
            settings.limits,
        )?;
        let mirrors = Mirrors::new(app.data_dir().join("github").join("mirrors"));
        let marker_key = MarkerKey::derive(webhook_secret.expose(), MARKER_PURPOSE)?;
        let webhooks = Webhooks::new(
            app.clone(),
            &settings.organization,
            Zeroizing::new(webhook_secret.expose().to_vec()),
            Some(github.clone()),
        )
        .with_pulls(PullSettings {
            mirrors: mirrors.clone(),
            web_url: settings.web_url.clone(),
            public_url: settings.public_url.clone(),
            fork_secrets: settings.fork_secrets,
        });
        let webhooks = match &settings.admin_teams {
            Some(teams) => webhooks.with_seats(teams.clone()),
            None => webhooks,
        };
        let stacks_nudged = webhooks.stacks_nudged();
        Ok(GithubApp {
            app,
            github,
            webhooks,
            public_url: settings.public_url.clone(),
            web_url: settings.web_url.clone(),
            organization: settings.organization.clone(),
            mirrors,
            fork_secrets: settings.fork_secrets,
            refreshed: Refreshed::default(),
            swept_once: tokio::sync::watch::Sender::new(false),
            marker_key,
            pulls_read: PageCache::default(),
            stack_pass: tokio::sync::Mutex::new(()),
            stack_interval: settings.stack_interval,
            stacks_nudged,
        })
    }

    /// The App's REST client.
    pub fn github(&self) -> &Github {
        &self.github
    }

    /// Its webhook handler.
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// Posts the statuses of runs whose state changed; answers how many.
    ///
    /// Errors: the store's, when the runs cannot be read.
    pub async fn report_statuses(&self) -> Result<usize, Error> {
        Statuses {
            app: &self.app,
            github: &self.github,
            public_url: self.public_url.as_deref(),
        }
        .report()
        .await
    }

    /// Pushes the work of the App's runs that succeeded and offers it as
    /// pull requests (see the `results` module); answers how many runs'
    /// work was settled.
    ///
    /// Errors: the store's, when the runs cannot be read.
    pub async fn deliver_results(&self) -> Result<usize, Error> {
        Results {
            app: &self.app,
            github: &self.github,
            mirrors: &self.mirrors,
            web_url: &self.web_url,
            public_url: self.public_url.as_deref(),
            organization: &self.organization,
            stacks: self.stacks(),
        }
        .deliver_pending()
        .await
    }

    /// Brings every chain of pull requests Smithers opened (active or
    /// waiting for a person) to what it should be (see the `stacks`
    /// module); answers how many were reconciled without error.
    ///
    /// Errors: the store's, when the stacks cannot be listed.
    pub async fn reconcile_stacks(&self) -> Result<usize, Error> {
        self.stacks().reconcile_all().await
    }

    fn stacks(&self) -> Stacks<'_> {
        Stacks {
            app: &self.app,
            github: &self.github,
            mirrors: &self.mirrors,
            web_url: &self.web_url,
            key: &self.marker_key,
            cache: &self.pulls_read,
            pass: &self.stack_pass,
        }
    }

    /// Starts the scheduled workflows due at `now` (see the `schedules`
    /// module) through `launcher`; answers what each repository's firing
    /// started.
    ///
    /// Errors: the store's, when the repositories cannot be listed.
    pub async fn fire_schedules(
        &self,
        launcher: &dyn RunLauncher,
        now: std::time::SystemTime,
    ) -> Result<Vec<String>, Error> {
        Schedules {
            runs: PullRuns {
                app: &self.app,
                github: &self.github,
                mirrors: &self.mirrors,
                web_url: &self.web_url,
                public_url: self.public_url.as_deref(),
                fork_secrets: self.fork_secrets,
                organization: &self.organization,
            },
            refreshed: &self.refreshed,
        }
        .fire_due(launcher, now)
        .await
    }

    /// Returns once [`GithubApp::run`]'s first sweep is done: what the
    /// App does at start (deliveries missed while it was down asked for
    /// again, protection, members and installations read back) is behind
    /// it.
    pub async fn swept_once(&self) {
        let mut swept = self.swept_once.subscribe();
        let _ = swept.wait_for(|done| *done).await;
    }

    /// Brings the organization's users to its GitHub members (see the
    /// `seats` module).
    ///
    /// Errors: GitHub's; the users service's.
    pub async fn reconcile_seats(&self) -> Result<SeatChanges, Error> {
        self.webhooks.reconcile_seats().await
    }

    /// Asks GitHub again for the deliveries attempted since `since` that
    /// never arrived (see the `sweeper` module).
    ///
    /// Errors: GitHub's, when the deliveries cannot be listed.
    pub async fn sweep(&self, since: std::time::SystemTime) -> Result<Swept, Error> {
        Sweeper {
            app: &self.app,
            github: &self.github,
        }
        .sweep(since)
        .await
    }

    /// Carries out webhook deliveries (runs through `launcher`), posts
    /// runs' statuses, delivers their work, keeps chains of pull requests
    /// current, fires scheduled workflows, and every sweep reads
    /// the installations back from GitHub and asks again for deliveries
    /// that never arrived, until `shutdown` completes.
    pub async fn run(
        &self,
        launcher: &dyn RunLauncher,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let deliveries = async {
            self.webhooks.run(launcher, shutdown).await;
            let _ = stop.send(true);
        };
        let statuses = async {
            let mut stacks_due = tokio::time::Instant::now();
            while !*stopped.borrow() {
                if let Err(e) = self.report_statuses().await {
                    tracing::warn!(error = %e, "statuses could not be reported");
                }
                if let Err(e) = self.deliver_results().await {
                    tracing::warn!(error = %e, "runs' work could not be delivered");
                }
                let nudged = self
                    .stacks_nudged
                    .swap(false, std::sync::atomic::Ordering::Relaxed);
                if nudged || tokio::time::Instant::now() >= stacks_due {
                    if let Err(e) = self.reconcile_stacks().await {
                        tracing::warn!(error = %e, "the stacks could not be reconciled");
                    }
                    stacks_due = tokio::time::Instant::now() + self.stack_interval;
                }
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = tokio::time::sleep(STATUS_INTERVAL) => {}
                }
            }
        };
        let sweeps = async {
            let mut lookback = FIRST_LOOKBACK;
            let mut stopped = stop.subscribe();
            while !*stopped.borrow() {
                let since = std::time::SystemTime::now()
                    .checked_sub(lookback)
                    .unwrap_or(std::time::UNIX_EPOCH);
                if let Err(e) = (crate::protection::Protection {
                    app: &self.app,
                    github: &self.github,
                })
                .check_due(&self.organization)
                .await
                {
                    tracing::warn!(error = %e, "the default branches' protection could not be checked");
                }
                if let Err(e) = self.reconcile_seats().await {
                    tracing::warn!(error = %e, "the organization's members could not be reconciled");
                }
                match self.sweep(since).await {
                    Ok(swept) if !swept.redelivered.is_empty() => {
                        tracing::info!(
                            asked = swept.redelivered.len(),
                            "failed deliveries asked for again"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the App's deliveries could not be swept"),
                }
                // A delivery that never arrived, or arrived out of order,
                // is corrected by what GitHub says now.
                match self.webhooks.reconcile_installations(launcher).await {
                    Ok(corrected) => {
                        for correction in corrected {
                            tracing::info!(%correction, "installation corrected from GitHub");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the installations could not be read back from GitHub")
                    }
                }
                self.swept_once.send_replace(true);
                lookback = SWEEP_INTERVAL * 2;
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = tokio::time::sleep(SWEEP_INTERVAL) => {}
                }
            }
        };
        let schedules = async {
            let mut stopped = stop.subscribe();
            while !*stopped.borrow() {
                match self
                    .fire_schedules(launcher, std::time::SystemTime::now())
                    .await
                {
                    Ok(fired) => {
                        for firing in fired {
                            tracing::info!(%firing, "scheduled workflows started");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the schedules could not be fired"),
                }
                tokio::select! {
                    _ = stopped.changed() => {}
                    () = tokio::time::sleep(SCHEDULE_INTERVAL) => {}
                }
            }
        };
        tokio::join!(deliveries, statuses, sweeps, schedules);
    }
}
