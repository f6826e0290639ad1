//! Chains of pull requests the GitHub App opened, for people to read and
//! to let go on (`smithers stacks list|show|sync`, `/api/v1/stacks`, the
//! dashboard's stacks page). The App's reconciler keeps them current; a
//! sync only asks it to take the branches as they are on GitHub at its
//! next pass.

use smithers_api::{Error, Stack, StackMember, Timestamp};
use smithers_store::{GithubStack, StackState};

use crate::authz::{Operation, authorize};
use crate::error::store_error;
use crate::{App, Principal};

/// The most stacks a list holds.
pub const MAX_STACKS: u32 = 500;

/// The stacks service.
pub struct Stacks<'a> {
    pub(crate) app: &'a App,
}

impl Stacks<'_> {
    /// The organization's stacks, newest first, at most `limit` (1 to
    /// [`MAX_STACKS`]); only those still kept current (active or paused)
    /// unless `all`.
    ///
    /// Errors: `forbidden` for a user of another organization or a token
    /// without `runs:read`; `invalid` for a limit out of range; the
    /// store's.
    pub async fn list(
        &self,
        principal: &Principal,
        all: bool,
        limit: u32,
    ) -> Result<Vec<Stack>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::StacksRead)?;
        if !(1..=MAX_STACKS).contains(&limit) {
            return Err(Error::invalid(format!(
                "limit {limit}: between 1 and {MAX_STACKS}"
            )));
        }
        let stacks = self
            .app
            .store()
            .github()
            .stacks(org, None, if all { limit } else { MAX_STACKS })
            .await
            .map_err(store_error)?;
        Ok(stacks
            .into_iter()
            .filter(|s| all || matches!(s.state, StackState::Active | StackState::Paused))
            .take(limit as usize)
            .map(stack_dto)
            .collect())
    }

    /// Stack `id`.
    ///
    /// Errors: `forbidden` as for [`Stacks::list`]; `not_found` for a
    /// stack that is not the organization's; the store's.
    pub async fn show(&self, principal: &Principal, id: &str) -> Result<Stack, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::StacksRead)?;
        self.find(org, id).await.map(stack_dto)
    }

    /// The stack run `run_id` delivered, if it delivered one.
    ///
    /// Errors: `forbidden` as for [`Stacks::list`]; the store's.
    pub async fn of_run(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<Option<Stack>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::StacksRead)?;
        let stack = self
            .app
            .store()
            .github()
            .stack_of_run(run_id)
            .await
            .map_err(store_error)?;
        Ok(stack.filter(|s| &s.organization_id == org).map(stack_dto))
    }

    /// Asks for stack `id`'s branches to be taken as they are on GitHub
    /// (a person's push onto one becomes that member's) and for the stack
    /// to go on from there at the App's next pass; audited as
    /// `github.stack_sync_requested`. Answers the stack as it now stands.
    ///
    /// Errors: `forbidden` for a user of another organization or a token
    /// without `runs:write`; `not_found` for a stack that is not the
    /// organization's; `conflict` for one that is finished or superseded;
    /// the store's.
    pub async fn sync(&self, principal: &Principal, id: &str) -> Result<Stack, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::StacksSync)?;
        let stack = self.find(org, id).await?;
        let requested = self
            .app
            .store()
            .github()
            .request_stack_sync_by(self.app.signer(), org, id, &principal.user)
            .await
            .map_err(store_error)?;
        if !requested {
            return Err(Error::conflict(format!(
                "stack {id} is {}: only an active or paused stack is kept current",
                stack.state.as_str()
            )));
        }
        self.app.deliver_audit().await;
        self.find(org, id).await.map(stack_dto)
    }

    async fn find(&self, org: &str, id: &str) -> Result<GithubStack, Error> {
        match self.app.store().github().stack(id).await {
            Ok(Some(stack)) if stack.organization_id == org => Ok(stack),
            Ok(_) => Err(Error::not_found(format!("no stack {id:?}"))),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// A stack as people see it.
fn stack_dto(stack: GithubStack) -> Stack {
    // A member is based on the nearest open member below it, or on the
    // stack's base: where the reconciler puts its pull request.
    let based_on: Vec<Option<String>> = (0..stack.members.len())
        .map(|i| {
            if stack.members[i].merged {
                return None;
            }
            Some(
                stack.members[..i]
                    .iter()
                    .rev()
                    .find(|m| !m.merged)
                    .map_or_else(|| stack.base.clone(), |m| m.branch.clone()),
            )
        })
        .collect();
    Stack {
        id: stack.id,
        repository: stack.repository,
        run: stack.run_id,
        base: stack.base,
        state: stack.state.as_str().to_string(),
        paused_reason: stack.paused_reason,
        sync_requested: stack.sync_requested,
        created_at: Timestamp(stack.created_at),
        updated_at: Timestamp(stack.updated_at),
        members: stack
            .members
            .into_iter()
            .zip(based_on)
            .map(|(m, based_on)| StackMember {
                branch: m.branch,
                title: m.title,
                pull: m.pull_number,
                state: if m.merged { "merged" } else { "open" }.to_string(),
                head: m.head,
                built_on: m.built_on,
                based_on,
            })
            .collect(),
    }
}
