//! `--database-password-file` through the real entry point (`sdash_writer::run`): the password
//! reaches PostgreSQL (seen by a password probe, since the test PostgreSQL trusts local logins),
//! never the logs, and a bad file stops the writer at once with a clear error.

use std::time::Duration;

use sdash_harness::{NatsServer, PasswordProbe, TestDatabase};
use sdash_service::Shutdown;

use sdash_writer::WriterConfig;

const PASSWORD: &str = "pw-file s3cret:with@odd/chars";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_reaches_postgres_and_never_the_logs() {
    let logs = sdash_harness::capture_logs();

    let nats = NatsServer::start();
    let probe = PasswordProbe::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("db-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap_or_else(|e| panic!("{e}"));
    let mut config = WriterConfig::new(&nats.url(), &probe.url("sdash"));
    config.database_password_file = Some(file);
    config.lock_poll = Duration::from_millis(50);
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
    // The writer lock connection logs in first (and retries while refused).
    let seen = sdash_harness::wait_for(Duration::from_secs(20), || async {
        (probe.passwords().len() >= 2).then_some(())
    })
    .await;
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert!(seen.is_some(), "no login reached the probe");
    assert!(
        probe.passwords().iter().all(|p| p == PASSWORD),
        "the writer sent other passwords: {} logins",
        probe.passwords().len()
    );
    match result {
        Ok(Ok(Ok(()))) => {}
        other => panic!(
            "the writer did not stop cleanly: {:?}",
            other.map(|r| r.map(|r| r.map_err(|e| e.to_string())))
        ),
    }
    if let Some(logs) = logs {
        let text = logs.text();
        assert!(
            text.contains("writer lock"),
            "the refused logins were not logged: {text}"
        );
        assert!(!text.contains("s3cret"), "the password is in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_missing_password_file_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("missing");
    // No NATS and no database are needed: the file is checked before anything connects.
    let url = "postgres://sdash@127.0.0.1:1/sdash";
    for (file, expected) in [(&empty, "is empty"), (&missing, "cannot read")] {
        let mut config = WriterConfig::new("nats://127.0.0.1:1", url);
        config.database_password_file = Some(file.clone());
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            sdash_writer::run(config, Shutdown::new()),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: the writer did not stop", file.display()));
        let err = result
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| panic!("{}: accepted", file.display()));
        assert!(
            err.contains("--database-password-file")
                && err.contains(expected)
                && err.contains(&file.display().to_string()),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_is_ignored_for_sqlite() {
    let nats = NatsServer::start();
    let db = TestDatabase::new(sdash_harness::Backend::Sqlite).await;
    let mut config = WriterConfig::new(&nats.url(), &db.url);
    // Not even read: a missing file does not stop a SQLite writer.
    config.database_password_file = Some("/nonexistent/sdash-db-password".into());
    let stop = Shutdown::new();
    let task = tokio::spawn(sdash_writer::run(config, stop.clone()));
    // A missing file for PostgreSQL would end the writer at once.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let running = !task.is_finished();
    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert!(running, "the SQLite writer stopped early: {result:?}");
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "the writer failed: {result:?}"
    );
}
