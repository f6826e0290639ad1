//! The App's own endpoints, authenticated by its JWT (GitHub Docs, REST
//! API "GitHub Apps" and "Installations"): `GET /app`,
//! `GET /app/installations`, `GET /app/installations/{installation_id}`
//! and `POST /app/installations/{installation_id}/access_tokens`, which
//! mints down-scoped installation access tokens and refuses, with 422,
//! more than the installation was granted; and, with an installation
//! token, `GET /installation/repositories`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::auth::{self, Principal, level};
use super::openapi;
use super::repos;
use super::server::{Answer, Call};
use super::state::{Installation, State, Token, simple_user, timestamp};

/// 401 unless the request carries the App's JWT.
fn app_only(call: &Call) -> Result<(), Answer> {
    match call.principal {
        Principal::App => Ok(()),
        Principal::Installation { .. } => {
            Err(Answer::error(403, "Resource not accessible by integration"))
        }
        Principal::Anonymous => Err(Answer::error(401, "A JSON web token could not be decoded")),
    }
}

pub(crate) fn get_authenticated(state: &mut State, call: &Call) -> Answer {
    if let Err(a) = app_only(call) {
        return a;
    }
    Answer::json(200, app_json(state))
}

/// The App (`integration`), after the documented example.
pub(crate) fn app_json(state: &State) -> Value {
    let mut app = openapi::description().example("integration");
    let owner = state
        .installations
        .values()
        .next()
        .map(|i| i.account.clone())
        .unwrap_or_else(|| state.account("smithers-dev"));
    let permissions: BTreeMap<String, String> = [
        ("metadata", "read"),
        ("contents", "write"),
        ("pull_requests", "write"),
        ("statuses", "write"),
        ("checks", "write"),
        ("members", "read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(a) = app.as_object_mut() {
        a.insert("id".into(), json!(state.app_id));
        a.insert("slug".into(), json!(state.app_slug));
        a.insert("name".into(), json!(state.app_slug));
        a.insert(
            "client_id".into(),
            json!(format!("Iv23li{:014}", state.app_id)),
        );
        a.insert(
            "node_id".into(),
            json!(super::state::base64_id("03:Integration", state.app_id)),
        );
        a.insert("owner".into(), simple_user(&owner));
        a.insert("permissions".into(), json!(permissions));
        a.insert(
            "events".into(),
            json!([
                "pull_request",
                "push",
                "installation_target",
                "member",
                "membership",
                "organization"
            ]),
        );
        a.insert(
            "installations_count".into(),
            json!(state.installations.len()),
        );
        a.insert(
            "html_url".into(),
            json!(format!("{}/apps/{}", state.base, state.app_slug)),
        );
        // Only the answer to the App's manifest conversion carries these.
        for secret in ["client_secret", "webhook_secret", "pem"] {
            a.remove(secret);
        }
    }
    app
}

/// An installation (`installation`), after the documented example.
pub(crate) fn installation_json(state: &State, i: &Installation) -> Value {
    let mut v = openapi::description().example("base-installation");
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(i.id));
        o.insert("account".into(), simple_user(&i.account));
        o.insert("app_id".into(), json!(state.app_id));
        o.insert("app_slug".into(), json!(state.app_slug));
        o.insert(
            "client_id".into(),
            json!(format!("Iv23li{:014}", state.app_id)),
        );
        o.insert("target_id".into(), json!(i.account.id));
        o.insert("target_type".into(), json!(i.account.kind));
        o.insert("permissions".into(), json!(i.permissions));
        o.insert("repository_selection".into(), json!("all"));
        o.insert(
            "access_tokens_url".into(),
            json!(format!(
                "{}/app/installations/{}/access_tokens",
                state.base, i.id
            )),
        );
        o.insert(
            "repositories_url".into(),
            json!(format!("{}/installation/repositories", state.base)),
        );
        o.insert(
            "html_url".into(),
            json!(format!(
                "{}/organizations/{}/settings/installations/{}",
                state.base, i.account.login, i.id
            )),
        );
        o.insert("created_at".into(), json!(timestamp(i.created_at)));
        o.insert("updated_at".into(), json!(timestamp(i.created_at)));
        o.insert("single_file_name".into(), Value::Null);
        o.insert("has_multiple_single_files".into(), json!(false));
        o.insert("single_file_paths".into(), json!([]));
        if i.suspended {
            o.insert("suspended_at".into(), json!(timestamp(SystemTime::now())));
            o.insert("suspended_by".into(), simple_user(&i.account));
        } else {
            o.insert("suspended_at".into(), Value::Null);
            o.insert("suspended_by".into(), Value::Null);
        }
    }
    v
}

pub(crate) fn list_installations(state: &mut State, call: &Call) -> Answer {
    if let Err(a) = app_only(call) {
        return a;
    }
    let (per_page, page) = call.page();
    let all: Vec<Value> = state
        .installations
        .values()
        .map(|i| installation_json(state, i))
        .collect();
    let items: Vec<Value> = all
        .into_iter()
        .skip(per_page * (page - 1))
        .take(per_page)
        .collect();
    Answer::json(200, Value::Array(items))
}

