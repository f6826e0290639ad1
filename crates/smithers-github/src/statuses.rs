//! Commit statuses (GitHub Docs, "REST API endpoints for commit
//! statuses"): one per workflow, context `smithers/<workflow>`, on the
//! commit a run tested, saying where the run stands, with a link to it.
//! Level-triggered: whatever run's state differs from what its last
//! status said gets a new status, so a status that could not be posted
//! (GitHub away, an answer lost) is posted on the next pass. Posting the
//! same status twice changes nothing on GitHub.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use smithers_app::App;
use smithers_store::GithubRun;

use crate::client::{Auth, Context, Request};
use crate::token::{Access, TokenScope};
use crate::{Error, Github};

/// The longest description GitHub takes.
const MAX_DESCRIPTION: usize = 140;

/// Posts the statuses of the App's runs.
pub(crate) struct Statuses<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
    /// Where people reach the dashboard (`https://smithers.example`), for
    /// the link to the run; none: no link.
    pub public_url: Option<&'a str>,
}

impl Statuses<'_> {
    /// Posts a status for every run whose state changed since its last
    /// one; answers how many were posted. A run whose status cannot be
    /// posted is tried again on the next pass.
    pub(crate) async fn report(&self) -> Result<usize, Error> {
        let github = self.app.store().github();
        let mut posted = 0;
        for run in github.unreported_runs(100).await? {
            match self.post(&run).await {
                Ok(()) => {
                    github.set_reported(&run.run_id, &run.run_state).await?;
                    posted += 1;
                }
                Err(e) => {
                    tracing::warn!(run = %run.run_id, error = %e, "a commit status could not be posted");
                }
            }
        }
        Ok(posted)
    }

    /// Posts the status of `run` as it stands now, and records it posted.
    ///
    /// Errors: GitHub's (the next [`Statuses::report`] tries again); the
    /// store's.
    pub(crate) async fn post_now(&self, run_id: &str) -> Result<(), Error> {
        let github = self.app.store().github();
        let Some(run) = github.run(run_id).await? else {
            return Ok(());
        };
        self.post(&run).await?;
        github.set_reported(&run.run_id, &run.run_state).await?;
        Ok(())
    }

    async fn post(&self, run: &GithubRun) -> Result<(), Error> {
        let (state, description) = status_of(run);
        let (owner, name) = run
            .repository
            .split_once('/')
            .ok_or_else(|| Error::Malformed(format!("repository {:?}", run.repository)))?;
        let mut body = json!({
            "state": state,
            "description": description,
            "context": format!("smithers/{}", run.workflow),
        });
        if let Some(public) = self.public_url {
            body["target_url"] =
                format!("{}/runs/{}", public.trim_end_matches('/'), run.run_id).into();
        }
        let scope = TokenScope::new(run.installation_id, &[run.repository_id])
            .with("statuses", Access::Write);
        let request = Request::new(
            Method::POST,
            "/repos/{owner}/{repo}/statuses/{sha}",
            &[owner, name, &run.head_sha],
            Auth::Installation(scope),
        )
        .json(body)
        .context(Context {
            repository: Some(&run.repository),
            delivery: Some(&run.delivery),
        });
        self.github.send(&request).await.map(|_| ())
    }
}

/// The status a run's state is reported as: GitHub's state and a
/// one-line description.
fn status_of(run: &GithubRun) -> (&'static str, String) {
    let (state, description) = match run.run_state.as_str() {
        "queued" => ("pending", "Queued".to_string()),
        "running" => ("pending", "Running".to_string()),
        "waiting_approval" => ("pending", "Waiting for a person's approval".to_string()),
        "succeeded" => ("success", "Passed".to_string()),
        "failed" => ("failure", "Failed".to_string()),
        "timed_out" => ("error", "Timed out".to_string()),
        "cancelled" => match &run.superseded_by {
            Some(sha) => (
                "error",
                format!(
                    "Superseded by a newer push ({})",
                    sha.get(..12).unwrap_or(sha)
                ),
            ),
            None => ("error", "Cancelled".to_string()),
        },
        other => ("error", format!("Ended {other}")),
    };
    (state, one_line(&description))
}

/// `text` on one line, cut to what GitHub takes.
fn one_line(text: &str) -> String {
    let line = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::neutral::cut(line, MAX_DESCRIPTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &str, superseded_by: Option<&str>) -> GithubRun {
        GithubRun {
            run_id: "r".into(),
            organization_id: "local".into(),
            installation_id: 1,
            repository_id: 2,
            repository: "acme/api".into(),
            pull_number: Some(3),
            head_sha: "a".repeat(40),
            workflow: "check".into(),
            delivery: "d".into(),
            created_at: 0,
            reported_state: None,
            superseded_by: superseded_by.map(str::to_string),
            result_base: "feature".into(),
            from_fork: false,
            result: None,
            result_detail: None,
            result_pull: None,
            run_state: state.into(),
        }
    }

    #[test]
    fn states_map_to_github_states() {
        assert_eq!(status_of(&run("queued", None)).0, "pending");
        assert_eq!(status_of(&run("waiting_approval", None)).0, "pending");
        assert_eq!(status_of(&run("succeeded", None)).0, "success");
        assert_eq!(status_of(&run("failed", None)).0, "failure");
        assert_eq!(status_of(&run("timed_out", None)).0, "error");
        let (state, description) = status_of(&run("cancelled", Some(&"b".repeat(40))));
        assert_eq!(state, "error");
        assert_eq!(description, "Superseded by a newer push (bbbbbbbbbbbb)");
    }

    #[test]
    fn descriptions_are_one_short_line() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        let long = one_line(&"x".repeat(500));
        assert_eq!(long.chars().count(), MAX_DESCRIPTION);
        assert!(long.ends_with('…'));
    }
}
