//! Commit statuses and pull requests (GitHub Docs, REST API "Commit
//! statuses" and "Pulls"), answered after the documented examples:
//!
//! - `POST /repos/{owner}/{repo}/statuses/{sha}` (`statuses: write`; 201;
//!   422 "No commit found for SHA: …" when the commit is not there) and
//!   `GET /repos/{owner}/{repo}/commits/{ref}/statuses` (`statuses:
//!   read`; newest first);
//! - `POST /repos/{owner}/{repo}/pulls` (`pull_requests: write`; 422 when
//!   the head or base branch does not exist, when there is nothing
//!   between them, or "A pull request already exists for owner:branch."
//!   when one is open for the same head and base),
//!   `GET /repos/{owner}/{repo}/pulls` (`head=owner:branch`, `base`,
//!   `state`), `GET`/`PATCH /repos/{owner}/{repo}/pulls/{pull_number}`.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::openapi;
use super::repos::{self, access, branch_sha, repository_json, resolve, retarget};
use super::server::{Answer, Call};
use super::state::{Account, Repo, State, base64_id, simple_user, timestamp};

/// A pull request the stand-in holds.
#[derive(Debug, Clone)]
pub struct Pull {
    pub id: u64,
    pub number: u64,
    /// The base repository's id.
    pub repo: u64,
    /// The head repository's id (a fork's, or the base's).
    pub head_repo: u64,
    pub title: String,
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    pub draft: bool,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: String,
    pub author: Account,
    pub maintainer_can_modify: bool,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub closed_at: Option<SystemTime>,
    /// Set once merged (the pull request is then closed).
    pub merged: Option<Merged>,
}

/// How a pull request was merged.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The commit the base branch was moved to (`merge_commit_sha`).
    pub commit: String,
    /// The head the pull request had when merged (`head.sha` from then on).
    pub head: String,
    pub at: SystemTime,
}

/// How [`super::GithubApi::merge_pull`] merges, as GitHub's merge button
/// offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMethod {
    /// A merge commit with the base and the head as parents.
    Merge,
    /// One new commit on the base with the head's changes.
    Squash,
    /// Each of the head's commits replayed onto the base.
    Rebase,
}

/// A comment on an issue or pull request (`issue-comment`).
#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub repo: u64,
    /// The or pull request's number.
    pub number: u64,
    pub body: String,
    pub author: Account,
    pub created_at: SystemTime,
}

/// A commit status the stand-in holds.
#[derive(Debug, Clone)]
pub struct CommitStatus {
    pub id: u64,
    pub repo: u64,
    pub sha: String,
    /// `error`, `failure`, `pending` or `success`.
    pub state: String,
    pub target_url: Option<String>,
    pub description: Option<String>,
    pub context: String,
    pub creator: Account,
    pub created_at: SystemTime,
}

fn status_json(state: &State, repo: &Repo, s: &CommitStatus) -> Value {
    let template = openapi::description().example("status");
    let mut v = retarget(&template, state, repo);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(s.id));
        o.insert(
            "node_id".into(),
            json!(base64_id("013:StatusContext", s.id)),
        );
        o.insert(
            "url".into(),
            json!(format!(
                "{}/repos/{}/statuses/{}",
                state.base,
                repo.full_name(),
                s.sha
            )),
        );
        o.insert(
            "avatar_url".into(),
            json!(format!(
                "https://avatars.githubusercontent.com/u/{}?v=4",
                s.creator.id
            )),
        );
        o.insert("state".into(), json!(s.state));
        o.insert("description".into(), json!(s.description));
        o.insert("target_url".into(), json!(s.target_url));
        o.insert("context".into(), json!(s.context));
        o.insert("created_at".into(), json!(timestamp(s.created_at)));
        o.insert("updated_at".into(), json!(timestamp(s.created_at)));
        o.insert("creator".into(), simple_user(&s.creator));
    }
    v
}

