//! `sdash-writer replay-dead-letters`: dead letters that can succeed now go back to the stream
//! (and are stored by the writer), the others stay; nothing is deleted before JetStream has it.

mod common;

use std::time::Duration;

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::store::DeadLetterReason;
use sdash_writer::{ReplayArgs, Store, WriterConfig, replay_dead_letters};

async fn replay_puts_dead_letters_back_on_the_stream(backend: Backend) {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let now = now_ms();
    let good = snapshot_msg(
        11,
        "replayed",
        now - 60_000,
        snapshot_body(Status::Online, Health::Ok, &[], Some(40)),
    );
    let poison = event_msg(12, "replayed", "ev-poison", now - 50_000, "came back");
    let garbage = incoming(
        13,
        Kind::Event.subject("replayed"),
        b"\xc1 not msgpack".to_vec(),
    );
    for (m, reason) in [
        (&good, "refused by the database: value too long"),
        (
            &poison,
            "poison: delivered 11 times (more than --max-deliver 10)",
        ),
        (&garbage, "rejected: invalid MessagePack"),
    ] {
        store
            .dead_letter(m, &DeadLetterReason::parse(reason))
            .await
            .unwrap_or_else(|e| panic!("dead letter: {e}"));
    }
    assert_eq!(count(&db, "dead_letters").await, 3);
    let config = WriterConfig::new(&nats.url(), &db.url);
    let args = |all: bool, dry_run: bool| ReplayArgs {
        limit: 1000,
        all,
        dry_run,
    };

    // A dry run changes nothing.
    let dry = replay_dead_letters(&config, &args(false, true))
        .await
        .unwrap_or_else(|e| panic!("dry run: {e:#}"));
    assert_eq!((dry.replayed, dry.skipped, dry.failed), (2, 1, 0));
    assert_eq!(count(&db, "dead_letters").await, 3);

    let out = replay_dead_letters(&config, &args(false, false))
        .await
        .unwrap_or_else(|e| panic!("replay: {e:#}"));
    assert_eq!((out.replayed, out.skipped, out.failed), (2, 1, 0));
    // The undecodable one stays; the others are on the stream, byte for byte.
    let left = rows(&db, "SELECT CAST(stream_seq AS TEXT) FROM dead_letters").await;
    assert_eq!(left, vec![vec![Some("13".to_owned())]]);
    let client = async_nats::connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let js = async_nats::jetstream::new(client);
    let stream = js
        .get_stream("SDASH")
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    for m in [&good, &poison] {
        let stored = stream
            .get_last_raw_message_by_subject(&m.subject)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.subject));
        assert_eq!(stored.payload.as_ref(), m.payload.as_slice());
    }

    // The writer stores what was replayed.
    let stop = sdash_service::Shutdown::new();
    let writer_config = WriterConfig::new(&nats.url(), &db.url);
    let writer = tokio::spawn(sdash_writer::run(writer_config, stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&db, "events WHERE event_id = 'ev-poison'").await == 0
        || count(&db, "capacity_samples WHERE system_id = 'replayed'").await == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not stored after replay"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let _ = writer.await;

    // --all also sends the undecodable one; the writer would dead-letter it again.
    let all = replay_dead_letters(&config, &args(true, false))
        .await
        .unwrap_or_else(|e| panic!("replay --all: {e:#}"));
    assert_eq!((all.replayed, all.skipped, all.failed), (1, 0, 0));
}

both_backends!(replay_puts_dead_letters_back_on_the_stream);
