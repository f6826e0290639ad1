//! Repositories: each a bare git repository of the stand-in's (served by
//! [`super::git_http`]), written by tests through a work clone; and the
//! REST API's `GET /repos/{owner}/{repo}` and
//! `GET /repos/{owner}/{repo}/branches/{branch}` (GitHub Docs, REST API
//! "Repositories" and "Branches"), answered after the documented
//! examples. Installation tokens reach a repository of their
//! installation, in their list, with the permission an operation needs —
//! otherwise 404 (a repository a token cannot see does not exist for it,
//! as on GitHub) or 403 "Resource not accessible by integration".

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::auth::{Principal, allows};
use super::openapi;
use super::server::{Answer, Call};
use super::state::{Repo, State, base64_id, simple_user, timestamp};

/// The pre-receive hook of every repository: GitHub's GH006 refusal of a
/// push to a protected branch (the branches are listed, one full ref a
/// line, in `smithers-protected`). A test writing through
/// [`commit`] is an administrator and passes.
const PRE_RECEIVE: &str = r#"#!/bin/sh
# Branches the GitHub stand-in marks protected refuse pushes (GH006).
[ -n "$SMITHERS_STAND_IN_ADMIN" ] && exit 0
while read old new ref; do
    if grep -qxF "$ref" "$GIT_DIR/smithers-protected" 2>/dev/null; then
        echo "error: GH006: Protected branch update failed for $ref." >&2
        exit 1
    fi
done
exit 0
"#;

/// The repository `{owner}/{repo}` of a request, if its token may do
/// `permission` at `wanted` there.
pub(crate) fn access(
    state: &State,
    call: &Call,
    permission: &str,
    wanted: &str,
) -> Result<u64, Answer> {
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
    let Some(t) = state.tokens.get(token) else {
        return Err(Answer::error(401, "Bad credentials"));
    };
    let Some(repo) = state.repo_named(call.param("owner"), call.param("repo")) else {
        return Err(Answer::not_found());
    };
    let reachable = repo.installation == Some(installation)
        && t.repos.as_ref().is_none_or(|ids| ids.contains(&repo.id));
    if !reachable {
        return Err(Answer::not_found());
    }
    if !allows(&t.permissions, permission, wanted) {
        return Err(Answer::error(403, "Resource not accessible by integration"));
    }
    Ok(repo.id)
}

/// `template` with the documented example's repository
/// (`octocat/Hello-World` at api.github.com) turned into `repo` at the
/// stand-in.
pub(crate) fn retarget(template: &Value, state: &State, repo: &Repo) -> Value {
    let full = repo.full_name();
    let text = template
        .to_string()
        .replace(
            "https://api.github.com/repos/octocat/Hello-World",
            &format!("{}/repos/{full}", state.base),
        )
        .replace(
            "https://github.com/octocat/Hello-World",
            &format!("{}/{full}", state.base),
        )
        .replace("octocat/Hello-World", &full);
    serde_json::from_str(&text).unwrap_or_else(|_| template.clone())
}

/// A repository (`full-repository`, which holds `repository` too), after
/// the documented example of "Get a repository".
pub(crate) fn repository_json(state: &State, repo: &Repo) -> Value {
    let template = openapi::description().example("full-repository-default-response");
    let mut v = retarget(&template, state, repo);
    let full = repo.full_name();
    if let Some(o) = v.as_object_mut() {
        for gone in [
            "parent",
            "source",
            "template_repository",
            "organization",
            "security_and_analysis",
            "code_of_conduct",
            "permissions",
        ] {
            o.remove(gone);
        }
        o.insert("id".into(), json!(repo.id));
        o.insert(
            "node_id".into(),
            json!(base64_id("010:Repository", repo.id)),
        );
        o.insert("name".into(), json!(repo.name));
        o.insert("full_name".into(), json!(full));
        o.insert("owner".into(), simple_user(&repo.owner));
        o.insert("private".into(), json!(repo.private));
        o.insert(
            "visibility".into(),
            json!(if repo.private { "private" } else { "public" }),
        );
        o.insert("fork".into(), json!(repo.fork));
        o.insert("default_branch".into(), json!(repo.default_branch));
        o.insert("language".into(), Value::Null);
        o.insert("description".into(), Value::Null);
        o.insert("homepage".into(), Value::Null);
        o.insert("license".into(), Value::Null);
        o.insert("mirror_url".into(), Value::Null);
        o.insert("topics".into(), json!([]));
        o.insert("url".into(), json!(format!("{}/repos/{full}", state.base)));
        o.insert("html_url".into(), json!(format!("{}/{full}", state.base)));
        o.insert("clone_url".into(), json!(clone_url(state, repo)));
        o.insert(
            "git_url".into(),
            json!(format!("git://127.0.0.1/{full}.git")),
        );
        o.insert("ssh_url".into(), json!(format!("git@127.0.0.1:{full}.git")));
        o.insert("svn_url".into(), json!(format!("{}/{full}", state.base)));
        let created = timestamp(repo.created_at);
        o.insert("created_at".into(), json!(created));
        o.insert("updated_at".into(), json!(created));
        o.insert("pushed_at".into(), json!(timestamp(SystemTime::now())));
        for count in [
            "forks",
            "forks_count",
            "open_issues",
            "open_issues_count",
            "stargazers_count",
            "watchers",
            "watchers_count",
            "subscribers_count",
            "network_count",
            "size",
        ] {
            o.insert(count.into(), json!(0));
        }
    }
    v
}

