//! Repositories over git's smart HTTP at `/{owner}/{repo}.git/…`, served
//! by `git http-backend` (a CGI program: the request goes in through its
//! environment and standard input, the answer comes out as CGI headers
//! and a body). Authenticated as GitHub does for an App (GitHub Docs:
//! "Authenticating as a GitHub App installation", git access): HTTP basic
//! with the installation token as the password (`x-access-token:TOKEN`);
//! fetching needs `contents: read` (a public repository needs nothing),
//! pushing `contents: write`; a repository the token cannot reach is
//! "Repository not found." (404). A push to a protected branch is refused
//! by the repository's pre-receive hook, with GitHub's GH006.

use std::process::Stdio;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt as _;

use super::Shared;
use super::auth::{self, Principal, allows};
use super::state::Recorded;

/// `/{owner}/{repo}.git/{rest}`, split.
fn split(path: &str) -> Option<(&str, &str, &str)> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let owner = parts.next()?;
    let repo = parts.next()?.strip_suffix(".git")?;
    let rest = parts.next()?;
    (!owner.is_empty() && !repo.is_empty()).then_some((owner, repo, rest))
}

pub(crate) fn is_git(path: &str) -> bool {
    split(path).is_some()
}

fn plain(status: u16, text: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// GitHub's answer to git without (good) credentials: git asks for
/// them, or says "Authentication failed".
fn challenge() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Basic realm=\"GitHub\"")],
        "Invalid username or token. Password authentication is not supported for Git operations.\n",
    )
        .into_response()
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let shown = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let (kind, _) = auth::credentials(headers);
    let decided = decide(&shared, method, path, query, headers);
    let response = match decided {
        Err(Refused(401, _)) => challenge(),
        Err(Refused(status, text)) => plain(status, text),
        Ok(cgi) => run(cgi, method, query, headers, body).await,
    };
    shared.lock().requests.push(Recorded {
        method: method.into(),
        path: shown,
        operation: None,
        status: response.status().as_u16(),
        auth: kind,
    });
    response
}

/// A refusal before git runs: its status and text (401: git is asked for
/// credentials).
struct Refused(u16, &'static str);

const CHALLENGE: Refused = Refused(401, "");

/// What `git http-backend` is run with.
struct Cgi {
    root: std::path::PathBuf,
    path_info: String,
}

/// Whether the request may go to git, as GitHub decides it.
fn decide(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Result<Cgi, Refused> {
    let Some((owner, name, rest)) = split(path) else {
        return Err(Refused(404, "Not Found"));
    };
    let service = match (method, rest) {
        ("GET", "info/refs") => query
            .split('&')
            .find_map(|p| p.strip_prefix("service="))
            .unwrap_or(""),
        ("POST", "git-upload-pack") => "git-upload-pack",
        ("POST", "git-receive-pack") => "git-receive-pack",
        _ => "",
    };
    // Only the smart protocol: GitHub serves no dumb HTTP.
    let wanted = match service {
        "git-upload-pack" => "read",
        "git-receive-pack" => "write",
        _ => return Err(Refused(403, "Smart HTTP only")),
    };
    let state = shared.lock();
    let principal = match auth::authenticate(&state, headers) {
        Ok(p) => p,
        Err(r) if r.status == 401 => return Err(CHALLENGE),
        Err(_) => return Err(Refused(403, "This installation has been suspended")),
    };
    let Some(repo) = state.repo_named(owner, name) else {
        return Err(match principal {
            Principal::Anonymous => CHALLENGE,
            _ => Refused(404, "Repository not found."),
        });
    };
    match principal {
        Principal::Installation {
            token,
            installation,
        } => {
            let Some(t) = state.tokens.get(&token) else {
                return Err(CHALLENGE);
            };
            let reachable = repo.installation == Some(installation)
                && t.repos.as_ref().is_none_or(|ids| ids.contains(&repo.id));
            // A public repository is readable by anyone.
            let public_read = wanted == "read" && !repo.private;
            if !reachable && !public_read {
                return Err(Refused(404, "Repository not found."));
            }
            if !(allows(&t.permissions, "contents", wanted) || wanted == "read" && !repo.private) {
                return Err(if wanted == "write" {
                    Refused(403, "Write access to repository not granted.")
                } else {
                    Refused(404, "Repository not found.")
                });
            }
        }
        Principal::App => return Err(CHALLENGE),
        Principal::Anonymous => {
            if repo.private || wanted == "write" {
                return Err(CHALLENGE);
            }
        }
    }
    let relative = repo
        .dir
        .strip_prefix(&state.repos_dir)
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(Cgi {
        root: state.repos_dir.clone(),
        path_info: format!("/{relative}/{rest}"),
    })
}

/// Runs `git http-backend` on the request; its CGI answer as HTTP.
async fn run(cgi: Cgi, method: &str, query: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &cgi.root)
        .env("GIT_PROJECT_ROOT", &cgi.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", &cgi.path_info)
        .env("REQUEST_METHOD", method)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // What http-backend reads the client's gzip and protocol version from.
    for (env, name) in [
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ("HTTP_GIT_PROTOCOL", "git-protocol"),
    ] {
        let value = header(name);
        if !value.is_empty() {
            command.env(env, value);
        }
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return plain(500, &format!("git http-backend: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Written while git reads, so that neither waits on the other.
        tokio::spawn(async move {
            let _ = stdin.write_all(&body).await;
        });
    }
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => return plain(500, &format!("git http-backend: {e}")),
    };
    parse_cgi(&out.stdout)
}

/// A CGI answer (`Status:` and other headers, a blank line, the body) as
/// HTTP.
fn parse_cgi(out: &[u8]) -> Response {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match find(out, b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => return plain(500, "git http-backend answered nothing"),
        },
    };
    let mut status = StatusCode::OK;
    let mut response = Response::new(axum::body::Body::from(body.to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse().ok());
            status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(n, v);
        }
    }
    *response.status_mut() = status;
    response
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths() {
        assert_eq!(
            split("/acme/widgets.git/info/refs"),
            Some(("acme", "widgets", "info/refs"))
        );
        assert_eq!(split("/repos/acme/widgets"), None);
        assert_eq!(split("/acme/widgets.git"), None);
    }

    #[test]
    fn cgi_answers() {
        let r = parse_cgi(b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nno");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let r = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n001e");
        assert_eq!(r.status(), StatusCode::OK);
    }
}
