//! Scheduled workflows of the repositories the App is installed on:
//! `on = ["schedule"]` with `schedule = "MIN HOUR DOM MON DOW"`, read in
//! UTC as GitHub Actions reads its schedules.
//!
//! ```text
//! every SCHEDULE_INTERVAL, for each connected repository of a live
//! installation whose default branch is known (the protection check
//! learns it):
//!   → the default branch's smithers.toml as the mirror holds it, fetched
//!     again when older than REFRESH_AFTER if it schedules anything, else
//!     QUIET_REFRESH_AFTER (pull request and push events fetch it too; a
//!     failed fetch waits as long as a successful one)
//!   → for each scheduled workflow: due when its cron has a time after its
//!     last firing (a workflow first seen starts at that moment: no
//!     backlog) and not after now, and MIN_INTERVAL has passed since the
//!     last firing; missed times fire once, not once each
//!   → the firing claimed in the store (compare-and-set on the last
//!     firing: two processes never fire the same one); skipped while the
//!     workflow's previous scheduled run is unfinished (runs never pile
//!     up)
//!   → the due workflows started as a push's are, rules and code from the
//!     default branch's tip fetched just now (a workflow no longer
//!     scheduled there starts nothing), the work offered against the
//!     default branch; if nothing could be started, the claim is given
//!     back and the next look fires it
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use smithers_app::{Principal, RunLauncher};
use smithers_store::Repository as Connected;

use crate::Error;
use crate::pulls::{PullRuns, Repository, Target};

/// How often schedules are looked at: a firing comes at most this late.
pub(crate) const SCHEDULE_INTERVAL: Duration = Duration::from_secs(30);

/// How old the mirror's copy of a default branch that schedules
/// workflows may be when schedules are read from it.
const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);

/// How old the mirror's copy of a default branch that schedules nothing
/// may be (events fetch it in between).
const QUIET_REFRESH_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The least time between two firings of one workflow, whatever its cron
/// says (GitHub Actions' shortest schedule too).
const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// When each repository's default branch was last fetched for its
/// schedules, by repository id.
#[derive(Debug, Default)]
pub(crate) struct Refreshed(Mutex<HashMap<i64, Instant>>);

impl Refreshed {
    /// Whether repository `repository` was not fetched for its schedules
    /// within `after` (or not since the process started).
    fn due(&self, repository: i64, after: Duration) -> bool {
        self.0
            .lock()
            .map(|m| m.get(&repository).is_none_or(|at| at.elapsed() > after))
            .unwrap_or(true)
    }

    fn done(&self, repository: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(repository, Instant::now());
        }
    }
}

/// Fires the organization's due schedules.
pub(crate) struct Schedules<'a> {
    pub runs: PullRuns<'a>,
    pub refreshed: &'a Refreshed,
}

