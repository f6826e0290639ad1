//! Who asks.

use smithers_api::{Role, Scope};

/// How a request reached Smithers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// The command line, on the machine that holds the data directory.
    Cli,
    /// A signed-in browser session.
    Session,
    /// An API token.
    ApiToken,
    /// A GitHub App installation's webhook.
    GithubInstallation,
    /// Smithers itself, carrying on work it holds (a server resuming the
    /// runs it finds interrupted); never a request from outside.
    System,
}

/// A user of one organization with their role, and how they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub organization: String,
    pub user: String,
    pub role: Role,
    pub via: Via,
    /// What an API token was narrowed to; `None`: whatever the role allows.
    pub scopes: Option<Vec<Scope>>,
}

impl Principal {
    /// The GitHub App keeping `organization`'s users in step with the
    /// GitHub organization's members: it adds, changes and removes users,
    /// nothing else.
    pub fn github_seats(organization: &str) -> Principal {
        Principal {
            organization: organization.to_string(),
            user: "github".to_string(),
            role: Role::Admin,
            via: Via::GithubInstallation,
            scopes: Some(vec![Scope::UsersRead, Scope::UsersWrite]),
        }
    }

    /// The GitHub App acting for `organization` on what an installation's
    /// webhook asked for: it starts, reads and cancels runs, nothing else.
    pub fn github_installation(organization: &str) -> Principal {
        Principal {
            organization: organization.to_string(),
            user: "github".to_string(),
            role: Role::Member,
            via: Via::GithubInstallation,
            scopes: Some(vec![Scope::RunsRead, Scope::RunsWrite]),
        }
    }

    /// Smithers itself in `organization`, as a process that carries out
    /// runs acts: a member narrowed to `runs:read` and `runs:write`, so it
    /// can resume runs and nothing else.
    pub fn system(organization: &str) -> Principal {
        Principal {
            organization: organization.to_string(),
            user: "smithers".to_string(),
            role: Role::Member,
            via: Via::System,
            scopes: Some(vec![Scope::RunsRead, Scope::RunsWrite]),
        }
    }
}
