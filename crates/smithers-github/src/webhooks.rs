//! Webhook deliveries (GitHub Docs, "Handling webhook deliveries"):
//!
//! ```text
//! receive  X-Hub-Signature-256 checked over the raw body (nothing is
//!          parsed before) → event name and delivery GUID checked → the
//!          body parsed as JSON → recorded with its github.delivery_received
//!          event (a GUID seen before: nothing more) → answered 2xx
//! process  each recorded delivery not yet carried out, in the order
//!          received: ping; installation; installation_repositories;
//!          anything else recorded as ignored → finished once
//! ```
//!
//! A delivery is recorded before it is answered, so one answered is
//! carried out even if the process stops right after; one that was not
//! answered is asked for again (GitHub does not redeliver by itself).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smithers_app::{App, Principal, RunLauncher};
use smithers_store::{Cause, Delivery, InstallationChange, NewDelivery, Outcome, Recorded};
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::client::PageCache;
use crate::events::{Envelope, InstallationEvent, InstallationRepositoriesEvent};
use crate::mirror::Mirrors;
use crate::pulls::{Done, ForkSecrets, PullRuns};
use crate::seats::{SeatChanges, Seats};
use crate::{Error, Github, signature};

/// The largest body GitHub sends (GitHub Docs: payloads are capped at
/// 25 MB).
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// How often recorded deliveries are looked for without being woken (one
/// recorded by another process, or one whose processing failed for a
/// passing reason).
const PROCESS_INTERVAL: Duration = Duration::from_secs(30);

/// A delivery as it arrived: the headers that matter and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// What receiving a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Recorded now; it will be carried out.
    New { guid: String },
    /// Recorded before: nothing more is done.
    SeenBefore { guid: String },
}

/// How pull requests' runs are started.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// Where repositories are mirrored to.
    pub mirrors: Mirrors,
    /// GitHub's web origin, which repositories are fetched from
    /// (`https://github.com`, a GitHub Enterprise Server's
    /// `https://HOST`).
    pub web_url: String,
    /// Where people reach the server: statuses link to the run's page
    /// there; none: no link.
    pub public_url: Option<String>,
    pub fork_secrets: ForkSecrets,
}

/// Takes and carries out the App's webhook deliveries for one
/// organization.
pub struct Webhooks {
    app: Arc<App>,
    organization: String,
    secret: Zeroizing<Vec<u8>>,
    github: Option<Github>,
    pulls: Option<PullSettings>,
    /// Slugs of the GitHub teams whose members are admins; `None`: members
    /// are not made users.
    admin_teams: Option<Vec<String>>,
    members_cache: PageCache,
    wake: Notify,
    /// Held while an installation change is decided and applied: a
    /// delivery's and a sweep's never interleave.
    installations: tokio::sync::Mutex<()>,
    /// Set by every pull request and push event: a stack may have changed
    /// on GitHub, so the stacks are read back now rather than at the
    /// next sweep.
    stacks_nudged: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Deliveries signed with `secret`, for `organization`; `github` is
    /// the App's client (its cached tokens are forgotten when an
    /// installation is suspended or deleted).
    pub fn new(
        app: Arc<App>,
        organization: &str,
        secret: Zeroizing<Vec<u8>>,
        github: Option<Github>,
    ) -> Webhooks {
        Webhooks {
            app,
            organization: organization.to_string(),
            secret,
            github,
            pulls: None,
            admin_teams: None,
            members_cache: PageCache::default(),
            wake: Notify::new(),
            installations: tokio::sync::Mutex::new(()),
            stacks_nudged: Arc::default(),
        }
    }

    /// What every pull request and push event sets (the GitHub App takes
    /// it as a call to read its stacks back now).
    pub(crate) fn stacks_nudged(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.stacks_nudged.clone()
    }

    /// These webhooks, keeping the organization's users in step with its
    /// GitHub members (members of `admin_teams` are admins).
    pub fn with_seats(mut self, admin_teams: Vec<String>) -> Webhooks {
        self.admin_teams = Some(admin_teams);
        self
    }

