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
  source.addEventListener("change", (e) => {
    const change = JSON.parse(e.data);
    if (state && change.resource_type === "run" && change.action.startsWith("run.")) {
      state.textContent = change.action.slice(4).replace("_", " ");
      state.className = "state " + change.action.slice(4);
    }
    if (status) {
      status.textContent = "live: " + change.action;
    }
  });
  source.addEventListener("end", () => {
    source.close();
    if (status) {
      status.textContent = "the run has ended";
    }
  });
  source.addEventListener("error", () => {
    if (status && source.readyState === EventSource.CONNECTING) {
      status.textContent = "reconnecting…";
    }
  });
});
