//! The lower crates' errors as the one error model, mapped in one place.

use smithers_api::Error;

/// A store error as a front end reports it. A database that cannot be
/// reached is `unavailable`; rows the model does not know are `internal`.
pub fn store_error(e: smithers_store::Error) -> Error {
    use smithers_store::Error as S;
    match e {
        S::Invalid(m) => Error::invalid(m),
        S::UnsupportedUrl(_) => Error::invalid(e.to_string()),
        S::NotFound(m) => Error::not_found(m),
        S::Conflict(m) => Error::conflict(m),
        S::Denied(_) => Error::forbidden(e.to_string()),
        S::Nats(_) | S::AuditClosed => Error::unavailable(e.to_string()),
        S::Database(ref inner) if is_unreachable(inner) => Error::unavailable(e.to_string()),
        other => Error::internal(other.to_string()),
    }
}

/// An engine error as a front end reports it.
pub fn engine_error(e: smithers_engine::Error) -> Error {
    use smithers_engine::Error as E;
    match e {
        E::Store(inner) => store_error(inner),
        E::Invalid(m) => Error::invalid(m),
        E::Conflict(m) => Error::conflict(m),
        E::Unavailable(m) => Error::unavailable(m),
        E::Internal(m) => Error::internal(m),
        E::Exists(_) => Error::conflict(e.to_string()),
        E::Sandbox(_) | E::Git(_) | E::Io { .. } | E::Model(_) => Error::unavailable(e.to_string()),
        other => Error::internal(other.to_string()),
    }
}

fn is_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
    )
}

/// The store's role as the wire's.
pub(crate) fn role(role: smithers_store::Role) -> smithers_api::Role {
    match role {
        smithers_store::Role::Admin => smithers_api::Role::Admin,
        smithers_store::Role::Member => smithers_api::Role::Member,
    }
}

/// The wire's role as the store's.
pub(crate) fn store_role(role: smithers_api::Role) -> smithers_store::Role {
    match role {
        smithers_api::Role::Admin => smithers_store::Role::Admin,
        smithers_api::Role::Member => smithers_store::Role::Member,
    }
}
