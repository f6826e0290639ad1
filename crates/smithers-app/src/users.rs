//! The organization's users.

use smithers_api::{Error, Role, User};
use smithers_audit::ActorType;

use crate::authz::{Operation, authorize};
use crate::error::{role, store_error, store_role};
use crate::{App, Principal};

/// Adds and lists users. Obtained from [`App::users`].
pub struct Users<'a> {
    pub(crate) app: &'a App,
}

impl Users<'_> {
    /// Adds `name` to the principal's organization as `role`, with its
    /// `user.add` audit event in the same transaction.
    ///
    /// Errors: `forbidden` unless the principal is an admin there;
    /// `invalid` for a malformed name; `conflict` when the user exists;
    /// the audit log's when the event cannot be committed (then the user
    /// is not added either).
    pub async fn add(
        &self,
        principal: &Principal,
        name: &str,
        new_role: Role,
    ) -> Result<User, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::UsersAdd)?;
        let user = self
            .app
            .store()
            .organizations()
            .add_user_recorded(
                self.app.signer(),
                (actor_type(principal), &principal.user),
                org,
                name,
                store_role(new_role),
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(user))
    }

    /// Gives `name` the role `new_role`: their sessions end (they sign in
    /// again) and `user.role_changed` is recorded, in one transaction.
    ///
    /// Errors: `forbidden` unless the principal is an admin there;
    /// `not_found` for no such user; `conflict` when they have the role
    /// already, or are the last admin.
    pub async fn set_role(
        &self,
        principal: &Principal,
        name: &str,
        new_role: Role,
    ) -> Result<User, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::UsersManage)?;
        let user = self
            .app
            .store()
            .organizations()
            .set_role_recorded(
                self.app.signer(),
                (actor_type(principal), &principal.user),
                org,
                name,
                store_role(new_role),
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(user))
    }

    /// Removes `name` from the organization: their sessions end and their
    /// API tokens go, with `user.removed`, in one transaction. What they
    /// did stays recorded.
    ///
    /// Errors: `forbidden` unless the principal is an admin there;
    /// `not_found` for no such user; `conflict` for the last admin.
    pub async fn remove(&self, principal: &Principal, name: &str) -> Result<User, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::UsersManage)?;
        let user = self
            .app
            .store()
            .organizations()
            .remove_user_recorded(
                self.app.signer(),
                (actor_type(principal), &principal.user),
                org,
                name,
            )
            .await
            .map_err(store_error)?;
        self.app.deliver_audit().await;
        Ok(dto(user))
    }

    /// The principal's organization's users, by name.
    ///
    /// Errors: `forbidden` for a user of another organization.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<User>, Error> {
        let org = &principal.organization;
        authorize(principal, org, Operation::UsersList)?;
        let users = self
            .app
            .store()
            .organizations()
            .users(org)
            .await
            .map_err(store_error)?;
        Ok(users.into_iter().map(dto).collect())
    }
}

fn dto(user: smithers_store::User) -> User {
    User {
        organization: user.organization_id,
        name: user.name,
        role: role(user.role),
        created_at: smithers_api::Timestamp(user.created_at),
    }
}

/// Who the audit log says acted: a person, the system, or GitHub (the
/// App acting on a webhook or a reconcile).
fn actor_type(principal: &Principal) -> ActorType {
    match principal.via {
        crate::Via::System => ActorType::System,
        crate::Via::GithubInstallation => ActorType::Webhook,
        crate::Via::Cli | crate::Via::Session | crate::Via::ApiToken => ActorType::User,
    }
}