pub(crate) fn create_status(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "statuses", "write") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let wanted = call.param("sha");
    let Some(sha) = resolve(&state.repos[&id], wanted) else {
        return Answer::invalid(&format!("No commit found for SHA: {wanted}"), json!([]));
    };
    let status = CommitStatus {
        id: state.id(),
        repo: id,
        sha,
        state: call.str_field("state").unwrap_or("pending").to_string(),
        target_url: call.str_field("target_url").map(String::from),
        description: call.str_field("description").map(String::from),
        context: call.str_field("context").unwrap_or("default").to_string(),
        creator: state.bot(),
        created_at: SystemTime::now(),
    };
    let body = status_json(state, &state.repos[&id], &status);
    state.statuses.push(status);
    Answer::json(201, body)
}

pub(crate) fn list_statuses(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "statuses", "read") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let repo = &state.repos[&id];
    let Some(sha) = resolve(repo, call.param("ref")) else {
        return Answer::not_found();
    };
    let (per_page, page) = call.page();
    let items: Vec<Value> = state
        .statuses
        .iter()
        .rev()
        .filter(|s| s.repo == id && s.sha == sha)
        .skip(per_page * (page - 1))
        .take(per_page)
        .map(|s| status_json(state, repo, s))
        .collect();
    Answer::json(200, Value::Array(items))
}

/// A pull request (`pull-request`), after the documented example; the
/// head's sha is the head branch's now, as long as it exists.
pub(crate) fn pull_json(state: &State, p: &Pull) -> Value {
    let Some(repo) = state.repos.get(&p.repo) else {
        return Value::Null;
    };
    let head_repo = state.repos.get(&p.head_repo).unwrap_or(repo);
    // A merged pull request's head is what was merged, wherever its
    // branch went since.
    let head_sha = match &p.merged {
        Some(m) => m.head.clone(),
        None => branch_sha(head_repo, &p.head_ref).unwrap_or_else(|| p.head_sha.clone()),
    };
    let template = openapi::description().example("pull-request");
    let mut v = retarget(&template, state, repo);
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", state.base);
    let html = format!("{}/{full}", state.base);
    let n = p.number;
    let side = |r: &Repo, reference: &str, sha: &str| {
        json!({
            "label": format!("{}:{reference}", r.owner.login),
            "ref": reference,
            "sha": sha,
            "user": simple_user(&r.owner),
            "repo": repository_json(state, r),
        })
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(p.id));
        o.insert("node_id".into(), json!(base64_id("011:PullRequest", p.id)));
        o.insert("number".into(), json!(n));
        o.insert("state".into(), json!(p.state));
        o.insert("locked".into(), json!(false));
        o.insert("title".into(), json!(p.title));
        o.insert("body".into(), json!(p.body));
        o.insert("user".into(), simple_user(&p.author));
        o.insert("draft".into(), json!(p.draft));
        o.insert("url".into(), json!(format!("{api}/pulls/{n}")));
        o.insert("html_url".into(), json!(format!("{html}/pull/{n}")));
        o.insert("diff_url".into(), json!(format!("{html}/pull/{n}.diff")));
        o.insert("patch_url".into(), json!(format!("{html}/pull/{n}.patch")));
        o.insert("issue_url".into(), json!(format!("{api}/issues/{n}")));
        o.insert(
            "commits_url".into(),
            json!(format!("{api}/pulls/{n}/commits")),
        );
        o.insert(
            "review_comments_url".into(),
            json!(format!("{api}/pulls/{n}/comments")),
        );
        o.insert(
            "comments_url".into(),
            json!(format!("{api}/issues/{n}/comments")),
        );
        o.insert(
            "statuses_url".into(),
            json!(format!("{api}/statuses/{head_sha}")),
        );
        o.insert("created_at".into(), json!(timestamp(p.created_at)));
        o.insert("updated_at".into(), json!(timestamp(p.updated_at)));
        o.insert("closed_at".into(), json!(p.closed_at.map(timestamp)));
        o.insert(
            "merged_at".into(),
            json!(p.merged.as_ref().map(|m| timestamp(m.at))),
        );
        o.insert(
            "merge_commit_sha".into(),
            json!(p.merged.as_ref().map(|m| m.commit.clone())),
        );
        o.insert("merged".into(), json!(p.merged.is_some()));
        o.insert(
            "merged_by".into(),
            match &p.merged {
                Some(_) => simple_user(&repo.owner),
                None => Value::Null,
            },
        );
        o.insert("mergeable".into(), Value::Null);
        o.insert("rebaseable".into(), Value::Null);
        o.insert("mergeable_state".into(), json!("unknown"));
        o.insert("assignee".into(), Value::Null);
        o.insert("assignees".into(), json!([]));
        o.insert("requested_reviewers".into(), json!([]));
        o.insert("requested_teams".into(), json!([]));
        o.insert("labels".into(), json!([]));
        o.insert("milestone".into(), Value::Null);
        o.insert("auto_merge".into(), Value::Null);
        o.insert("active_lock_reason".into(), Value::Null);
        o.insert(
            "author_association".into(),
            json!(if p.head_repo == p.repo {
                "MEMBER"
            } else {
                "CONTRIBUTOR"
            }),
        );
        o.insert(
            "maintainer_can_modify".into(),
            json!(p.maintainer_can_modify),
        );
        for count in ["comments", "review_comments", "additions", "deletions"] {
            o.insert(count.into(), json!(0));
        }
        o.insert("commits".into(), json!(1));
        o.insert("changed_files".into(), json!(1));
        o.insert("head".into(), side(head_repo, &p.head_ref, &head_sha));
        o.insert("base".into(), side(repo, &p.base_ref, &p.base_sha));
    }
    v
}

