// Smithers' dashboard: the one script the pages load (the Content-Security-
// Policy allows no other, and no inline script). It follows a run's live
// events and appends what they say as text: a step's output is never markup.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("log");
  if (!log || !log.dataset.events) {
    return;
  }
  const state = document.getElementById("run-state");
  const status = document.getElementById("live");
  const source = new EventSource(log.dataset.events);
  const follow = () => {
    const atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    return () => { if (atEnd) { window.scrollTo(0, document.body.scrollHeight); } };
  };
  source.addEventListener("log", (e) => {
    const line = JSON.parse(e.data);
    const scroll = follow();
    const row = document.createElement("div");
    row.className = "line " + (line.stream === "stderr" ? "stderr" : line.stream === "smithers" ? "smithers" : "stdout");
    row.textContent = line.text;
    log.appendChild(row);
    scroll();
  });
  // The run's changes that name the state it is in now.
  const states = { "run.running": "running", "run.continued": "running", "run.resumed": "running",
    "run.waiting_approval": "waiting_approval", "run.succeeded": "succeeded", "run.failed": "failed",
    "run.cancelled": "cancelled", "run.timed_out": "timed_out" };
  source.addEventListener("change", (e) => {
    const change = JSON.parse(e.data);
    const now = states[change.action];
    if (state && change.resource_type === "run" && now) {
      state.textContent = now;
      state.className = "state " + now;
    }
    if (status) {
      status.textContent = "live: " + change.action;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    // The run is over: the page as the server renders it now (steps,
    // calls, approvals, the purge), once.
    window.location.reload();
  });
  source.addEventListener("error", () => {
    if (status && source.readyState === EventSource.CONNECTING) {
      status.textContent = "reconnecting…";
    }
  });
});
