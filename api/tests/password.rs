//! `--database-password-file`: the API's PostgreSQL pool logs in with the password (seen by a
//! password probe, since the test PostgreSQL trusts local logins), and the password shows up in
//! no response.

mod common;

use std::time::Duration;

use common::*;
use sdash_harness::PasswordProbe;
use sdash_service::Secret;

const PASSWORD: &str = "api-db s3cret:@/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_logs_in_with_the_password_and_never_shows_it() {
    install_crypto();
    let probe = PasswordProbe::start().await;
    let mut config = sdash_api::Config::new(&probe.url("sdash"));
    config.database_password = Some(Secret::new(PASSWORD));
    config.query_timeout = Duration::from_secs(2);
    let (addr, task) = sdash_api::spawn(config)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let http = client();
    for path in ["/readyz", "/api/v1/systems", "/api/v1/status"] {
        let resp = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        // The probe refuses every login: the database is unavailable, and says nothing more.
        if path != "/api/v1/status" {
            assert_eq!(status, 503, "{path}: {body}");
        }
        assert!(
            !body.contains("s3cret"),
            "{path} shows the password: {body}"
        );
    }
    let passwords = probe.passwords();
    assert!(!passwords.is_empty(), "no login reached the probe");
    assert!(
        passwords.iter().all(|p| p == PASSWORD),
        "other passwords were sent ({} logins)",
        passwords.len()
    );
    task.abort();
}
