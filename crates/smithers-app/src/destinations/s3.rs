//! An S3 bucket as an audit destination (AWS S3 or any S3-compatible
//! server, through AWS's SDK). The bucket must have Object Lock in
//! compliance mode — checked when the destination is added and whenever
//! delivery starts — so that nobody, the account's root included, can
//! delete or overwrite what was written before its retention ends.
//!
//! Layout under the destination's prefix:
//! - `org/<id>/<yyyy>/<mm>/<dd>/<first-seq>-<last-seq>.jsonl.gz`: events,
//!   one JSON line each — the sealed event (`seq`, `event`, `prev_hash`,
//!   `hash`), its `leaf` and its inclusion `proof` in the first signed
//!   checkpoint covering it. Only events a checkpoint covers are written,
//!   and a batch ends on a checkpoint.
//! - `org/<id>/checkpoints/<tree-size>.json`: the signed checkpoints.
//! - `org/<id>/prune-bases/<tree-size>.json`: the prune base the bucket's
//!   history starts from, when the log was pruned before it.
//!
//! Every object is written with a SHA-256 checksum the server checks, and,
//! when the organization has a retention, locked until its newest event is
//! that old.

use std::io::{Read as _, Write as _};
use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockEnabled, ObjectLockMode, ObjectLockRetentionMode,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use smithers_audit::merkle::MerkleTree;
use smithers_audit::{Checkpoint, SealedEvent};

use super::DeliveryError;

/// Where a destination writes.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Prepended to every key (`""`, or ending in `/`).
    pub prefix: String,
    pub region: String,
    /// An S3-compatible server instead of AWS (path-style addressing).
    pub endpoint: Option<String>,
}

/// An inclusion proof as a line carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProof {
    pub tree_size: u64,
    pub leaf_index: u64,
    /// Hex hashes, RFC 9162 section 2.1.3's audit path.
    pub inclusion: Vec<String>,
}

/// One line of an events object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(flatten)]
    pub sealed: SealedEvent,
    /// The event's leaf hash (hex).
    pub leaf: String,
    pub proof: LineProof,
}

/// A client of one bucket.
pub struct S3 {
    client: aws_sdk_s3::Client,
    settings: S3Settings,
}

/// What an S3 call's failure means for delivery.
fn classify<E: ProvideErrorMetadata, R>(what: &str, e: SdkError<E, R>) -> DeliveryError
where
    SdkError<E, R>: std::error::Error,
{
    match &e {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            let message = service.err().message().unwrap_or_default();
            let said = format!("{what}: {code} {message}");
            match code {
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    DeliveryError::Retry(said)
                }
                _ => DeliveryError::Stop(said),
            }
        }
        SdkError::ConstructionFailure(_) => DeliveryError::Stop(format!("{what}: {e}")),
        _ => DeliveryError::Retry(format!(
            "{what}: {}",
            std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string())
        )),
    }
}

