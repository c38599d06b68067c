//! Operators act from the dashboard (#14), in a real browser against the whole pipeline
//! (`sdash-sim`, a collector, the writer on SQLite, the API with operator tokens, a real
//! nats-server): session A acknowledges, assigns and comments an alert, after giving its operator
//! token when the dashboard asks for it; session B, open on the same alert, sees each change
//! without reloading; after a reload the changes are still there, the acknowledged filter finds
//! the alert, and the system's card no longer counts it. Then bulk actions over selected alerts,
//! and "Poll now" with its polite answer to a second press (429).
//!
//! Headless Chromium through chromedriver, as in `dashboard.rs` (`sdash_testkit::webdriver`).

use std::time::Duration;

use anyhow::anyhow;
use sdash_harness::Backend;
use sdash_proto::Vendor;
use sdash_testkit::pipeline::{Pipeline, PipelineOptions};
use sdash_testkit::sim::{Mix, SimConfig};
use sdash_testkit::webdriver::{
    Browser, Tools, ensure_chromium, get_json, is_local, requested_urls, screenshot_dir,
    start_driver,
};
use serde_json::{Value, json};

const ALICE_TOKEN: &str = "op-token-alice-5f3a";
const BOB_TOKEN: &str = "op-token-bob-91c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_act_in_one_browser_and_another_sees_it_live() {
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    if let Err(e) = run(&tools, Backend::Sqlite).await {
        panic!("{e:#}");
    }
}

/// The same on PostgreSQL: the writer's command step and the API's reads of the alert state
/// are per backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_act_in_one_browser_and_another_sees_it_live_on_postgres() {
    sdash_testkit::install_crypto_provider();
    let tools = ensure_chromium();
    if let Err(e) = run(&tools, Backend::Postgres).await {
        panic!("{e:#}");
    }
}

