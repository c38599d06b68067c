//! Replays the corpus of the fuzz target `bus_decode` (`fuzz/corpus/{name}/` and its seeds `fuzz/seeds/{name}/`, see
//! `FUZZING.md`) on stable Rust through the same function the target runs, and checks that a valid
//! message of every record kind decodes (so the harness is not rejecting everything).
//!
//! `SDASH_FUZZ_WRITE_SEEDS=<dir>` also writes those valid messages into `<dir>` as seeds.

use std::path::{Path, PathBuf};

use sdash_proto::fuzzing::{FUZZ_ID, FUZZ_NOW_MS, decode_input, input_for};
use sdash_proto::subjects::Kind;
use serde_json::{Value, json};

/// The minimised corpus and the seeds of the target.
fn corpus_dirs() -> [PathBuf; 2] {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    [
        fuzz.join("corpus/bus_decode"),
        fuzz.join("seeds/bus_decode"),
    ]
}

/// One valid message body per record kind, as a producer publishes it.
fn valid_messages() -> Vec<(Kind, Value)> {
    let envelope = |body: Value| {
        json!({
            "schema": 1, "event_id": "0190f0f0-0000-7000-8000-000000000001",
            "collector_id": "c1", "system_id": FUZZ_ID, "observed_at": FUZZ_NOW_MS - 1000,
            "body": body,
        })
    };
    let alert = json!({"id": "42", "severity": "warning", "vendor_severity": "minor",
        "title": "fan slow", "component": "fan0", "opened_at": 1_700_000_000_000_i64});
    let mut heartbeat = envelope(json!({"version": "0.1.0", "systems": [FUZZ_ID], "polls": 3,
        "failures": 1, "outbox_depth": 0, "started_at": 1_700_000_000_000_i64}));
    heartbeat["collector_id"] = json!(FUZZ_ID);
    heartbeat["system_id"] = json!("");
    vec![
        (
            Kind::System,
            envelope(json!({"name": "FA prod", "vendor": "pure",
            "address": "https://fa.example:443", "tags": {"site": "ams"}, "interval_s": 60,
            "enabled": true})),
        ),
        (
            Kind::Snapshot,
            envelope(json!({"vendor": "ontap", "status": "online",
            "hardware": "ok", "cluster": "warning", "name": "c1", "version": "9.15.1",
            "model": "AFF-A400", "serial": "S1",
            "capacity": {"total_bytes": 1000, "used_bytes": 400, "free_bytes": 600,
                "data_reduction": 2.5},
            "alerts": [alert.clone()],
            "components": [{"kind": "node", "name": "n1", "status": "ok", "detail": "up"}],
            "poll_ms": 120, "error": null,
            "topology": {"cluster_type": "metrocluster", "nodes": [{"name": "n1",
                "model": "AFF-A400", "serial": "S1", "state": "up", "version": "9.15.1"}],
                "site_count": 2, "management_addresses": ["10.0.0.1"],
                "dns_names": ["c1.example"], "partners": [{"name": "c2",
                "kind": "cluster-peer", "state": "available"}],
                "management_url": "https://10.0.0.1/"},
            "pools": [{"kind": "aggregate", "name": "aggr1", "total_bytes": 1000,
                "used_bytes": 400, "free_bytes": 600}],
            "performance": {"read_iops": 1200.0, "write_iops": 800.0,
                "read_latency_us": 250.0, "write_latency_us": 400.0,
                "read_bytes_per_s": 1000000, "write_bytes_per_s": 500000}})),
        ),
        (
            Kind::Event,
            envelope(json!({"level": "warning", "category": "api_call",
            "message": "GET /api/x failed", "details": "timeout", "http_status": 503,
            "endpoint": "/api/x"})),
        ),
        (Kind::Collector, heartbeat),
        (
            Kind::Change,
            envelope(json!({"kind": "alert_opened",
            "cause_event_id": "0190f0f0-0000-7000-8000-000000000000", "vendor": "pure",
            "system_name": "FA prod", "tags": {"site": "ams"}, "alert": alert,
            "alert_opened_at": 1_700_000_000_000_i64})),
        ),
        (
            Kind::Command,
            envelope(json!({"kind": "acknowledge", "actor": "alice",
            "alert": {"alert_id": "4711", "opened_at": 1_700_000_000_000_i64}})),
        ),
        (
            Kind::History,
            envelope(json!({"source": "predecessor", "vendor": "pure",
            "days": [{"day": "2025-01-31", "total_bytes": 109_951_162_777_600_u64,
                "used_bytes": 67_642_019_000_000_u64, "free_bytes": 42_309_143_777_600_u64}],
            "events": [{"event_id": "0190f0f0-0000-5000-8000-000000000002",
                "observed_at": 1_700_000_000_000_i64,
                "event": {"level": "error", "category": "connection", "message": "timeout",
                    "details": null, "http_status": null, "endpoint": null}}],
            "keep_events": true})),
        ),
    ]
}