/// `owner:branch` or `branch` of a request's `head`, as a repository of
/// the stand-in and a branch.
fn head_of(state: &State, base: &Repo, head: &str) -> Option<(u64, String)> {
    match head.split_once(':') {
        Some((owner, branch)) if !owner.eq_ignore_ascii_case(&base.owner.login) => state
            .repos
            .values()
            .find(|r| r.fork && r.owner.login.eq_ignore_ascii_case(owner) && r.name == base.name)
            .map(|r| (r.id, branch.to_string())),
        Some((_, branch)) => Some((base.id, branch.to_string())),
        None => Some((base.id, head.to_string())),
    }
}

pub(crate) fn create(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "pull_requests", "write") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let author = state.bot();
    let head = call.str_field("head").unwrap_or_default().to_string();
    let base = call.str_field("base").unwrap_or_default().to_string();
    match open(
        state,
        id,
        &head,
        &base,
        call.str_field("title").unwrap_or_default(),
        call.str_field("body"),
        call.field("draft")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        author,
    ) {
        Ok(number) => {
            if let Some(p) = state
                .pulls
                .iter_mut()
                .find(|p| p.repo == id && p.number == number)
                && let Some(m) = call.field("maintainer_can_modify").and_then(Value::as_bool)
            {
                p.maintainer_can_modify = m;
            }
            let body = state
                .pulls
                .iter()
                .find(|p| p.repo == id && p.number == number)
                .map(|p| pull_json(state, p))
                .unwrap_or(Value::Null);
            Answer::json(201, body)
        }
        Err(a) => a,
    }
}

