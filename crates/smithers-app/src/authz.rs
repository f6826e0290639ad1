//! Who may do what: every operation of every service is decided here, by
//! the principal's role in the organization, before anything happens.
//! The table is [`rule`]; `tests/authz.rs` checks every operation against
//! every role.

use smithers_api::{Error, Role, Scope};

use crate::Principal;

/// An operation a front end can ask a service for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `users add`: a new user of the organization.
    UsersAdd,
    /// `users list`.
    UsersList,
    /// `users role`, `users remove`: a user's role changed, or the user
    /// removed (their sessions end, their tokens go).
    UsersManage,
    /// `policy publish`: a new version of the organization's policy.
    PolicyPublish,
    /// `policy unpublish`.
    PolicyUnpublish,
    /// `policy show`, `policy history`.
    PolicyRead,
    /// `policy eval --audit`: a decision recorded in the audit log.
    PolicyCheck,
    /// `approvals list`, `approvals show`.
    ApprovalsRead,
    /// `approvals approve`, `approvals reject` (and see
    /// [`authorize_decision`]).
    ApprovalsDecide,
    /// `runs list`, `runs show`, `runs logs`: runs, their steps, calls,
    /// decisions and (redacted) logs.
    RunsRead,
    /// `run`: start a workflow of a repository.
    RunsStart,
    /// `runs resume`: carry on an interrupted run.
    RunsResume,
    /// `runs cancel`.
    RunsCancel,
    /// `secrets list`, `secrets versions`: names, versions, dates, never
    /// values.
    SecretsList,
    /// `secrets set`, `secrets rotate`: a new value.
    SecretsWrite,
    /// `secrets get`: a value, under an approved grant (which the secrets
    /// service checks besides).
    SecretsReveal,
    /// `secrets destroy`: a version's ciphertext erased for good.
    SecretsDestroy,
    /// `secrets keys`, `secrets rewrap`: the keyring's use.
    SecretsKeys,
    /// `secrets grant request`.
    GrantsRequest,
    /// `secrets grant approve|deny` (never one's own request; the secrets
    /// service checks that besides).
    GrantsDecide,
    /// `secrets grant list`.
    GrantsRead,
    /// `audit log`, `audit export`, `audit prove`, `audit verify`: the
    /// organization's audit events and proofs.
    AuditRead,
    /// The GitHub App's installations, repositories and deliveries.
    GithubRead,
    /// `stacks list`, `stacks show`: the chains of pull requests the App
    /// opened.
    StacksRead,
    /// `stacks sync`: a stack goes on from its branches as they are on
    /// GitHub (a person's push becomes its member's).
    StacksSync,
    /// `audit publish`: delivery of the log to NATS.
    AuditPublish,
    /// `tokens create`: an API token acting as oneself.
    TokensCreate,
    /// `tokens list`: one's own tokens (an admin: the organization's).
    TokensRead,
    /// `tokens revoke`: one's own (an admin: any of the organization's).
    TokensRevoke,
    RetentionRead,
    RetentionManage,
}

impl Operation {
    /// Every operation, for the table test.
    pub const ALL: &'static [Operation] = &[
        Operation::UsersAdd,
        Operation::UsersList,
        Operation::UsersManage,
        Operation::PolicyPublish,
        Operation::PolicyUnpublish,
        Operation::PolicyRead,
        Operation::PolicyCheck,
        Operation::ApprovalsRead,
        Operation::ApprovalsDecide,
        Operation::RunsRead,
        Operation::RunsStart,
        Operation::RunsResume,
        Operation::RunsCancel,
        Operation::SecretsList,
        Operation::SecretsWrite,
        Operation::SecretsReveal,
        Operation::SecretsDestroy,
        Operation::SecretsKeys,
        Operation::GrantsRequest,
        Operation::GrantsDecide,
        Operation::GrantsRead,
        Operation::AuditRead,
        Operation::GithubRead,
        Operation::StacksRead,
        Operation::StacksSync,
        Operation::AuditPublish,
        Operation::TokensCreate,
        Operation::TokensRead,
        Operation::TokensRevoke,
        Operation::RetentionRead,
        Operation::RetentionManage,
    ];

    /// What it is, in a refusal: "adding users".
    pub fn describe(self) -> &'static str {
        match self {
            Operation::UsersAdd => "adding users",
            Operation::UsersList => "listing users",
            Operation::UsersManage => "changing and removing users",
            Operation::PolicyPublish => "publishing the organization's policy",
            Operation::PolicyUnpublish => "unpublishing the organization's policy",
            Operation::PolicyRead => "reading the organization's policy",
            Operation::PolicyCheck => "recording policy decisions",
            Operation::ApprovalsRead => "reading approvals",
            Operation::ApprovalsDecide => "deciding approvals",
            Operation::RunsRead => "reading runs",
            Operation::RunsStart => "starting runs",
            Operation::RunsResume => "resuming runs",
            Operation::RunsCancel => "cancelling runs",
            Operation::SecretsList => "listing secrets",
            Operation::SecretsWrite => "writing secrets",
            Operation::SecretsReveal => "reading secret values",
            Operation::SecretsDestroy => "destroying secret versions",
            Operation::SecretsKeys => "managing encryption keys",
            Operation::GrantsRequest => "requesting grants",
            Operation::GrantsDecide => "deciding grants",
            Operation::GrantsRead => "listing grants",
            Operation::AuditRead => "reading the audit log",
            Operation::GithubRead => "reading the GitHub App's status",
            Operation::StacksRead => "reading stacks of pull requests",
            Operation::StacksSync => "syncing stacks of pull requests",
            Operation::AuditPublish => "publishing the audit log",
            Operation::TokensCreate => "creating API tokens",
            Operation::TokensRead => "listing API tokens",
            Operation::TokensRevoke => "revoking API tokens",
            Operation::RetentionRead => "reading the organization's retention",
            Operation::RetentionManage => "changing and applying the organization's retention",
        }
    }
}

