//! Retention: how long an organization keeps run logs, tool-call outputs
//! and audit events (`smithers org retention`), and the pass that drops
//! what is older (`smithers retention run`, and by itself in `smithers
//! serve`). What models generated for a run and the run's workspace are
//! not kept at all past the run: the engine destroys them when it ends.

use std::time::Duration;

use smithers_api::{AuditPrune, Error, Retention, RetentionPass, Timestamp};
use smithers_audit::ActorType;

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// How often `smithers serve` runs a retention pass.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

const FOREVER: &str = "forever";
const AT_RUN_END: &str = "destroyed when the run ends";

/// The retention service.
pub struct RetentionService<'a> {
    pub(crate) app: &'a App,
}

/// `30days`, `2years`…, or `forever`.
fn label(secs: Option<u64>) -> String {
    match secs {
        Some(s) => humantime::format_duration(Duration::from_secs(s)).to_string(),
        None => FOREVER.to_string(),
    }
}

/// Reads a retention as people write it: `30d`, `2y`, `90days`, `1year 6months`, or `forever`.
///
/// Errors: `invalid`, saying what is accepted.
pub fn parse_retention(text: &str) -> Result<Option<u64>, Error> {
    let text = text.trim();
    if text.eq_ignore_ascii_case(FOREVER) {
        return Ok(None);
    }
    let duration = humantime::parse_duration(text).map_err(|e| {
        Error::invalid(format!(
            "retention {text:?}: {e}; write e.g. 30d, 90d, 2y, or {FOREVER}"
        ))
    })?;
    if duration < Duration::from_secs(86_400) {
        return Err(Error::invalid(format!(
            "retention {text:?} is under a day: logs are kept at least one day"
        )));
    }
    Ok(Some(duration.as_secs()))
}

impl RetentionService<'_> {
    /// The principal's organization's retention.
    ///
    /// Errors: `forbidden` for a user of another organization or a token
    /// without `audit:read`; the store's.
    pub async fn get(&self, principal: &Principal) -> Result<Retention, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::RetentionRead)?;
        let secs = self
            .app
            .store()
            .organizations()
            .log_retention(org)
            .await
            .map_err(store_error)?;
        Ok(retention(org, secs))
    }

    /// Sets how long the principal's organization keeps run logs,
    /// tool-call outputs and audit events (`None`: for ever), recorded as
    /// `organization.retention_changed`. The next pass applies it.
    ///
    /// Errors: `forbidden` unless an admin; the store's.
    pub async fn set(&self, principal: &Principal, logs: Option<u64>) -> Result<Retention, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::RetentionManage)?;
        self.app
            .store()
            .organizations()
            .set_log_retention_recorded(
                self.app.signer(),
                (ActorType::User, &principal.user),
                org,
                logs,
            )
            .await
            .map_err(store_error)?;
        Ok(retention(org, logs))
    }

    /// A retention pass over the principal's organization now ([`run_at`]).
    ///
    /// Errors: `forbidden` unless an admin; as [`run_at`].
    ///
    /// [`run_at`]: RetentionService::run_at
    pub async fn run(&self, principal: &Principal, dry_run: bool) -> Result<RetentionPass, Error> {
        authorize(
            principal,
            &principal.organization,
            Operation::RetentionManage,
        )?;
        self.run_at(
            &principal.organization,
            smithers_store::now_micros(),
            dry_run,
        )
        .await
    }

    /// A retention pass over every organization that has a retention, now:
    /// what `smithers serve` runs by itself. An organization whose pass
    /// fails is said (logged) and the others go on.
    pub async fn run_all(&self, dry_run: bool) -> Vec<Result<RetentionPass, (String, Error)>> {
        let orgs = match self.app.store().organizations().retention_policies().await {
            Ok(orgs) => orgs,
            Err(e) => return vec![Err((String::new(), store_error(e)))],
        };
        let now = smithers_store::now_micros();
        let mut passes = Vec::with_capacity(orgs.len());
        for (org, _) in orgs {
            let pass = self.run_at(&org, now, dry_run).await;
            if let Err(e) = &pass {
                tracing::warn!(organization = %org, error = %e, "retention pass failed");
            }
            passes.push(pass.map_err(|e| (org, e)));
        }
        passes
    }

    /// One pass over `organization` as if the time were `now`
    /// (microseconds since the epoch): the logs and tool-call outputs of
    /// runs that finished before `now - retention` are dropped, then the
    /// audit events older than that behind a signed prune base. With
    /// `dry_run`, says what would go and drops nothing.
    ///
    /// Errors: `invalid` when the audit log does not verify (nothing of it
    /// is pruned); the store's.
    pub async fn run_at(
        &self,
        organization: &str,
        now: i64,
        dry_run: bool,
    ) -> Result<RetentionPass, Error> {
        let store = self.app.store();
        // Whatever the retention: no ended run keeps its model history (a
        // run that ended before history keys existed kept it plain).
        let histories = if dry_run {
            0
        } else {
            self.app
                .engine()
                .runs
                .destroy_leftover_histories(organization)
                .await
                .map_err(store_error)?
        };
        let secs = store
            .organizations()
            .log_retention(organization)
            .await
            .map_err(store_error)?;
        let Some(secs) = secs else {
            return Ok(RetentionPass {
                organization: organization.to_string(),
                dry_run,
                logs: label(None),
                before: None,
                runs: 0,
                lines: 0,
                outputs: 0,
                histories_destroyed: histories,
                audit: None,
            });
        };
        let before = now.saturating_sub(
            i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
        );
        let dropped = self
            .app
            .engine()
            .runs
            .drop_logs(organization, before, dry_run)
            .await
            .map_err(store_error)?;
        let signer = self.app.signer();
        let pruned = store
            .audit()
            .prune(
                organization,
                before,
                signer,
                &[signer.verifying_key()],
                dry_run,
                now,
            )
            .await
            .map_err(store_error)?;
        Ok(RetentionPass {
            organization: organization.to_string(),
            dry_run,
            logs: label(Some(secs)),
            before: Some(Timestamp(before)),
            runs: dropped.runs,
            lines: dropped.lines,
            outputs: dropped.outputs,
            histories_destroyed: histories,
            audit: pruned.map(|p| AuditPrune {
                first: p.first,
                through: p.through,
                events: p.events,
                held_back_from: p.held_back_from,
                recorded_at: p.recorded_at,
            }),
        })
    }
}

fn retention(organization: &str, secs: Option<u64>) -> Retention {
    Retention {
        organization: organization.to_string(),
        logs: label(secs),
        logs_seconds: secs,
        model_history: AT_RUN_END.to_string(),
        workspaces: AT_RUN_END.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_read_as_people_write_them() {
        assert_eq!(parse_retention("30d").unwrap(), Some(30 * 86_400));
        assert_eq!(parse_retention("2y").unwrap(), Some(63_115_200));
        assert_eq!(parse_retention(" Forever ").unwrap(), None);
        assert_eq!(label(Some(30 * 86_400)), "30days");
        assert_eq!(label(None), "forever");
        for bad in ["", "soon", "12h", "-3d", "0d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