    /// Brings the organization's users to its GitHub members (see the
    /// `seats` module); nothing without [`Webhooks::with_seats`].
    ///
    /// Errors: GitHub's; the users service's.
    pub async fn reconcile_seats(&self) -> Result<SeatChanges, Error> {
        match (&self.admin_teams, &self.github) {
            (Some(admin_teams), Some(github)) => {
                Seats {
                    app: &self.app,
                    github,
                    organization: &self.organization,
                    admin_teams,
                    cache: &self.members_cache,
                }
                .reconcile()
                .await
            }
            _ => Ok(SeatChanges::default()),
        }
    }

    /// These webhooks, starting pull requests' runs as `pulls` says
    /// (without, `pull_request` deliveries are recorded and ignored).
    pub fn with_pulls(mut self, pulls: PullSettings) -> Webhooks {
        self.pulls = Some(pulls);
        self
    }

    /// Checks and records a delivery (the module says how), and wakes
    /// [`Webhooks::run`] for a new one.
    ///
    /// Errors: [`Error::BadSignature`] (nothing is read or stored);
    /// [`Error::Malformed`] for a signed delivery without a proper event
    /// name, GUID or JSON body; [`Error::Store`] when it cannot be
    /// recorded (GitHub should then see a failure, and ask again).
    pub async fn receive(&self, incoming: Incoming<'_>) -> Result<Received, Error> {
        signature::verify(&self.secret, incoming.signature, incoming.body)?;
        let event = incoming
            .event
            .filter(|e| is_event_name(e))
            .ok_or_else(|| Error::Malformed("X-GitHub-Event is missing or malformed".into()))?;
        let guid = incoming
            .delivery
            .filter(|g| is_guid(g))
            .ok_or_else(|| Error::Malformed("X-GitHub-Delivery is missing or malformed".into()))?;
        let body = std::str::from_utf8(incoming.body)
            .map_err(|_| Error::Malformed("the body is not UTF-8".into()))?;
        let envelope: Envelope = serde_json::from_str(body)
            .map_err(|e| Error::Malformed(format!("the body is not a webhook payload: {e}")))?;
        let body_sha256 = hex::encode(Sha256::digest(incoming.body));
        let recorded = self
            .app
            .store()
            .github()
            .record_delivery(
                self.app.signer(),
                NewDelivery {
                    guid,
                    organization_id: &self.organization,
                    event,
                    action: envelope.action.as_deref(),
                    installation_id: envelope.installation.as_ref().map(|i| i.id),
                    body_sha256: &body_sha256,
                    body,
                },
            )
            .await?;
        self.app.deliver_audit().await;
        Ok(match recorded {
            Recorded::New(_) => {
                tracing::info!(guid, event, "webhook delivery recorded");
                self.wake.notify_one();
                Received::New { guid: guid.into() }
            }
            Recorded::SeenBefore(_) => {
                tracing::info!(guid, event, "webhook delivery seen before");
                Received::SeenBefore { guid: guid.into() }
            }
        })
    }

    /// Carries out every recorded delivery not yet carried out, oldest
    /// first, runs through `launcher`; answers how many were finished.
    ///
    /// Errors: [`Error::Store`] when the deliveries cannot be read or
    /// finished (they stay, to be tried again).
    pub async fn process_pending(&self, launcher: &dyn RunLauncher) -> Result<usize, Error> {
        let mut finished = 0;
        loop {
            let pending = self.app.store().github().pending_deliveries(50).await?;
            if pending.is_empty() {
                return Ok(finished);
            }
            for delivery in &pending {
                let (outcome, detail) = match self.process(delivery, launcher).await {
                    Ok(done) => (done.outcome, done.detail),
                    // The database is away: leave it for later.
                    Err(Error::Store(smithers_store::Error::Database(e))) => {
                        return Err(Error::Store(smithers_store::Error::Database(e)));
                    }
                    Err(e) => (Outcome::Failed, Some(e.to_string())),
                };
                if outcome == Outcome::Failed
                    && let Some(detail) = &detail
                {
                    tracing::warn!(guid = %delivery.guid, event = %delivery.event, %detail, "webhook delivery failed");
                }
                self.app
                    .store()
                    .github()
                    .finish_delivery(&delivery.guid, outcome, detail.as_deref())
                    .await?;
                finished += 1;
            }
        }
    }

