//! Who is calling: `Authorization: Bearer smt_…` (RFC 6750), turned into
//! a principal by the service layer, which decides everything else.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use smithers_api::Error;
use smithers_app::{App, Principal};

use crate::problem::Problem;

/// The caller, authenticated by an API token.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<App>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Problem> {
        let app = Arc::<App>::from_ref(state);
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            Error::unauthenticated("an API token is needed: Authorization: Bearer …")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| Error::unauthenticated("the Authorization header is not Bearer …"))?;
        Ok(Caller(app.principal_from_token(token).await?))
    }
}