/// Opens a pull request of `head` (`branch` or `owner:branch`) into
/// `base` on repository `id`, as GitHub checks one; its number.
#[allow(clippy::too_many_arguments)] // the fields of the request
pub(crate) fn open(
    state: &mut State,
    id: u64,
    head: &str,
    base: &str,
    title: &str,
    body: Option<&str>,
    draft: bool,
    author: Account,
) -> Result<u64, Answer> {
    let repo = &state.repos[&id];
    let invalid = |field: &str| {
        Answer::invalid(
            "Validation Failed",
            json!([{"resource": "PullRequest", "field": field, "code": "invalid"}]),
        )
    };
    let Some((head_repo_id, head_ref)) = head_of(state, repo, head) else {
        return Err(invalid("head"));
    };
    let head_repo = &state.repos[&head_repo_id];
    let Some(head_sha) = branch_sha(head_repo, &head_ref) else {
        return Err(invalid("head"));
    };
    let Some(base_sha) = branch_sha(repo, base) else {
        return Err(invalid("base"));
    };
    let label = format!("{}:{head_ref}", head_repo.owner.login);
    if state.pulls.iter().any(|p| {
        p.repo == id
            && p.state == "open"
            && p.head_repo == head_repo_id
            && p.head_ref == head_ref
            && p.base_ref == base
    }) {
        return Err(Answer::invalid(
            "Validation Failed",
            json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("A pull request already exists for {label}."),
            }]),
        ));
    }
    // The head's commits reach the base repository as refs/pull/N/head;
    // nothing between base and head is GitHub's refusal too.
    let number = repo.next_number;
    let pull_ref = format!("refs/pull/{number}/head");
    let fetched = repos::git(
        &repo.dir,
        &[
            "fetch",
            "-q",
            &head_repo.dir.to_string_lossy(),
            &format!("+{head_sha}:{pull_ref}"),
        ],
    );
    if let Err(e) = fetched {
        return Err(Answer::error(500, &format!("Server Error: {e}")));
    }
    if repos::git(
        &repo.dir,
        &["merge-base", "--is-ancestor", &head_sha, &base_sha],
    )
    .is_ok()
    {
        let _ = repos::git(&repo.dir, &["update-ref", "-d", &pull_ref]);
        return Err(Answer::invalid(
            "Validation Failed",
            json!([{
                "resource": "PullRequest",
                "code": "custom",
                "message": format!("No commits between {base} and {head_ref}"),
            }]),
        ));
    }
    let pull = Pull {
        id: state.id(),
        number,
        repo: id,
        head_repo: head_repo_id,
        title: title.to_string(),
        body: body.map(String::from),
        state: "open".into(),
        draft,
        head_ref,
        head_sha,
        base_ref: base.to_string(),
        base_sha,
        author,
        maintainer_can_modify: false,
        created_at: SystemTime::now(),
        updated_at: SystemTime::now(),
        closed_at: None,
        merged: None,
    };
    if let Some(r) = state.repos.get_mut(&id) {
        r.next_number += 1;
    }
    state.pulls.push(pull);
    Ok(number)
}

pub(crate) fn list(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "pull_requests", "read") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let repo = &state.repos[&id];
    let wanted_state = call.query("state").unwrap_or("open");
    let head = call
        .query("head")
        .map(|h| head_of(state, repo, h).unwrap_or((0, String::new())));
    let base = call.query("base");
    let (per_page, page) = call.page();
    let mut pulls: Vec<&Pull> = state
        .pulls
        .iter()
        .filter(|p| p.repo == id)
        .filter(|p| wanted_state == "all" || p.state == wanted_state)
        .filter(|p| {
            head.as_ref()
                .is_none_or(|(r, b)| p.head_repo == *r && &p.head_ref == b)
        })
        .filter(|p| base.is_none_or(|b| p.base_ref == b))
        .collect();
    // GitHub's default order: newest first.
    let ascending = call.query("direction") == Some("asc");
    if !ascending {
        pulls.reverse();
    }
    let items: Vec<Value> = pulls
        .into_iter()
        .skip(per_page * (page - 1))
        .take(per_page)
        .map(|p| pull_json(state, p))
        .collect();
    Answer::json(200, Value::Array(items))
}

fn number(call: &Call) -> u64 {
    call.param("pull_number").parse().unwrap_or(0)
}

pub(crate) fn get(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "pull_requests", "read") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let n = number(call);
    match state.pulls.iter().find(|p| p.repo == id && p.number == n) {
        Some(p) => Answer::json(200, pull_json(state, p)),
        None => Answer::not_found(),
    }
}

