//! Organization members and teams (GitHub Docs, REST API "Organization
//! members" and "Team members"): `GET /orgs/{org}/members`,
//! `GET /orgs/{org}/teams` and `GET /orgs/{org}/teams/{team_slug}/members`,
//! for a token of the organization's installation with `members: read`;
//! paged by `per_page`/`page` with a `Link` header, and with an `ETag`
//! a client can send back in `If-None-Match` to get a 304 (which does
//! not count against the rate limit).

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::GithubApi;
use super::auth::{Principal, allows};
use super::openapi;
use super::server::{Answer, Call};
use super::state::{Account, State, base64_id, simple_user};

#[derive(Default)]
pub(crate) struct Org {
    pub id: u64,
    pub login: String,
    pub members: Vec<(String, u64)>,
    pub teams: Vec<Team>,
}

pub(crate) struct Team {
    pub id: u64,
    pub slug: String,
    pub members: Vec<(String, u64)>,
}

/// The organization `{org}` of a request, if its token is of that
/// organization's installation and holds `members: read`.
fn org_access<'a>(state: &'a State, call: &Call) -> Result<&'a Org, Answer> {
    let login = call.param("org");
    let (token, installation) = match call.principal {
        Principal::Installation {
            token,
            installation,
        } => (token, *installation),
        Principal::App => {
            return Err(Answer::error(403, "Resource not accessible by integration"));
        }
        Principal::Anonymous => return Err(Answer::error(401, "Requires authentication")),
    };
    let ours = state
        .installations
        .get(&installation)
        .is_some_and(|i| i.account.login.eq_ignore_ascii_case(login));
    let Some(org) = state
        .orgs
        .values()
        .find(|o| o.login.eq_ignore_ascii_case(login))
        .filter(|_| ours)
    else {
        return Err(Answer::not_found());
    };
    let granted = state.tokens.get(token).map(|t| &t.permissions);
    if !granted.is_some_and(|g| allows(g, "members", "read")) {
        return Err(Answer::error(403, "Resource not accessible by integration"));
    }
    Ok(org)
}

/// One page of `items` with its `Link` header, and an `ETag` of it: 304
/// when the client already has it.
fn paged(state: &State, call: &Call, path: &str, items: Vec<Value>) -> Answer {
    let (per_page, page) = call.page();
    let last = items.len().div_ceil(per_page).max(1);
    let body = Value::Array(
        items
            .into_iter()
            .skip(per_page * (page - 1))
            .take(per_page)
            .collect(),
    );
    let etag = format!(
        "W/\"{}\"",
        Sha256::digest(body.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let seen = call
        .headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let answer = if seen {
        Answer {
            status: 304,
            body: None,
            headers: Vec::new(),
            exhausted: false,
        }
    } else {
        Answer::json(200, body)
    };
    answer
        .header("etag", etag)
        .page_of(&state.base, path, per_page, page, last)
}

fn user(login: &str, id: u64) -> Value {
    simple_user(&Account {
        login: login.into(),
        id,
        kind: "User".into(),
    })
}

pub(crate) fn list_members(state: &mut State, call: &Call) -> Answer {
    let org = match org_access(state, call) {
        Ok(o) => o,
        Err(a) => return a,
    };
    let items = org.members.iter().map(|(l, id)| user(l, *id)).collect();
    paged(state, call, &format!("/orgs/{}/members", org.login), items)
}

fn team_json(state: &State, org: &Org, t: &Team) -> Value {
    let mut v = openapi::description().example("team-items");
    let mut v = v
        .as_array_mut()
        .and_then(|a| a.first().cloned())
        .unwrap_or(json!({}));
    let api = format!("{}/orgs/{}/teams/{}", state.base, org.login, t.slug);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(t.id));
        o.insert("node_id".into(), json!(base64_id("04:Team", t.id)));
        o.insert("name".into(), json!(t.slug));
        o.insert("slug".into(), json!(t.slug));
        o.insert("description".into(), Value::Null);
        o.insert("url".into(), json!(api));
        o.insert(
            "html_url".into(),
            json!(format!(
                "{}/orgs/{}/teams/{}",
                state.base, org.login, t.slug
            )),
        );
        o.insert(
            "members_url".into(),
            json!(format!("{api}/members{{/member}}")),
        );
        o.insert("repositories_url".into(), json!(format!("{api}/repos")));
        o.insert("parent".into(), Value::Null);
        o.insert("type".into(), json!("organization"));
        o.insert("organization_id".into(), json!(org.id));
    }
    v
}