async fn run(tools: &Tools, backend: Backend) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // Two degraded FlashArrays (a critical alert each, and whatever warnings the simulator has
    // open), polled once at start: a long interval keeps the alerts as they are during the test.
    let sim = SimConfig {
        systems: 2,
        seed: 11,
        mix: Mix(vec![(Vendor::Pure, 1)]),
        degraded_pct: 100,
        ..SimConfig::default()
    };
    let tokens = sdash_api::auth::OperatorTokens::parse(
        &format!("alice {ALICE_TOKEN}\nbob {BOB_TOKEN}\n"),
        None,
    )?;
    let pipeline = Pipeline::start_with_api(
        PipelineOptions {
            backend,
            sim,
            interval: "1h".into(),
            collectors: 1,
        },
        move |config| config.operator_tokens = Some(tokens),
    )
    .await?;
    let api = pipeline.api_url();
    let ids = pipeline.fleet.system_ids();
    let system = ids.first().cloned().ok_or_else(|| anyhow!("no system"))?;
    let other = ids
        .get(1)
        .cloned()
        .ok_or_else(|| anyhow!("one system only"))?;

    // The critical alert of `system`, through the pipeline.
    let alerts_url = format!("{api}/api/v1/alerts?system={system}&limit=100");
    let alert = sdash_harness::wait_for(Duration::from_secs(60), || {
        let (http, url) = (http.clone(), alerts_url.clone());
        async move {
            let v = get_json(&http, &url).await?;
            v["items"]
                .as_array()?
                .iter()
                .find(|a| a["severity"] == "critical")
                .cloned()
        }
    })
    .await
    .ok_or_else(|| anyhow!("the degraded array's critical alert did not reach the API"))?;
    let alert_id = alert["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("the alert has no id: {alert}"))?;
    sdash_harness::wait_for(Duration::from_secs(30), || {
        let (http, url) = (http.clone(), format!("{api}/api/v1/alerts?system={other}"));
        async move {
            let v = get_json(&http, &url).await?;
            (!v["items"].as_array()?.is_empty()).then_some(())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the second array's alerts did not reach the API"))?;

    // A system disabled in the inventory, with a capacity and an open alert from before: shown as
    // disabled, left out of every total.
    publish_disabled_system(&pipeline.nats.url()).await?;
    sdash_harness::wait_for(Duration::from_secs(30), || {
        let (http, url) = (http.clone(), format!("{api}/api/v1/systems/{DISABLED}"));
        async move {
            let v = get_json(&http, &url).await?;
            v["capacity"]["total_bytes"].as_u64().map(|_| ())
        }
    })
    .await
    .ok_or_else(|| anyhow!("the disabled system did not reach the API"))?;

    let driver = start_driver(tools, &http).await?;
    let a = Browser::open(&driver, tools, &http).await?;
    let b = Browser::open(&driver, tools, &http).await?;
    let result = act(&a, &b, &http, &api, &system, &other, alert_id).await;
    let result = match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut shown = String::new();
            for (name, browser) in [("A", &a), ("B", &b)] {
                let page = browser
                    .js(
                        "return location.href + '\\n' + document.body.innerText.slice(0, 1500)",
                        vec![],
                    )
                    .await
                    .unwrap_or_default();
                shown.push_str(&format!(
                    "\nsession {name} showed:\n{}",
                    page.as_str().unwrap_or("")
                ));
            }
            a.save_failure_screenshot().await;
            Err(e.context(shown))
        }
    };
    a.quit().await;
    b.quit().await;
    drop(driver);
    pipeline.stop().await;
    result
}

const DISABLED: &str = "fa-disabled-01";

/// Publishes, as a collector would, a system with `enabled = false`, and a snapshot of it with a
/// capacity and one warning alert (polled before it was disabled).
async fn publish_disabled_system(nats: &str) -> anyhow::Result<()> {
    use sdash_proto::subjects::Kind;
    use sdash_proto::{Envelope, Health, Snapshot, Status, SystemRecord};
    let client = async_nats::connect(nats).await?;
    let js = async_nats::jetstream::new(client);
    async fn send<T: serde::Serialize>(
        js: &async_nats::jetstream::Context,
        kind: Kind,
        body: T,
    ) -> anyhow::Result<()> {
        let env = Envelope::new("dashboard-commands-test", DISABLED, body);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", env.event_id.as_str());
        js.publish_with_headers(
            kind.subject(DISABLED),
            headers,
            sdash_proto::encode(&env)?.into(),
        )
        .await?
        .await?;
        Ok(())
    }
    let record = SystemRecord {
        name: "Disabled FlashArray".into(),
        vendor: Vendor::Pure,
        address: format!("https://{DISABLED}.example.net"),
        tags: Default::default(),
        interval_s: 3600,
        enabled: false,
        removed: false,
    };
    send(&js, Kind::System, record).await?;
    let mut snapshot = Snapshot::failed(Vendor::Pure, Status::Online, String::new(), 120);
    snapshot.error = None;
    snapshot.hardware = Health::Ok;
    snapshot.cluster = Health::Ok;
    snapshot.capacity = Some(serde_json::from_value(json!({
        "total_bytes": 100u64 << 40,
        "used_bytes": 50u64 << 40,
        "free_bytes": 50u64 << 40,
    }))?);
    snapshot.alerts = vec![serde_json::from_value(json!({
        "id": "disabled-alert-1",
        "severity": "warning",
        "vendor_severity": "warning",
        "title": "An alert of a disabled system",
    }))?];
    send(&js, Kind::Snapshot, snapshot).await?;
    Ok(())
}

/// Saves the page as `<name>-light.png` and `<name>-dark.png`.
async fn screenshots(b: &Browser, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    for theme in ["light", "dark"] {
        b.js(
            "document.activeElement && document.activeElement.blur(); document.documentElement.dataset.theme = arguments[0]; window.scrollTo(0, 0);",
            vec![json!(theme)],
        )
        .await?;
        b.wait(
            "the theme to apply",
            &format!("getComputedStyle(document.documentElement).colorScheme === '{theme}'"),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = b.screenshot().await?;
        anyhow::ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(dir.join(format!("{name}-{theme}.png")), png)?;
    }
    b.js("document.documentElement.dataset.theme = 'light';", vec![])
        .await?;
    Ok(())
}

/// Open alerts of `system` in the API: (all, unacknowledged).
async fn open_alert_counts(
    http: &reqwest::Client,
    api: &str,
    system: &str,
) -> anyhow::Result<(usize, usize)> {
    let v = get_json(
        http,
        &format!("{api}/api/v1/alerts?system={system}&limit=100"),
    )
    .await
    .ok_or_else(|| anyhow!("GET alerts"))?;
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let unacked = items
        .iter()
        .filter(|a| a["acknowledged"] != json!(true))
        .count();
    Ok((items.len(), unacked))
}

#[allow(clippy::too_many_arguments)]
async fn act(
    a: &Browser,
    b: &Browser,
    http: &reqwest::Client,
    api: &str,
    system: &str,
    other: &str,
    alert_id: i64,
) -> anyhow::Result<()> {
    let base = format!("{api}/");
    let page = |hash: &str| format!("{base}#{hash}");
    let row = format!("tr[data-alert-id=\"{alert_id}\"]");
    let panel = format!("[data-panel-for=\"{alert_id}\"]");
    let card = format!("#fleet-body [data-system-id=\"{system}\"]");
    for browser in [a, b] {
        browser.goto("about:blank").await?;
        let _ = requested_urls(browser).await?;
    }

    // Before: the card counts every open alert of the system.
    let (open, _) = open_alert_counts(http, api, system).await?;
    b.goto(&base).await?;
    b.wait(
        "the card counting every open alert",
        &format!(
            "Number(document.querySelector('{card} .alerts [data-count]').dataset.count) === {open}"
        ),
    )
    .await?;

    // Both sessions on the system's alerts, with the alert's panel open.
    for browser in [a, b] {
        browser
            .goto(&page(&format!("/alerts?system={system}")))
            .await?;
        browser
            .wait(
                "the alert row",
                &format!("document.querySelector('{row}') !== null"),
            )
            .await?;
        browser
            .wait(
                "the live stream",
                "document.getElementById('live').dataset.state === 'live'",
            )
            .await?;
        browser.click(&format!("{row} .details-btn")).await?;
        browser
            .wait(
                "the alert's panel with its (empty) thread",
                &format!("document.querySelector('{panel} .no-comments') !== null"),
            )
            .await?;
    }
    b.js("window.__sameDocument = 'B'", vec![]).await?;

    // A acknowledges: the dashboard asks for an operator token first (the reads need none).
    a.click(&format!("{panel} .ack-btn")).await?;
    a.wait(
        "the operator token dialog",
        "document.getElementById('token-dialog') !== null && document.getElementById('token-dialog').open",
    )
    .await?;
    a.type_text("#operator-token", ALICE_TOKEN).await?;
    a.click("#operator-token-use").await?;
    a.wait(
        "A's row acknowledged",
        &format!("document.querySelector('{row}').dataset.acknowledged === 'yes'"),
    )
    .await?;
    let stored = a
        .js(
            "return [sessionStorage.getItem('sdash.token'), localStorage.getItem('sdash.token')]",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        stored == json!([ALICE_TOKEN, null]),
        "the token is kept for the tab only: {stored}"
    );
    b.wait(
        "B seeing the acknowledgement live",
        &format!(
            "document.querySelector('{row}').dataset.acknowledged === 'yes' && \
             document.querySelector('{row} [data-ack]').innerText.includes('alice')"
        ),
    )
    .await?;

    // A assigns the alert to bob (a name typed once; later offered for autocomplete).
    a.type_text(&format!("#assignee-{alert_id}"), "bob").await?;
    a.click(&format!("{panel} .assign-btn")).await?;
    b.wait(
        "B seeing the assignee live",
        &format!("document.querySelector('{row} [data-assignee]')?.dataset.assignee === 'bob'"),
    )
    .await?;

    // A comments; B's open thread shows it with its author and time.
    let text = "PSU CH0.PWR1 replaced on Tuesday, ticket INC-4711";
    a.type_text(&format!("#comment-{alert_id}"), text).await?;
    a.click(&format!("{panel} .comment-btn")).await?;
    b.wait(
        "B seeing the comment live",
        &format!(
            "(() => {{ const c = document.querySelector('{panel} .comment-thread .comment'); \
             return c && c.dataset.author === 'alice' && c.querySelector('.comment-text').innerText === {text:?} \
             && /\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d/.test(c.querySelector('.comment-at').innerText); }})()"
        ),
    )
    .await?;
    anyhow::ensure!(
        b.js("return window.__sameDocument", vec![]).await? == json!("B"),
        "session B reloaded"
    );
    screenshots(b, "alert-actions").await?;

    // The autocomplete offers bob now.
    a.wait(
        "bob among the suggested assignees",
        "[...document.querySelectorAll('#assignee-names option')].some(o => o.value === 'bob')",
    )
    .await?;

    // After a reload: all still there.
    b.goto("about:blank").await?;
    b.goto(&page(&format!("/alerts?system={system}"))).await?;
    anyhow::ensure!(
        b.js("return window.__sameDocument ?? null", vec![]).await? == Value::Null,
        "session B did not reload"
    );
    b.wait(
        "the acknowledged, assigned alert after a reload",
        &format!(
            "document.querySelector('{row}').dataset.acknowledged === 'yes' && \
             document.querySelector('{row} [data-assignee]')?.dataset.assignee === 'bob' && \
             document.querySelector('{row} [data-comments]')?.dataset.comments === '1'"
        ),
    )
    .await?;
    b.click(&format!("{row} .details-btn")).await?;
    b.wait(
        "the thread after a reload",
        &format!("document.querySelector('{panel} .comment-thread .comment-text')?.innerText === {text:?}"),
    )
    .await?;

    // The acknowledged filter.
    b.goto(&page("/alerts?acknowledged=true")).await?;
    b.wait(
        "only the acknowledged alert",
        &format!(
            "document.getElementById('f-acknowledged').value === 'true' && \
             document.querySelectorAll('.alerts-table tr[data-alert-id]').length === 1 && document.querySelector('{row}') !== null"
        ),
    )
    .await?;
    b.goto(&page("/alerts?acknowledged=false")).await?;
    b.wait(
        "the others without it",
        &format!(
            "document.querySelectorAll('.alerts-table tr[data-alert-id]').length > 0 && document.querySelector('{row}') === null"
        ),
    )
    .await?;

    // The card no longer counts the acknowledged alert (and says it is there).
    let (open, unacked) = open_alert_counts(http, api, system).await?;
    anyhow::ensure!(
        unacked + 1 == open,
        "the API: {open} open, {unacked} unacknowledged"
    );
    b.goto("about:blank").await?;
    b.goto(&base).await?;
    b.wait(
        "the card counting the unacknowledged alerts only",
        &format!(
            "Number(document.querySelector('{card} .alerts [data-count]').dataset.count) === {unacked} && \
             document.querySelector('{card} .alerts [data-acked]')?.dataset.acked === '1'"
        ),
    )
    .await?;
    let tile = b.text("#tile-alerts .v").await?;
    let (other_open, _) = open_alert_counts(http, api, other).await?;
    anyhow::ensure!(
        tile == (unacked + other_open).to_string(),
        "the fleet's open-alert tile counts the unacknowledged alerts of enabled systems: {tile}, expected {}",
        unacked + other_open
    );
    // The disabled system: shown as disabled, in no total.
    let disabled_card = format!("#fleet-body [data-system-id=\"{DISABLED}\"]");
    b.wait(
        "the disabled system shown as disabled",
        &format!(
            "document.querySelector('{disabled_card} .st [data-value]')?.dataset.value === 'disabled' && \
             document.querySelector('{disabled_card}').classList.contains('st-off')"
        ),
    )
    .await?;
    anyhow::ensure!(
        b.text("#tile-systems .v").await? == "3 (1 disabled)",
        "systems tile: {}",
        b.text("#tile-systems .v").await?
    );
    anyhow::ensure!(
        b.text("#tile-online .v").await? == "2",
        "the online tile leaves the disabled system out"
    );
    let capacity_all = b.text("#tile-capacity .v").await?;
    b.goto(&page("/?q=sim-pure")).await?;
    b.wait(
        "the two enabled systems",
        "document.querySelectorAll('#fleet-body [data-system-id]').length === 2",
    )
    .await?;
    let capacity_enabled = b.text("#tile-capacity .v").await?;
    anyhow::ensure!(
        capacity_all == capacity_enabled,
        "the capacity total leaves the disabled system out: {capacity_all} vs {capacity_enabled}"
    );

    // Bulk: B selects every alert of both systems and assigns them to carol; A sees it live.
    a.goto(&page("/alerts")).await?;
    a.wait(
        "the fleet's alerts",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length > 1",
    )
    .await?;
    a.js("window.__sameDocument = 'A'", vec![]).await?;
    b.goto(&page("/alerts")).await?;
    b.wait(
        "the fleet's alerts",
        "document.querySelectorAll('.alerts-table tr[data-alert-id]').length > 1",
    )
    .await?;
    anyhow::ensure!(
        b.js(
            "return document.getElementById('bulk-ack').disabled",
            vec![]
        )
        .await?
            == json!(true),
        "bulk actions are disabled without a selection"
    );
    b.click("#select-all").await?;
    let selected = b
        .js(
            "return document.querySelectorAll('.alerts-table .select-alert:checked').length",
            vec![],
        )
        .await?;
    let rows = b
        .js(
            "return document.querySelectorAll('.alerts-table tr[data-alert-id]').length",
            vec![],
        )
        .await?;
    anyhow::ensure!(selected == rows, "select all: {selected} of {rows}");
    b.wait(
        "the count of selected alerts",
        &format!("document.getElementById('bulk-count').innerText === '{rows} selected'"),
    )
    .await?;
    b.type_text("#bulk-assignee", "carol").await?;
    b.click("#bulk-assign").await?;
    // B has no token yet: it is asked for one (bob's), and the bulk command goes through.
    b.wait(
        "the operator token dialog in B",
        "document.getElementById('token-dialog')?.open === true",
    )
    .await?;
    b.type_text("#operator-token", BOB_TOKEN).await?;
    b.click("#operator-token-use").await?;
    a.wait(
        "A seeing every alert assigned to carol, live",
        "[...document.querySelectorAll('.alerts-table tr[data-alert-id]')].every(r => r.querySelector('[data-assignee]')?.dataset.assignee === 'carol')",
    )
    .await?;
    anyhow::ensure!(
        a.js("return window.__sameDocument", vec![]).await? == json!("A"),
        "session A reloaded"
    );
    // The audit names the actors.
    let audit = get_json(http, &format!("{api}/api/v1/audit?limit=100"))
        .await
        .ok_or_else(|| anyhow!("GET audit"))?;
    let actors: Vec<(String, String)> = audit["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or("").to_owned(),
                i["actor"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (kind, actor) in [
        ("acknowledge", "alice"),
        ("assign", "alice"),
        ("comment", "alice"),
        ("assign", "bob"),
    ] {
        anyhow::ensure!(
            actors.iter().any(|(k, a)| k == kind && a == actor),
            "the audit lacks {kind} by {actor}: {actors:?}"
        );
    }

    // Poll now on the system page; a second press within the rate limit is answered politely.
    a.goto(&page(&format!("/systems/{system}"))).await?;
    a.wait(
        "the poll-now button",
        "document.getElementById('poll-now') !== null",
    )
    .await?;
    let last_poll = a
        .wait(
            "the time of the last poll",
            "document.querySelector('#sys-head [data-age]')?.dataset.age",
        )
        .await?;
    a.js("window.__sameDocument = 'A2'", vec![]).await?;
    a.click("#poll-now").await?;
    a.wait(
        "the poll requested",
        "document.getElementById('poll-now-status').dataset.state === 'sent'",
    )
    .await?;
    // The extra poll (the interval is an hour) arrives over the live stream.
    a.wait(
        "the new poll shown live",
        &format!("Number(document.querySelector('#sys-head [data-age]').dataset.age) > Number({last_poll})"),
    )
    .await?;
    anyhow::ensure!(
        a.js("return window.__sameDocument", vec![]).await? == json!("A2"),
        "session A reloaded"
    );
    a.click("#poll-now").await?;
    let polite = a
        .wait(
            "the too-soon answer",
            "document.getElementById('poll-now-status').dataset.state === 'too-soon' && document.getElementById('poll-now-status').innerText",
        )
        .await?;
    anyhow::ensure!(
        polite.as_str().is_some_and(|t| t.contains("Try again")),
        "the 429 is explained: {polite}"
    );

    // Nothing but 127.0.0.1, and no script error or CSP violation.
    for browser in [a, b] {
        let foreign: Vec<String> = requested_urls(browser)
            .await?
            .into_iter()
            .filter(|u| !is_local(u))
            .collect();
        anyhow::ensure!(foreign.is_empty(), "requests left 127.0.0.1: {foreign:?}");
        let problems: Vec<String> = browser
            .logs("browser")
            .await?
            .iter()
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .filter(|m| {
                m.contains("Content Security Policy")
                    || m.contains("Refused to")
                    || m.contains("Uncaught")
            })
            .collect();
        anyhow::ensure!(problems.is_empty(), "browser console: {problems:?}");
    }
    Ok(())
}
