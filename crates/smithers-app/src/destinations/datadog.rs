//! Datadog's Logs intake API v2 (`POST /api/v2/logs`,
//! <https://docs.datadoghq.com/api/latest/logs/#send-logs>): each audit
//! event is one log entry whose `message` is the sealed event as JSON (its
//! sequence number, hashes and all), sent gzipped in requests of at most
//! 1,000 entries and 5 MB before compression. A 413 halves the request;
//! 408, 429 and 5xx are tried again later; 400, 401 and 403 stop the
//! destination until someone acts (a wrong key stays wrong).

use std::io::Write as _;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use smithers_audit::SealedEvent;
use zeroize::Zeroizing;

use super::DeliveryError;

/// Entries in one request, at most (the intake's limit).
pub const MAX_ENTRIES: usize = 1000;
/// Bytes of one request before compression, at most (the intake's limit).
pub const MAX_PAYLOAD: usize = 5 * 1024 * 1024;
/// How old an entry's timestamp may be: the intake drops older ones.
pub const MAX_AGE: Duration = Duration::from_secs(18 * 3600);

/// The sites Datadog runs, each with its own intake.
pub const SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
];

/// The intake URL of `site` (one of [`SITES`]).
pub fn intake_url(site: &str) -> String {
    format!("https://http-intake.logs.{site}/api/v2/logs")
}

/// A client of one intake with one API key.
pub struct Datadog {
    http: reqwest::Client,
    url: String,
    api_key: Zeroizing<String>,
    hostname: String,
}

enum Post {
    Accepted,
    TooLarge,
    Failed(DeliveryError),
}

impl Datadog {
    /// A client of the intake at `url` (the site's, or a proxy's).
    pub fn new(url: &str, api_key: Zeroizing<String>) -> Datadog {
        let hostname = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "smithers".to_string());
        Datadog {
            // No redirects: the API key goes to the intake and nowhere
            // it might send us on to.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            url: url.to_string(),
            api_key,
            hostname,
        }
    }

    /// The log entry of one event.
    pub fn entry(&self, event: &SealedEvent) -> String {
        let e = &event.event;
        json!({
            "ddsource": "smithers",
            "service": "smithers-audit",
            "hostname": self.hostname,
            "ddtags": format!(
                "organization:{},action:{},actor_type:{}",
                e.organization_id,
                e.action,
                e.actor_type.as_str()
            ),
            "message": serde_json::to_string(event).unwrap_or_default(),
            // The reserved attribute Datadog takes the entry's time from
            // (the API's extra attributes are strings).
            "date": date(e.timestamp),
        })
        .to_string()
    }

    /// Sends `entries` (from [`Datadog::entry`]), in order, in as many
    /// requests as the limits take, halving a request the intake finds too
    /// large. Either every entry was accepted, or the error says why not
    /// (entries before it may have been: delivery is at least once).
    pub async fn send(&self, entries: &[String]) -> Result<(), DeliveryError> {
        let mut pending: Vec<&[String]> = chunks(entries).into_iter().rev().collect();
        while let Some(batch) = pending.pop() {
            match self.post(batch).await {
                Post::Accepted => {}
                Post::TooLarge if batch.len() > 1 => {
                    let (left, right) = batch.split_at(batch.len() / 2);
                    pending.push(right);
                    pending.push(left);
                }
                Post::TooLarge => {
                    return Err(DeliveryError::Stop(
                        "Datadog refused one event as too large (413)".into(),
                    ));
                }
                Post::Failed(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn post(&self, batch: &[String]) -> Post {
        let mut body = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, entry) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(entry.as_bytes());
        }
        body.push(b']');
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        let compressed = match gz.write_all(&body).and_then(|()| gz.finish()) {
            Ok(bytes) => bytes,
            Err(e) => return Post::Failed(DeliveryError::Retry(format!("gzip: {e}"))),
        };
        let sent = self
            .http
            .post(&self.url)
            .header("DD-API-KEY", self.api_key.as_str())
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(compressed)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Post::Failed(DeliveryError::Retry(format!(
                    "Datadog's intake cannot be reached: {}",
                    without_url(&e)
                )));
            }
        };
        let status = response.status().as_u16();
        let said = response.text().await.unwrap_or_default();
        let said: String = said.chars().take(300).collect();
        match status {
            200..=299 => Post::Accepted,
            413 => Post::TooLarge,
            408 | 429 | 500..=599 => Post::Failed(DeliveryError::Retry(format!(
                "Datadog answered {status}: {said}"
            ))),
            _ => Post::Failed(DeliveryError::Stop(format!(
                "Datadog answered {status}{}: {said}",
                match status {
                    401 | 403 => " (check the API key's secret and the site)",
                    _ => "",
                }
            ))),
        }
    }
}

/// RFC 3339 with milliseconds, UTC, of `micros` since the epoch.
fn date(micros: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// `entries` in runs of at most [`MAX_ENTRIES`] and [`MAX_PAYLOAD`] bytes
/// (with the brackets and commas).
fn chunks(entries: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 2;
    for (i, entry) in entries.iter().enumerate() {
        let grows = entry.len() + 1;
        if i > start && (i - start == MAX_ENTRIES || size + grows > MAX_PAYLOAD) {
            out.push(&entries[start..i]);
            start = i;
            size = 2;
        }
        size += grows;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// A request error without the URL reqwest puts in it.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the intake");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_hold_at_most_a_thousand_entries_and_five_megabytes() {
        let small: Vec<String> = (0..2500).map(|i| format!("{{\"i\":{i}}}")).collect();
        let sizes: Vec<usize> = chunks(&small).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        let big: Vec<String> = (0..12).map(|_| "x".repeat(1024 * 1024)).collect();
        let runs = chunks(&big);
        assert!(
            runs.iter()
                .all(|c| c.iter().map(|e| e.len() + 1).sum::<usize>() + 2 <= MAX_PAYLOAD)
        );
        assert_eq!(runs.iter().map(|c| c.len()).sum::<usize>(), 12);
        assert_eq!(runs[0].len(), 4);
        assert!(chunks(&[]).is_empty());
    }
}
