//! Native pull request stacks (GitHub Docs, REST API "Pull request
//! stacks", public preview): `POST /repos/{owner}/{repo}/stacks` makes a
//! stack of open pull requests given bottom first, each based on the
//! previous one's head branch (201; 422 when one does not exist, is not
//! open, is already stacked, or they do not chain; 404 where the
//! repository does not have the preview, as GitHub answers).

use std::time::SystemTime;

use serde_json::{Value, json};

use super::repos::access;
use super::server::{Answer, Call};
use super::state::{State, base64_id, simple_user, timestamp};

/// A native stack the stand-in holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeStack {
    pub repo: u64,
    pub number: u64,
    /// Bottom first.
    pub pulls: Vec<u64>,
}

fn refused(message: &str) -> Answer {
    Answer::invalid(
        "Validation Failed",
        json!([{"resource": "PullRequestStack", "field": "pull_requests", "code": "invalid", "message": message}]),
    )
}

pub(crate) fn create(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "pull_requests", "write") {
        Ok(id) => id,
        Err(a) => return a,
    };
    if !state.native_stack_repos.contains(&id) {
        return Answer::not_found();
    }
    let numbers: Vec<u64> = call
        .field("pull_requests")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if !(2..=100).contains(&numbers.len()) {
        return refused("a stack has 2 to 100 pull requests");
    }
    let mut pulls = Vec::with_capacity(numbers.len());
    for n in &numbers {
        match state
            .pulls
            .iter()
            .find(|p| p.repo == id && p.number == *n && p.state == "open")
        {
            Some(p) => pulls.push(p.clone()),
            None => return refused(&format!("#{n} is not an open pull request here")),
        }
        if state
            .native_stacks
            .iter()
            .any(|s| s.repo == id && s.pulls.contains(n))
        {
            return refused(&format!("#{n} is in a stack already"));
        }
    }
    if pulls.windows(2).any(|w| w[1].base_ref != w[0].head_ref) {
        return refused("each pull request's base must be the previous one's head");
    }
    let stack_id = state.id();
    let repo = &state.repos[&id];
    let number = u64::try_from(state.native_stacks.len()).unwrap_or(0) + 1;
    let api = format!("{}/repos/{}", state.base, repo.full_name());
    let html = format!("{}/{}", state.base, repo.full_name());
    let side = |reference: &str, sha: &str| {
        json!({
            "ref": reference,
            "sha": sha,
            "repo": {"id": repo.id, "url": api, "name": repo.name},
        })
    };
    let body = json!({
        "id": stack_id,
        "number": number,
        "node_id": base64_id("015:PullRequestStack", stack_id),
        "url": format!("{api}/stacks/{number}"),
        "base": {"ref": pulls[0].base_ref},
        "open": true,
        "created_at": timestamp(SystemTime::now()),
        "pull_requests": pulls.iter().map(|p| json!({
            "id": p.id,
            "number": p.number,
            "url": format!("{api}/pulls/{}", p.number),
            "node_id": base64_id("011:PullRequest", p.id),
            "title": p.title,
            "state": p.state,
            "merged_at": p.merged.as_ref().map(|m| timestamp(m.at)),
            "draft": p.draft,
            "html_url": format!("{html}/pull/{}", p.number),
            "user": simple_user(&p.author),
            "head": side(&p.head_ref, &p.head_sha),
            "base": side(&p.base_ref, &p.base_sha),
        })).collect::<Vec<_>>(),
    });
    state.native_stacks.push(NativeStack {
        repo: id,
        number,
        pulls: numbers,
    });
    Answer::json(201, body)
}

impl super::GithubApi {
    /// Gives repository `repo` native pull request stacks (the preview):
    /// without it, `POST …/stacks` is answered 404 as GitHub does.
    pub fn enable_native_stacks(&self, repo: u64) {
        self.state().native_stack_repos.insert(repo);
    }

    /// Every native stack made, oldest first.
    pub fn native_stacks(&self) -> Vec<NativeStack> {
        self.state().native_stacks.clone()
    }
}
