//! `audit verify --from-s3`: the log verified from an S3 destination's
//! bucket alone — its events objects, checkpoints and prune base — with
//! the verifier `audit verify` uses, naming the object at fault.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use smithers_api::{Error, S3Verification};
use smithers_audit::merkle::verify_inclusion;
use smithers_audit::{Checkpoint, LogVerifier, PruneBase, SealedEvent};

use super::DeliveryError;
use super::s3::{S3, read_events_object};

fn unavailable(e: DeliveryError) -> Error {
    match e {
        DeliveryError::Retry(why) | DeliveryError::Stop(why) => Error::unavailable(why),
    }
}

/// What the bucket holds of an organization.
struct Bucket {
    checkpoints: Vec<Checkpoint>,
    bases: Vec<PruneBase>,
    /// (first, last, key) of each events object, in order.
    objects: Vec<(u64, u64, String)>,
}

fn number(text: &str) -> Option<u64> {
    text.parse().ok()
}

async fn inventory(client: &S3, org: &str) -> Result<(Bucket, Vec<(String, String)>), Error> {
    let root = client.key(org, "");
    let keys = client
        .list(&format!("org/{org}/"))
        .await
        .map_err(unavailable)?;
    let mut bucket = Bucket {
        checkpoints: Vec::new(),
        bases: Vec::new(),
        objects: Vec::new(),
    };
    let mut unreadable = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(&root) else {
            continue;
        };
        if let Some(name) = rest.strip_prefix("checkpoints/") {
            let body = client.get(&key).await.map_err(unavailable)?;
            match serde_json::from_slice::<Checkpoint>(&body) {
                Ok(c) if name == format!("{}.json", c.tree_size) => bucket.checkpoints.push(c),
                Ok(_) => {
                    unreadable.push((key.clone(), "its name is not its tree size".to_string()))
                }
                Err(e) => unreadable.push((key.clone(), format!("not a checkpoint: {e}"))),
            }
        } else if rest.starts_with("prune-bases/") {
            let body = client.get(&key).await.map_err(unavailable)?;
            match serde_json::from_slice::<PruneBase>(&body) {
                Ok(b) => bucket.bases.push(b),
                Err(e) => unreadable.push((key.clone(), format!("not a prune base: {e}"))),
            }
        } else if let Some(name) = rest
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".jsonl.gz"))
        {
            let range = name
                .split_once('-')
                .and_then(|(a, b)| Some((number(a)?, number(b)?)));
            match range {
                Some((first, last)) if first <= last => {
                    bucket.objects.push((first, last, key.clone()))
                }
                _ => unreadable.push((key.clone(), "its name is not FIRST-LAST.jsonl.gz".into())),
            }
        }
    }
    bucket.checkpoints.sort_by_key(|c| c.tree_size);
    bucket.objects.sort();
    Ok((bucket, unreadable))
}

