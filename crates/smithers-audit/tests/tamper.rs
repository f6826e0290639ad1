//! Tampering with a sealed log is detected, at the right sequence number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use proptest::prelude::*;
use serde_json::json;
use smithers_audit::{
    ActorType, AuditChain, AuditEvent, Checkpoint, CheckpointSigner, Failure, Problem, SealedEvent,
    merkle::Accumulator, verify_log,
};
use uuid::Uuid;

const ORG: &str = "local";

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(i)),
        organization_id: ORG.into(),
        actor_type: if i.is_multiple_of(2) {
            ActorType::Agent
        } else {
            ActorType::User
        },
        actor_id: format!("actor-{}", i % 7),
        action: "capability_check".into(),
        resource_type: "tool_call".into(),
        resource_id: format!("call-{i}"),
        details: json!({"decision": "allow", "n": i, "nested": {"b": [1, 2], "a": null}}),
        ip_address: if i.is_multiple_of(3) {
            Some("127.0.0.1".parse().unwrap())
        } else {
            None
        },
        timestamp: 1_700_000_000_000_000 + i as i64,
    }
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[7u8; 32]).unwrap()
}

/// A log of `n` events with a checkpoint every `every` events.
fn log(n: u64, every: u64) -> (Vec<SealedEvent>, Vec<Checkpoint>) {
    let signer = signer();
    let mut chain = AuditChain::new(ORG);
    let mut acc = Accumulator::new();
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    for i in 1..=n {
        let sealed = chain.seal(event(i)).unwrap();
        acc.push(sealed.leaf());
        events.push(sealed);
        if i % every == 0 {
            checkpoints.push(signer.sign(ORG, i, acc.root(), chain.head(), i as i64));
        }
    }
    (events, checkpoints)
}

fn verify(events: &[SealedEvent], checkpoints: &[Checkpoint]) -> Result<u64, Failure> {
    verify_log(
        ORG,
        events.to_vec(),
        checkpoints,
        &[signer().verifying_key()],
    )
    .map(|r| r.events)
}

fn failure(events: &[SealedEvent], checkpoints: &[Checkpoint]) -> (u64, Problem) {
    let f = verify(events, checkpoints).expect_err("tampering must be detected");
    (f.seq, f.problem)
}

/// Re-seals events from index `from` on, as an attacker with the database
/// (but not the signing key) would after editing a row.
fn reseal(events: &mut [SealedEvent], from: usize) {
    let prev = if from == 0 {
        [0; 32]
    } else {
        events[from - 1].hash
    };
    let mut chain = AuditChain::resume(ORG, events[from].seq - 1, prev);
    for e in &mut events[from..] {
        *e = chain.seal(e.event.clone()).unwrap();
    }
}

#[test]
fn an_intact_log_verifies() {
    let (events, checkpoints) = log(100, 10);
    let report = verify_log(ORG, events, &checkpoints, &[signer().verifying_key()]).unwrap();
    assert_eq!((report.events, report.checkpoints), (100, 10));
    assert_eq!(verify(&[], &[]), Ok(0));
}

#[test]
fn a_changed_field_is_a_hash_mismatch_at_that_event() {
    let (mut events, checkpoints) = log(100, 10);
    events[36].event.details = json!({"decision": "deny"});
    assert_eq!(failure(&events, &checkpoints), (37, Problem::HashMismatch));
    let (mut events, _) = log(100, 10);
    events[36].event.timestamp += 1;
    assert_eq!(failure(&events, &checkpoints), (37, Problem::HashMismatch));
}

#[test]
fn a_changed_row_with_its_hash_recomputed_breaks_the_chain_after_it() {
    let (mut events, checkpoints) = log(100, 10);
    events[36].event.actor_id = "someone-else".into();
    let mut chain = AuditChain::resume(ORG, 36, events[35].hash);
    events[36] = chain.seal(events[36].event.clone()).unwrap();
    assert_eq!(failure(&events, &checkpoints), (38, Problem::ChainBroken));
}

#[test]
fn a_rewritten_chain_is_caught_by_the_next_checkpoint() {
    let (mut events, checkpoints) = log(100, 10);
    events[36].event.action = "nothing_to_see".into();
    reseal(&mut events, 36);
    assert_eq!(
        failure(&events, &checkpoints),
        (40, Problem::RootMismatch { tree_size: 40 })
    );
}

#[test]
fn a_deleted_row_is_a_gap() {
    let (mut events, checkpoints) = log(100, 10);
    events.remove(49);
    assert_eq!(
        failure(&events, &checkpoints),
        (50, Problem::Gap { found: 51 })
    );
}

