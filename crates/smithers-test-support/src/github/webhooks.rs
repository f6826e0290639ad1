//! Webhooks the stand-in sends to the App, as GitHub Docs describe them
//! ("Webhook events and payloads", "Validating webhook deliveries",
//! REST API "Webhooks" of an App): payloads start from GitHub's recorded
//! examples (npm `@octokit/webhooks-examples`, named by
//! [`WEBHOOK_EXAMPLES_ENV`]) with the stand-in's own installation,
//! repository, sender and pull request put in; the headers GitHub sends
//! (`X-GitHub-Event`, `X-GitHub-Delivery`, `X-GitHub-Hook-ID`,
//! `X-GitHub-Hook-Installation-Target-Type: integration`,
//! `X-GitHub-Hook-Installation-Target-ID`, `X-Hub-Signature-256` over the
//! raw body, `User-Agent: GitHub-Hookshot/…`); every attempt kept as a
//! delivery the App can list (`GET /app/hook/deliveries`, paged by a
//! cursor in a `Link` header), read and redeliver
//! (`POST /app/hook/deliveries/{delivery_id}/attempts`, 202). A test can
//! make the network misbehave ([`Chaos`]).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::apps::installation_json;
use super::auth::{Principal, random_bytes};
use super::openapi;
use super::pulls::{self, pull_json};
use super::repos::{self, repository_json};
use super::server::{Answer, Call};
use super::state::{Account, Repo, State, simple_user, timestamp};
use super::{GithubApi, Shared};

/// The environment variable naming GitHub's recorded webhook examples
/// (npm `@octokit/webhooks-examples`, `api.github.com/index.json`);
/// `scripts/test` installs them (`ensure_octokit`) and sets it.
pub const WEBHOOK_EXAMPLES_ENV: &str = "SMITHERS_TEST_GITHUB_WEBHOOK_EXAMPLES";

/// How the way to the webhook URL misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Chaos {
    /// Every delivery is sent once, at once.
    #[default]
    None,
    /// GitHub tries and fails: the attempt is kept as a failed delivery
    /// (`status_code` 504, "timed out") and nothing is sent.
    Drop,
    /// Every delivery is sent twice (the same GUID and body).
    Duplicate,
    /// Deliveries are held until [`GithubApi::flush_late`].
    Late,
    /// Deliveries are held until `batch` of them are, then sent in an
    /// order shuffled by `seed` ([`GithubApi::flush_late`] sends a
    /// smaller batch).
    Reorder { batch: usize, seed: u64 },
}

/// One attempt at delivering a webhook.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repository_id: Option<u64>,
    pub delivered_at: SystemTime,
    pub redelivery: bool,
    /// Seconds.
    pub duration: f64,
    /// `OK`, `Invalid HTTP Response: 500`, `timed out`, …
    pub status: String,
    /// The receiver's status (504 when the attempt was dropped).
    pub status_code: u16,
    /// The raw body sent (what the signature covers).
    pub body: String,
    /// The headers sent.
    pub headers: Vec<(String, String)>,
}

/// A delivery to make.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    guid: String,
    event: String,
    action: Option<String>,
    installation: Option<u64>,
    repo: Option<u64>,
    body: String,
    redelivery: bool,
}

#[derive(Default)]
pub(crate) struct Hooks {
    url: Option<String>,
    secret: String,
    hook_id: u64,
    chaos: Chaos,
    deliveries: Vec<Delivery>,
    /// Redeliveries asked for through the API, sent after the answer.
    outbox: Vec<Attempt>,
    held: Vec<Attempt>,
    in_flight: usize,
}

static EXAMPLES: OnceLock<Result<Vec<Value>, String>> = OnceLock::new();

