//! What runs wait for a human to decide: listed, shown and decided.

use smithers_api::{Approval, ApprovalKind, ApprovalState, Error, Page, Timestamp};

use crate::authz::{Operation, authorize, authorize_decision};
use crate::error::{engine_error, store_error};
use crate::{App, Principal};

/// Lists, shows and decides approvals. Obtained from [`App::approvals`].
pub struct Approvals<'a> {
    pub(crate) app: &'a App,
}

/// How many approvals a list holds at most.
const LIST_LIMIT: u32 = 500;

impl Approvals<'_> {
    /// The organization's pending approvals (every one with `all`), newest
    /// first, at most 500.
    pub async fn list(&self, principal: &Principal, all: bool) -> Result<Vec<Approval>, Error> {
        Ok(self.page(principal, all, None, LIST_LIMIT).await?.items)
    }

    /// One page of the organization's pending approvals (every one with
    /// `all`), newest first, after `cursor` (the `next` of the page
    /// before), at most `limit` (and 500).
    ///
    /// Errors: `invalid` for a cursor this list did not give.
    pub async fn page(
        &self,
        principal: &Principal,
        all: bool,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Approval>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::ApprovalsRead)?;
        let before = cursor.map(crate::runs::decode_cursor).transpose()?;
        let limit = limit.clamp(1, LIST_LIMIT);
        // One more than asked tells whether there is a next page.
        let mut list = self
            .app
            .engine()
            .runs
            .approvals_with_workflow(
                org,
                !all,
                before.as_ref().map(|(at, id)| (*at, id.as_str())),
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let next = if list.len() > limit as usize {
            list.truncate(limit as usize);
            list.last()
                .map(|(a, _)| crate::runs::encode_cursor(a.created_at, &a.id))
        } else {
            None
        };
        Ok(Page {
            items: list
                .iter()
                .map(|(a, workflow)| approval_dto(a, workflow))
                .collect(),
            next,
        })
    }

    /// What run `run` asked, oldest first (`pending_only`: what it waits
    /// for now).
    ///
    /// Errors: `not_found` for a run of another organization.
    pub async fn of_run(
        &self,
        principal: &Principal,
        run: &str,
        pending_only: bool,
    ) -> Result<Vec<Approval>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::ApprovalsRead)?;
        // The run is found, not read: reading approvals is what is asked.
        let workflow = self.app.runs().find(principal, run).await?.workflow;
        let list = self
            .app
            .engine()
            .runs
            .approvals_of_run(run)
            .await
            .map_err(store_error)?;
        Ok(list
            .iter()
            .filter(|a| !pending_only || a.state == smithers_store::ApprovalState::Pending)
            .map(|a| approval_dto(a, &workflow))
            .collect())
    }

    /// One approval of the organization.
    ///
    /// Errors: `not_found` when there is none by that id there.
    pub async fn show(&self, principal: &Principal, id: &str) -> Result<Approval, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::ApprovalsRead)?;
        let (approval, workflow) = self.find(org, id).await?;
        Ok(approval_dto(&approval, &workflow))
    }

    /// Approves or rejects (a rejection needs a reason, which the run
    /// fails with). An approval that releases secrets decides their grants
    /// too.
    ///
    /// Errors: `forbidden` for the user who started the run, and for a
    /// member on an admin-only approval; `conflict` when it was decided or
    /// expired meanwhile; `invalid` for a rejection without a reason.
    pub async fn decide(
        &self,
        principal: &Principal,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Approval, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::ApprovalsDecide)?;
        let (approval, workflow) = self.find(org, id).await?;
        authorize_decision(principal, &approval.requested_by, approval.admin_only)?;
        let decided = self
            .app
            .engine()
            .decide(org, &principal.user, id, approve, comment)
            .await
            .map_err(engine_error)?;
        self.app.deliver_audit().await;
        Ok(approval_dto(&decided, &workflow))
    }

    async fn find(&self, org: &str, id: &str) -> Result<(smithers_store::Approval, String), Error> {
        let runs = &self.app.engine().runs;
        let missing = || Error::not_found(format!("no approval {id} in {org:?}"));
        let approval = match runs.approval(id).await {
            Ok(a) if a.organization_id == org => a,
            Ok(_) | Err(smithers_store::Error::NotFound(_)) => return Err(missing()),
            Err(e) => return Err(store_error(e)),
        };
        let run = runs.get(&approval.run_id).await.map_err(store_error)?;
        Ok((approval, run.workflow))
    }
}

/// An approval as the front ends show it; `workflow` is its run's.
pub fn approval_dto(a: &smithers_store::Approval, workflow: &str) -> Approval {
    Approval {
        id: a.id.clone(),
        run: a.run_id.clone(),
        workflow: workflow.to_string(),
        position: a.position,
        kind: match a.kind {
            smithers_store::ApprovalKind::Step => ApprovalKind::Step,
            smithers_store::ApprovalKind::ToolCall => ApprovalKind::ToolCall,
        },
        admin_only: a.admin_only,
        role: a.role.clone(),
        requested_by: a.requested_by.clone(),
        summary: a.summary.clone(),
        details: a.details.clone(),
        state: match a.state {
            smithers_store::ApprovalState::Pending => ApprovalState::Pending,
            smithers_store::ApprovalState::Approved => ApprovalState::Approved,
            smithers_store::ApprovalState::Rejected => ApprovalState::Rejected,
            smithers_store::ApprovalState::Expired => ApprovalState::Expired,
        },
        decided_by: a.decided_by.clone(),
        comment: a.comment.clone(),
        created_at: Timestamp(a.created_at),
        expires_at: a.expires_at.map(Timestamp),
    }
}