pub(crate) fn get_installation(state: &mut State, call: &Call) -> Answer {
    if let Err(a) = app_only(call) {
        return a;
    }
    let id = call.param("installation_id").parse::<u64>().unwrap_or(0);
    match state.installations.get(&id) {
        Some(i) => Answer::json(200, installation_json(state, i)),
        None => Answer::not_found(),
    }
}

/// Mints an installation access token: the installation's repositories
/// and permissions unless the body narrows them; never more.
pub(crate) fn create_access_token(state: &mut State, call: &Call) -> Answer {
    if let Err(a) = app_only(call) {
        return a;
    }
    let id = call.param("installation_id").parse::<u64>().unwrap_or(0);
    let Some(installation) = state.installations.get(&id) else {
        return Answer::not_found();
    };
    if installation.suspended {
        return Answer::error(403, "This installation has been suspended");
    }
    let mut permissions = installation.permissions.clone();
    if let Some(asked) = call.field("permissions").and_then(Value::as_object) {
        let mut narrowed = BTreeMap::new();
        for (name, wanted) in asked {
            let wanted = wanted.as_str().unwrap_or_default();
            let granted = installation
                .permissions
                .get(name)
                .map(|g| level(g))
                .unwrap_or(0);
            if level(wanted) == 0 || level(wanted) > granted {
                return Answer::invalid(
                    "The permissions requested are not granted to this installation.",
                    json!([]),
                );
            }
            narrowed.insert(name.clone(), wanted.to_string());
        }
        // Every token may read the metadata of its repositories.
        narrowed
            .entry("metadata".into())
            .or_insert_with(|| "read".into());
        permissions = narrowed;
    }
    let mine: Vec<u64> = state
        .repos
        .values()
        .filter(|r| r.installation == Some(id))
        .map(|r| r.id)
        .collect();
    let mut selected: Option<Vec<u64>> = None;
    let outside = || {
        Answer::invalid(
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
            json!([]),
        )
    };
    if let Some(names) = call.field("repositories").and_then(Value::as_array) {
        let mut ids = Vec::new();
        for name in names {
            let name = name.as_str().unwrap_or_default();
            // A name is the repository's name on the installation's
            // account (GitHub also takes `owner/name`).
            let name = name.rsplit('/').next().unwrap_or(name);
            match mine
                .iter()
                .find(|r| state.repos[r].name.eq_ignore_ascii_case(name))
            {
                Some(r) => ids.push(*r),
                None => return outside(),
            }
        }
        selected = Some(ids);
    }
    if let Some(ids) = call.field("repository_ids").and_then(Value::as_array) {
        let mut chosen = selected.take().unwrap_or_default();
        for id in ids {
            let id = id.as_u64().unwrap_or(0);
            if !mine.contains(&id) {
                return outside();
            }
            if !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        selected = Some(chosen);
    }
    let token = auth::new_token();
    let expires_at = SystemTime::now() + state.token_lifetime;
    state.tokens.insert(
        token.clone(),
        Token {
            installation: id,
            repos: selected.clone(),
            permissions: permissions.clone(),
            expires_at,
        },
    );
    state.tokens_issued.push(token.clone());
    let mut body = json!({
        "token": token,
        "expires_at": timestamp(expires_at),
        "permissions": permissions,
        "repository_selection": if selected.is_some() { "selected" } else { "all" },
    });
    if let Some(ids) = &selected {
        let repositories: Vec<Value> = ids
            .iter()
            .filter_map(|r| state.repos.get(r))
            .map(|r| repos::repository_json(state, r))
            .collect();
        body["repositories"] = Value::Array(repositories);
    }
    Answer::json(201, body)
}

/// `GET /installation/repositories`: the repositories the token's
/// installation gives the App, as far as the token reaches, by id, paged
/// by `per_page`/`page` with a `Link` header.
pub(crate) fn list_installation_repositories(state: &mut State, call: &Call) -> Answer {
    let (token, installation) = match call.principal {
        Principal::Installation {
            token,
            installation,
        } => (token, *installation),
        Principal::App => return Answer::error(403, "Resource not accessible by integration"),
        Principal::Anonymous => return Answer::error(401, "Requires authentication"),
    };
    let Some(t) = state.tokens.get(token) else {
        return Answer::error(401, "Bad credentials");
    };
    let all: Vec<Value> = state
        .repos
        .values()
        .filter(|r| {
            r.installation == Some(installation)
                && t.repos.as_ref().is_none_or(|ids| ids.contains(&r.id))
        })
        .map(|r| repos::repository_json(state, r))
        .collect();
    let (per_page, page) = call.page();
    let total = all.len();
    let last = total.div_ceil(per_page).max(1);
    let items: Vec<Value> = all
        .into_iter()
        .skip(per_page * (page - 1))
        .take(per_page)
        .collect();
    Answer::json(
        200,
        json!({
            "total_count": total,
            "repositories": items,
            "repository_selection": "selected",
        }),
    )
    .page_of(
        &state.base,
        "/installation/repositories",
        per_page,
        page,
        last,
    )
}