pub(crate) fn update(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "pull_requests", "write") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let n = number(call);
    let Some(i) = state
        .pulls
        .iter()
        .position(|p| p.repo == id && p.number == n)
    else {
        return Answer::not_found();
    };
    if let Some(base) = call.str_field("base") {
        match branch_sha(&state.repos[&id], base) {
            Some(sha) => {
                state.pulls[i].base_ref = base.to_string();
                state.pulls[i].base_sha = sha;
            }
            None => {
                return Answer::invalid(
                    "Validation Failed",
                    json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
                );
            }
        }
    }
    if call.str_field("state") == Some("open") && state.pulls[i].state == "closed" {
        let p = &state.pulls[i];
        let taken = state.pulls.iter().any(|o| {
            o.repo == id
                && o.number != n
                && o.state == "open"
                && o.head_repo == p.head_repo
                && o.head_ref == p.head_ref
                && o.base_ref == p.base_ref
        });
        if taken {
            return Answer::invalid(
                "Validation Failed",
                json!([{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for this head and base."}]),
            );
        }
    }
    let p = &mut state.pulls[i];
    if let Some(t) = call.str_field("title") {
        p.title = t.to_string();
    }
    if let Some(b) = call.str_field("body") {
        p.body = Some(b.to_string());
    }
    if let Some(m) = call.field("maintainer_can_modify").and_then(Value::as_bool) {
        p.maintainer_can_modify = m;
    }
    match call.str_field("state") {
        Some("closed") if p.state == "open" => {
            p.state = "closed".into();
            p.closed_at = Some(SystemTime::now());
        }
        Some("open") => {
            p.state = "open".into();
            p.closed_at = None;
        }
        _ => {}
    }
    p.updated_at = SystemTime::now();
    let p = state.pulls[i].clone();
    Answer::json(200, pull_json(state, &p))
}

/// `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`
/// (`issues: write` or, on a pull request, `pull_requests: write`; 201
/// `issue-comment`; 404 for a number that is neither).
pub(crate) fn create_comment(state: &mut State, call: &Call) -> Answer {
    let n: u64 = call.param("issue_number").parse().unwrap_or(0);
    let id = match access(state, call, "pull_requests", "write") {
        Ok(id) => id,
        Err(a) => return a,
    };
    if !state.pulls.iter().any(|p| p.repo == id && p.number == n) {
        return Answer::not_found();
    }
    let Some(text) = call.str_field("body") else {
        return Answer::invalid(
            "Validation Failed",
            json!([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]),
        );
    };
    let comment = Comment {
        id: state.id(),
        repo: id,
        number: n,
        body: text.to_string(),
        author: state.bot(),
        created_at: SystemTime::now(),
    };
    let repo = &state.repos[&id];
    let template = openapi::description().example("issue-comment");
    let mut v = retarget(&template, state, repo);
    let api = format!("{}/repos/{}", state.base, repo.full_name());
    let html = format!("{}/{}", state.base, repo.full_name());
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(comment.id));
        o.insert(
            "node_id".into(),
            json!(base64_id("012:IssueComment", comment.id)),
        );
        o.insert(
            "url".into(),
            json!(format!("{api}/issues/comments/{}", comment.id)),
        );
        o.insert(
            "html_url".into(),
            json!(format!("{html}/pull/{n}#issuecomment-{}", comment.id)),
        );
        o.insert("issue_url".into(), json!(format!("{api}/issues/{n}")));
        o.insert("body".into(), json!(comment.body));
        o.insert("user".into(), simple_user(&comment.author));
        o.insert("created_at".into(), json!(timestamp(comment.created_at)));
        o.insert("updated_at".into(), json!(timestamp(comment.created_at)));
        o.insert("author_association".into(), json!("NONE"));
    }
    state.comments.push(comment);
    Answer::json(201, v)
}

