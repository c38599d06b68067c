//! The notifier against real receivers, fed by changes published to a real JetStream: a real
//! Alertmanager (a system going unreachable fires, coming back resolves, firing alerts are
//! re-posted), a webhook receiver checking signatures, and an SMTP server with STARTTLS getting
//! one email per group; then retries, dead letters and redeliveries.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use sdash_harness::{NatsServer, wait_for};
use sdash_notify::signature::{
    DEFAULT_TOLERANCE, ReplayGuard, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER, verify,
};
use sdash_notify::{DEAD_LETTER_STREAM, NotifyArgs};
use sdash_service::Shutdown;

const WEBHOOK_SECRET: &str = "whsec-7f3a9c-never-logged";
const SMTP_PASSWORD: &str = "smtp-pw-5b1e-never-logged";

struct Notifier {
    stop: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    admin: String,
}

impl Notifier {
    async fn start(nats: &str, config: &std::path::Path) -> Notifier {
        let mut args = NotifyArgs::new(nats, config);
        let port = sdash_harness::free_port();
        args.admin_listen = ([127, 0, 0, 1], port).into();
        let stop = Shutdown::new();
        let task = tokio::spawn(sdash_notify::run(args, stop.clone()));
        Notifier {
            stop,
            task,
            admin: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Connects to JetStream, starts the notifier and waits until its consumer pulls.
    async fn consuming(
        nats: &str,
        config: &std::path::Path,
    ) -> (async_nats::jetstream::Context, Notifier) {
        let js = jetstream(nats).await;
        let notifier = Notifier::start(nats, config).await;
        wait_for_consumer(&js, "sdash-notify").await;
        (js, notifier)
    }

    async fn metrics(&self) -> String {
        match reqwest::get(format!("{}/metrics", self.admin)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(15), self.task).await;
        match ended {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the notifier did not stop cleanly: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alertmanager_webhook_and_email() {
    let logs = sdash_harness::capture_logs().expect("the only log subscriber in this process");
    sdash_notify::install_crypto_provider();
    let nats = NatsServer::start();
    let am = Alertmanager::start();
    let hook = WebhookSink::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "webhook.secret", &format!("{WEBHOOK_SECRET}\n"));
    let password = write(dir.path(), "smtp.password", SMTP_PASSWORD);
    let ca = write(dir.path(), "smtp-ca.pem", smtp.ca_pem());
    let config = write(
        dir.path(),
        "notify.toml",
        &format!(
            r#"
group_window = "400ms"
repeat_interval = "1h"

[[receiver]]
name = "am"
type = "alertmanager"
url = "{am}"
resend_interval = "1s"

[[receiver]]
name = "hook"
type = "webhook"
url = "{hook}"
secret_file = "{secret}"

[[receiver]]
name = "mail"
type = "email"
smtp_host = "localhost"
smtp_port = {smtp_port}
username = "sdash"
password_file = "{password}"
ca_file = "{ca}"
from = "sdash <sdash@example.com>"
to = ["ops@example.com"]

[[route]]
receivers = ["am", "hook", "mail"]
"#,
            am = am.url(),
            hook = hook.url(),
            secret = secret.display(),
            smtp_port = smtp.addr.port(),
            password = password.display(),
            ca = ca.display(),
        ),
    );
    let (js, notifier) = Notifier::consuming(&nats.url(), &config).await;

    // fa-01 goes unreachable: a firing alert in Alertmanager, labelled for routing.
    let down = status_change("fa-01", "online", "unreachable");
    publish(&js, &down).await;
    let firing = am
        .wait_for_alert(
            &[("alertname", "SdashSystemDown"), ("system", "fa-01")],
            Duration::from_secs(20),
        )
        .await;
    let Some(firing) = firing else {
        panic!(
            "no firing SdashSystemDown alert for fa-01 in Alertmanager; it has {:?}\n{}",
            am.alerts().await,
            am.log()
        );
    };
    assert_eq!(firing["status"]["state"], "active", "{firing:#}");
    assert_eq!(firing["labels"]["severity"], "critical");
    assert_eq!(firing["labels"]["vendor"], "pure");
    assert_eq!(firing["labels"]["environment"], "prod");
    assert_eq!(
        sdash_proto::parse_rfc3339_ms(firing["startsAt"].as_str().unwrap_or("")),
        Some(down.observed_at),
        "startsAt is when the change was observed: {firing:#}"
    );
    assert!(
        firing["annotations"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{firing:#}"
    );

    // The webhook got it, signed.
    let first = hook
        .request_for(&down.event_id)
        .await
        .expect("the webhook gets the change");
    let (ts, sig) = (
        first.header(TIMESTAMP_HEADER),
        first.header(SIGNATURE_HEADER),
    );
    let guard = ReplayGuard::new(WEBHOOK_SECRET.as_bytes(), DEFAULT_TOLERANCE);
    let now = SystemTime::now();
    assert_eq!(guard.check(ts, sig, &first.body, now), Ok(()));
    assert_eq!(
        guard.check(ts, sig, &first.body, now),
        Err(SignatureError::Replayed),
        "the same request again is a replay"
    );
    let mut tampered = first.body.clone();
    let at = tampered.iter().position(|b| *b == b'u').unwrap_or(0);
    tampered[at] = b'U';
    assert_eq!(
        verify(
            WEBHOOK_SECRET.as_bytes(),
            ts,
            sig,
            &tampered,
            now,
            DEFAULT_TOLERANCE
        ),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        verify(
            WEBHOOK_SECRET.as_bytes(),
            ts,
            sig,
            &first.body,
            now + Duration::from_secs(600),
            DEFAULT_TOLERANCE
        ),
        Err(SignatureError::Stale(_))
    ));
    let payload = first.json();
    assert_eq!(payload["receiver"], "hook");
    assert_eq!(payload["group"]["system"], "fa-01");
    assert_eq!(payload["changes"][0]["state"], "firing");
    assert_eq!(payload["changes"][0]["kind"], "status_changed");
    assert_eq!(first.header("x-sdash-delivery"), payload["delivery_id"]);

    // One email, over STARTTLS, authenticated with the password from its file.
    let emails = wait_for(Duration::from_secs(10), || async {
        let e = smtp.emails();
        (!e.is_empty()).then_some(e)
    })
    .await
    .expect("an email arrives");
    assert_eq!(emails.len(), 1, "{emails:#?}");
    assert!(emails[0].tls, "sent after STARTTLS");
    assert_eq!(
        emails[0].auth,
        Some(("sdash".to_owned(), SMTP_PASSWORD.to_owned()))
    );
    assert!(
        emails[0].subject().contains("fa-01"),
        "{}",
        emails[0].subject()
    );
    assert!(emails[0].data.contains(&down.event_id));

    // Two changes of fa-02 within the group window: one webhook payload, one email.
    let down2 = status_change("fa-02", "online", "auth_failed");
    let full2 = capacity_change("fa-02", 90, true);
    publish(&js, &down2).await;
    publish(&js, &full2).await;
    let both = vec![down2.event_id.clone(), full2.event_id.clone()];
    let grouped = wait_for(Duration::from_secs(10), || async {
        let e: Vec<_> = smtp
            .emails()
            .into_iter()
            .filter(|e| e.data.contains(&down2.event_id) || e.data.contains(&full2.event_id))
            .collect();
        (!e.is_empty() && hook.requests().len() >= 2).then_some(e)
    })
    .await
    .expect("fa-02's group is sent");
    assert!(
        wait_for_idle(&js, "sdash-notify", Duration::from_secs(10)).await,
        "every change acknowledged"
    );
    let emails = smtp.emails();
    assert_eq!(emails.len(), 2, "one email per group: {emails:#?}");
    assert_eq!(grouped.len(), 1);
    assert!(
        grouped[0].data.contains(&down2.event_id) && grouped[0].data.contains(&full2.event_id),
        "{}",
        grouped[0].data
    );
    assert!(
        grouped[0].subject().contains("2 changes"),
        "{}",
        grouped[0].subject()
    );
    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "one webhook post per group");
    assert_eq!(requests[1].change_ids(), both);
    assert_eq!(
        am.alerts_with(&[("alertname", "SdashCapacityThreshold"), ("system", "fa-02")])
            .await
            .first()
            .map(|a| a["labels"]["threshold_percent"].clone()),
        Some("90".into())
    );

    // Firing alerts are re-posted every resend interval (1 s), so they stay active.
    let reposted = wait_for(Duration::from_secs(15), || async {
        let m = notifier.metrics().await;
        (metric(&m, "sdash_notify_repeats_total", "receiver=\"am\"") >= Some(3.0)).then_some(())
    })
    .await;
    assert!(reposted.is_some(), "{}", notifier.metrics().await);
    assert_eq!(
        am.alerts_with(&[("alertname", "SdashSystemDown"), ("system", "fa-01")])
            .await
            .len(),
        1
    );

    // fa-01 is back: its alert resolves; fa-02's stays.
    let up = status_change("fa-01", "unreachable", "online");
    publish(&js, &up).await;
    let resolved = wait_for(Duration::from_secs(20), || async {
        let left = am
            .alerts_with(&[("alertname", "SdashSystemDown"), ("system", "fa-01")])
            .await;
        left.is_empty().then_some(())
    })
    .await;
    assert!(
        resolved.is_some(),
        "fa-01's alert resolves: {:?}",
        am.alerts().await
    );
    assert_eq!(
        am.alerts_with(&[("alertname", "SdashSystemDown"), ("system", "fa-02")])
            .await
            .len(),
        1,
        "fa-02 is still down"
    );
    let resolution = hook
        .request_for(&up.event_id)
        .await
        .expect("the webhook gets the resolution");
    assert_eq!(resolution.json()["changes"][0]["state"], "resolved");
    assert!(
        wait_for_idle(&js, "sdash-notify", Duration::from_secs(10)).await,
        "every receiver has the resolution"
    );
    assert_eq!(smtp.emails().len(), 3, "one more email for the resolution");

    let m = notifier.metrics().await;
    for (name, receiver, value) in [
        ("sdash_notify_changes_sent_total", "hook", 4.0),
        ("sdash_notify_changes_sent_total", "mail", 4.0),
        ("sdash_notify_sent_total", "hook", 3.0),
        ("sdash_notify_sent_total", "mail", 3.0),
        ("sdash_notify_failed_total", "hook", 0.0),
        ("sdash_notify_dead_lettered_total", "mail", 0.0),
    ] {
        assert_eq!(
            metric(&m, name, &format!("receiver=\"{receiver}\"")),
            Some(value),
            "{name}{{receiver={receiver}}}\n{m}"
        );
    }
    assert_eq!(
        metric(&m, "sdash_notify_changes_total", ""),
        Some(4.0),
        "{m}"
    );
    notifier.stop().await;

    let text = logs.text();
    assert!(
        text.contains("consuming changes"),
        "logs are captured: {text}"
    );
    assert!(
        !text.contains(WEBHOOK_SECRET),
        "the webhook secret is logged"
    );
    assert!(!text.contains(SMTP_PASSWORD), "the SMTP password is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_dead_letters_and_redeliveries() {
    sdash_notify::install_crypto_provider();
    let setup = WebhookSetup::start(
        WEBHOOK_SECRET,
        r#"
group_window = "100ms"
[retry]
max_attempts = 4
initial_backoff = "50ms"
max_backoff = "200ms"
"#,
        "kinds = [\"status_changed\"]\n",
    )
    .await;
    let WebhookSetup {
        nats, hook, config, ..
    } = &setup;
    let (js, notifier) = Notifier::consuming(&nats.url(), config).await;
    let idle = || wait_for_idle(&js, "sdash-notify", Duration::from_secs(15));

    // Two 503s, then accepted: delivered once, after retries.
    hook.answer_next(&[503, 503]);
    let flaky = status_change("fa-01", "online", "error");
    publish(&js, &flaky).await;
    assert!(idle().await, "acknowledged after delivery");
    let ids: Vec<_> = hook
        .requests()
        .iter()
        .flat_map(|r| r.change_ids())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&flaky.event_id));

    // A change no route matches is acknowledged unsent.
    let capacity = capacity_change("fa-01", 80, true);
    publish(&js, &capacity).await;

    // A 400 is final: dead-lettered at once, then acknowledged.
    hook.answer_next(&[400]);
    let refused = status_change("fa-02", "online", "unreachable");
    publish(&js, &refused).await;
    assert!(idle().await, "acknowledged after dead-lettering");
    let mut dead = js
        .get_stream(DEAD_LETTER_STREAM)
        .await
        .expect("the dead-letter stream");
    let last = dead
        .get_last_raw_message_by_subject("sdash-notify.dead-letter.hook")
        .await
        .expect("a dead letter for the webhook");
    let letter: serde_json::Value = serde_json::from_slice(&last.payload).expect("JSON");
    assert_eq!(letter["receiver"], "hook");
    assert_eq!(letter["attempts"], 1);
    assert_eq!(letter["changes"][0]["change_id"], refused.event_id.as_str());
    assert!(
        letter["reason"].as_str().unwrap_or("").contains("400"),
        "{letter:#}"
    );
    assert!(!String::from_utf8_lossy(&last.payload).contains(WEBHOOK_SECRET));
    assert_eq!(dead.info().await.map(|i| i.state.messages).ok(), Some(1));

    // The same changes again (no Nats-Msg-Id, so JetStream keeps the copies, as after a writer
    // crash): recognised by id, acknowledged, not sent again.
    publish_with_id(&js, &flaky, None).await;
    publish_with_id(&js, &refused, None).await;
    assert!(idle().await);
    let ids: Vec<_> = hook
        .requests()
        .iter()
        .flat_map(|r| r.change_ids())
        .collect();
    assert_eq!(
        ids,
        std::slice::from_ref(&flaky.event_id),
        "nothing sent twice"
    );

    let m = notifier.metrics().await;
    for (name, labels, value) in [
        ("sdash_notify_failed_total", "receiver=\"hook\"", 3.0),
        ("sdash_notify_sent_total", "receiver=\"hook\"", 1.0),
        ("sdash_notify_dead_lettered_total", "receiver=\"hook\"", 1.0),
        ("sdash_notify_duplicates_total", "", 2.0),
        ("sdash_notify_unrouted_total", "", 1.0),
        ("sdash_notify_pending", "", 0.0),
    ] {
        assert_eq!(metric(&m, name, labels), Some(value), "{name}\n{m}");
    }
    notifier.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_repeat_what_is_unresolved() {
    sdash_notify::install_crypto_provider();
    let setup = WebhookSetup::start(
        WEBHOOK_SECRET,
        "group_window = \"100ms\"\nrepeat_interval = \"1s\"\n",
        "",
    )
    .await;
    let WebhookSetup {
        nats, hook, config, ..
    } = &setup;
    let (js, notifier) = Notifier::consuming(&nats.url(), config).await;

    let down = status_change("fa-01", "online", "unreachable");
    publish(&js, &down).await;
    let repeats = wait_for(Duration::from_secs(10), || async {
        let r: Vec<_> = hook
            .requests()
            .into_iter()
            .filter(|r| r.json()["repeat"] == true)
            .collect();
        (r.len() >= 2).then_some(r)
    })
    .await
    .expect("the unresolved condition is repeated every second");
    for r in &repeats {
        assert_eq!(r.change_ids(), std::slice::from_ref(&down.event_id));
        assert_eq!(r.json()["changes"][0]["state"], "firing");
    }
    let firing = |m: &str| metric(m, "sdash_notify_firing", "receiver=\"hook\"");
    assert_eq!(firing(&notifier.metrics().await), Some(1.0));

    // A restart keeps what is firing (NATS KV) and goes on repeating it.
    notifier.stop().await;
    let before = hook.requests().len();
    let notifier = Notifier::start(&nats.url(), config).await;
    let resumed = wait_for(Duration::from_secs(10), || async {
        let m = notifier.metrics().await;
        (firing(&m) == Some(1.0) && hook.requests().len() > before).then_some(())
    })
    .await;
    assert!(resumed.is_some(), "{}", notifier.metrics().await);
    let last = hook.requests().pop().map(|r| r.json()).unwrap_or_default();
    assert_eq!(last["repeat"], true);
    assert_eq!(last["changes"][0]["change_id"], down.event_id.as_str());

    // Resolved: nothing is firing any more, so nothing is repeated.
    let up = status_change("fa-01", "unreachable", "online");
    publish(&js, &up).await;
    let cleared = wait_for(Duration::from_secs(10), || async {
        (firing(&notifier.metrics().await) == Some(0.0)).then_some(())
    })
    .await;
    assert!(cleared.is_some(), "{}", notifier.metrics().await);
    notifier.stop().await;
}