/// Verifies organization `org`'s log in `client`'s bucket, which was
/// delivered everything up to `delivered` (the bucket must hold it all).
pub async fn verify(
    client: &S3,
    org: &str,
    destination: &str,
    delivered: u64,
    trusted: &[VerifyingKey],
) -> Result<S3Verification, Error> {
    let (bucket, unreadable) = inventory(client, org).await?;
    // Object Lock keeps every version, but a delete marker hides one from
    // a plain listing: a hidden object is as good as a removed one.
    let hidden = client
        .delete_markers(&format!("org/{org}/"))
        .await
        .map_err(unavailable)?;
    let mut report = S3Verification {
        destination: destination.to_string(),
        intact: false,
        objects: bucket.objects.len() as u64,
        first_seq: None,
        last_seq: None,
        pruned: None,
        checkpoints: 0,
        seq: None,
        problem: None,
        object: None,
    };
    let fail = |mut report: S3Verification, seq: u64, problem: String, object: Option<String>| {
        report.seq = Some(seq);
        report.problem = Some(problem);
        report.object = object;
        Ok(report)
    };
    if let Some(key) = hidden.into_iter().next() {
        return fail(
            report,
            0,
            "a delete marker hides this object (its locked versions are still in the bucket)"
                .into(),
            Some(key),
        );
    }
    if let Some((key, why)) = unreadable.into_iter().next() {
        return fail(report, 0, why, Some(key));
    }
    // Every event once; a copy written again (delivery is at least once)
    // must be the same event.
    let mut events: BTreeMap<u64, (SealedEvent, String)> = BTreeMap::new();
    for (first, last, key) in &bucket.objects {
        let body = client.get(key).await.map_err(unavailable)?;
        let lines = match read_events_object(&body) {
            Ok(lines) => lines,
            Err(why) => return fail(report, *first, why, Some(key.clone())),
        };
        if lines.first().map(|l| l.sealed.seq) != Some(*first)
            || lines.last().map(|l| l.sealed.seq) != Some(*last)
        {
            return fail(
                report,
                *first,
                "its events are not the range its name says".into(),
                Some(key.clone()),
            );
        }
        for line in lines {
            let seq = line.sealed.seq;
            let leaf = line.sealed.leaf();
            let checkpoint = bucket
                .checkpoints
                .iter()
                .find(|c| c.tree_size == line.proof.tree_size);
            let path: Option<Vec<[u8; 32]>> = line
                .proof
                .inclusion
                .iter()
                .map(|h| {
                    let mut b = [0u8; 32];
                    hex::decode_to_slice(h, &mut b).ok().map(|()| b)
                })
                .collect();
            let included = match (checkpoint, path) {
                (Some(c), Some(path)) => {
                    line.proof.leaf_index == seq - 1
                        && verify_inclusion(&leaf, seq - 1, c.tree_size, &path, &c.root)
                }
                _ => false,
            };
            if !included || line.leaf != hex::encode(leaf) {
                return fail(
                    report,
                    seq,
                    "its inclusion proof does not reach a signed checkpoint's root".into(),
                    Some(key.clone()),
                );
            }
            match events.get(&seq) {
                Some((kept, _)) if kept != &line.sealed => {
                    return fail(
                        report,
                        seq,
                        "two objects hold different events under this sequence number".into(),
                        Some(key.clone()),
                    );
                }
                Some(_) => {}
                None => {
                    events.insert(seq, (line.sealed, key.clone()));
                }
            }
        }
    }
    let Some(first) = events.keys().next().copied() else {
        if delivered > 0 || !bucket.checkpoints.is_empty() {
            return fail(
                report,
                1,
                format!("the bucket holds no events, but {delivered} were delivered to it"),
                None,
            );
        }
        report.intact = true;
        return Ok(report);
    };
    report.first_seq = Some(first);
    report.last_seq = events.keys().next_back().copied();
    if report.last_seq < Some(delivered) {
        let missing = report.last_seq.unwrap_or(0) + 1;
        return fail(
            report,
            missing,
            format!("the bucket's events end before {delivered}, the last one delivered to it"),
            None,
        );
    }
    // The bucket's history starts at event 1, or right after the oldest
    // prune base it holds (where the destination started): events between
    // that base and the first one present are missing, not pruned.
    let oldest = bucket.bases.iter().min_by_key(|b| b.checkpoint.tree_size);
    let verifier = match oldest {
        _ if first == 1 => LogVerifier::new(org, &bucket.checkpoints, trusted),
        Some(base) if base.checkpoint.tree_size + 1 == first => {
            report.pruned = Some(base.checkpoint.tree_size);
            LogVerifier::from_base(org, base, &bucket.checkpoints, trusted)
        }
        _ => {
            let why = match oldest {
                Some(b) => format!(
                    "the bucket's events start at {first}, but its history starts after event {}",
                    b.checkpoint.tree_size
                ),
                None => format!(
                    "the bucket's events start at {first}, and it holds no prune base for the events before it"
                ),
            };
            return fail(report, first, why, None);
        }
    };
    let mut verifier = match verifier {
        Ok(v) => v,
        Err(f) => return fail(report, f.seq, f.problem.to_string(), None),
    };
    for (sealed, key) in events.values() {
        if let Err(f) = verifier.push(sealed) {
            let at = events.get(&f.seq).map_or(key, |(_, k)| k);
            return fail(report, f.seq, f.problem.to_string(), Some(at.clone()));
        }
    }
    match verifier.finish() {
        Ok(done) => {
            report.intact = true;
            report.checkpoints = done.checkpoints;
            Ok(report)
        }
        Err(f) => fail(report, f.seq, f.problem.to_string(), None),
    }
}
