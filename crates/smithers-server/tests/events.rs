//! A run's events as Server-Sent Events on both backends: what happened
//! is replayed, what happens is sent at once, a reconnection with
//! `Last-Event-ID` carries on with nothing missed and nothing twice, the
//! stream ends with the run, and bad cursors and callers are refused
//! before it starts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use std::time::Duration;

use serde_json::Value;
use smithers_api::{Role, Scope};
use smithers_app::Config;
use smithers_store::{LogStream, RunState};
use smithers_test_support::on_both_backends;
use smithers_test_support::runs::waiting_on_approval;

/// How long a test waits for an event that is due.
const DUE: Duration = Duration::from_secs(30);

/// One event as a client reads it.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A `text/event-stream` read frame by frame (keep-alive comments skipped).
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(s: &common::Server, run: &str, token: &str, last: Option<&str>) -> Stream {
        let mut request = s
            .http
            .get(format!("{}/api/v1/runs/{run}/events", s.base))
            .bearer_auth(token);
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; `None` when the server ends the stream.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim_start().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                frame.data = serde_json::from_str(&data).unwrap();
                return Some(frame);
            }
            match tokio::time::timeout(DUE, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) => return None,
                Ok(Err(e)) => panic!("the stream broke: {e}"),
                Err(_) => panic!("no event within {DUE:?}; had {:?}", self.buffer),
            }
        }
    }

    /// Events until (and with) the log line `text`.
    async fn until_line(&mut self, text: &str) -> Vec<Frame> {
        let mut seen = Vec::new();
        loop {
            let frame = self.next().await.expect("the stream ended early");
            let done = frame.event == "log" && frame.data["text"] == text;
            seen.push(frame);
            if done {
                return seen;
            }
        }
    }
}

fn actions(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.event == "change")
        .map(|f| f.data["action"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends!(
    a_runs_events_are_live_and_resume_without_gap_or_repeat,
    |db| {
        let s = common::serve(db, Config::default()).await;
        let admin = common::principal(&s.app, "admin").await;
        for user in ["carol", "dave"] {
            s.app.users().add(&admin, user, Role::Member).await.unwrap();
        }
        let runs = &s.app.engine().runs;
        let approval = waiting_on_approval(runs, "carol", false).await;
        let dave = common::principal(&s.app, "dave").await;
        let run = s.app.approvals().show(&dave, &approval).await.unwrap().run;
        runs.log(&run, Some(0), LogStream::Stdout, "one")
            .await
            .unwrap();
        runs.log(
            &run,
            Some(0),
            LogStream::Stdout,
            "<script>window.x=1</script>",
        )
        .await
        .unwrap();
        let reader = common::token(&s.app, "carol", &[Scope::RunsRead]).await;

        // What happened so far, then what happens, as it happens.
        let mut stream = Stream::open(&s, &run, &reader, None).await;
        let mut first = stream.until_line("<script>window.x=1</script>").await;
        assert_eq!(
            actions(&first),
            [
                "run.created",
                "run.running",
                "step.running",
                "approval.requested",
                "step.waiting_approval",
                "run.waiting_approval"
            ],
        );
        runs.log(&run, Some(0), LogStream::Stderr, "three")
            .await
            .unwrap();
        let live = stream.next().await.unwrap();
        assert_eq!(
            (
                live.event.as_str(),
                &live.data["text"],
                &live.data["stream"]
            ),
            ("log", &Value::from("three"), &Value::from("stderr"))
        );
        first.push(live);
        // Every event names the cursor after it, and cursors only grow.
        let cursors: Vec<(u64, u64)> = first
            .iter()
            .map(|f| {
                let (c, l) = f.id.as_deref().unwrap().split_once('.').unwrap();
                (c.parse().unwrap(), l.parse().unwrap())
            })
            .collect();
        assert!(
            cursors
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0] != w[1]),
            "{cursors:?}"
        );
        let last = first.last().unwrap().id.clone().unwrap();
        drop(stream);

        // Meanwhile: decided, a line, the run ends.
        s.app
            .approvals()
            .decide(&dave, &approval, true, Some("go"))
            .await
            .unwrap();
        runs.log(&run, Some(0), LogStream::Stdout, "four")
            .await
            .unwrap();
        runs.transition(
            &run,
            &[RunState::WaitingApproval],
            RunState::Succeeded,
            None,
            None,
            Value::Null,
        )
        .await
        .unwrap();

        // Reconnected: exactly what came after, then the end, then no more.
        let mut stream = Stream::open(&s, &run, &reader, Some(&last)).await;
        let mut second = Vec::new();
        while let Some(frame) = stream.next().await {
            second.push(frame);
        }
        let end = second.pop().unwrap();
        assert_eq!(
            (end.event.as_str(), &end.data["run"]),
            ("end", &Value::from(run.as_str()))
        );
        // The run's end destroys its model history, said right after.
        assert_eq!(
            actions(&second),
            [
                "approval.approved",
                "run.succeeded",
                "run.history_destroyed"
            ]
        );
        let lines: Vec<&Value> = second
            .iter()
            .filter(|f| f.event == "log")
            .map(|f| &f.data["text"])
            .collect();
        assert_eq!(lines, ["four"]);

        // From the start, the same events in the same order: no gap, no repeat.
        let mut whole = Vec::new();
        let mut stream = Stream::open(&s, &run, &reader, None).await;
        while let Some(frame) = stream.next().await {
            whole.push(frame);
        }
        whole.pop();
        let both: Vec<Frame> = first.into_iter().chain(second).collect();
        assert_eq!(whole, both);
        // `?after=` does what Last-Event-ID does, for clients without it.
        let after = s
            .http
            .get(format!("{}/api/v1/runs/{run}/events?after={last}", s.base))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            after.contains("\"four\"") && !after.contains("\"three\""),
            "{after}"
        );
    }
);

on_both_backends!(
    bad_cursors_and_callers_are_refused_before_the_stream,
    |db| {
        let s = common::serve(db, Config::default()).await;
        let approval = waiting_on_approval(&s.app.engine().runs, "admin", false).await;
        let admin = common::principal(&s.app, "admin").await;
        let run = s.app.approvals().show(&admin, &approval).await.unwrap().run;
        let reader = common::token(&s.app, "admin", &[Scope::RunsRead]).await;
        let approvals_only = common::token(&s.app, "admin", &[Scope::ApprovalsRead]).await;
        let url = |path: &str| format!("{}/api/v1/runs/{path}", s.base);
        let cases = [
            (
                url(&format!("{run}/events")),
                Some(reader.as_str()),
                Some("zz"),
                400,
            ),
            (
                url(&format!("{run}/events")),
                Some(reader.as_str()),
                Some("1.2.3"),
                400,
            ),
            (
                url(&format!("{run}/events?after=-1.0")),
                Some(reader.as_str()),
                None,
                400,
            ),
            (
                url(&format!("{run}/events?since=1")),
                Some(reader.as_str()),
                None,
                400,
            ),
            (url("nope/events"), Some(reader.as_str()), None, 404),
            (
                url(&format!("{run}/events")),
                Some(approvals_only.as_str()),
                None,
                403,
            ),
            (url(&format!("{run}/events")), None, None, 401),
        ];
        for (url, token, last, status) in cases {
            let mut request = s.http.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(last) = last {
                request = request.header("last-event-id", last);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{url} {last:?}");
            assert_eq!(
                response.headers()["content-type"],
                smithers_server::PROBLEM_JSON,
                "{url}"
            );
        }
    }
);