/// GitHub's recorded examples, read once per process.
fn examples() -> Result<&'static [Value], String> {
    EXAMPLES
        .get_or_init(|| {
            let path = std::env::var(WEBHOOK_EXAMPLES_ENV).map_err(|_| {
                format!(
                    "the GitHub stand-in needs {WEBHOOK_EXAMPLES_ENV}, the path of GitHub's webhook examples \
                     (npm @octokit/webhooks-examples, api.github.com/index.json); scripts/test installs them \
                     (ensure_octokit in scripts/lib.sh) and sets it — run scripts/test, or \
                     `. scripts/lib.sh; ensure_octokit` and export the variable it sets"
                )
            })?;
            let text =
                std::fs::read(&path).map_err(|e| format!("{WEBHOOK_EXAMPLES_ENV}={path}: {e}"))?;
            let all: Vec<Value> = serde_json::from_slice(&text)
                .map_err(|e| format!("{WEBHOOK_EXAMPLES_ENV}={path}: {e}"))?;
            Ok(all)
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// The first recorded example of `event` with `action` (any, without
/// one).
pub fn example(event: &str, action: Option<&str>) -> Result<Value, String> {
    let all = examples()?;
    let Some(e) = all.iter().find(|e| e["name"] == event) else {
        return Err(format!("GitHub records no {event} webhook"));
    };
    e["examples"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| action.is_none_or(|a| x["action"] == a))
        .cloned()
        .ok_or_else(|| format!("GitHub records no {event}.{action:?} webhook"))
}

/// `ours` put into the recorded `example`: where the example has the
/// member, only a value of the same kind (the payload keeps the shape
/// GitHub sends: a push's repository has times in seconds, say); members
/// the example lacks (it was recorded before GitHub added them) are
/// added.
fn overlay(example: &mut Value, ours: &Value) {
    let (Some(e), Some(o)) = (example.as_object_mut(), ours.as_object()) else {
        *example = ours.clone();
        return;
    };
    for (k, v) in e.iter_mut() {
        if let Some(mine) = o.get(k) {
            let same = std::mem::discriminant(v) == std::mem::discriminant(mine)
                || v.is_null()
                || mine.is_null();
            if same {
                *v = mine.clone();
            }
        }
    }
    for (k, mine) in o {
        if !e.contains_key(k) {
            e.insert(k.clone(), mine.clone());
        }
    }
}

/// `fill` merged into `value`: objects member by member, anything else
/// replaced.
fn merge(value: &mut Value, fill: &Value) {
    match (value.as_object_mut(), fill.as_object()) {
        (Some(v), Some(f)) => {
            for (k, x) in f {
                merge(v.entry(k.clone()).or_insert(Value::Null), x);
            }
        }
        _ => *value = fill.clone(),
    }
}

fn guid() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A payload of `event`/`action` about `repo` of `installation`, sent
/// by `sender`.
fn payload(
    state: &State,
    event: &str,
    action: Option<&str>,
    installation: Option<u64>,
    repo: Option<u64>,
    sender: Option<&Account>,
    fill: &Value,
) -> Result<Value, String> {
    let mut p = example(event, action)?;
    let Some(o) = p.as_object_mut() else {
        return Err(format!("the {event} example is not an object"));
    };
    if let Some(a) = action {
        o.insert("action".into(), json!(a));
    }
    let installation =
        installation.or_else(|| repo.and_then(|r| state.repos.get(&r)?.installation));
    if let Some(i) = installation.and_then(|i| state.installations.get(&i)) {
        o.insert(
            "installation".into(),
            json!({"id": i.id, "node_id": super::state::base64_id("023:IntegrationInstallation", i.id)}),
        );
    }
    if let Some(r) = repo.and_then(|r| state.repos.get(&r)) {
        let mut shown = o.get("repository").cloned().unwrap_or(json!({}));
        if shown.as_object().is_none_or(|m| m.is_empty()) {
            shown = repository_json(state, r);
        } else {
            overlay(&mut shown, &repository_json(state, r));
        }
        o.insert("repository".into(), shown);
    }
    let sender = sender.cloned().or_else(|| {
        installation
            .and_then(|i| state.installations.get(&i))
            .map(|i| i.account.clone())
    });
    if let Some(s) = sender {
        o.insert("sender".into(), simple_user(&s));
    }
    if !fill.is_null() {
        merge(&mut p, fill);
    }
    Ok(p)
}

/// Queues a delivery as the chaos mode has it; the attempts to send now.
fn admit(state: &mut State, a: Attempt) -> Vec<Attempt> {
    match state.hooks.chaos.clone() {
        Chaos::None => vec![a],
        Chaos::Drop => {
            record(
                state,
                &a,
                504,
                "timed out",
                Duration::from_secs(10),
                Vec::new(),
            );
            Vec::new()
        }
        Chaos::Duplicate => vec![a.clone(), a],
        Chaos::Late => {
            state.hooks.held.push(a);
            Vec::new()
        }
        Chaos::Reorder { batch, seed } => {
            state.hooks.held.push(a);
            if state.hooks.held.len() >= batch.max(1) {
                shuffled(std::mem::take(&mut state.hooks.held), seed)
            } else {
                Vec::new()
            }
        }
    }
}

/// `items` in an order picked by `seed` (xorshift; a seed of 0 reverses).
fn shuffled(mut items: Vec<Attempt>, seed: u64) -> Vec<Attempt> {
    if seed == 0 {
        items.reverse();
        return items;
    }
    let mut x = seed;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
    items
}

fn record(
    state: &mut State,
    a: &Attempt,
    status_code: u16,
    status: &str,
    duration: Duration,
    headers: Vec<(String, String)>,
) {
    let id = state.id();
    state.hooks.deliveries.push(Delivery {
        id,
        guid: a.guid.clone(),
        event: a.event.clone(),
        action: a.action.clone(),
        installation_id: a.installation,
        repository_id: a.repo,
        delivered_at: SystemTime::now(),
        redelivery: a.redelivery,
        duration: duration.as_secs_f64(),
        status: status.into(),
        status_code,
        body: a.body.clone(),
        headers,
    });
}

/// HMAC-SHA256 of `body` under `secret`, hex (`X-Hub-Signature-256`
/// without its `sha256=`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex(ring::hmac::sign(&key, body).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends one attempt and keeps it as a delivery.
async fn send(shared: &Arc<Shared>, a: Attempt) {
    let (url, secret, hook_id, app_id) = {
        let state = shared.lock();
        (
            state.hooks.url.clone(),
            state.hooks.secret.clone(),
            state.hooks.hook_id,
            state.app_id,
        )
    };
    let sha1 = {
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        hex(ring::hmac::sign(&key, a.body.as_bytes()).as_ref())
    };
    let headers: Vec<(String, String)> = vec![
        ("Accept".into(), "*/*".into()),
        ("Content-Type".into(), "application/json".into()),
        ("User-Agent".into(), "GitHub-Hookshot/5a1e6b4".into()),
        ("X-GitHub-Delivery".into(), a.guid.clone()),
        ("X-GitHub-Event".into(), a.event.clone()),
        ("X-GitHub-Hook-ID".into(), hook_id.to_string()),
        (
            "X-GitHub-Hook-Installation-Target-ID".into(),
            app_id.to_string(),
        ),
        (
            "X-GitHub-Hook-Installation-Target-Type".into(),
            "integration".into(),
        ),
        ("X-Hub-Signature".into(), format!("sha1={sha1}")),
        (
            "X-Hub-Signature-256".into(),
            format!("sha256={}", signature(&secret, a.body.as_bytes())),
        ),
    ];
    let started = Instant::now();
    let (code, status) = match url {
        None => (0, "no webhook URL is set".to_string()),
        Some(url) => {
            let mut request = shared
                .client
                .post(url)
                .timeout(Duration::from_secs(10))
                .body(a.body.clone());
            for (k, v) in &headers {
                request = request.header(k, v);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => (r.status().as_u16(), "OK".to_string()),
                Ok(r) => (
                    r.status().as_u16(),
                    format!("Invalid HTTP Response: {}", r.status().as_u16()),
                ),
                Err(e) if e.is_timeout() => (504, "timed out".to_string()),
                Err(_) => (503, "failed to connect to host".to_string()),
            }
        }
    };
    let mut state = shared.lock();
    record(&mut state, &a, code, &status, started.elapsed(), headers);
}

async fn send_all(shared: &Arc<Shared>, attempts: Vec<Attempt>) {
    for a in attempts {
        send(shared, a).await;
    }
}

/// Sends, in a task of its own, what the API's handlers queued
/// (redeliveries); [`GithubApi::settle`] waits for it.
pub(crate) fn drain(shared: Arc<Shared>) {
    let queued = {
        let mut state = shared.lock();
        let queued = std::mem::take(&mut state.hooks.outbox);
        if queued.is_empty() {
            return;
        }
        let mut admitted = Vec::new();
        for a in queued {
            admitted.extend(admit(&mut state, a));
        }
        state.hooks.in_flight += 1;
        admitted
    };
    tokio::spawn(async move {
        send_all(&shared, queued).await;
        shared.lock().hooks.in_flight -= 1;
    });
}

fn item_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": timestamp(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": null,
    })
}

