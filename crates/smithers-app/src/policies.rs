//! Organizations' policies: published (after the same checks as `policy
//! check`), shown, listed and unpublished, each change committed with its
//! audit event. An organization's policy bounds every repository's policy
//! in its runs (see `smithers_engine`'s gate).

use smithers_api::{Error, PolicyState, PolicyVersion, Timestamp};
use smithers_audit::ActorType;
use smithers_policy::PolicySet;

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// Publishes, shows, lists and unpublishes the principal's organization's
/// policy. Obtained from [`App::policies`].
pub struct Policies<'a> {
    pub(crate) app: &'a App,
}

impl Policies<'_> {
    /// Publishes `text` (read from `file`, named in diagnostics) as the
    /// next version, with `policy.created` or `policy.modified`.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `invalid` when
    /// the text is not a valid policy or one of its inline tests fails
    /// (the message holds the diagnostics or the failing tests); `conflict`
    /// when the policy in force is this text already.
    pub async fn publish(
        &self,
        principal: &Principal,
        file: &str,
        text: &str,
    ) -> Result<PolicyVersion, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::PolicyPublish)?;
        check(file, text)?;
        let version = self
            .app
            .store()
            .policies()
            .publish(
                self.app.signer(),
                (ActorType::User, &principal.user),
                org,
                text,
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(version, true))
    }

    /// The policy in force, or `version`, with its text.
    ///
    /// Errors: `not_found` when none is in force or there is no such
    /// version.
    pub async fn show(
        &self,
        principal: &Principal,
        version: Option<u32>,
    ) -> Result<PolicyVersion, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::PolicyRead)?;
        let policies = self.app.store().policies();
        let found = match version {
            Some(n) => policies.version(org, n).await.map_err(store_error)?,
            None => policies
                .current(org)
                .await
                .map_err(store_error)?
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "{org:?} has no policy in force (`smithers policy publish FILE` publishes one)"
                    ))
                })?,
        };
        Ok(dto(found, true))
    }

    /// Every version, oldest first, without their texts.
    pub async fn history(&self, principal: &Principal) -> Result<Vec<PolicyVersion>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::PolicyRead)?;
        let versions = self
            .app
            .store()
            .policies()
            .history(org)
            .await
            .map_err(store_error)?;
        Ok(versions.into_iter().map(|v| dto(v, false)).collect())
    }

    /// Unpublishes the policy in force, with `policy.deleted`.
    ///
    /// Errors: `forbidden` unless the principal is an admin; `not_found`
    /// when none is in force.
    pub async fn unpublish(&self, principal: &Principal) -> Result<PolicyVersion, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::PolicyUnpublish)?;
        let version = self
            .app
            .store()
            .policies()
            .unpublish(self.app.signer(), (ActorType::User, &principal.user), org)
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(version, false))
    }
}

/// What `policy check` requires: the text parses and every inline test
/// passes.
fn check(file: &str, text: &str) -> Result<(), Error> {
    let policy = match PolicySet::parse(file, text) {
        Ok(policy) => policy,
        Err(smithers_policy::Error::InvalidPolicy(diagnostics)) => {
            return Err(Error::invalid(format!(
                "{}\n{file}: invalid policy ({} error{}); nothing was published",
                smithers_policy::render_diagnostics(&diagnostics),
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" }
            )));
        }
        Err(e) => return Err(Error::invalid(format!("{file}: {e}"))),
    };
    let failing: Vec<String> = policy
        .run_tests()
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.report())
        .collect();
    if !failing.is_empty() {
        return Err(Error::invalid(format!(
            "{}\n{file}: {} inline test{} failed; nothing was published",
            failing.join("\n"),
            failing.len(),
            if failing.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

fn dto(v: smithers_store::PolicyVersion, with_text: bool) -> PolicyVersion {
    PolicyVersion {
        organization: v.organization_id,
        version: v.version,
        state: if v.text.is_some() {
            PolicyState::Published
        } else {
            PolicyState::Unpublished
        },
        sha256: v.sha256,
        created_by: v.created_by,
        created_at: Timestamp(v.created_at),
        text: v.text.filter(|_| with_text),
    }
}

/// A decision of the kernel taken outside a run (`policy eval --audit`),
/// as its `capability_check` event records it.
#[derive(Debug, Clone)]
pub struct CapabilityCheck<'a> {
    /// Who asked: a role name, or `user:NAME`.
    pub subject: &'a str,
    /// The user asking, when the subject is a role.
    pub user: Option<&'a str>,
    pub tool: &'a str,
    pub resource: &'a str,
    /// The policy that decided, as the caller names it (its file).
    pub policy: &'a str,
    /// The decision, as `policy eval --json` prints it.
    pub decision: serde_json::Value,
}

impl Policies<'_> {
    /// Records `check` in the organization's audit log as a
    /// `capability_check` event by the principal; returns its sequence
    /// number once it is durable.
    ///
    /// Errors: `forbidden` for a user of another organization; the audit
    /// log's when it cannot be recorded (then nothing was).
    pub async fn record_check(
        &self,
        principal: &Principal,
        check: CapabilityCheck<'_>,
    ) -> Result<u64, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::PolicyCheck)?;
        let event = smithers_store::audit_event(
            org,
            (ActorType::User, &principal.user),
            "capability_check",
            ("tool_call", check.tool),
            serde_json::json!({
                "subject": check.subject,
                "user": check.user,
                "tool": check.tool,
                "resource": check.resource,
                "policy": check.policy,
                "decision": check.decision,
            }),
            smithers_store::now_micros(),
        );
        let (log, writer) = self.app.audit_log();
        let sealed = log.append(event).await;
        drop(log);
        writer.join().await;
        let sealed = sealed.map_err(|e| {
            Error::unavailable(format!(
                "the decision could not be recorded in the audit log: {e}"
            ))
        })?;
        self.app.deliver_audit().await;
        Ok(sealed.seq)
    }
}