#[test]
fn an_inserted_row_breaks_the_chain() {
    let (mut events, checkpoints) = log(100, 10);
    // A forged event given number 21, everything after renumbered.
    let mut chain = AuditChain::resume(ORG, 20, events[19].hash);
    let forged = chain.seal(event(999)).unwrap();
    events.insert(20, forged);
    for e in &mut events[21..] {
        e.seq += 1;
    }
    assert_eq!(failure(&events, &checkpoints), (22, Problem::ChainBroken));
    // Without renumbering, the extra row repeats a number.
    let (mut events, checkpoints) = log(100, 10);
    let mut copy = events[20].clone();
    copy.event.resource_id = "forged".into();
    events.insert(21, copy);
    assert_eq!(failure(&events, &checkpoints), (21, Problem::OutOfOrder));
}

#[test]
fn swapped_rows_break_the_chain() {
    let (mut events, checkpoints) = log(100, 10);
    let (a, b) = (events[59].clone(), events[60].clone());
    events[59] = SealedEvent { seq: 60, ..b };
    events[60] = SealedEvent { seq: 61, ..a };
    assert_eq!(failure(&events, &checkpoints), (60, Problem::ChainBroken));
}

#[test]
fn a_truncated_tail_after_a_checkpoint_is_detected() {
    let (mut events, checkpoints) = log(100, 10);
    events.truncate(85);
    assert_eq!(
        failure(&events, &checkpoints),
        (
            86,
            Problem::Truncated {
                tree_size: 90,
                events: 85
            }
        )
    );
}

#[test]
fn forged_or_foreign_checkpoints_are_refused() {
    let (events, mut checkpoints) = log(100, 10);
    checkpoints[3].root[0] ^= 1;
    assert_eq!(
        failure(&events, &checkpoints),
        (40, Problem::BadSignature { tree_size: 40 })
    );
    let (events, mut checkpoints) = log(100, 10);
    let other = CheckpointSigner::from_seed(&[8u8; 32]).unwrap();
    let c = &checkpoints[2];
    checkpoints[2] = other.sign(ORG, c.tree_size, c.root, c.chain_head, c.timestamp);
    assert_eq!(
        failure(&events, &checkpoints),
        (30, Problem::BadSignature { tree_size: 30 })
    );
    let (events, checkpoints) = log(20, 10);
    let keys = [CheckpointSigner::from_seed(&[8u8; 32])
        .unwrap()
        .verifying_key()];
    assert!(
        verify_log(ORG, events, &checkpoints, &keys).is_err(),
        "an untrusted key"
    );
}

#[test]
fn an_event_of_another_organization_is_refused() {
    let mut chain = AuditChain::new(ORG);
    let mut foreign = event(1);
    foreign.organization_id = "other".into();
    assert!(chain.seal(foreign).is_err());
    assert_eq!(chain.last_seq(), 0, "nothing changes on error");
    let (mut events, checkpoints) = log(10, 5);
    events[3].event.organization_id = "other".into();
    assert_eq!(
        failure(&events, &checkpoints),
        (
            4,
            Problem::WrongOrganization {
                found: "other".into()
            }
        )
    );
}

#[test]
fn serialized_events_still_verify() {
    let (events, checkpoints) = log(30, 10);
    let text = serde_json::to_string(&events).unwrap();
    let back: Vec<SealedEvent> = serde_json::from_str(&text).unwrap();
    let cps: Vec<Checkpoint> =
        serde_json::from_str(&serde_json::to_string(&checkpoints).unwrap()).unwrap();
    assert_eq!(verify(&back, &cps), Ok(30));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any single change to any field of any event is detected at that event.
    #[test]
    fn any_single_edit_is_detected(index in 0usize..40, field in 0usize..9, text in "[a-z0-9]{1,8}") {
        let (mut events, checkpoints) = log(40, 8);
        let e = &mut events[index].event;
        match field {
            0 => e.actor_id.push_str(&text),
            1 => e.action.push_str(&text),
            2 => e.resource_type.push_str(&text),
            3 => e.resource_id.push_str(&text),
            4 => e.details = json!({"x": text}),
            5 => e.ip_address = Some("10.0.0.1".parse().unwrap()),
            6 => e.timestamp = e.timestamp.wrapping_add(text.len() as i64),
            7 => e.actor_type = if e.actor_type == ActorType::Webhook { ActorType::System } else { ActorType::Webhook },
            _ => e.id = Uuid::from_u128(e.id.as_u128() ^ 1),
        }
        let (seq, problem) = failure(&events, &checkpoints);
        prop_assert_eq!((seq, problem), (index as u64 + 1, Problem::HashMismatch));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The canonical encoding of any JSON value is JSON for the same value,
    /// and encoding that again gives the same bytes.
    #[test]
    fn canonical_json_round_trips(value in json_value()) {
        let mut first = Vec::new();
        smithers_audit::canonical_json(&value, &mut first);
        let parsed: serde_json::Value = serde_json::from_slice(&first).unwrap();
        prop_assert_eq!(&parsed, &value);
        let mut second = Vec::new();
        smithers_audit::canonical_json(&parsed, &mut second);
        prop_assert_eq!(first, second);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC*|[\\x00-\\x1f\"\\\\]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\"\\\\\\x01é]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
