//! Users.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use smithers_api::User;
use smithers_app::App;

use crate::auth::Caller;

use super::Reply;

/// `GET /api/v1/users`.
pub async fn list(State(app): State<Arc<App>>, Caller(caller): Caller) -> Reply<Vec<User>> {
    Ok(Json(app.users().list(&caller).await?))
}
