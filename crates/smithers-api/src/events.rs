//! What a follower of a run is told as it happens: its log lines and the
//! changes of the run, its steps, tool calls and approvals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, LogLine, Timestamp};

/// Where a follower of a run stands: the last change (the audit log's
/// sequence number) and the last log line it has had. Written
/// `CHANGE.LOG` (`0.0` before anything), as Server-Sent Events' `id` and
/// `Last-Event-ID`; both parts only grow, so a follower that gives it back
/// misses nothing and is told nothing twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventCursor {
    pub change: u64,
    pub log: u64,
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.change, self.log)
    }
}

impl FromStr for EventCursor {
    type Err = Error;

    /// Errors: `invalid` for anything but two decimal numbers joined by a
    /// dot.
    fn from_str(s: &str) -> Result<EventCursor, Error> {
        let bad = || Error::invalid(format!("event id {s:?} is not CHANGE.LOG"));
        let (change, log) = s.trim().split_once('.').ok_or_else(bad)?;
        let number = |n: &str| {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            n.parse::<u64>().map_err(|_| bad())
        };
        Ok(EventCursor {
            change: number(change)?,
            log: number(log)?,
        })
    }
}

/// A change of the run or of something of it, as the audit log recorded
/// it: `{"seq", "action", "resource_type", "resource_id", "actor_id",
/// "at", "details"}` — e.g. `step.running` of resource `step`
/// `RUN/build`, `approval.approved` of an approval, `run.succeeded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunChange {
    /// The audit event's sequence number in the organization's log.
    pub seq: u64,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Who: `engine`, the user who decided, the agent's role.
    pub actor_id: String,
    pub at: Timestamp,
    pub details: Value,
}

/// One event of a run: `{"type": "log", …LogLine}` or `{"type":
/// "change", …RunChange}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Log(LogLine),
    Change(RunChange),
}

impl RunEvent {
    /// The event's name in a Server-Sent Events stream: `log` or `change`.
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::Log(_) => "log",
            RunEvent::Change(_) => "change",
        }
    }
}

/// What happened to a run after a cursor: `{"events": [{"cursor",
/// "event"}], "finished"}` — each event with the cursor that stands after
/// it, and whether the run has ended (no more will come once these are
/// read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunEvents {
    pub events: Vec<CursoredEvent>,
    pub finished: bool,
}

/// An event and the cursor after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CursoredEvent {
    /// `CHANGE.LOG`, as [`EventCursor`] writes it.
    pub cursor: String,
    pub event: RunEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_anything_else() {
        let c = EventCursor {
            change: 17,
            log: 230,
        };
        assert_eq!(c.to_string(), "17.230");
        assert_eq!("17.230".parse::<EventCursor>().unwrap(), c);
        assert_eq!(
            "0.0".parse::<EventCursor>().unwrap(),
            EventCursor::default()
        );
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "a.1",
            "1.2.3",
            "-1.2",
            "+1.2",
            "1.99999999999999999999",
        ] {
            assert!(bad.parse::<EventCursor>().is_err(), "{bad}");
        }
    }
}