/// `{base}/{owner}/{repo}.git`, where git clones it from.
pub(crate) fn clone_url(state: &State, repo: &Repo) -> String {
    format!("{}/{}.git", state.base, repo.full_name())
}

pub(crate) fn get(state: &mut State, call: &Call) -> Answer {
    match access(state, call, "metadata", "read") {
        Ok(id) => Answer::json(200, repository_json(state, &state.repos[&id])),
        Err(a) => a,
    }
}

pub(crate) fn get_branch(state: &mut State, call: &Call) -> Answer {
    let id = match access(state, call, "metadata", "read") {
        Ok(id) => id,
        Err(a) => return a,
    };
    let repo = &state.repos[&id];
    let branch = call.param("branch");
    let Some(sha) = branch_sha(repo, branch) else {
        return Answer::error(404, "Branch not found");
    };
    Answer::json(200, branch_json(state, repo, branch, &sha))
}

/// A branch (`branch-with-protection`), after the documented example.
fn branch_json(state: &State, repo: &Repo, branch: &str, sha: &str) -> Value {
    let template = openapi::description().example("branch-get");
    let mut v = retarget(&template, state, repo);
    let protected = repo.protected.contains(branch);
    let full = repo.full_name();
    let api = format!("{}/repos/{full}", state.base);
    let tree = git(&repo.dir, &["rev-parse", &format!("{sha}^{{tree}}")]).unwrap_or_default();
    let message = git(&repo.dir, &["log", "-1", "--format=%B", sha]).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("name".into(), json!(branch));
        o.insert("protected".into(), json!(protected));
        o.insert(
            "protection_url".into(),
            json!(format!("{api}/branches/{branch}/protection")),
        );
        o.insert(
            "_links".into(),
            json!({
                "html": format!("{}/{full}/tree/{branch}", state.base),
                "self": format!("{api}/branches/{branch}"),
            }),
        );
        if let Some(p) = o.get_mut("protection").and_then(Value::as_object_mut) {
            p.insert("enabled".into(), json!(protected));
        }
        if let Some(c) = o.get_mut("commit").and_then(Value::as_object_mut) {
            c.insert("sha".into(), json!(sha));
            c.insert("node_id".into(), json!(base64_id("06:Commit", repo.id)));
            c.insert("url".into(), json!(format!("{api}/commits/{sha}")));
            c.insert(
                "html_url".into(),
                json!(format!("{}/{full}/commit/{sha}", state.base)),
            );
            c.insert(
                "comments_url".into(),
                json!(format!("{api}/commits/{sha}/comments")),
            );
            c.insert("parents".into(), json!([]));
            if let Some(inner) = c.get_mut("commit").and_then(Value::as_object_mut) {
                inner.insert("message".into(), json!(message.trim_end()));
                inner.insert("url".into(), json!(format!("{api}/git/commits/{sha}")));
                inner.insert(
                    "tree".into(),
                    json!({"sha": tree, "url": format!("{api}/git/trees/{tree}")}),
                );
            }
        }
    }
    v
}

/// Runs git in `dir` under a fixed author (the machine's configuration
/// plays no part); what it printed, trimmed, or its complaint.
pub(crate) fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    git_env(dir, args, &[])
}

