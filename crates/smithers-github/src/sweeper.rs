//! GitHub does not deliver a webhook again by itself (GitHub Docs,
//! "Handling failed webhook deliveries"): the sweeper lists the App's
//! recent deliveries (`GET /app/hook/deliveries`, newest first) and asks
//! again (`POST /app/hook/deliveries/{id}/attempts`) for each one that no
//! attempt delivered and that Smithers has not recorded. Asking twice is
//! harmless: a delivery is carried out once by its GUID.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde::Deserialize;
use smithers_app::App;

use crate::client::{Auth, Request};
use crate::{Error, Github};

/// The most attempts of one delivery after which the sweeper stops asking
/// (the receiver is refusing it for a reason of its own).
const MAX_ATTEMPTS: usize = 5;

/// The most pages of deliveries one sweep reads.
const MAX_PAGES: usize = 20;

/// One attempt, as GitHub lists it ("List deliveries for an app
/// webhook").
#[derive(Debug, Deserialize)]
struct Attempt {
    id: i64,
    guid: String,
    delivered_at: String,
    status_code: i64,
}

/// What a sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Attempts looked at.
    pub attempts: usize,
    /// The GUIDs asked for again.
    pub redelivered: Vec<String>,
}

pub(crate) struct Sweeper<'a> {
    pub app: &'a Arc<App>,
    pub github: &'a Github,
}

impl Sweeper<'_> {
    /// Looks at the deliveries attempted since `since` and asks again for
    /// those never delivered nor recorded.
    ///
    /// Errors: GitHub's, when the deliveries cannot be listed; the
    /// store's.
    pub(crate) async fn sweep(&self, since: SystemTime) -> Result<Swept, Error> {
        let mut by_guid: BTreeMap<String, Vec<Attempt>> = BTreeMap::new();
        let mut request = Request::new(Method::GET, "/app/hook/deliveries", &[], Auth::App)
            .query("per_page", "100");
        let mut swept = Swept::default();
        'pages: for _ in 0..MAX_PAGES {
            let answer = self.github.send(&request).await?;
            let page: Vec<Attempt> = serde_json::from_value(answer.body)
                .map_err(|e| Error::Malformed(format!("GitHub's deliveries: {e}")))?;
            for attempt in page {
                let at = humantime::parse_rfc3339_weak(&attempt.delivered_at)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                if at < since {
                    break 'pages;
                }
                swept.attempts += 1;
                by_guid
                    .entry(attempt.guid.clone())
                    .or_default()
                    .push(attempt);
            }
            match answer.next_query {
                Some(query) => {
                    request.query = query
                        .into_iter()
                        .filter_map(|(k, v)| match k.as_str() {
                            "per_page" => Some(("per_page", v)),
                            "cursor" => Some(("cursor", v)),
                            _ => None,
                        })
                        .collect();
                }
                None => break,
            }
        }
        let store = self.app.store().github();
        for (guid, attempts) in by_guid {
            let delivered = attempts.iter().any(|a| (200..300).contains(&a.status_code));
            if delivered || attempts.len() >= MAX_ATTEMPTS {
                continue;
            }
            if store.delivery(&guid).await?.is_some() {
                continue;
            }
            // The newest attempt (GitHub lists newest first).
            let Some(latest) = attempts.first() else {
                continue;
            };
            let id = latest.id.to_string();
            let again = Request::new(
                Method::POST,
                "/app/hook/deliveries/{delivery_id}/attempts",
                &[&id],
                Auth::App,
            );
            match self.github.send(&again).await {
                // An answer lost on the way is as good: asking again is
                // harmless, and the next sweep looks again.
                Ok(_) | Err(Error::Uncertain { .. }) => {
                    tracing::info!(%guid, "a failed webhook delivery was asked for again");
                    swept.redelivered.push(guid);
                }
                Err(e) => {
                    tracing::warn!(%guid, error = %e, "a failed webhook delivery could not be asked for again");
                }
            }
        }
        Ok(swept)
    }
}

/// How far back the first sweep after a start looks (GitHub keeps three
/// days of deliveries).
pub(crate) const FIRST_LOOKBACK: Duration = Duration::from_secs(3 * 24 * 3600);

/// How often the sweeper runs; each sweep looks back twice as far, so
/// that consecutive sweeps overlap.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
