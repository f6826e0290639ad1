//! Webhooks.

use std::sync::Arc;

use super::Shared;
use super::server::{Answer, Call};
use super::state::State;

#[derive(Default)]
pub(crate) struct Hooks {}

pub(crate) fn drain(_: Arc<Shared>) {}

pub(crate) fn list_deliveries(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn get_delivery(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
pub(crate) fn redeliver(_: &mut State, _: &Call) -> Answer {
    Answer::not_found()
}
