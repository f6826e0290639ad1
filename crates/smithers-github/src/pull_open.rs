//! Opening a pull request exactly once: the open one from a branch looked
//! for, and a create whose answer is lost (`Uncertain`) followed by a look
//! before it is tried again, so that a lost answer never makes two. Used
//! by a run's delivery and by the stack reconciler.

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Auth, Context, Request};
use crate::token::TokenScope;
use crate::{Error, Github};

/// The repository a pull request is looked for or opened in, and as whom.
pub(crate) struct Target<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    /// `pull_requests: write` on the repository.
    pub scope: &'a TokenScope,
    pub context: Context<'a>,
}

/// A pull request to open.
pub(crate) struct NewPull<'a> {
    pub title: &'a str,
    /// A branch of the target repository.
    pub head: &'a str,
    pub base: &'a str,
    pub body: &'a str,
}

/// The number of the open pull request whose head is `branch` of the
/// target repository (`GET /repos/{owner}/{repo}/pulls?head=owner:branch`).
///
/// Errors: as [`Github::send`].
pub(crate) async fn open_pull(
    github: &Github,
    target: &Target<'_>,
    branch: &str,
) -> Result<Option<u64>, Error> {
    let look = Request::new(
        Method::GET,
        "/repos/{owner}/{repo}/pulls",
        &[target.owner, target.name],
        Auth::Installation(target.scope.clone()),
    )
    .query("head", format!("{}:{branch}", target.owner))
    .query("state", "open")
    .context(target.context);
    let answer = github.send(&look).await?;
    Ok(answer
        .body
        .as_array()
        .and_then(|pulls| pulls.first())
        .and_then(|p| p.get("number"))
        .and_then(Value::as_u64))
}

/// Opens `pull` (`maintainer_can_modify` off); its number. A lost answer
/// is looked for before the create is tried again.
///
/// Errors: as [`Github::send`]; [`Error::Malformed`] for an answer
/// without a number.
pub(crate) async fn create_pull(
    github: &Github,
    target: &Target<'_>,
    pull: &NewPull<'_>,
) -> Result<u64, Error> {
    let create = Request::new(
        Method::POST,
        "/repos/{owner}/{repo}/pulls",
        &[target.owner, target.name],
        Auth::Installation(target.scope.clone()),
    )
    .json(json!({
        "title": pull.title,
        "head": pull.head,
        "base": pull.base,
        "body": pull.body,
        "maintainer_can_modify": false,
    }))
    .context(target.context);
    match github.send(&create).await {
        Ok(answer) => number_of(&answer.body),
        Err(Error::Uncertain { .. }) => match open_pull(github, target, pull.head).await? {
            Some(number) => Ok(number),
            None => number_of(&github.send(&create).await?.body),
        },
        Err(e) => Err(e),
    }
}

fn number_of(body: &Value) -> Result<u64, Error> {
    body.get("number")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Malformed("GitHub's pull request has no number".into()))
}