impl S3 {
    /// A client of the bucket with static credentials.
    pub fn new(settings: S3Settings, access_key_id: &str, secret_access_key: &str) -> S3 {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .http_client(http)
            .region(Region::new(settings.region.clone()))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "smithers-secret",
            ));
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        S3 {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            settings,
        }
    }

    /// The bucket's Object Lock is enabled with a default retention in
    /// compliance mode.
    ///
    /// Errors: `Stop`, saying what is missing (or why the bucket cannot be
    /// read); `Retry` when the server cannot be reached.
    pub async fn check_object_lock(&self) -> Result<(), DeliveryError> {
        let bucket = &self.settings.bucket;
        let answer = self
            .client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                classify(
                    &format!("reading the Object Lock configuration of bucket {bucket}"),
                    e,
                )
            })?;
        let refused = |why: &str| {
            DeliveryError::Stop(format!(
                "bucket {bucket} {why}: the audit log is written only to a bucket whose Object \
                 Lock is in compliance mode (create it with Object Lock, then set a default \
                 retention in COMPLIANCE mode)"
            ))
        };
        let config = answer
            .object_lock_configuration()
            .ok_or_else(|| refused("has no Object Lock configuration"))?;
        if config.object_lock_enabled() != Some(&ObjectLockEnabled::Enabled) {
            return Err(refused("does not have Object Lock enabled"));
        }
        match config
            .rule()
            .and_then(|r| r.default_retention())
            .and_then(|d| d.mode())
        {
            Some(ObjectLockRetentionMode::Compliance) => Ok(()),
            Some(other) => Err(refused(&format!(
                "locks objects in {} mode, which an account with the permission can lift",
                other.as_str()
            ))),
            None => Err(refused("has no default retention")),
        }
    }

    /// The key of `name` under the organization's directory.
    pub fn key(&self, organization: &str, name: &str) -> String {
        format!("{}org/{organization}/{name}", self.settings.prefix)
    }

    /// The key of an events object: `org/<id>/<yyyy>/<mm>/<dd>/<first>-<last>.jsonl.gz`,
    /// dated by its first event (UTC).
    pub fn events_key(&self, organization: &str, first: &SealedEvent, last: u64) -> String {
        let time =
            UNIX_EPOCH + Duration::from_micros(u64::try_from(first.event.timestamp).unwrap_or(0));
        let date = humantime::format_rfc3339_seconds(time).to_string();
        let (y, m, d) = (&date[0..4], &date[5..7], &date[8..10]);
        self.key(
            organization,
            &format!("{y}/{m}/{d}/{}-{last}.jsonl.gz", first.seq),
        )
    }

    /// Writes `body` at `key` with a SHA-256 checksum, locked in compliance
    /// mode until `retain_until` (microseconds) when given, else as the
    /// bucket's default retention says.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        retain_until: Option<i64>,
    ) -> Result<(), DeliveryError> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(until) = retain_until {
            put = put
                .object_lock_mode(ObjectLockMode::Compliance)
                .object_lock_retain_until_date(DateTime::from_millis(until / 1000));
        }
        put.send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("writing {key}"), e))
    }

    /// Every key under `prefix` (the destination's own prefix is added).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, DeliveryError> {
        let full = format!("{}{prefix}", self.settings.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(&format!("listing {full}"), e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }

    /// The keys under `prefix` (the destination's own prefix is added)
    /// whose newest version is a delete marker: objects someone hid.
    pub async fn delete_markers(&self, prefix: &str) -> Result<Vec<String>, DeliveryError> {
        let full = format!("{}{prefix}", self.settings.prefix);
        let mut markers = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.settings.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| classify(&format!("listing the versions under {full}"), e))?;
            markers.extend(
                page.delete_markers()
                    .iter()
                    .filter_map(|m| m.key().map(str::to_string)),
            );
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        markers.sort();
        markers.dedup();
        Ok(markers)
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, DeliveryError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(&format!("reading {key}"), e))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| DeliveryError::Retry(format!("reading {key}: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }
}

/// The lines of `events`, each with its proof in the first of
/// `checkpoints` covering it, from `tree` (which holds every leaf up to
/// the last of them), gzipped.
pub fn events_object(
    events: &[SealedEvent],
    checkpoints: &[Checkpoint],
    tree: &MerkleTree,
) -> Result<Vec<u8>, DeliveryError> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for sealed in events {
        let checkpoint = checkpoints
            .iter()
            .find(|c| c.tree_size >= sealed.seq)
            .ok_or_else(|| {
                DeliveryError::Retry(format!("no checkpoint covers event {}", sealed.seq))
            })?;
        let index = usize::try_from(sealed.seq - 1).unwrap_or(usize::MAX);
        let size = usize::try_from(checkpoint.tree_size).unwrap_or(usize::MAX);
        let path = tree.proof(index, size).ok_or_else(|| {
            DeliveryError::Retry(format!(
                "no inclusion proof of event {} in the tree of {}",
                sealed.seq, checkpoint.tree_size
            ))
        })?;
        let line = Line {
            sealed: sealed.clone(),
            leaf: hex::encode(sealed.leaf()),
            proof: LineProof {
                tree_size: checkpoint.tree_size,
                leaf_index: sealed.seq - 1,
                inclusion: path.iter().map(hex::encode).collect(),
            },
        };
        let text = serde_json::to_string(&line)
            .map_err(|e| DeliveryError::Stop(format!("an event does not encode: {e}")))?;
        gz.write_all(text.as_bytes())
            .and_then(|()| gz.write_all(b"\n"))
            .map_err(|e| DeliveryError::Retry(format!("gzip: {e}")))?;
    }
    gz.finish()
        .map_err(|e| DeliveryError::Retry(format!("gzip: {e}")))
}

/// The lines of an events object as written by [`events_object`].
///
/// Errors: a message naming what does not read.
pub fn read_events_object(body: &[u8]) -> Result<Vec<Line>, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .map_err(|e| format!("not gzipped JSON lines: {e}"))?;
    text.lines()
        .enumerate()
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// A checkpoint or prune base as an object.
pub fn json_object<T: Serialize>(value: &T) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| DeliveryError::Stop(format!("does not encode: {e}")))
}