fn app_only(call: &Call) -> Option<Answer> {
    match call.principal {
        Principal::App => None,
        Principal::Installation { .. } => {
            Some(Answer::error(403, "Resource not accessible by integration"))
        }
        Principal::Anonymous => Some(Answer::error(401, "A JSON web token could not be decoded")),
    }
}

/// `GET /app/hook/deliveries`: newest first, `per_page` of them from the
/// `cursor` on, the next page's cursor in a `Link` header.
pub(crate) fn list_deliveries(state: &mut State, call: &Call) -> Answer {
    if let Some(a) = app_only(call) {
        return a;
    }
    let (per_page, _) = call.page();
    let from = call
        .query("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let wanted = call.query("status");
    let matching: Vec<&Delivery> = state
        .hooks
        .deliveries
        .iter()
        .rev()
        .filter(|d| d.id <= from)
        .filter(|d| match wanted {
            Some("success") => (200..400).contains(&d.status_code),
            Some("failure") => (400..600).contains(&d.status_code),
            _ => true,
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .take(per_page)
        .map(|d| item_json(d))
        .collect();
    let mut answer = Answer::json(200, Value::Array(page));
    if let Some(next) = matching.get(per_page) {
        let mut link = format!(
            "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}",
            state.base, next.id
        );
        if let Some(s) = wanted {
            link.push_str(&format!("&status={s}"));
        }
        link.push_str(">; rel=\"next\"");
        answer = answer.header("link", link);
    }
    answer
}

/// `GET /app/hook/deliveries/{delivery_id}`: one attempt with what was
/// sent.
pub(crate) fn get_delivery(state: &mut State, call: &Call) -> Answer {
    if let Some(a) = app_only(call) {
        return a;
    }
    let id: u64 = call.param("delivery_id").parse().unwrap_or(0);
    let Some(d) = state.hooks.deliveries.iter().find(|d| d.id == id) else {
        return Answer::not_found();
    };
    let mut v = item_json(d);
    let headers: serde_json::Map<String, Value> = d
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    v["url"] = json!(state.hooks.url.clone().unwrap_or_default());
    v["request"] = json!({
        "headers": headers,
        "payload": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    });
    v["response"] = json!({"headers": {}, "payload": null});
    Answer::json(200, v)
}

/// `POST /app/hook/deliveries/{delivery_id}/attempts`: the same body and
/// GUID again, as a redelivery, after the 202.
pub(crate) fn redeliver(state: &mut State, call: &Call) -> Answer {
    if let Some(a) = app_only(call) {
        return a;
    }
    let id: u64 = call.param("delivery_id").parse().unwrap_or(0);
    let Some(d) = state.hooks.deliveries.iter().find(|d| d.id == id) else {
        return Answer::not_found();
    };
    let again = Attempt {
        guid: d.guid.clone(),
        event: d.event.clone(),
        action: d.action.clone(),
        installation: d.installation_id,
        repo: d.repository_id,
        body: d.body.clone(),
        redelivery: true,
    };
    state.hooks.outbox.push(again);
    Answer::json(202, json!({}))
}

impl GithubApi {
    /// Where webhooks go and the secret they are signed with.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        let mut state = self.state();
        let hook_id = state.id();
        state.hooks.url = Some(url.into());
        state.hooks.secret = secret.into();
        state.hooks.hook_id = hook_id;
    }

    /// How deliveries misbehave from now on.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.state().hooks.chaos = chaos;
    }

    /// Every attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().hooks.deliveries.clone()
    }

    /// Sends the held deliveries ([`Chaos::Late`], a partial
    /// [`Chaos::Reorder`] batch), in order or shuffled as the mode says.
    pub async fn flush_late(&self) {
        let held = {
            let mut state = self.state();
            let held = std::mem::take(&mut state.hooks.held);
            match state.hooks.chaos {
                Chaos::Reorder { seed, .. } => shuffled(held, seed),
                _ => held,
            }
        };
        send_all(&self.shared, held).await;
    }

    /// Waits (up to ten seconds) until the redeliveries asked for
    /// through the API are sent.
    pub async fn settle(&self) {
        for _ in 0..1000 {
            {
                let state = self.state();
                if state.hooks.in_flight == 0 && state.hooks.outbox.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends a webhook of `event` (`pull_request`, `push`, …) with
    /// `action`, built from GitHub's first recorded example of them, with
    /// the repository `repo` (and its installation and owner as sender)
    /// put in, then `fill` merged over it (objects member by member);
    /// returns once it was sent (or held, or dropped). Its GUID.
    /// Panics when GitHub records no such webhook.
    pub async fn deliver(
        &self,
        event: &str,
        action: Option<&str>,
        repo: Option<u64>,
        fill: Value,
    ) -> String {
        self.send_event(event, action, None, repo, None, &fill)
            .await
    }

    async fn send_event(
        &self,
        event: &str,
        action: Option<&str>,
        installation: Option<u64>,
        repo: Option<u64>,
        sender: Option<Account>,
        fill: &Value,
    ) -> String {
        let attempts = {
            let mut state = self.state();
            let body = match payload(
                &state,
                event,
                action,
                installation,
                repo,
                sender.as_ref(),
                fill,
            ) {
                Ok(p) => p.to_string(),
                Err(e) => panic!("{e}"),
            };
            let body_json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            for w in openapi::description().check_webhook(event, action, &body_json) {
                state.violations.push(format!("webhook sent: {w}"));
            }
            let attempt = Attempt {
                guid: guid(),
                event: event.into(),
                action: action.map(String::from),
                installation: body_json["installation"]["id"].as_u64(),
                repo: body_json["repository"]["id"].as_u64(),
                body,
                redelivery: false,
            };
            let guid = attempt.guid.clone();
            (guid, admit(&mut state, attempt))
        };
        send_all(&self.shared, attempts.1).await;
        attempts.0
    }

    /// Opens a pull request of `head_branch` into `base_branch` and sends
    /// `pull_request.opened`; its number. The head branch must exist in
    /// the repository (made with [`GithubApi::commit`]); `from_fork`
    /// moves it to a fork owned by `outside-contributor` (not in any
    /// installation) first, as a contributor's pull request is. Panics
    /// when GitHub would refuse the pull request.
    pub async fn open_pull_request(
        &self,
        repo: u64,
        head_branch: &str,
        base_branch: &str,
        from_fork: bool,
    ) -> u64 {
        let (number, author) = {
            let mut state = self.state();
            let author = if from_fork {
                state.account("outside-contributor")
            } else {
                state.account("octocat")
            };
            let head = if from_fork {
                match repos::fork(&mut state, repo, &author, head_branch) {
                    Ok(()) => format!("{}:{head_branch}", author.login),
                    Err(e) => panic!("the GitHub stand-in could not fork: {e}"),
                }
            } else {
                head_branch.to_string()
            };
            let opened = pulls::open(
                &mut state,
                repo,
                &head,
                base_branch,
                &format!("Change {head_branch}"),
                None,
                false,
                author.clone(),
            );
            match opened {
                Ok(n) => (n, author),
                Err(a) => panic!(
                    "GitHub would refuse this pull request: {}",
                    a.body.unwrap_or_default()
                ),
            }
        };
        self.pull_event(repo, number, "opened", author, json!({}))
            .await;
        number
    }

    /// Commits `files` on a pull request's head branch (in its fork, if
    /// it comes from one) and sends `pull_request.synchronize` with
    /// `before` and `after`; the new head sha.
    pub async fn push_to_pull_request(
        &self,
        repo: u64,
        number: u64,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let (head_repo, head_ref, author) = {
            let state = self.state();
            let Some(p) = state
                .pulls
                .iter()
                .find(|p| p.repo == repo && p.number == number)
            else {
                panic!("no pull request {number} on repository {repo}");
            };
            (p.head_repo, p.head_ref.clone(), p.author.clone())
        };
        let before = self.branch_sha(head_repo, &head_ref).unwrap_or_default();
        let after = self.commit(head_repo, &head_ref, files, message);
        {
            let mut state = self.state();
            if let Some(dir) = state.repos.get(&repo).map(|r| r.dir.clone())
                && let Some(head_dir) = state.repos.get(&head_repo).map(|r| r.dir.clone())
            {
                let _ = repos::git(
                    &dir,
                    &[
                        "fetch",
                        "-q",
                        &head_dir.to_string_lossy(),
                        &format!("+{after}:refs/pull/{number}/head"),
                    ],
                );
            }
            if let Some(p) = state
                .pulls
                .iter_mut()
                .find(|p| p.repo == repo && p.number == number)
            {
                p.head_sha = after.clone();
                p.updated_at = SystemTime::now();
            }
        }
        self.pull_event(
            repo,
            number,
            "synchronize",
            author,
            json!({"before": before, "after": after}),
        )
        .await;
        after
    }

    /// Sends `pull_request.{action}` about pull request `number`, with
    /// `fill` merged over it; its GUID.
    pub async fn pull_event(
        &self,
        repo: u64,
        number: u64,
        action: &str,
        sender: Account,
        fill: Value,
    ) -> String {
        let pr = {
            let state = self.state();
            state
                .pulls
                .iter()
                .find(|p| p.repo == repo && p.number == number)
                .map(|p| pull_json(&state, p))
                .unwrap_or(Value::Null)
        };
        let mut recorded = example("pull_request", Some(action))
            .map(|e| e["pull_request"].clone())
            .unwrap_or(Value::Null);
        overlay(&mut recorded, &pr);
        let mut fill_all = json!({"number": number, "pull_request": recorded});
        merge(&mut fill_all, &fill);
        // The pull request replaces the example's whole, not member by
        // member under it (its head and base are the stand-in's).
        self.send_event(
            "pull_request",
            Some(action),
            None,
            Some(repo),
            Some(sender),
            &fill_all,
        )
        .await
    }

    /// Sends `installation.created` for an installation, listing its
    /// repositories; its GUID.
    pub async fn installation_created(&self, installation: u64) -> String {
        let fill = {
            let state = self.state();
            let Some(i) = state.installations.get(&installation) else {
                panic!("no installation {installation}");
            };
            let repos: Vec<Value> = state
                .repos
                .values()
                .filter(|r| r.installation == Some(installation))
                .map(short_repo)
                .collect();
            json!({
                "installation": installation_json(&state, i),
                "repositories": repos,
                "requester": null,
            })
        };
        self.send_event_replacing("installation", "created", installation, fill)
            .await
    }

    /// Adds repositories to an installation (made with
    /// [`GithubApi::add_repository`] on another, or none) and sends
    /// `installation_repositories.added`; its GUID.
    pub async fn installation_repositories_added(
        &self,
        installation: u64,
        repos: &[u64],
    ) -> String {
        self.installation_repositories(installation, repos, true)
            .await
    }

    /// Takes repositories from an installation (its tokens no longer
    /// reach them) and sends `installation_repositories.removed`; its
    /// GUID.
    pub async fn installation_repositories_removed(
        &self,
        installation: u64,
        repos: &[u64],
    ) -> String {
        self.installation_repositories(installation, repos, false)
            .await
    }

    async fn installation_repositories(
        &self,
        installation: u64,
        repos: &[u64],
        added: bool,
    ) -> String {
        let fill = {
            let mut state = self.state();
            let mut listed = Vec::new();
            for id in repos {
                if let Some(r) = state.repos.get_mut(id) {
                    r.installation = if added { Some(installation) } else { None };
                    listed.push(short_repo(r));
                }
            }
            let Some(i) = state.installations.get(&installation) else {
                panic!("no installation {installation}");
            };
            let (a, r) = if added {
                (listed, Vec::new())
            } else {
                (Vec::new(), listed)
            };
            json!({
                "installation": installation_json(&state, i),
                "repository_selection": "selected",
                "repositories_added": a,
                "repositories_removed": r,
                "requester": null,
            })
        };
        let action = if added { "added" } else { "removed" };
        // The lists replace the example's, not merge into them.
        self.send_event_replacing("installation_repositories", action, installation, fill)
            .await
    }

    async fn send_event_replacing(
        &self,
        event: &str,
        action: &str,
        installation: u64,
        fill: Value,
    ) -> String {
        let attempts = {
            let mut state = self.state();
            let mut p = match payload(
                &state,
                event,
                Some(action),
                Some(installation),
                None,
                None,
                &Value::Null,
            ) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            if let (Some(o), Some(f)) = (p.as_object_mut(), fill.as_object()) {
                for (k, v) in f {
                    o.insert(k.clone(), v.clone());
                }
            }
            for w in openapi::description().check_webhook(event, Some(action), &p) {
                state.violations.push(format!("webhook sent: {w}"));
            }
            let attempt = Attempt {
                guid: guid(),
                event: event.into(),
                action: Some(action.into()),
                installation: Some(installation),
                repo: None,
                body: p.to_string(),
                redelivery: false,
            };
            let g = attempt.guid.clone();
            (g, admit(&mut state, attempt))
        };
        send_all(&self.shared, attempts.1).await;
        attempts.0
    }
}

/// A repository as installation webhooks list one.
fn short_repo(r: &Repo) -> Value {
    json!({
        "id": r.id,
        "node_id": super::state::base64_id("010:Repository", r.id),
        "name": r.name,
        "full_name": r.full_name(),
        "private": r.private,
    })
}
