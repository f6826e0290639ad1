//! Organization members and teams.

use super::server::{Answer, Call};
use super::state::State;

#[derive(Default)]
pub(crate) struct Org {
    pub id: u64,
    pub members: Vec<(String, u64)>,
}

pub(crate) fn list_members(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn list_teams(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn list_team_members(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