pub(crate) fn list_teams(state: &mut State, call: &Call) -> Answer {
    let org = match org_access(state, call) {
        Ok(o) => o,
        Err(a) => return a,
    };
    let items = org.teams.iter().map(|t| team_json(state, org, t)).collect();
    paged(state, call, &format!("/orgs/{}/teams", org.login), items)
}

pub(crate) fn list_team_members(state: &mut State, call: &Call) -> Answer {
    let org = match org_access(state, call) {
        Ok(o) => o,
        Err(a) => return a,
    };
    let slug = call.param("team_slug");
    let Some(team) = org.teams.iter().find(|t| t.slug == slug) else {
        return Answer::not_found();
    };
    let items = team.members.iter().map(|(l, id)| user(l, *id)).collect();
    paged(
        state,
        call,
        &format!("/orgs/{}/teams/{slug}/members", org.login),
        items,
    )
}

impl GithubApi {
    fn org_mut<'a>(state: &'a mut State, org: &str) -> &'a mut Org {
        if !state.orgs.contains_key(org) {
            let id = state
                .installations
                .values()
                .find(|i| i.account.login.eq_ignore_ascii_case(org))
                .map(|i| i.account.id)
                .unwrap_or_else(|| state.id());
            state.orgs.insert(
                org.to_string(),
                Org {
                    id,
                    login: org.to_string(),
                    ..Org::default()
                },
            );
        }
        state
            .orgs
            .get_mut(org)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Makes `login` (GitHub user id `id`) a member of organization `org`.
    pub fn add_member(&self, org: &str, login: &str, id: u64) {
        let mut state = self.state();
        let o = GithubApi::org_mut(&mut state, org);
        if !o.members.iter().any(|(l, _)| l == login) {
            o.members.push((login.into(), id));
        }
    }

    /// Takes `login` out of organization `org` and its teams.
    pub fn remove_member(&self, org: &str, login: &str) {
        let mut state = self.state();
        let o = GithubApi::org_mut(&mut state, org);
        o.members.retain(|(l, _)| l != login);
        for t in &mut o.teams {
            t.members.retain(|(l, _)| l != login);
        }
    }

    /// A team `slug` of organization `org`; its id.
    pub fn add_team(&self, org: &str, slug: &str) -> u64 {
        let mut state = self.state();
        let id = state.id();
        let o = GithubApi::org_mut(&mut state, org);
        if let Some(t) = o.teams.iter().find(|t| t.slug == slug) {
            return t.id;
        }
        o.teams.push(Team {
            id,
            slug: slug.into(),
            members: Vec::new(),
        });
        id
    }

    /// Puts a member of `org` (added with [`GithubApi::add_member`]) in
    /// team `slug`.
    pub fn add_team_member(&self, org: &str, slug: &str, login: &str) {
        let mut state = self.state();
        let o = GithubApi::org_mut(&mut state, org);
        let id = o
            .members
            .iter()
            .find(|(l, _)| l == login)
            .map(|(_, id)| *id)
            .unwrap_or(0);
        if let Some(t) = o.teams.iter_mut().find(|t| t.slug == slug)
            && !t.members.iter().any(|(l, _)| l == login)
        {
            t.members.push((login.into(), id));
        }
    }
}