pub(crate) fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Smithers Test",
            "-c",
            "user.email=test@smithers.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .envs(env.iter().copied())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .current_dir(dir)
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A new bare repository at `dir`, with the protected-branch hook and a
/// first commit (`README.md`) on `default_branch`.
pub(crate) fn init(dir: &Path, name: &str, default_branch: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    git(dir, &["init", "-q", "--bare", "-b", default_branch])?;
    let hook = dir.join("hooks/pre-receive");
    std::fs::write(&hook, PRE_RECEIVE).map_err(|e| format!("{}: {e}", hook.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", hook.display()))?;
    }
    commit_to(
        dir,
        default_branch,
        default_branch,
        &[("README.md", &format!("# {name}\n"))],
        "Initial commit",
    )?;
    Ok(())
}

/// Writes `files` on `branch` of the bare repository `dir` (made from
/// `from` when new) through a work clone, as an administrator would;
/// the new commit's sha.
pub(crate) fn commit_to(
    dir: &Path,
    branch: &str,
    from: &str,
    files: &[(&str, &str)],
    message: &str,
) -> Result<String, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let w = work.path();
    let bare = dir.to_string_lossy().to_string();
    git(w, &["init", "-q"])?;
    git(
        w,
        &["fetch", "-q", &bare, "+refs/heads/*:refs/remotes/origin/*"],
    )?;
    let exists = |b: &str| {
        git(
            w,
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("refs/remotes/origin/{b}"),
            ],
        )
        .is_ok()
    };
    if exists(branch) {
        git(
            w,
            &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
        )?;
    } else if exists(from) {
        git(
            w,
            &["checkout", "-q", "-B", branch, &format!("origin/{from}")],
        )?;
    } else {
        git(w, &["checkout", "-q", "--orphan", branch])?;
    }
    for (path, content) in files {
        let p = w.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    git(w, &["add", "-A"])?;
    git(w, &["commit", "-q", "--allow-empty", "-m", message])?;
    git_env(
        w,
        &["push", "-q", &bare, &format!("HEAD:refs/heads/{branch}")],
        &[("SMITHERS_STAND_IN_ADMIN", "1")],
    )?;
    git(w, &["rev-parse", "HEAD"])
}

/// The commit `branch` of `repo` points at.
pub(crate) fn branch_sha(repo: &Repo, branch: &str) -> Option<String> {
    git(
        &repo.dir,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}^{{commit}}"),
        ],
    )
    .ok()
}

/// The commit a ref (a sha, a branch, a tag) names in `repo`.
pub(crate) fn resolve(repo: &Repo, reference: &str) -> Option<String> {
    if reference.starts_with('-') {
        return None;
    }
    git(
        &repo.dir,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .ok()
}

/// Where the bare repository of `owner/name` lives.
pub(crate) fn repo_dir(root: &Path, owner: &str, name: &str) -> PathBuf {
    root.join(owner.to_ascii_lowercase())
        .join(format!("{}.git", name.to_ascii_lowercase()))
}

/// The fork of repository `base` owned by `owner` (made once, a bare
/// clone in no installation), with `branch` moved there from `base` when
/// `base` has it: a contributor's branch lives in their fork.
pub(crate) fn fork(
    state: &mut State,
    base: u64,
    owner: &super::state::Account,
    branch: &str,
) -> Result<(), String> {
    let (name, base_dir) = match state.repos.get(&base) {
        Some(r) => (r.name.clone(), r.dir.clone()),
        None => return Err(format!("no repository {base}")),
    };
    let existing = state
        .repos
        .values()
        .find(|r| r.fork && r.owner.login == owner.login && r.name == name)
        .map(|r| r.dir.clone());
    let fork_dir = match existing {
        Some(dir) => dir,
        None => {
            let dir = repo_dir(&state.repos_dir, &owner.login, &name);
            let parent = dir.parent().unwrap_or(&state.repos_dir).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|e| e.to_string())?;
            git(
                &parent,
                &[
                    "clone",
                    "-q",
                    "--bare",
                    &base_dir.to_string_lossy(),
                    &dir.to_string_lossy(),
                ],
            )?;
            let id = state.id();
            let default_branch = state.repos[&base].default_branch.clone();
            state.repos.insert(
                id,
                Repo {
                    id,
                    installation: None,
                    owner: owner.clone(),
                    name: name.clone(),
                    default_branch,
                    private: false,
                    fork: true,
                    protected: Default::default(),
                    dir: dir.clone(),
                    created_at: SystemTime::now(),
                    next_number: 1,
                },
            );
            dir
        }
    };
    let head = format!("refs/heads/{branch}");
    if git(&base_dir, &["rev-parse", "--verify", "-q", &head]).is_ok() {
        git(
            &base_dir,
            &[
                "push",
                "-q",
                "-f",
                &fork_dir.to_string_lossy(),
                &format!("{head}:{head}"),
            ],
        )?;
        git(&base_dir, &["update-ref", "-d", &head])?;
    } else if git(&fork_dir, &["rev-parse", "--verify", "-q", &head]).is_err() {
        return Err(format!("no branch {branch} to open a pull request from"));
    }
    Ok(())
}
