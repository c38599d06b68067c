//! Inventory reload without a restart: added systems start, removed systems publish a removal
//! record, and an invalid file keeps the last good inventory.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sdash_harness::{NatsServer, wait_for};
use sdash_proto::Record;

fn system(id: &str) -> String {
    format!(
        "[[system]]\nid = \"{id}\"\nvendor = \"pure\"\naddress = \"https://127.0.0.1:9\"\ninterval = \"1s\"\ntimeout = \"1s\"\nauth = {{ api_token_env = \"RELOAD_TEST_TOKEN\" }}\n\n"
    )
}

#[derive(Default)]
struct Seen {
    snapshots: HashMap<String, Vec<i64>>,
    removed: Vec<String>,
    records: HashMap<String, std::collections::HashSet<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_changes_apply_without_restart() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, system("keep") + &system("drop")).expect("write");

    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut sub = client.subscribe("sdash.v1.>").await.expect("subscribe");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Ok(record) = sdash_proto::codec::decode_record(&msg.subject, &msg.payload)
                else {
                    continue;
                };
                let mut seen = seen.lock().expect("lock");
                match record {
                    Record::Snapshot(e) => seen
                        .snapshots
                        .entry(e.system_id)
                        .or_default()
                        .push(e.observed_at),
                    Record::System(e) if e.body.removed => seen.removed.push(e.system_id),
                    // The core subscription also sees publish retries, which JetStream dedupes by id.
                    Record::System(e) => {
                        seen.records
                            .entry(e.system_id)
                            .or_default()
                            .insert(e.event_id);
                    }
                    _ => {}
                }
            }
        });
    }
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_sdash-collector"))
            .args([
                "--nats-url",
                &nats.url(),
                "--collector-id",
                "reload-test",
                "--log-level",
                "warn",
            ])
            .arg("--inventory")
            .arg(&inventory)
            .env("RELOAD_TEST_TOKEN", "t")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start collector"),
    );
    let pid = child.0.id().to_string();
    let polled = |id: &'static str, after: i64| {
        let seen = seen.clone();
        move || {
            let seen = seen.clone();
            async move {
                let seen = seen.lock().expect("lock");
                seen.snapshots
                    .get(id)
                    .is_some_and(|t| t.iter().any(|t| *t > after))
                    .then_some(())
            }
        }
    };
    assert!(
        wait_for(Duration::from_secs(15), polled("drop", 0))
            .await
            .is_some(),
        "initial systems are polled"
    );
    assert_eq!(
        seen.lock()
            .expect("lock")
            .records
            .get("keep")
            .map(|s| s.len()),
        Some(1),
        "inventory records published at start"
    );

    // Replace "drop" by "new" and signal: the change applies at once.
    std::fs::write(&inventory, system("keep") + &system("new")).expect("write");
    let _ = Command::new("kill").args(["-HUP", &pid]).status();
    let changed_at = sdash_proto::now_ms();
    assert!(
        wait_for(Duration::from_secs(10), polled("new", 0))
            .await
            .is_some(),
        "an added system starts"
    );
    let removed = wait_for(Duration::from_secs(10), || {
        let seen = seen.clone();
        async move {
            seen.lock()
                .expect("lock")
                .removed
                .contains(&"drop".to_owned())
                .then_some(())
        }
    })
    .await;
    assert!(
        removed.is_some(),
        "a removed system publishes its removal record"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let seen = seen.lock().expect("lock");
        let late: Vec<&i64> = seen.snapshots["drop"]
            .iter()
            .filter(|t| **t > changed_at + 1500)
            .collect();
        assert!(
            late.is_empty(),
            "a removed system is no longer polled: {late:?}"
        );
        assert_eq!(
            seen.records.get("keep").map(|s| s.len()),
            Some(1),
            "an unchanged system is not restarted"
        );
    }

    // An invalid file (no SIGHUP: the change is noticed by itself) keeps the last good inventory.
    std::fs::write(&inventory, "[[system]]\nid = \"broken\"\n").expect("write");
    let broken_at = sdash_proto::now_ms();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the collector keeps running"
    );
    assert!(
        wait_for(Duration::from_secs(5), polled("new", broken_at + 5000))
            .await
            .is_some(),
        "polling goes on with the last good inventory"
    );
    assert!(!seen.lock().expect("lock").snapshots.contains_key("broken"));
}

/// Kills the collector even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