    /// Carries out recorded deliveries as they come, runs through
    /// `launcher`, until `shutdown` completes.
    pub async fn run(
        &self,
        launcher: &dyn RunLauncher,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.process_pending(launcher).await {
                tracing::error!(error = %e, "webhook deliveries could not be carried out");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(PROCESS_INTERVAL) => {}
            }
        }
    }

    /// Carries out one delivery.
    async fn process(
        &self,
        delivery: &Delivery,
        launcher: &dyn RunLauncher,
    ) -> Result<Done, Error> {
        let handled = Done {
            outcome: Outcome::Handled,
            detail: None,
        };
        let ignored = Done {
            outcome: Outcome::Ignored,
            detail: None,
        };
        let envelope: Envelope = parse(&delivery.body)?;
        let sender = envelope.sender.as_ref().map(|s| s.login.as_str());
        let change = match delivery.event.as_str() {
            "ping" => return Ok(handled),
            "organization" | "membership" | "member" | "team" => {
                if self.admin_teams.is_none() {
                    return Ok(ignored);
                }
                let changes = self.reconcile_seats().await?;
                return Ok(Done {
                    outcome: Outcome::Handled,
                    detail: Some(format!(
                        "members reconciled: {} added, {} linked, {} role changed, {} removed",
                        changes.added.len(),
                        changes.linked.len(),
                        changes.role_changed.len(),
                        changes.removed.len()
                    )),
                });
            }
            "pull_request" | "push" => {
                self.stacks_nudged
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let (Some(pulls), Some(github)) = (&self.pulls, &self.github) else {
                    return Ok(ignored);
                };
                let runs = PullRuns {
                    app: &self.app,
                    github,
                    mirrors: &pulls.mirrors,
                    web_url: &pulls.web_url,
                    public_url: pulls.public_url.as_deref(),
                    fork_secrets: pulls.fork_secrets,
                    organization: &self.organization,
                };
                return if delivery.event == "push" {
                    runs.on_push(delivery, launcher).await
                } else {
                    runs.on_pull_request(delivery, launcher).await
                };
            }
            "installation" => {
                let event: InstallationEvent = parse(&delivery.body)?;
                let id = event.installation.id;
                match event.action.as_str() {
                    "created" => InstallationChange::Created(
                        event.installation.to_ref(),
                        event
                            .repositories
                            .unwrap_or_default()
                            .iter()
                            .map(|r| r.to_ref())
                            .collect(),
                    ),
                    "deleted" => InstallationChange::Deleted(id),
                    "suspend" => InstallationChange::Suspended(id),
                    "unsuspend" => InstallationChange::Unsuspended(id),
                    "new_permissions_accepted" => {
                        InstallationChange::PermissionsAccepted(event.installation.to_ref())
                    }
                    _ => return Ok(ignored),
                }
            }
            "installation_repositories" => {
                let event: InstallationRepositoriesEvent = parse(&delivery.body)?;
                if !matches!(event.action.as_str(), "added" | "removed") {
                    return Ok(ignored);
                }
                InstallationChange::Repositories {
                    installation: event.installation.to_ref(),
                    added: event
                        .repositories_added
                        .iter()
                        .map(|r| r.to_ref())
                        .collect(),
                    removed: event
                        .repositories_removed
                        .iter()
                        .map(|r| r.to_ref())
                        .collect(),
                }
            }
            _ => return Ok(ignored),
        };
        let cause = Cause {
            delivery: &delivery.guid,
            sender,
        };
        let id = change.installation();
        let _one_at_a_time = self.installations.lock().await;
        let (change, read) = self.as_github_has_it(change, &delivery.guid).await;
        let mut details: Vec<String> = self
            .apply_change(change, cause, launcher)
            .await?
            .into_iter()
            .collect();
        // Deliveries come out of order: what GitHub says now wins.
        match self.corrected(id, &delivery.guid, read, launcher).await {
            Ok(corrected) => details.extend(corrected),
            Err(e) => {
                tracing::warn!(installation = id, error = %e, "the installation could not be read back from GitHub");
            }
        }
        let detail = (!details.is_empty()).then(|| details.join("; "));
        // Newly connected repositories: is their default branch protected?
        if let Some(github) = &self.github
            && let Err(e) = (crate::protection::Protection {
                app: &self.app,
                github,
            })
            .check_due(&self.organization)
            .await
        {
            tracing::warn!(error = %e, "the default branches' protection could not be checked");
        }
        Ok(Done { detail, ..handled })
    }

    /// Applies `change` to the store with its audit events: a suspension
    /// or deletion forgets the installation's tokens first; a suspension
    /// pauses its runs, an unsuspension carries them on (what was done,
    /// for the delivery's detail).
    ///
    /// Errors: the store's; the runs service's.
    async fn apply_change(
        &self,
        change: InstallationChange,
        cause: Cause<'_>,
        launcher: &dyn RunLauncher,
    ) -> Result<Option<String>, Error> {
        if let (InstallationChange::Suspended(id) | InstallationChange::Deleted(id), Some(github)) =
            (&change, &self.github)
        {
            let forgotten = github.revoke_installation(*id);
            tracing::info!(
                installation = id,
                forgotten,
                "installation tokens forgotten"
            );
        }
        let recorded = self
            .app
            .store()
            .github()
            .apply(self.app.signer(), &self.organization, &change, cause)
            .await;
        self.app.deliver_audit().await;
        let recorded = recorded?;
        // Runs are paused, carried on or cancelled only when the
        // installation's state did change (not for a duplicate).
        let did = |action: &str| recorded.iter().any(|a| a == action);
        Ok(match change {
            InstallationChange::Suspended(id) if did("github.installation_suspended") => {
                Some(self.pause_runs(id, launcher).await?)
            }
            InstallationChange::Unsuspended(id) if did("github.installation_unsuspended") => {
                Some(self.unpause_runs(id, launcher).await?)
            }
            InstallationChange::Deleted(id) if did("github.installation_deleted") => {
                Some(self.cancel_runs(id).await?)
            }
            _ => None,
        })
    }

    /// A suspension or unsuspension as GitHub has it now, whatever the
    /// delivery (late, or a redelivery) says; the delivery's own when
    /// GitHub cannot be read. Other changes as they are. With the
    /// installation as read, so it is not read again.
    async fn as_github_has_it(
        &self,
        change: InstallationChange,
        delivery: &str,
    ) -> (InstallationChange, Option<crate::events::Installation>) {
        let (InstallationChange::Suspended(id) | InstallationChange::Unsuspended(id)) = change
        else {
            return (change, None);
        };
        let Some(github) = &self.github else {
            return (change, None);
        };
        match (crate::installations::Installations {
            app: &self.app,
            github,
            organization: &self.organization,
        })
        .read(id, Some(delivery))
        .await
        {
            Ok(now) if now.suspended_at.is_some() => (InstallationChange::Suspended(id), Some(now)),
            Ok(now) => (InstallationChange::Unsuspended(id), Some(now)),
            Err(e) => {
                tracing::warn!(installation = id, error = %e, "the installation could not be read back from GitHub; the delivery is taken as it is");
                (change, None)
            }
        }
    }

    /// Brings installation `id` to what GitHub says of it now (see the
    /// `installations` module), `read` being the installation as just
    /// read, if it was; what was corrected, one line each. Without a
    /// client (no App credentials) nothing is read.
    ///
    /// Errors: GitHub's; the store's.
    async fn corrected(
        &self,
        id: i64,
        cause: &str,
        read: Option<crate::events::Installation>,
        launcher: &dyn RunLauncher,
    ) -> Result<Vec<String>, Error> {
        let Some(github) = &self.github else {
            return Ok(Vec::new());
        };
        let changes = crate::installations::Installations {
            app: &self.app,
            github,
            organization: &self.organization,
        }
        .corrections(id, Some(cause), read)
        .await?;
        let mut corrected = Vec::new();
        for change in changes {
            let what = format!("corrected from GitHub: {}", change.describe());
            let done = self
                .apply_change(
                    change,
                    Cause {
                        delivery: cause,
                        sender: None,
                    },
                    launcher,
                )
                .await?;
            corrected.push(match done {
                Some(done) => format!("{what} ({done})"),
                None => what,
            });
        }
        Ok(corrected)
    }

    /// Reads every live installation of the organization back from GitHub
    /// (the `installations` module); what was corrected. An
    /// installation that cannot be read is logged and the others still
    /// are.
    ///
    /// Errors: the store's, when the installations cannot be listed.
    pub async fn reconcile_installations(
        &self,
        launcher: &dyn RunLauncher,
    ) -> Result<Vec<String>, Error> {
        let mut corrected = Vec::new();
        for installation in self
            .app
            .store()
            .github()
            .installations(&self.organization)
            .await?
        {
            if installation.deleted_at.is_some() {
                continue;
            }
            let _one_at_a_time = self.installations.lock().await;
            match self
                .corrected(installation.id, "reconcile", None, launcher)
                .await
            {
                Ok(done) => corrected.extend(done),
                Err(e) => {
                    tracing::warn!(installation = installation.id, error = %e, "the installation could not be read back from GitHub");
                }
            }
        }
        Ok(corrected)
    }

    /// Installation `id`'s unfinished runs, and the principal the App acts
    /// on them as.
    async fn unfinished_runs(&self, id: i64) -> Result<(Vec<String>, Principal), Error> {
        let runs = self
            .app
            .store()
            .github()
            .unfinished_runs_of_installation(id)
            .await?;
        Ok((runs, Principal::github_installation(&self.organization)))
    }

    /// Pauses installation `id`'s unfinished runs where they stand: its
    /// suspension. A run that cannot be paused is logged and the others
    /// still are. The delivery's detail.
    async fn pause_runs(&self, id: i64, launcher: &dyn RunLauncher) -> Result<String, Error> {
        let (runs, principal) = self.unfinished_runs(id).await?;
        let reason = format!("the GitHub App's installation {id} is suspended");
        let (mut paused, mut stopped) = (0, 0);
        for run in &runs {
            match self
                .app
                .runs()
                .pause(&principal, run, launcher, &reason)
                .await
            {
                Ok(Some(here)) => {
                    paused += 1;
                    stopped += usize::from(here);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(run = %run, error = %e, "a run could not be paused"),
            }
        }
        self.app.deliver_audit().await;
        Ok(format!(
            "{paused} of {} unfinished runs paused, {stopped} stopped where they stood",
            runs.len()
        ))
    }

    /// Cancels installation `id`'s unfinished runs: it was uninstalled, so
    /// nothing could report them or deliver their work. The delivery's
    /// detail.
    async fn cancel_runs(&self, id: i64) -> Result<String, Error> {
        let (runs, principal) = self.unfinished_runs(id).await?;
        let mut cancelled = 0;
        for run in &runs {
            match self.app.runs().cancel(&principal, run).await {
                Ok(_) => cancelled += 1,
                Err(e) => {
                    tracing::warn!(run = %run, error = %e.message, "a run could not be cancelled")
                }
            }
        }
        self.app.deliver_audit().await;
        Ok(format!(
            "{cancelled} of {} unfinished runs cancelled",
            runs.len()
        ))
    }

    /// Carries on installation `id`'s unfinished runs, paused by its
    /// suspension. The delivery's detail.
    async fn unpause_runs(&self, id: i64, launcher: &dyn RunLauncher) -> Result<String, Error> {
        let (runs, principal) = self.unfinished_runs(id).await?;
        let reason = format!("the GitHub App's installation {id} is no longer suspended");
        let mut carried_on = 0;
        for run in &runs {
            match self
                .app
                .runs()
                .unpause(&principal, run, launcher, &reason)
                .await
            {
                Ok(Some(_)) => carried_on += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(run = %run, error = %e, "a run could not be carried on"),
            }
        }
        self.app.deliver_audit().await;
        Ok(format!(
            "{carried_on} of {} unfinished runs carried on",
            runs.len()
        ))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Error> {
    serde_json::from_str(body)
        .map_err(|e| Error::Malformed(format!("the payload is not what GitHub sends: {e}")))
}

/// GitHub's event names: lowercase words joined by `_`.
fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A delivery GUID as GitHub sends it: a UUID in lowercase hex (one
/// spelling only, so that a GUID cannot be recorded twice in two cases).
fn is_guid(guid: &str) -> bool {
    guid.len() == 36
        && guid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}