/// Merges pull request `number` of repository `id` by `method` with real
/// git in the bare repository, moving its base branch as GitHub's merge
/// button does; the commit the base is now at.
pub(crate) fn merge(
    state: &mut State,
    id: u64,
    number: u64,
    method: MergeMethod,
) -> Result<String, String> {
    let i = state
        .pulls
        .iter()
        .position(|p| p.repo == id && p.number == number && p.state == "open")
        .ok_or_else(|| format!("no open pull request #{number}"))?;
    let repo = state.repos.get(&id).ok_or("no such repository")?;
    let p = &state.pulls[i];
    let dir = repo.dir.clone();
    let base = branch_sha(repo, &p.base_ref).ok_or("the base branch is gone")?;
    let head = branch_sha(repo, &p.head_ref).ok_or("the head branch is gone")?;
    let message = format!("{} (#{number})", p.title);
    let merged = match method {
        MergeMethod::Merge | MergeMethod::Squash => {
            let tree = repos::git(&dir, &["merge-tree", "--write-tree", &base, &head])?;
            let tree = tree.lines().next().unwrap_or_default().to_string();
            let mut args = vec!["commit-tree", tree.as_str(), "-p", base.as_str()];
            if method == MergeMethod::Merge {
                args.extend(["-p", head.as_str()]);
            }
            args.extend(["-m", message.as_str()]);
            repos::git(&dir, &args)?
        }
        MergeMethod::Rebase => {
            let scratch = format!("refs/stand-in/rebase-{number}");
            repos::git(&dir, &["update-ref", &scratch, &head])?;
            let range = format!("{base}..{scratch}");
            let replayed = repos::git(&dir, &["replay", "--onto", &base, &range]);
            let _ = repos::git(&dir, &["update-ref", "-d", &scratch]);
            replayed?
                .lines()
                .filter_map(|l| l.strip_prefix("update "))
                .filter_map(|l| l.split_whitespace().nth(1))
                .next_back()
                .unwrap_or(&base)
                .to_string()
        }
    };
    let base_ref = format!("refs/heads/{}", p.base_ref);
    repos::git(&dir, &["update-ref", &base_ref, &merged, &base])?;
    let now = SystemTime::now();
    let p = &mut state.pulls[i];
    p.state = "closed".into();
    p.closed_at = Some(now);
    p.updated_at = now;
    p.merged = Some(Merged {
        commit: merged.clone(),
        head,
        at: now,
    });
    Ok(merged)
}

/// Deletes `branch` of repository `id` as `DELETE
/// /repos/{owner}/{repo}/git/refs/heads/{branch}` does: the open pull
/// requests based on it or from it are closed, for good (GitHub cannot
/// reopen a pull request whose branch is gone).
pub(crate) fn delete_branch(state: &mut State, id: u64, branch: &str) -> Result<(), String> {
    let repo = state.repos.get(&id).ok_or("no such repository")?;
    let name = format!("refs/heads/{branch}");
    repos::git(&repo.dir, &["update-ref", "-d", &name])?;
    let now = SystemTime::now();
    for p in state.pulls.iter_mut().filter(|p| {
        p.repo == id
            && p.state == "open"
            && (p.base_ref == branch || (p.head_repo == id && p.head_ref == branch))
    }) {
        p.state = "closed".into();
        p.closed_at = Some(now);
        p.updated_at = now;
    }
    Ok(())
}

impl super::GithubApi {
    /// Merges pull request `number` of repository `repo` by `method`, as
    /// a person pressing GitHub's merge button; the commit its base is
    /// now at. Panics if it cannot be merged.
    pub fn merge_pull(&self, repo: u64, number: u64, method: MergeMethod) -> String {
        match merge(&mut self.state(), repo, number, method) {
            Ok(sha) => sha,
            Err(e) => panic!("the GitHub stand-in could not merge #{number}: {e}"),
        }
    }

    /// Deletes `branch` of repository `repo` through the API, closing
    /// the open pull requests based on it or from it as GitHub does.
    /// Panics if git fails.
    pub fn delete_branch(&self, repo: u64, branch: &str) {
        if let Err(e) = delete_branch(&mut self.state(), repo, branch) {
            panic!("the GitHub stand-in could not delete {branch}: {e}");
        }
    }

    /// Every comment made on issues and pull requests, oldest first.
    pub fn comments(&self) -> Vec<Comment> {
        self.state().comments.clone()
    }

    /// Every pull request, in the order they were opened.
    pub fn pulls(&self) -> Vec<Pull> {
        self.state().pulls.clone()
    }

    /// Every commit status set, oldest first.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.state().statuses.clone()
    }
}
