//! Commit statuses and pull requests.

use super::server::{Answer, Call};
use super::state::State;

/// A pull request the stand-in holds.
#[derive(Debug, Clone)]
pub struct Pull {}

/// A commit status the stand-in holds.
#[derive(Debug, Clone)]
pub struct CommitStatus {}

pub(crate) fn create_status(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn list_statuses(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn create(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn list(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn get(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn update(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