/// Who may ask for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any user of the organization.
    Member,
    /// An admin of the organization.
    Admin,
}

/// The table: the least role each operation needs.
pub fn rule(operation: Operation) -> Rule {
    match operation {
        Operation::UsersList
        | Operation::PolicyRead
        | Operation::PolicyCheck
        | Operation::ApprovalsRead
        | Operation::ApprovalsDecide
        | Operation::RunsRead
        | Operation::RunsStart
        | Operation::RunsResume
        | Operation::RunsCancel
        | Operation::SecretsList
        | Operation::SecretsWrite
        | Operation::SecretsReveal
        | Operation::GrantsRequest
        | Operation::GrantsRead
        | Operation::TokensCreate
        | Operation::TokensRead
        | Operation::TokensRevoke
        | Operation::GithubRead
        | Operation::StacksRead
        | Operation::StacksSync
        | Operation::RetentionRead => Rule::Member,
        Operation::UsersAdd
        | Operation::UsersManage
        | Operation::PolicyPublish
        | Operation::PolicyUnpublish
        | Operation::SecretsDestroy
        | Operation::SecretsKeys
        | Operation::GrantsDecide
        | Operation::AuditRead
        | Operation::AuditPublish
        | Operation::RetentionManage => Rule::Admin,
    }
}

/// The scope an API token needs for `operation`; `None`: no token may ask
/// for it (tokens are made and revoked by people).
pub fn scope(operation: Operation) -> Option<Scope> {
    Some(match operation {
        Operation::UsersAdd | Operation::UsersManage => Scope::UsersWrite,
        Operation::UsersList => Scope::UsersRead,
        Operation::PolicyPublish | Operation::PolicyUnpublish | Operation::PolicyCheck => {
            Scope::PolicyWrite
        }
        Operation::PolicyRead => Scope::PolicyRead,
        Operation::ApprovalsRead => Scope::ApprovalsRead,
        Operation::ApprovalsDecide => Scope::ApprovalsWrite,
        Operation::RunsRead => Scope::RunsRead,
        Operation::RunsStart | Operation::RunsResume | Operation::RunsCancel => Scope::RunsWrite,
        Operation::SecretsList | Operation::GrantsRead => Scope::SecretsRead,
        Operation::SecretsWrite
        | Operation::SecretsDestroy
        | Operation::SecretsKeys
        | Operation::GrantsRequest
        | Operation::GrantsDecide => Scope::SecretsWrite,
        Operation::SecretsReveal => Scope::SecretsReveal,
        Operation::AuditRead => Scope::AuditRead,
        Operation::GithubRead | Operation::StacksRead => Scope::RunsRead,
        Operation::StacksSync => Scope::RunsWrite,
        Operation::AuditPublish | Operation::RetentionManage => Scope::AuditWrite,
        Operation::RetentionRead => Scope::AuditRead,
        Operation::TokensCreate | Operation::TokensRead | Operation::TokensRevoke => return None,
    })
}

/// Whether `principal` may ask for `operation` in `organization`.
///
/// Errors: `forbidden`, naming the operation, the organization and why
/// (not a user there; a member where an admin is needed).
pub fn authorize(
    principal: &Principal,
    organization: &str,
    operation: Operation,
) -> Result<(), Error> {
    if principal.organization != organization {
        return Err(Error::forbidden(format!(
            "{} of {organization:?} needs a user of {organization:?}; {} is a user of {:?}",
            operation.describe(),
            principal.user,
            principal.organization
        )));
    }
    if let Some(scopes) = &principal.scopes {
        match scope(operation) {
            Some(needed) if scopes.contains(&needed) => {}
            Some(needed) => {
                return Err(Error::forbidden(format!(
                    "{} needs a token with the scope {needed}",
                    operation.describe()
                )));
            }
            None => {
                return Err(Error::forbidden(format!(
                    "{} is not done with an API token",
                    operation.describe()
                )));
            }
        }
    }
    match (rule(operation), principal.role) {
        (Rule::Member, _) | (Rule::Admin, Role::Admin) => Ok(()),
        (Rule::Admin, Role::Member) => Err(Error::forbidden(format!(
            "{} needs an admin of {organization:?}; {} is a member",
            operation.describe(),
            principal.user
        ))),
    }
}

/// Whether `principal` may decide an approval of a run `started_by`, which
/// is `admin_only` or not: never the run's starter (a second pair of eyes),
/// and only an admin for an admin-only one. (The store checks the same
/// inside the transaction that decides, against the approval as it is
/// then.)
///
/// Errors: `forbidden`, saying which.
pub fn authorize_decision(
    principal: &Principal,
    started_by: &str,
    admin_only: bool,
) -> Result<(), Error> {
    if principal.user == started_by {
        return Err(Error::forbidden(format!(
            "{} started the run and cannot decide its approvals; another user must",
            principal.user
        )));
    }
    if admin_only && principal.role != Role::Admin {
        return Err(Error::forbidden(format!(
            "the approval is admin-only and {} is not an admin",
            principal.user
        )));
    }
    Ok(())
}