#[test]
fn a_valid_message_of_every_kind_decodes() {
    let seeds = std::env::var_os("SDASH_FUZZ_WRITE_SEEDS").map(PathBuf::from);
    let messages = valid_messages();
    assert_eq!(messages.len(), Kind::ALL.len(), "one message per kind");
    for (kind, message) in messages {
        let payload = sdash_proto::encode(&message).expect("encode a JSON value");
        let input = input_for(kind, &payload);
        let record = decode_input(&input)
            .expect("a fixed-kind input names a subject")
            .unwrap_or_else(|e| panic!("valid {} message: {e}", kind.as_str()));
        assert_eq!(record.kind(), kind);
        if let Some(dir) = &seeds {
            std::fs::write(dir.join(format!("valid-{}", kind.as_str())), &input)
                .expect("write seed");
        }
    }
}

#[test]
fn the_seed_files_decode() {
    let [_, seeds] = corpus_dirs();
    let mut decoded = 0;
    for entry in std::fs::read_dir(&seeds).expect("fuzz/seeds/bus_decode exists") {
        let path = entry.expect("seed entry").path();
        let input = std::fs::read(&path).expect("read seed");
        match decode_input(&input) {
            Some(Ok(_)) => decoded += 1,
            other => panic!("{}: {other:?}", path.display()),
        }
    }
    assert_eq!(decoded, Kind::ALL.len(), "one seed per record kind");
}

#[test]
fn every_corpus_input_decodes_or_fails_without_panicking() {
    let mut replayed = 0;
    for dir in corpus_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let input = std::fs::read(&path).expect("read corpus file");
            // A panic fails the test and names no file, so say which one is replayed.
            eprintln!("replaying {}", path.display());
            let _ = decode_input(&input);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the corpus is empty");
}

/// Found by `bus_decode` (FUZZING.md): arrays nested some 1,400 levels deep in a field the
/// reader ignores recursed until the thread's stack overflowed, aborting the process (in a debug
/// build on a 2 MB test thread; the release fuzz build had the stack for rmp-serde's 1024-level
/// limit). Nesting is now limited to `MAX_NESTING` and deeper messages are format errors.
#[test]
fn deeply_nested_messages_are_errors_not_stack_overflows() {
    use sdash_proto::DecodeError;
    use sdash_proto::codec::MAX_NESTING;

    let nested = |depth: usize| {
        // {"x": [[[ ... nil ... ]]], ...a valid snapshot's fields}
        let (_, valid) = &valid_messages()[1];
        let mut payload = vec![0x81 + 6u8, 0xa1, b'x'];
        payload.extend(std::iter::repeat_n(0x91, depth));
        payload.push(0xc0);
        for (key, value) in valid.as_object().expect("an envelope") {
            payload.extend(sdash_proto::encode(key).expect("encode"));
            payload.extend(sdash_proto::encode(value).expect("encode"));
        }
        decode_input(&input_for(Kind::Snapshot, &payload)).expect("a subject")
    };
    assert!(nested(MAX_NESTING - 2).is_ok(), "moderate nesting is fine");
    for depth in [MAX_NESTING, 1_400, 100_000] {
        assert!(
            matches!(nested(depth), Err(DecodeError::Format(_))),
            "{depth} levels"
        );
    }
}
