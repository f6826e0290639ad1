//! Users, roles and API tokens. Everyone sees the organization's users
//! and their roles; an admin also gets the forms to add a user, change a
//! user's role (their sessions end: they sign in again) and remove one
//! (typing the name to confirm; their sessions end and their tokens go).
//! The service layer decides who may, and refuses the last admin's
//! demotion or removal; the page says why.
//!
//! Tokens: the signed-in person's own (an admin's: the organization's),
//! made with a name, scopes and a lifetime. A new token's secret is on
//! the page that answers its creation and nowhere else, ever: the list
//! shows what a token is, never what it says.

use std::time::Duration;

use axum::Form;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use smithers_api::{ApiToken, Error, Role, Scope};

use super::{Viewer, frame, now_micros, refusal, until};
use crate::ServerState;

/// The links between users and tokens.
fn subnav(here: &str) -> Markup {
    let links = [("/users", "Users"), ("/tokens", "API tokens")];
    html! {
        nav.sub {
            @for (href, name) in links {
                a href=(href) class=[(href == here).then_some("here")] { (name) }
            }
        }
    }
}

/// `?done=&user=`: what was just changed, and whom.
#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    done: Option<String>,
    user: Option<String>,
}

/// `GET /users`: the organization's users; an admin's forms.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let users = match state.app.users().list(&viewer.principal).await {
        Ok(users) => users,
        Err(e) => return refusal(&e),
    };
    // What the forms offer; the service decides what they may do.
    let admin = viewer.principal.role == Role::Admin;
    let notice = match (q.done.as_deref(), &q.user) {
        (Some("added"), Some(user)) => Some(format!("{user} was added.")),
        (Some("role"), Some(user)) => Some(format!(
            "{user}'s role was changed; their sessions have ended, so they sign in again."
        )),
        (Some("removed"), Some(user)) => Some(format!(
            "{user} was removed; their sessions have ended and their API tokens are gone."
        )),
        _ => None,
    };
    let body = html! {
        h1 { "Users" }
        (subnav("/users"))
        @if let Some(notice) = notice { p.notice.ok { (notice) } }
        table {
            thead { tr { th { "Name" } th { "Role" } th { "Since" } @if admin { th { "Change role" } th { "Remove" } } } }
            tbody {
                @for u in &users {
                    @let other = match u.role { Role::Admin => Role::Member, _ => Role::Admin };
                    tr id=(format!("user-{}", u.name)) {
                        td { (u.name) }
                        td { span class=(format!("state {}", u.role.as_str())) { (u.role.as_str()) } }
                        td { (u.created_at) }
                        @if admin {
                            td {
                                form.inline method="post" action=(format!("/users/{}/role", u.name)) {
                                    input type="hidden" name="role" value=(other.as_str());
                                    button type="submit" { "Make " (other.as_str()) }
                                }
                            }
                            td {
                                form.inline method="post" action=(format!("/users/{}/remove", u.name)) {
                                    input type="text" name="confirm" required placeholder=(format!("type {} to confirm", u.name)) aria-label=(format!("Type {} to confirm the removal", u.name));
                                    " "
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if admin {
            h2 { "Add a user" }
            form.decide method="post" action="/users" {
                input type="text" name="name" required placeholder="name" pattern="[A-Za-z0-9._-]{1,64}";
                select name="role" {
                    option value="member" selected { "member" }
                    option value="admin" { "admin" }
                }
                button type="submit" { "Add" }
            }
            p.muted { "A role change or a removal ends that user's sessions at once. The organization always keeps one admin." }
        } @else {
            p.muted { "An admin of the organization adds, changes and removes users." }
        }
    };
    frame(&viewer, "/users", "Users", body).into_response()
}

/// A role as a form names it.
///
/// Errors: `invalid` for anything but `admin` or `member`.
fn role(text: &str) -> Result<Role, Error> {
    match text {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        other => Err(Error::invalid(format!(
            "{other:?} is not a role: admin or member"
        ))),
    }
}

/// A form that does not parse, as a refusal.
fn form_problem(e: &FormRejection) -> Response {
    refusal(&Error::invalid(format!("the form: {}", e.body_text())))
}

/// `/users?done=…&user=…`.
fn back_to_users(done: &str, user: &str) -> Response {
    let mut url = form_urlencoded::Serializer::new(String::new());
    url.append_pair("done", done).append_pair("user", user);
    Redirect::to(&format!("/users?{}", url.finish())).into_response()
}

/// The add form's fields.
#[derive(Debug, Deserialize)]
pub struct AddForm {
    name: String,
    role: String,
}

/// `POST /users`: adds a user.
pub async fn add(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<AddForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return form_problem(&e),
    };
    let new_role = match role(&form.role) {
        Ok(r) => r,
        Err(e) => return refusal(&e),
    };
    match state
        .app
        .users()
        .add(&viewer.principal, form.name.trim(), new_role)
        .await
    {
        Ok(user) => back_to_users("added", &user.name),
        Err(e) => refusal(&e),
    }
}

/// The role form's field.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /users/{name}/role`: gives the user another role.
pub async fn set_role(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(name): Path<String>,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return form_problem(&e),
    };
    let new_role = match role(&form.role) {
        Ok(r) => r,
        Err(e) => return refusal(&e),
    };
    match state
        .app
        .users()
        .set_role(&viewer.principal, &name, new_role)
        .await
    {
        Ok(user) => back_to_users("role", &user.name),
        Err(e) => refusal(&e),
    }
}

/// The remove form's field: the user's name, typed again.
#[derive(Debug, Default, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /users/{name}/remove`: removes the user once their name is typed
/// to confirm (a slip of the mouse removes no one).
pub async fn remove(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(name): Path<String>,
    form: Result<Form<RemoveForm>, FormRejection>,
) -> Response {
    let confirm = form.map(|Form(f)| f.confirm).unwrap_or_default();
    if confirm.trim() != name {
        return refusal(&Error::invalid(format!(
            "to remove {name}, type their name in the box beside the button; nothing was changed"
        )));
    }
    match state.app.users().remove(&viewer.principal, &name).await {
        Ok(user) => back_to_users("removed", &user.name),
        Err(e) => refusal(&e),
    }
}

/// `?done=&id=` of the token list: what was just revoked.
#[derive(Debug, Default, Deserialize)]
pub struct TokensQuery {
    done: Option<String>,
    id: Option<String>,
}

/// `GET /tokens`: the signed-in person's tokens (an admin's: the
/// organization's), and the form that makes one.
pub async fn tokens(
    State(state): State<ServerState>,
    viewer: Viewer,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let tokens = match state.app.tokens().list(&viewer.principal).await {
        Ok(tokens) => tokens,
        Err(e) => return refusal(&e),
    };
    let admin = viewer.principal.role == Role::Admin;
    let body = html! {
        h1 { "API tokens" }
        (subnav("/tokens"))
        @if let (Some("revoked"), Some(id)) = (q.done.as_deref(), &q.id) {
            p.notice.ok { "Token " code { (id) } " was revoked: it is refused from now on." }
        }
        p.muted {
            "A token lets a script or CI act as its owner, narrowed to its scopes: "
            code { "Authorization: Bearer smt_…" } ". "
            @if admin { "As an admin you see every token of the organization." }
            @else { "These are your own tokens." }
        }
        table {
            thead { tr { th { "Name" } th { "Id" } th { "Owner" } th { "Scopes" } th { "Created" } th { "Expires" } th { "" } } }
            tbody {
                @for t in &tokens {
                    tr id=(format!("token-{}", t.id)) {
                        td { (t.name) }
                        td { code { (t.id) } }
                        td { (t.user) }
                        td { @for s in &t.scopes { code { (s.as_str()) } " " } }
                        td { (t.created_at) }
                        td { (until(t.expires_at)) }
                        td { (token_state(t)) }
                    }
                }
            }
        }
        @if tokens.is_empty() { p.muted { "No token yet." } }
        h2 { "New token" }
        form.stack method="post" action="/tokens" {
            label { "Name " input type="text" name="name" required maxlength="100" placeholder="ci-deploy"; }
            fieldset.scopes {
                legend { "Scopes" }
                @for s in Scope::ALL {
                    label { input type="checkbox" name="scope" value=(s.as_str()); " " code { (s.as_str()) } }
                }
            }
            label { "Lifetime in days " input type="number" name="ttl_days" min="1" max="366" value="30"; }
            div { button type="submit" { "Create token" } }
        }
    };
    frame(&viewer, "/users", "API tokens", body).into_response()
}

/// A token's state, or the form that revokes it.
fn token_state(t: &ApiToken) -> Markup {
    html! {
        @if let Some(at) = t.revoked_at {
            span.state.rejected { "revoked" } br;
            span.muted { (at) @if let Some(by) = &t.revoked_by { " by " (by) } }
        } @else if t.expires_at.0 <= now_micros() {
            span.state.expired { "expired" }
        } @else {
            form.inline method="post" action=(format!("/tokens/{}/revoke", t.id)) {
                button.danger type="submit" { "Revoke" }
            }
        }
    }
}

/// `POST /tokens`: makes a token; the answer is the one page that ever
/// shows its secret (no redirect: the secret is kept nowhere to show
/// again).
///
/// The body is read as `application/x-www-form-urlencoded` by hand: a
/// checkbox group sends `scope` once per box ticked, which a struct
/// cannot take.
pub async fn create(State(state): State<ServerState>, viewer: Viewer, body: Bytes) -> Response {
    let mut name = String::new();
    let mut scopes = Vec::new();
    let mut ttl_days = String::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "name" => name = value.into_owned(),
            "scope" => match Scope::parse(&value) {
                Some(scope) => scopes.push(scope),
                None => {
                    return refusal(&Error::invalid(format!("{value:?} is not a scope")));
                }
            },
            "ttl_days" => ttl_days = value.into_owned(),
            _ => {}
        }
    }
    let ttl = match ttl_days.trim() {
        "" => None,
        days => match days.parse::<u64>().ok().and_then(|d| d.checked_mul(86_400)) {
            Some(secs) => Some(Duration::from_secs(secs)),
            None => {
                return refusal(&Error::invalid(format!(
                    "a lifetime is a whole number of days, not {days:?}"
                )));
            }
        },
    };
    let made = match state
        .app
        .tokens()
        .create(&viewer.principal, &name, &scopes, ttl)
        .await
    {
        Ok(made) => made,
        Err(e) => return refusal(&e),
    };
    let t = &made.token;
    let body = html! {
        h1 { "Token " (t.name) " created" }
        p.notice.ok { "Copy the token now: it is shown on this page only, and never again. Smithers keeps only its hash." }
        pre.secret-once { (made.secret) }
        dl.facts {
            dt { "Id" } dd { code { (t.id) } }
            dt { "Acts as" } dd { (t.user) " in " (t.organization) }
            dt { "Scopes" } dd { @for s in &t.scopes { code { (s.as_str()) } " " } }
            dt { "Expires" } dd { (t.expires_at) }
        }
        p { "Send it as " code { "Authorization: Bearer …" } ". " a href="/tokens" { "Back to the tokens" } }
    };
    (
        StatusCode::CREATED,
        frame(&viewer, "/users", "Token created", body),
    )
        .into_response()
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match state.app.tokens().revoke(&viewer.principal, &id).await {
        Ok(token) => {
            let mut url = form_urlencoded::Serializer::new(String::new());
            url.append_pair("done", "revoked")
                .append_pair("id", &token.id);
            Redirect::to(&format!("/tokens?{}", url.finish())).into_response()
        }
        Err(e) => refusal(&e),
    }
}