impl Schedules<'_> {
    /// Starts the scheduled workflows due at `now`; answers what each
    /// repository's firing started. A repository that fails is logged and
    /// the others are still looked at.
    ///
    /// Errors: the store's, when the repositories cannot be listed.
    pub(crate) async fn fire_due(
        &self,
        launcher: &dyn RunLauncher,
        now: SystemTime,
    ) -> Result<Vec<String>, Error> {
        let store = self.runs.app.store().github();
        let mut fired = Vec::new();
        for repository in store.repositories(self.runs.organization).await? {
            if repository.disconnected_at.is_some() {
                continue;
            }
            let Some(default) = repository.default_branch.clone() else {
                continue;
            };
            let live = store
                .installation(repository.installation_id)
                .await?
                .is_some_and(|i| i.suspended_at.is_none() && i.deleted_at.is_none());
            if !live {
                continue;
            }
            match self.fire(&repository, default, launcher, now).await {
                Ok(Some(detail)) => fired.push(format!("{}: {detail}", repository.full_name)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(repository = %repository.full_name, error = %e, "the repository's schedules could not be fired")
                }
            }
        }
        Ok(fired)
    }

    /// Fires repository `connected`'s due schedules; what was started, if
    /// anything was due.
    async fn fire(
        &self,
        connected: &Connected,
        default: String,
        launcher: &dyn RunLauncher,
        now: SystemTime,
    ) -> Result<Option<String>, Error> {
        let repository = Repository {
            id: connected.id,
            full_name: connected.full_name.clone(),
            default_branch: default,
        };
        let head_ref = format!("refs/heads/{}", repository.default_branch);
        let mirror = self.runs.mirrors.path(repository.id);
        let principal = Principal::github_installation(self.runs.organization);
        let services = self.runs.app.runs();
        let known = match resolve(&mirror, &head_ref).await {
            Ok(rules) => Some(
                services
                    .workflow_schedules(&principal, &mirror, &rules)
                    .await,
            ),
            Err(_) => None,
        };
        let refresh_after = match &known {
            Some(Ok(schedules)) if schedules.is_empty() => QUIET_REFRESH_AFTER,
            _ => REFRESH_AFTER,
        };
        let schedules = match known {
            Some(known) if !self.refreshed.due(repository.id, refresh_after) => known?,
            _ => {
                // Marked first: a fetch that fails is not tried again at
                // every look.
                self.refreshed.done(repository.id);
                let cause = format!("schedules of {}", repository.default_branch);
                let mirror = self
                    .runs
                    .fetch(
                        connected.installation_id,
                        &repository,
                        std::slice::from_ref(&head_ref),
                        &cause,
                    )
                    .await?;
                let rules = resolve(&mirror, &head_ref).await?;
                services
                    .workflow_schedules(&principal, &mirror, &rules)
                    .await?
            }
        };
        let store = self.runs.app.store().github();
        let now_micros = smithers_store::micros_at(now);
        let min_interval = i64::try_from(MIN_INTERVAL.as_micros()).unwrap_or(i64::MAX);
        let mut due = Vec::new();
        let mut claims = Vec::new();
        let mut skipped = Vec::new();
        for (workflow, cron) in schedules {
            let fired_at = store
                .schedule_fired_at(repository.id, &workflow, now_micros)
                .await?;
            let next = match next_after(&cron, fired_at) {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(repository = %repository.full_name, workflow = %workflow, error = %e, "a schedule has no next time");
                    continue;
                }
            };
            if next > now_micros || now_micros - fired_at < min_interval {
                continue;
            }
            if !store
                .claim_schedule(repository.id, &workflow, fired_at, now_micros)
                .await?
            {
                continue;
            }
            if let Some(earlier) = store
                .unfinished_scheduled_run(repository.id, &workflow)
                .await?
            {
                skipped.push(format!("{workflow}: run {earlier} has not ended, skipped"));
                continue;
            }
            claims.push((workflow.clone(), fired_at));
            due.push(workflow);
        }
        if due.is_empty() {
            return Ok((!skipped.is_empty()).then(|| skipped.join(", ")));
        }
        let cause = format!("schedule {}", humantime::format_rfc3339_seconds(now));
        let target = Target {
            installation: connected.installation_id,
            repository: &repository,
            trigger: "schedule".into(),
            head_ref,
            head_sha: None,
            pull_number: None,
            result_base: repository.default_branch.clone(),
            from_fork: false,
            secrets_withheld: None,
            only: Some(&due),
            once_per_head: false,
        };
        match self.runs.start_runs(&cause, &target, launcher).await {
            Ok(done) => {
                skipped.extend(done.detail);
                Ok(Some(skipped.join(", ")))
            }
            Err(e) => {
                // Nothing started (GitHub away, the server stopping): the
                // firing is given back, so the next look fires it.
                for (workflow, fired_at) in claims {
                    store
                        .claim_schedule(repository.id, &workflow, now_micros, fired_at)
                        .await?;
                }
                Err(e)
            }
        }
    }
}

/// The commit `rev` names in `mirror`.
async fn resolve(mirror: &Path, rev: &str) -> Result<String, Error> {
    smithers_engine::run::resolve_commit(mirror, rev)
        .await
        .map_err(|e| Error::App(smithers_app::engine_error(e)))
}

/// The first time `cron` (five fields, UTC) names after `after`
/// (microseconds since the epoch), in microseconds since the epoch.
///
/// Errors: a cron that does not parse, or names no time after `after`.
fn next_after(cron: &str, after: i64) -> Result<i64, String> {
    let cron: croner::Cron = cron.parse().map_err(|e| format!("{e}"))?;
    // Whole seconds: croner keeps a start's fraction in what it finds.
    let after = after - after.rem_euclid(1_000_000);
    let after: DateTime<Utc> =
        DateTime::from_timestamp_micros(after).ok_or_else(|| format!("{after} is not a time"))?;
    let next = cron
        .find_next_occurrence(&after, false)
        .map_err(|e| format!("{e}"))?;
    Ok(next.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    #[test]
    fn the_next_time_is_strictly_after_the_last_firing() {
        // 2026-12-01T00:00:00Z
        let midnight = 1_796_083_200_000_000;
        assert_eq!(
            next_after("0 0 * * *", midnight),
            Ok(midnight + 1440 * MINUTE)
        );
        // A firing's fraction of a second is not carried into the next.
        assert_eq!(
            next_after("*/5 * * * *", midnight + 1),
            Ok(midnight + 5 * MINUTE)
        );
        assert_eq!(next_after("0 0 * * *", midnight - 1), Ok(midnight));
        assert_eq!(
            next_after("30 2 * * *", midnight),
            Ok(midnight + 150 * MINUTE)
        );
    }

    #[test]
    fn a_cron_that_does_not_parse_has_no_next_time() {
        assert!(next_after("not a cron", 0).is_err());
        assert!(next_after("61 * * * *", 0).is_err());
    }
}
