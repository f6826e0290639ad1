//! The App's manifest (GitHub Docs, "Registering a GitHub App from a
//! manifest"): what `smithers github manifest` prints, for GitHub's
//! manifest flow to create the App with exactly the permissions and
//! events Smithers needs. `docs/github-app.md` explains each.

use serde_json::{Value, json};

/// The permissions the App asks for, and why (GitHub's names).
pub const PERMISSIONS: &[(&str, &str, &str)] = &[
    (
        "contents",
        "write",
        "read: fetch a repository's code and its default branch's workflow and policy; \
         write: push Smithers' own smithers/… branches (GitHub has no narrower permission \
         to create a branch); every token is down-scoped to read unless it pushes a \
         smithers/… branch",
    ),
    (
        "pull_requests",
        "write",
        "open and update the pull requests that deliver a run's work",
    ),
    (
        "statuses",
        "write",
        "report each workflow's outcome on a pull request's head commit",
    ),
    (
        "members",
        "read",
        "make the organization's members Smithers users, with roles from team membership",
    ),
    (
        "metadata",
        "read",
        "list repositories and their default branches (GitHub grants it to every App)",
    ),
];

/// The webhook events the App subscribes to (installation and
/// installation_repositories are sent to every App without asking).
pub const EVENTS: &[&str] = &[
    "pull_request",
    "push",
    "organization",
    "membership",
    "member",
    "team",
];

/// The manifest of an App named `name` served at `public_url` (the
/// origin people and GitHub reach `smithers serve` at).
pub fn manifest(public_url: &str, name: &str) -> Value {
    let base = public_url.trim_end_matches('/');
    let permissions: serde_json::Map<String, Value> = PERMISSIONS
        .iter()
        .map(|(name, access, _)| (name.to_string(), Value::from(*access)))
        .collect();
    json!({
        "name": name,
        "url": base,
        "description": "Runs AI coding agents and workflows on this organization's \
                        repositories in disposable sandboxes, under a capability kernel, \
                        with every action in a tamper-evident audit log.",
        "hook_attributes": {
            "url": format!("{base}/github/webhook"),
            "active": true,
        },
        "callback_urls": [format!("{base}/sign-in/github/callback")],
        "request_oauth_on_install": false,
        "setup_on_update": false,
        "public": false,
        "default_permissions": permissions,
        "default_events": EVENTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_points_github_at_the_server() {
        let m = manifest("https://smithers.example.com/", "Smithers (acme)");
        assert_eq!(
            m["hook_attributes"]["url"],
            "https://smithers.example.com/github/webhook"
        );
        assert_eq!(
            m["callback_urls"][0],
            "https://smithers.example.com/sign-in/github/callback"
        );
        assert_eq!(m["default_permissions"]["contents"], "write");
        assert_eq!(m["default_permissions"]["members"], "read");
        assert_eq!(m["public"], false);
    }
}
