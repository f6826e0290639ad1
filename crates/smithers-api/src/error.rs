//! One error model for every front end: what kind of refusal or failure it
//! is, with a stable machine code, mapped here — and only here — to the
//! command line's exit codes and to HTTP statuses (RFC 9110 §15).

use serde::{Deserialize, Serialize};

/// What went wrong, as a front end must tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself is malformed: a bad name, an unknown value.
    Invalid,
    /// Something it names does not exist.
    NotFound,
    /// Who asks is not known (no such user, no valid token).
    Unauthenticated,
    /// Who asks is known but may not do this.
    Forbidden,
    /// The state changed under it: already exists, already decided, a
    /// check-and-set that lost.
    Conflict,
    /// Something it needs cannot be reached now (the database, NATS, the
    /// Docker engine); trying again later may work.
    Unavailable,
    /// A fault of Smithers' own or of its data (a corrupt row).
    Internal,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Invalid,
        ErrorKind::NotFound,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::Conflict,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The stable machine code: `invalid`, `not_found`, `unauthenticated`,
    /// `forbidden`, `conflict`, `unavailable`, `internal`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The command line's exit status: 2 an error (invalid input, nothing
    /// by that name, unreachable, internal), 3 not allowed
    /// (unauthenticated or forbidden), 4 a conflict. (0 is success and 1
    /// "findings", which are answers, not errors.)
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Unauthenticated | ErrorKind::Forbidden => 3,
            ErrorKind::Conflict => 4,
            ErrorKind::Invalid
            | ErrorKind::NotFound
            | ErrorKind::Unavailable
            | ErrorKind::Internal => 2,
        }
    }

    /// The HTTP status (RFC 9110 §15): 400, 404, 401, 403, 409, 503, 500.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Conflict => 409,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// A refusal or failure as every front end reports it: `{"code": "forbidden",
/// "message": "…"}`. The message is for people and never holds a secret
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    #[serde(rename = "code")]
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Forbidden, message)
    }

    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            [
                "invalid",
                "not_found",
                "unauthenticated",
                "forbidden",
                "conflict",
                "unavailable",
                "internal"
            ]
        );
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(json, kind.code(), "serde and code() agree");
        }
    }

    #[test]
    fn exit_codes_and_statuses_are_mapped_once() {
        let table: Vec<_> = ErrorKind::ALL
            .iter()
            .map(|k| (k.code(), k.exit_code(), k.http_status()))
            .collect();
        assert_eq!(
            table,
            [
                ("invalid", 2, 400),
                ("not_found", 2, 404),
                ("unauthenticated", 3, 401),
                ("forbidden", 3, 403),
                ("conflict", 4, 409),
                ("unavailable", 2, 503),
                ("internal", 2, 500),
            ]
        );
    }

    #[test]
    fn an_error_is_code_and_message() {
        let e = Error::forbidden("adding users needs an admin");
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"code":"forbidden","message":"adding users needs an admin"}"#
        );
        assert_eq!(e.to_string(), "adding users needs an admin");
    }
}
