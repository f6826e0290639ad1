//! What the GitHub App has recorded for an organization, for people to
//! read (`smithers github status`): installations, repositories with
//! their default branch's protection, recent deliveries, warnings.

use smithers_api::{
    Error, GithubDelivery, GithubInstallation, GithubRepository, GithubStatus, Timestamp,
};

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// How many recent deliveries the status shows.
const RECENT_DELIVERIES: u32 = 20;

impl App {
    /// The GitHub App's status for the principal's organization.
    ///
    /// Errors: `forbidden` for a user of another organization; the
    /// store's.
    pub async fn github_status(&self, principal: &Principal) -> Result<GithubStatus, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::GithubRead)?;
        let github = self.store().github();
        let installations = github.installations(org).await.map_err(store_error)?;
        let repositories = github.repositories(org).await.map_err(store_error)?;
        let deliveries = github
            .recent_deliveries(org, RECENT_DELIVERIES)
            .await
            .map_err(store_error)?;
        let mut warnings = Vec::new();
        for i in &installations {
            if i.suspended_at.is_some() && i.deleted_at.is_none() {
                warnings.push(format!(
                    "the installation on {} is suspended: it starts no run",
                    i.account_login
                ));
            }
        }
        for r in repositories.iter().filter(|r| r.disconnected_at.is_none()) {
            if r.default_protected == Some(false) {
                warnings.push(format!(
                    "{}: the default branch {} is not protected on GitHub — add a branch \
                     protection rule or ruleset the App cannot bypass",
                    r.full_name,
                    r.default_branch.as_deref().unwrap_or("?")
                ));
            }
        }
        for d in deliveries
            .iter()
            .filter(|d| d.outcome.as_deref() == Some("failed"))
        {
            warnings.push(format!(
                "delivery {} ({}) failed: {}",
                d.guid,
                d.event,
                d.detail.as_deref().unwrap_or("no reason recorded")
            ));
        }
        Ok(GithubStatus {
            installations: installations
                .into_iter()
                .map(|i| GithubInstallation {
                    id: i.id,
                    account: i.account_login,
                    account_type: i.account_type,
                    repository_selection: i.repository_selection,
                    permissions: i.permissions,
                    suspended: i.suspended_at.is_some(),
                    deleted: i.deleted_at.is_some(),
                    created_at: Timestamp(i.created_at),
                })
                .collect(),
            repositories: repositories
                .into_iter()
                .map(|r| GithubRepository {
                    id: r.id,
                    full_name: r.full_name,
                    installation: r.installation_id,
                    private: r.private,
                    connected: r.disconnected_at.is_none(),
                    default_branch: r.default_branch,
                    default_branch_protected: r.default_protected,
                    protection_checked_at: r.protection_checked_at.map(Timestamp),
                })
                .collect(),
            deliveries: deliveries
                .into_iter()
                .map(|d| GithubDelivery {
                    guid: d.guid,
                    event: d.event,
                    action: d.action,
                    received_at: Timestamp(d.received_at),
                    outcome: d.outcome,
                    detail: d.detail,
                })
                .collect(),
            warnings,
        })
    }
}
