//! The notifier process is killed (SIGKILL) in the middle of a burst of changes and started
//! again: checked against the record of every change published, none is lost and none reaches
//! the webhook twice; copies of them published again later (as after a writer crash) are
//! recognised within the dedupe window and not sent.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sdash_harness::wait_for;

fn start(nats: &str, config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("log file: {e}"));
    Command::new(env!("CARGO_BIN_EXE_sdash-notify"))
        .args(["--nats-url", nats, "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        // Changes held by the killed process come back this soon.
        .args(["--ack-wait", "2s", "--log-level", "info"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sdash-notify: {e}"))
}

/// The change ids the notifier recorded as handed to a receiver (keys `<change id>.<receiver>`
/// of its state bucket, `sdash-notify`).
async fn recorded_changes(
    js: &async_nats::jetstream::Context,
) -> std::collections::BTreeSet<String> {
    use futures::StreamExt;
    let kv = js
        .get_key_value("sdash-notify")
        .await
        .unwrap_or_else(|e| panic!("the notifier's state bucket: {e}"));
    let mut keys = kv
        .keys()
        .await
        .unwrap_or_else(|e| panic!("listing the state bucket: {e}"));
    let mut out = std::collections::BTreeSet::new();
    while let Some(key) = keys.next().await {
        let key = key.unwrap_or_else(|e| panic!("a key of the state bucket: {e}"));
        if let Some((change, _receiver)) = key.split_once('.') {
            out.insert(change.to_owned());
        }
    }
    out
}

fn received(hook: &WebhookSink) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for id in hook.requests().iter().flat_map(|r| r.change_ids()) {
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_burst_loses_nothing_and_sends_nothing_twice() {
    let WebhookSetup {
        nats,
        hook,
        dir,
        config,
    } = WebhookSetup::start(
        "crash-test-secret",
        "group_window = \"200ms\"\ndedupe_window = \"1h\"\n",
        "",
    )
    .await;
    let log = dir.path().join("notify.log");
    let js = jetstream(&nats.url()).await;
    let mut child = start(&nats.url(), &config, &log);
    wait_for_consumer(&js, "sdash-notify").await;

    // The burst: 400 changes over 20 systems, about 2.5 s; every one is recorded.
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let mut published = Vec::new();
            for n in 0..400 {
                let system = format!("sys-{:02}", n % 20);
                let (from, to) = if (n / 20) % 2 == 0 {
                    ("online", "unreachable")
                } else {
                    ("unreachable", "online")
                };
                let change = status_change(&system, from, to);
                publish(&js, &change).await;
                published.push(change);
                tokio::time::sleep(Duration::from_millis(6)).await;
            }
            published
        })
    };

    // Kill it once it has sent part of the burst, between two deliveries (no request for 40 ms:
    // the one instant a crash can repeat a change is between the receiver's answer and the
    // record of it, a few milliseconds).
    let mut last_count = 0;
    let mut last_change = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = hook.requests().len();
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
        }
        let sent = received(&hook).len();
        if sent >= 60 && last_change.elapsed() >= Duration::from_millis(40) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the burst is not being sent: {sent} changes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let sent_before = received(&hook).len();
    // What the killed process had recorded as sent: a change the receiver got but that has no
    // record yet (the crash fell between the answer and the record, which a loaded machine can
    // stretch past the quiet time above) is the one change that may be sent again.
    let recorded = recorded_changes(&js).await;
    let unrecorded: Vec<String> = received(&hook)
        .into_keys()
        .filter(|id| !recorded.contains(id))
        .collect();
    eprintln!(
        "killed after {sent_before} changes, {} of them not yet recorded",
        unrecorded.len()
    );
    assert!(
        unrecorded.len() < sent_before,
        "the records name the changes the receiver got: {} of {sent_before} unrecorded",
        unrecorded.len()
    );
    assert!(
        !publisher.is_finished(),
        "the kill must land in the middle of the burst"
    );
    let mut child = start(&nats.url(), &config, &log);

    let published = publisher.await.expect("publisher");
    let expected: Vec<String> = published.iter().map(|c| c.event_id.clone()).collect();
    let all = wait_for(Duration::from_secs(40), || async {
        (received(&hook).len() >= expected.len() && consumer_idle(&js, "sdash-notify").await)
            .then_some(())
    })
    .await;
    let seen = received(&hook);
    assert!(
        all.is_some(),
        "{} of {} changes arrived ({} before the kill)\n{}",
        seen.len(),
        expected.len(),
        sent_before,
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice
            .iter()
            .all(|(id, n)| **n == 2 && unrecorded.contains(id)),
        "sent more than once: {twice:?}; only a change sent but not recorded at the kill may be \
         ({unrecorded:?})"
    );
    assert_eq!(
        seen.len(),
        expected.len(),
        "nothing but the published changes"
    );

    // Copies of 30 of them (no Nats-Msg-Id, so JetStream keeps them): not sent again.
    let requests_before = hook.requests().len();
    for change in published.iter().step_by(13).take(30) {
        publish_with_id(&js, change, None).await;
    }
    assert!(wait_for_idle(&js, "sdash-notify", Duration::from_secs(15)).await);
    assert_eq!(hook.requests().len(), requests_before, "copies were sent");

    // SIGTERM: a clean exit.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let status = wait_for(Duration::from_secs(15), || {
        let status = child.try_wait().ok().flatten();
        async move { status }
    })
    .await
    .expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log.contains("notifier stopped"), "{log}");
}
