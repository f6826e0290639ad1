//! The authorization table: every operation against every role, inside
//! and outside the organization, allowed or refused with the exact reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use smithers_api::{ErrorKind, Role, Scope};
use smithers_app::authz::{authorize, authorize_decision};
use smithers_app::{Operation, Principal, Via};

fn principal(organization: &str, user: &str, role: Role) -> Principal {
    Principal {
        organization: organization.into(),
        user: user.into(),
        role,
        via: Via::Cli,
        scopes: None,
    }
}

/// What each role gets for each operation in its own organization: `Ok`
/// or the refusal's message. Written out, not derived from the rule table.
fn expected(operation: Operation, role: Role) -> Result<(), String> {
    let admin_only = |what: &str| match role {
        Role::Admin => Ok(()),
        Role::Member => Err(format!("{what} needs an admin of \"acme\"; u is a member")),
    };
    match operation {
        Operation::UsersAdd => admin_only("adding users"),
        Operation::UsersManage => admin_only("changing and removing users"),
        Operation::PolicyPublish => admin_only("publishing the organization's policy"),
        Operation::PolicyUnpublish => admin_only("unpublishing the organization's policy"),
        Operation::SecretsDestroy => admin_only("destroying secret versions"),
        Operation::SecretsKeys => admin_only("managing encryption keys"),
        Operation::GrantsDecide => admin_only("deciding grants"),
        Operation::AuditRead => admin_only("reading the audit log"),
        Operation::AuditPublish => admin_only("publishing the audit log"),
        Operation::RetentionManage => {
            admin_only("changing and applying the organization's retention")
        }
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
        | Operation::GithubRead
        | Operation::StacksRead
        | Operation::StacksSync
        | Operation::GrantsRead
        | Operation::TokensCreate
        | Operation::TokensRead
        | Operation::TokensRevoke
        | Operation::RetentionRead => Ok(()),
        _ => unreachable!("a new operation needs its row in this table"),
    }
}

#[test]
fn every_operation_for_every_role() {
    for &operation in Operation::ALL {
        for role in Role::ALL {
            let got = authorize(&principal("acme", "u", role), "acme", operation);
            match expected(operation, role) {
                Ok(()) => assert!(got.is_ok(), "{operation:?} as {role:?}: {got:?}"),
                Err(message) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.kind, ErrorKind::Forbidden, "{operation:?} as {role:?}");
                    assert_eq!(e.message, message, "{operation:?} as {role:?}");
                }
            }
        }
    }
}

#[test]
fn no_role_reaches_another_organization() {
    for &operation in Operation::ALL {
        for role in Role::ALL {
            let e = authorize(&principal("other", "u", role), "acme", operation).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Forbidden, "{operation:?} as {role:?}");
            assert_eq!(
                e.message,
                format!(
                    "{} of \"acme\" needs a user of \"acme\"; u is a user of \"other\"",
                    operation.describe()
                )
            );
        }
    }
}

#[test]
fn who_decides_an_approval() {
    // (role, started the run, admin-only) -> allowed or the refusal.
    for role in Role::ALL {
        for started in [false, true] {
            for admin_only in [false, true] {
                let p = principal("acme", "u", role);
                let got = authorize_decision(&p, if started { "u" } else { "v" }, admin_only);
                let expected = if started {
                    Err("u started the run and cannot decide its approvals; another user must")
                } else if admin_only && role == Role::Member {
                    Err("the approval is admin-only and u is not an admin")
                } else {
                    Ok(())
                };
                match expected {
                    Ok(()) => assert!(got.is_ok(), "{role:?} {started} {admin_only}: {got:?}"),
                    Err(message) => {
                        let e = got.unwrap_err();
                        assert_eq!(e.kind, ErrorKind::Forbidden);
                        assert_eq!(e.message, message);
                    }
                }
            }
        }
    }
}

/// The scope each operation needs of an API token, written out; `None`:
/// no token may ask for it.
fn expected_scope(operation: Operation) -> Option<Scope> {
    match operation {
        Operation::UsersAdd | Operation::UsersManage => Some(Scope::UsersWrite),
        Operation::UsersList => Some(Scope::UsersRead),
        Operation::PolicyPublish | Operation::PolicyUnpublish | Operation::PolicyCheck => {
            Some(Scope::PolicyWrite)
        }
        Operation::PolicyRead => Some(Scope::PolicyRead),
        Operation::ApprovalsRead => Some(Scope::ApprovalsRead),
        Operation::ApprovalsDecide => Some(Scope::ApprovalsWrite),
        Operation::RunsRead | Operation::GithubRead | Operation::StacksRead => {
            Some(Scope::RunsRead)
        }
        Operation::RunsStart
        | Operation::RunsResume
        | Operation::RunsCancel
        | Operation::StacksSync => Some(Scope::RunsWrite),
        Operation::SecretsList | Operation::GrantsRead => Some(Scope::SecretsRead),
        Operation::SecretsWrite
        | Operation::SecretsDestroy
        | Operation::SecretsKeys
        | Operation::GrantsRequest
        | Operation::GrantsDecide => Some(Scope::SecretsWrite),
        Operation::SecretsReveal => Some(Scope::SecretsReveal),
        Operation::AuditRead | Operation::RetentionRead => Some(Scope::AuditRead),
        Operation::AuditPublish | Operation::RetentionManage => Some(Scope::AuditWrite),
        Operation::TokensCreate | Operation::TokensRead | Operation::TokensRevoke => None,
        _ => unreachable!("a new operation needs its scope in this table"),
    }
}

#[test]
fn an_api_token_reaches_only_what_its_scopes_name() {
    for &operation in Operation::ALL {
        let mut admin = principal("acme", "u", Role::Admin);
        admin.via = Via::ApiToken;
        // Every scope but the one needed: refused, naming the scope.
        let needed = expected_scope(operation);
        admin.scopes = Some(
            Scope::ALL
                .iter()
                .copied()
                .filter(|s| Some(*s) != needed)
                .collect(),
        );
        let e = authorize(&admin, "acme", operation).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden, "{operation:?}");
        match needed {
            Some(scope) => {
                assert_eq!(
                    e.message,
                    format!(
                        "{} needs a token with the scope {scope}",
                        operation.describe()
                    )
                );
                // With it (and only it): what the role allows.
                admin.scopes = Some(vec![scope]);
                assert!(
                    authorize(&admin, "acme", operation).is_ok(),
                    "{operation:?}"
                );
                let mut member = admin.clone();
                member.role = Role::Member;
                assert_eq!(
                    authorize(&member, "acme", operation).is_ok(),
                    expected(operation, Role::Member).is_ok(),
                    "{operation:?}"
                );
            }
            None => assert_eq!(
                e.message,
                format!("{} is not done with an API token", operation.describe())
            ),
        }
    }
}
