//! `sdash-writer import`: a database in the predecessor's schema (built here from
//! `predecessor.md`, with messy rows) and its history CSV are imported through a real
//! nats-server and a running writer, on both backends. Exact byte values land in
//! `capacity_daily` marked `imported`, a day sdash measured stays measured, logs become
//! events (kept by retention when asked), alert states become commands on open alert
//! instances, and the summary names every skipped row with its reason. A second run imports
//! nothing.

mod common;

use std::time::Duration;

use common::*;
use sdash_harness::{Backend, NatsServer, TestDatabase, wait_for};
use sdash_proto::subjects::Kind;
use sdash_proto::*;
use sdash_writer::import::{ImportArgs, Summary, import};
use sdash_writer::store::utc_day;
use sdash_writer::{RetentionPolicy, Store, WriterConfig};

const DAY: i64 = 86_400_000;
const SYSTEM: &str = "flasharray-prod-01";

/// The UTC day `n` days before today.
fn day(n: i64) -> String {
    utc_day(now_ms() - n * DAY)
}

fn day_start(n: i64) -> i64 {
    (now_ms() - n * DAY).div_euclid(DAY) * DAY
}

/// The predecessor's tables (predecessor.md), in each backend's types; credential columns too.
fn schema(backend: Backend) -> Vec<String> {
    let (dt, float) = match backend {
        Backend::Sqlite => ("DATETIME", "FLOAT"),
        Backend::Postgres => ("TIMESTAMP", "DOUBLE PRECISION"),
    };
    vec![
        format!(
            "CREATE TABLE storage_systems (id INTEGER PRIMARY KEY, name VARCHAR(100) UNIQUE, \
             vendor VARCHAR(50), ip_address VARCHAR(100), port INTEGER, enabled BOOLEAN, \
             cluster_type VARCHAR(50), node_count INTEGER, site_count INTEGER, dns_names TEXT, \
             all_ips TEXT, node_details TEXT, peer_connections TEXT, metrocluster_info TEXT, \
             metrocluster_dr_groups TEXT, ha_info TEXT, os_version VARCHAR(100), \
             api_version VARCHAR(50), pure1_array_name VARCHAR(100), partner_cluster_id INTEGER, \
             discovery_error TEXT, created_at {dt}, updated_at {dt}, last_discovery {dt}, \
             api_username TEXT, api_password TEXT, api_token TEXT)"
        ),
        "CREATE TABLE tag_groups (id INTEGER PRIMARY KEY, name VARCHAR(100) UNIQUE, description TEXT)".into(),
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, name VARCHAR(100), group_id INTEGER, UNIQUE (name, group_id))".into(),
        "CREATE TABLE storage_system_tags (system_id INTEGER, tag_id INTEGER)".into(),
        format!(
            "CREATE TABLE capacity_history (id INTEGER PRIMARY KEY, system_id INTEGER, date DATE, \
             total_tb {float}, used_tb {float}, free_tb {float}, percent_used {float}, \
             provisioned_tb {float}, UNIQUE (system_id, date))"
        ),
        format!(
            "CREATE TABLE capacity_snapshots (id INTEGER PRIMARY KEY, system_id INTEGER, fetched_at {dt}, \
             total_tb {float}, used_tb {float}, free_tb {float}, percent_used {float}, percent_free {float}, \
             provisioned_tb {float}, percent_provisioned {float}, error TEXT)"
        ),
        format!(
            "CREATE TABLE system_logs (id INTEGER PRIMARY KEY, system_id INTEGER, \"timestamp\" {dt}, \
             level VARCHAR(20), category VARCHAR(50), message TEXT, details TEXT, status_code INTEGER, \
             api_endpoint VARCHAR(200))"
        ),
        format!(
            "CREATE TABLE alert_states (id INTEGER PRIMARY KEY, alert_key VARCHAR(500) UNIQUE, \
             acknowledged BOOLEAN, assignee VARCHAR(200), comment TEXT, updated_at {dt})"
        ),
        format!("CREATE TABLE assignee_history (id INTEGER PRIMARY KEY, name VARCHAR(200) UNIQUE, used_at {dt})"),
        "CREATE TABLE app_settings (id INTEGER PRIMARY KEY, key VARCHAR(100) UNIQUE, value TEXT)".into(),
    ]
}

/// The planted credential: it must appear nowhere sdash writes.
const SECRET: &str = "hunter2-planted-secret";

/// Messy rows: an unknown vendor, a missing vendor and name, names equal but for case, NULLs,
/// orphans of deleted systems in every child table, a day sdash measured, alert states that
/// map, that are orphaned and that have nothing to bring.
fn pred_rows() -> Vec<String> {
    let mut r: Vec<String> = vec![
        format!(
            "INSERT INTO storage_systems (id, name, vendor, ip_address, port, enabled, cluster_type, created_at, updated_at, api_username, api_password, api_token) VALUES \
             (1, 'FlashArray Prod 01', 'pure', '10.0.0.1', 443, TRUE, 'active-cluster', '2024-01-01 08:00:00', '2025-06-01 09:30:00', NULL, NULL, '{SECRET}'), \
             (2, 'DD Backup 01', 'dell-datadomain', 'dd01.example.net', 3009, FALSE, 'local', NULL, NULL, 'sysadmin', '{SECRET}', NULL), \
             (3, 'Hitachi G350', 'hitachi-vsp', '10.0.0.3', 443, TRUE, NULL, NULL, NULL, NULL, NULL, NULL), \
             (4, 'flasharray prod 01', 'pure', 'fa4.example.net', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
             (5, 'ONTAP Cluster A', 'netapp-ontap', 'ontap-a.example.net', 8443, TRUE, 'metrocluster', NULL, NULL, 'admin', '{SECRET}', NULL), \
             (6, 'No Vendor', NULL, '10.0.0.6', 443, TRUE, NULL, NULL, NULL, NULL, NULL, NULL), \
             (7, '', 'pure', '10.0.0.7', 443, TRUE, NULL, NULL, NULL, NULL, NULL, NULL)"
        ),
        "INSERT INTO tag_groups (id, name) VALUES (1, 'Storage Art'), (2, 'Landschaft'), (3, 'Themenzugehörigkeit')".into(),
        "INSERT INTO tags (id, name, group_id) VALUES (1, 'Block', 1), (2, 'Produktion', 2), (3, 'Apps', 3), (4, 'DBS', 3), (5, 'Lost', 99), (6, 'Backup', 1)".into(),
        // Link rows in (system, tag) order: 1 (1,1) 2 (1,2) 3 (1,3) 4 (1,4) 5 (1,99 orphan tag)
        // 6 (2,5 orphan group) 7 (2,6) 8 (3,1 system not imported) 9 (77,1 orphan system).
        "INSERT INTO storage_system_tags (system_id, tag_id) VALUES (1, 1), (1, 2), (1, 3), (1, 4), (1, 99), (2, 5), (2, 6), (3, 1), (77, 1)".into(),
        format!(
            "INSERT INTO capacity_history (id, system_id, date, total_tb, used_tb, free_tb, percent_used) VALUES \
             (1, 1, '{}', 100.00, 61.52, 38.48, 61.52), \
             (2, 1, '{}', 256.23, 256.02, 0.0, 99.9), \
             (3, 1, '{}', 100.00, 70.00, 30.00, 70.0), \
             (4, 1, '{}', NULL, 10.0, 0.0, NULL), \
             (5, 1, '{}', 100.00, 71.00, 29.00, 71.0), \
             (6, 1, NULL, 100.00, 71.00, 29.00, 71.0), \
             (7, 2, '{}', 50.00, 10.50, 0.0, 21.0), \
             (8, 3, '{}', 10.00, 1.00, 9.00, 10.0), \
             (9, 77, '{}', 10.00, 1.00, 9.00, 10.0), \
             (10, 4, '{}', 1.50, 0.75, 0.75, 50.0)",
            day(5),
            day(4),
            day(3),
            day(2),
            day(0),
            day(5),
            day(5),
            day(5),
            day(5),
        ),
        format!(
            "INSERT INTO system_logs (id, system_id, \"timestamp\", level, category, message, details, status_code, api_endpoint) VALUES \
             (1, 1, '2024-01-15 10:00:00', 'INFO', 'connection', 'connected', NULL, NULL, NULL), \
             (2, 1, '{} 12:00:00.250000', 'WARNING', 'api_call', 'GET /api/2.x/arrays failed', 'HTTP 503 from the array', 503, '/api/2.x/arrays'), \
             (3, 1, NULL, 'ERROR', 'connection', 'no time', NULL, NULL, NULL), \
             (4, 1, '2025-03-01 00:00:01', 'CRITICAL', 'weird', 'something odd', NULL, NULL, NULL), \
             (5, 77, '2025-03-01 00:00:01', 'ERROR', 'connection', 'orphan', NULL, NULL, NULL), \
             (6, 3, '2025-03-01 00:00:01', 'ERROR', 'connection', 'of an unknown vendor', NULL, NULL, NULL)",
            day(1)
        ),
        "INSERT INTO alert_states (id, alert_key, acknowledged, assignee, comment, updated_at) VALUES \
         (1, 'FlashArray Prod 01|42|Drive failed | slot 3', TRUE, 'bob', 'replacing the drive', '2025-06-02 10:00:00'), \
         (2, 'Old Array|7|gone', TRUE, NULL, NULL, '2024-02-01 10:00:00'), \
         (3, 'FlashArray Prod 01|99|cleared long ago', TRUE, NULL, NULL, '2024-02-01 10:00:00'), \
         (4, 'DD Backup 01|5|quiet', FALSE, NULL, NULL, NULL), \
         (5, 'Hitachi G350|1|controller', TRUE, NULL, NULL, NULL)"
            .into(),
        "INSERT INTO assignee_history (id, name, used_at) VALUES (1, 'bob', '2025-06-02 10:00:00'), (2, 'alice', '2025-05-01 08:00:00'), (3, NULL, NULL)".into(),
        "INSERT INTO app_settings (id, key, value) VALUES (1, 'log_retention_days', '30'), (2, 'max_logs_per_system', '1000'), (3, 'min_log_level', 'INFO')".into(),
    ];
    r.retain(|s| !s.is_empty());
    r
}

/// A running writer on a fresh sdash database, and a JetStream context.
struct Sdash {
    nats: NatsServer,
    db: TestDatabase,
    _writer: WriterProcess,
    dir: tempfile::TempDir,
    js: async_nats::jetstream::Context,
}

async fn sdash(backend: Backend) -> Sdash {
    let nats = NatsServer::start();
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let writer = WriterProcess::spawn(&nats.url(), &db.url, "w1", dir.path(), &[]);
    let ready = wait_for(Duration::from_secs(60), || async {
        writer.ready().await.then_some(())
    })
    .await;
    assert!(ready.is_some(), "writer not ready: {}", writer.log_text());
    let js = jetstream(&nats.url()).await;
    Sdash {
        nats,
        db,
        _writer: writer,
        dir,
        js,
    }
}

impl Sdash {
    fn config(&self) -> WriterConfig {
        WriterConfig::new(&self.nats.url(), &self.db.url)
    }

    /// Waits until `sql` (a count) reaches `n`.
    async fn until(&self, table_and_where: &str, n: i64) {
        let reached = wait_for(Duration::from_secs(30), || async {
            (count(&self.db, table_and_where).await >= n).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "{table_and_where}: {} rows, expected {n}",
            count(&self.db, table_and_where).await
        );
    }

    /// A snapshot of `system` at noon `days_ago`, with capacity and one open alert, as a
    /// collector publishes it: a day sdash measured itself.
    async fn measure(&self, system: &str, days_ago: i64, alert_title: &str) -> i64 {
        let at = day_start(days_ago) + 12 * 3_600_000;
        let mut body = Snapshot::failed(Vendor::Pure, Status::Online, String::new(), 10);
        body.error = None;
        body.hardware = Health::Ok;
        body.cluster = Health::Ok;
        body.capacity = Some(Capacity {
            total_bytes: 1_000_000,
            used_bytes: 400_000,
            free_bytes: 600_000,
            data_reduction: None,
            provisioned_bytes: None,
        });
        body.alerts = vec![Alert {
            id: "42".into(),
            severity: Severity::Error,
            vendor_severity: "critical".into(),
            title: alert_title.into(),
            component: None,
            opened_at: None,
        }];
        let env = envelope(system, &format!("snap-{system}-{at}"), at, body);
        publish_acked(
            &self.js,
            Kind::Snapshot.subject(system),
            enc(&env),
            &env.event_id,
        )
        .await;
        at
    }
}

/// Every message in the SDASH stream: (subject, payload), and the last sequence.
async fn stream_messages(js: &async_nats::jetstream::Context) -> (Vec<(String, Vec<u8>)>, u64) {
    let mut stream = js
        .get_stream(sdash_proto::subjects::STREAM)
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    let last = stream
        .info()
        .await
        .unwrap_or_else(|e| panic!("stream info: {e}"))
        .state
        .last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push((m.subject.to_string(), m.payload.to_vec()));
        }
    }
    (out, last)
}

fn counts(s: &Summary, what: &str) -> (u64, u64, u64, u64) {
    let c = s.counts.get(what).copied().unwrap_or_default();
    (c.read, c.imported, c.already, c.skipped)
}

async fn a_predecessor_database_is_imported_once(backend: Backend) {
    let s = sdash(backend).await;
    // sdash measured the flash array three days ago and sees its alert 42 open.
    let opened = s.measure(SYSTEM, 3, "Drive failed | slot 3").await;
    s.until("capacity_daily", 1).await;

    // The predecessor's database, of the same backend.
    let pred = TestDatabase::new(backend).await;
    let pred_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            pred.dir()
                .map(|d| d.join("storage.db"))
                .unwrap_or_default()
                .display()
        ),
        Backend::Postgres => pred.url.clone(),
    };
    exec_all(backend, &pred_url, &schema(backend)).await;
    exec_all(backend, &pred_url, &pred_rows()).await;
    let inventory = s.dir.path().join("inventory.toml");
    let mut args = ImportArgs::none();
    match backend {
        Backend::Sqlite => {
            args.from_sqlite = pred.dir().map(|d| d.join("storage.db"));
        }
        Backend::Postgres => args.from_postgres = Some(pred.url.clone()),
    }
    args.inventory_out = Some(inventory.clone());
    args.wait = Duration::from_secs(60);

    // A dry run says what would happen and publishes nothing.
    let dry = import(
        &s.config(),
        &ImportArgs {
            dry_run: true,
            ..args.clone()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("dry run: {e:#}"));
    assert!(dry.dry_run);
    assert_eq!(counts(&dry, "capacity days"), (10, 4, 1, 5), "{dry}");
    // Without --keep-imported-events the rows from 2024 and 2025-03 would be deleted by the
    // 30-day retention.
    assert_eq!(dry.retention_would_remove, Some((2, 0)), "{dry}");
    assert!(!inventory.exists(), "a dry run writes no file");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&s.db, "capacity_daily").await, 1);
    assert_eq!(count(&s.db, "events").await, 0);

    // The import.
    args.keep_events = true;
    let first = import(&s.config(), &args)
        .await
        .unwrap_or_else(|e| panic!("import: {e:#}"));
    let text = first.to_string();
    assert_eq!(first.stored, Some(true), "{text}");
    assert_eq!(counts(&first, "systems"), (7, 4, 0, 3), "{text}");
    assert_eq!(counts(&first, "capacity days"), (10, 4, 1, 5), "{text}");
    assert_eq!(counts(&first, "events"), (6, 3, 0, 3), "{text}");
    assert_eq!(counts(&first, "alert states"), (5, 1, 0, 4), "{text}");
    assert_eq!(counts(&first, "assignee names"), (3, 2, 0, 1), "{text}");
    assert_eq!(counts(&first, "system tags"), (9, 5, 0, 4), "{text}");
    assert_eq!(first.retention_would_remove, None);
    // Every skipped row, by table, with its reason.
    let skipped = |table: &str, reason: &str| first.skipped_for(table, reason);
    assert_eq!(
        skipped("storage_systems", "unknown vendor \"hitachi-vsp\""),
        [3]
    );
    assert_eq!(skipped("storage_systems", "no vendor"), [6]);
    assert_eq!(skipped("storage_systems", "no name"), [7]);
    assert_eq!(skipped("capacity_history", "total_tb is empty"), [4]);
    assert_eq!(skipped("capacity_history", "today or later"), [5]);
    assert_eq!(skipped("capacity_history", "date is empty"), [6]);
    assert_eq!(skipped("capacity_history", "system 3 is not imported"), [8]);
    assert_eq!(skipped("capacity_history", "orphan: system 77"), [9]);
    assert_eq!(skipped("system_logs", "timestamp is empty"), [3]);
    assert_eq!(skipped("system_logs", "orphan: system 77"), [5]);
    assert_eq!(skipped("system_logs", "system 3 is not imported"), [6]);
    assert_eq!(skipped("alert_states", "names no system"), [2]);
    assert_eq!(skipped("alert_states", "no open alert in sdash"), [3]);
    assert_eq!(skipped("alert_states", "nothing to bring"), [4]);
    assert_eq!(skipped("alert_states", "system 3 is not imported"), [5]);
    assert_eq!(skipped("assignee_history", "no name"), [3]);
    assert_eq!(skipped("storage_system_tags", "orphan: tag 99"), [5]);
    assert_eq!(skipped("storage_system_tags", "tag group of tag 5"), [6]);
    assert_eq!(
        skipped("storage_system_tags", "system 3 is not imported"),
        [8]
    );
    assert_eq!(skipped("storage_system_tags", "orphan: system 77"), [9]);
    assert_eq!(first.skipped_rows(), 3 + 5 + 3 + 4 + 1 + 4);
    assert!(
        text.contains("capacity_history id 9: orphan: system 77 no longer exists"),
        "{text}"
    );
    assert!(
        first
            .predecessor_settings
            .contains(&"--event-retention-days 30".to_owned())
    );

    // Exact bytes: round(TiB × 1024^4), half away from zero; free = total - used.
    let daily = |system: &str| {
        format!(
            "SELECT day, CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT), CAST(free_bytes AS TEXT), \
             source, CAST(samples AS TEXT), CAST(last_at AS TEXT) FROM capacity_daily WHERE system_id = '{system}' ORDER BY day"
        )
    };
    let got = rows(&s.db, &daily(SYSTEM)).await;
    let row = |d: i64, t: &str, u: &str, f: &str, source: &str, samples: &str, last: i64| {
        [
            Some(day(d)),
            Some(t.to_owned()),
            Some(u.to_owned()),
            Some(f.to_owned()),
            Some(source.to_owned()),
            Some(samples.to_owned()),
            Some(last.to_string()),
        ]
        .to_vec()
    };
    assert_eq!(
        got,
        vec![
            row(
                5,
                "109951162777600",
                "67641955340780",
                "42309207436820",
                "imported",
                "1",
                day_start(5) + DAY - 1
            ),
            // 256.23 TiB is exactly …044.5 bytes as a double: rounded away from zero.
            row(
                4,
                "281727864385045",
                "281496966943212",
                "230897441833",
                "imported",
                "1",
                day_start(4) + DAY - 1
            ),
            // The day sdash measured keeps its own values.
            row(3, "1000000", "400000", "600000", "measured", "1", opened),
        ],
    );
    assert_eq!(
        rows(&s.db, &daily("dd-backup-01")).await,
        vec![row(
            5,
            "54975581388800",
            "11544872091648",
            "43430709297152",
            "imported",
            "1",
            day_start(5) + DAY - 1
        )]
    );
    assert_eq!(
        rows(&s.db, &daily("flasharray-prod-01-4")).await,
        vec![row(
            5,
            "1649267441664",
            "824633720832",
            "824633720832",
            "imported",
            "1",
            day_start(5) + DAY - 1
        )]
    );

    // The systems sdash did not know are registered with their names, tags and addresses.
    let systems = rows(
        &s.db,
        "SELECT id, name, vendor, address, tags, CAST(CAST(enabled AS INTEGER) AS TEXT) FROM systems ORDER BY id",
    )
    .await;
    let sys = |id: &str, name: &str, vendor: &str, address: &str, tags: &str, enabled: &str| {
        [id, name, vendor, address, tags, enabled]
            .map(|v| Some(v.to_owned()))
            .to_vec()
    };
    assert_eq!(
        systems,
        vec![
            sys(
                "dd-backup-01",
                "DD Backup 01",
                "datadomain",
                "https://dd01.example.net:3009",
                r#"{"storage_art":"Backup"}"#,
                "0"
            ),
            sys(
                SYSTEM,
                "FlashArray Prod 01",
                "pure",
                "https://10.0.0.1",
                r#"{"landschaft":"Produktion","storage_art":"Block","themenzugehoerigkeit":"Apps, DBS"}"#,
                "1"
            ),
            sys(
                "flasharray-prod-01-4",
                "flasharray prod 01",
                "pure",
                "https://fa4.example.net",
                "{}",
                "1"
            ),
            sys(
                "ontap-cluster-a",
                "ONTAP Cluster A",
                "ontap",
                "https://ontap-a.example.net:8443",
                "{}",
                "1"
            ),
        ]
    );

    // Logs became events: naive UTC → ms, levels and categories mapped, details kept, kept.
    let events = rows(
        &s.db,
        &format!(
            "SELECT CAST(observed_at AS TEXT), level, category, message, details, CAST(http_status AS TEXT), endpoint, \
             CAST(CAST(keep AS INTEGER) AS TEXT), collector_id FROM events WHERE system_id = '{SYSTEM}' ORDER BY observed_at"
        ),
    )
    .await;
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let ev = |at: i64,
              level: &str,
              cat: &str,
              msg: &str,
              details: &str,
              status: &str,
              endpoint: &str| {
        vec![
            Some(at.to_string()),
            opt(level),
            opt(cat),
            opt(msg),
            opt(details),
            opt(status),
            opt(endpoint),
            Some("1".into()),
            Some("sdash-import".into()),
        ]
    };
    assert_eq!(
        events,
        vec![
            ev(
                1_705_312_800_000,
                "info",
                "connection",
                "connected",
                "",
                "",
                ""
            ),
            ev(
                1_740_787_201_000,
                "critical",
                "data_query",
                "something odd",
                "[predecessor category: weird]",
                "",
                ""
            ),
            ev(
                day_start(1) + 12 * 3_600_000 + 250,
                "warning",
                "api_call",
                "GET /api/2.x/arrays failed",
                "HTTP 503 from the array",
                "503",
                "/api/2.x/arrays"
            ),
        ]
    );

    // The alert state became commands on sdash's open instance of alert 42.
    s.until(
        "alerts WHERE acknowledged_by = 'predecessor-import' AND assignee = 'bob'",
        1,
    )
    .await;
    s.until("alert_comments WHERE body = 'replacing the drive'", 1)
        .await;
    assert_eq!(
        rows(&s.db, "SELECT name FROM assignees ORDER BY name").await,
        vec![vec![Some("alice".to_owned())], vec![Some("bob".to_owned())]]
    );

    // The inventory: every imported system, secrets as files to fill, no secret in it.
    let toml = std::fs::read_to_string(&inventory).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !toml.contains(SECRET) && !toml.contains("sysadmin"),
        "{toml}"
    );
    assert!(
        toml.contains("api_token_file = \"secrets/flasharray-prod-01.token\""),
        "{toml}"
    );
    assert!(
        toml.contains("password_file = \"secrets/dd-backup-01.password\""),
        "{toml}"
    );
    assert!(toml.contains("enabled = false"), "{toml}");
    // Two FlashArray tokens; a user name and a password file for the DataDomain and the ONTAP.
    assert_eq!(first.secret_files.len(), 2 + 2 * 2);
    assert!(
        toml.contains("username_file = \"secrets/dd-backup-01.username\""),
        "{toml}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains("sysadmin"),
        "{text}"
    );
    let secret_rows = rows(
        &s.db,
        &format!("SELECT CAST(count(*) AS TEXT) FROM events WHERE message LIKE '%{SECRET}%' OR details LIKE '%{SECRET}%'"),
    )
    .await;
    assert_eq!(secret_rows, vec![vec![Some("0".to_owned())]]);

    // Nothing secret went on the bus; the history travelled on its own subjects.
    let (messages, last_seq) = stream_messages(&s.js).await;
    for (subject, payload) in &messages {
        let text = String::from_utf8_lossy(payload);
        assert!(
            !text.contains(SECRET) && !text.contains("sysadmin"),
            "{subject}: {text}"
        );
    }
    let history = messages
        .iter()
        .filter(|(subject, _)| subject.starts_with("sdash.v1.history."))
        .count();
    // Days of three systems, events of one.
    assert_eq!(history, 4, "history records");
    assert!(
        !messages
            .iter()
            .any(|(subject, _)| subject.starts_with("sdash.v1.event."))
    );

    // A second run imports nothing: not one message more in the stream.
    let second = import(&s.config(), &args)
        .await
        .unwrap_or_else(|e| panic!("second import: {e:#}"));
    let text2 = second.to_string();
    assert_eq!(counts(&second, "systems"), (7, 0, 4, 3), "{text2}");
    assert_eq!(counts(&second, "capacity days"), (10, 0, 5, 5), "{text2}");
    assert_eq!(counts(&second, "events"), (6, 0, 3, 3), "{text2}");
    assert_eq!(counts(&second, "alert states"), (5, 0, 1, 4), "{text2}");
    assert_eq!(counts(&second, "assignee names"), (3, 0, 2, 1), "{text2}");
    assert_eq!(stream_messages(&s.js).await.1, last_seq, "{text2}");
    assert_eq!(count(&s.db, "capacity_daily").await, 5);
    assert_eq!(count(&s.db, "events").await, 3);
    assert_eq!(count(&s.db, "alert_comments").await, 1);
    assert_eq!(
        count(&s.db, "command_audit WHERE publisher = 'sdash-import'").await,
        5,
        "ack + assign + comment + two names, once each"
    );

    // Retention leaves the kept imported events alone, even the one from 2024.
    let store = Store::open(&s.db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    store
        .apply_retention(&RetentionPolicy::default())
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    store.close().await;
    assert_eq!(count(&s.db, "events").await, 3);
}

async fn a_history_csv_is_imported_once(backend: Backend) {
    let s = sdash(backend).await;
    // sdash knows the array from its inventory and measured it three days ago.
    let record = SystemRecord {
        name: "FlashArray Prod 01".into(),
        vendor: Vendor::Pure,
        address: "https://fa.example.net".into(),
        tags: Default::default(),
        interval_s: 60,
        enabled: true,
        removed: false,
    };
    let env = envelope("fa-csv-01", "sys-fa-csv-01", now_ms() - 10 * DAY, record);
    publish_acked(
        &s.js,
        Kind::System.subject("fa-csv-01"),
        enc(&env),
        &env.event_id,
    )
    .await;
    s.measure("fa-csv-01", 3, "fan").await;
    s.until("capacity_daily", 1).await;

    let mut csv = String::from("date,system_name,total_tb,used_tb,free_tb,percent_used\n");
    csv.push_str(&format!(
        "{},FlashArray Prod 01,100.00,61.52,38.48,61.5\n",
        day(5)
    )); // 2
    csv.push_str(&format!("{},flasharray prod 01,256.23,256.02,,\n", day(4))); // 3
    csv.push_str(&format!("{},FlashArray Prod 01,100,70,30,70\n", day(3))); // 4: measured
    csv.push_str(&format!("{},FlashArray Prod 01,1,1,,\n", day(4))); // 5: repeat
    csv.push_str("31.01.2025,FlashArray Prod 01,1,1,,\n"); // 6: date
    csv.push_str(&format!("{},Unknown Array,1,1,,\n", day(2))); // 7: no such system
    csv.push_str(&format!("{},FlashArray Prod 01,abc,1,,\n", day(2))); // 8: not a number
    for w in [21, 14, 7] {
        csv.push_str(&format!("{},Weekly Array,700,420,280,60\n", day(w))); // 9-11: weekly
    }
    csv.push_str(&format!("{},FlashArray Prod 01,1,1,,\n", day(0))); // 12: today
    let path = s.dir.path().join("history.csv");
    std::fs::write(&path, &csv).unwrap_or_else(|e| panic!("{e}"));
    let mut args = ImportArgs::csv(&path);
    args.wait = Duration::from_secs(60);

    let first = import(&s.config(), &args)
        .await
        .unwrap_or_else(|e| panic!("import: {e:#}"));
    let text = first.to_string();
    assert_eq!(first.stored, Some(true), "{text}");
    assert_eq!(counts(&first, "capacity days"), (11, 2, 1, 8), "{text}");
    let label = format!("CSV {}", path.display());
    let skipped = |reason: &str| first.skipped_for(&label, reason);
    assert_eq!(skipped("repeats the day of line 3"), [5]);
    assert_eq!(skipped("is not YYYY-MM-DD"), [6]);
    assert_eq!(skipped("matches no system"), [7]);
    assert_eq!(skipped("is not a number"), [8]);
    assert_eq!(skipped("weekly"), [9, 10, 11]);
    assert_eq!(skipped("today or later"), [12]);
    assert!(
        text.contains(&format!("{label} lines 9-11: weekly rows")),
        "{text}"
    );

    let got = rows(
        &s.db,
        "SELECT day, CAST(total_bytes AS TEXT), CAST(used_bytes AS TEXT), CAST(free_bytes AS TEXT), source \
         FROM capacity_daily WHERE system_id = 'fa-csv-01' ORDER BY day",
    )
    .await;
    let row = |d: i64, t: &str, u: &str, f: &str, source: &str| {
        vec![
            Some(day(d)),
            Some(t.to_owned()),
            Some(u.to_owned()),
            Some(f.to_owned()),
            Some(source.to_owned()),
        ]
    };
    assert_eq!(
        got,
        vec![
            row(
                5,
                "109951162777600",
                "67641955340780",
                "42309207436820",
                "imported"
            ),
            row(
                4,
                "281727864385045",
                "281496966943212",
                "230897441833",
                "imported"
            ),
            row(3, "1000000", "400000", "600000", "measured"),
        ]
    );

    // Again: nothing new, not one message more in the stream.
    let before = stream_messages(&s.js).await.1;
    let second = import(&s.config(), &args)
        .await
        .unwrap_or_else(|e| panic!("second import: {e:#}"));
    assert_eq!(counts(&second, "capacity days"), (11, 0, 3, 8), "{second}");
    assert_eq!(stream_messages(&s.js).await.1, before);
    assert_eq!(count(&s.db, "capacity_daily").await, 3);

    // The same file through the binary: the summary on stdout names the skipped lines.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdash-writer"))
        .args([
            "--nats-url",
            &s.nats.url(),
            "--database-url",
            &s.db.url,
            "import",
        ])
        .args(["--from-csv", &path.display().to_string(), "--dry-run"])
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("DRY RUN") && stdout.contains("line 7: system_name \"Unknown Array\""),
        "{stdout}"
    );
}

/// What the summary says event retention would delete of the imported events is what it
/// deletes, by age and by the per-system limit, when they are imported without
/// `--keep-imported-events`.
async fn the_retention_estimate_is_what_retention_deletes(backend: Backend) {
    let s = sdash(backend).await;
    let pred = TestDatabase::new(backend).await;
    let mut args = ImportArgs::none();
    match backend {
        Backend::Sqlite => {
            let file = pred.dir().map(|d| d.join("storage.db")).unwrap_or_default();
            let url = format!("sqlite://{}", file.display());
            exec_all(backend, &url, &schema(backend)).await;
            exec_all(backend, &url, &pred_rows()).await;
            args.from_sqlite = Some(file);
        }
        Backend::Postgres => {
            exec_all(backend, &pred.url, &schema(backend)).await;
            exec_all(backend, &pred.url, &pred_rows()).await;
            args.from_postgres = Some(pred.url.clone());
        }
    }
    args.wait = Duration::from_secs(60);
    // No age limit, at most two events per system: one of the three would go.
    let mut by_count = s.config();
    by_count.event_retention_days = 0;
    by_count.events_per_system = 2;
    let dry = import(
        &by_count,
        &ImportArgs {
            dry_run: true,
            ..args.clone()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("dry run: {e:#}"));
    assert_eq!(dry.retention_would_remove, Some((0, 1)), "{dry}");
    // The defaults (30 days, 1000 per system): the rows of 2024-01 and 2025-03 would go.
    let done = import(&s.config(), &args)
        .await
        .unwrap_or_else(|e| panic!("import: {e:#}"));
    assert_eq!(done.retention_would_remove, Some((2, 0)), "{done}");
    assert!(
        done.to_string()
            .contains("would delete 2 of the imported events"),
        "{done}"
    );
    assert_eq!(count(&s.db, "events WHERE keep = FALSE").await, 3);

    let store = Store::open(&s.db.url)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let policy = |days: u32, per_system: u64| RetentionPolicy {
        event_retention_days: days,
        events_per_system: per_system,
        ..RetentionPolicy::default()
    };
    let out = store
        .apply_retention(&policy(0, 2))
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    assert_eq!((out.events_expired, out.events_over_limit), (0, 1));
    let out = store
        .apply_retention(&RetentionPolicy::default())
        .await
        .unwrap_or_else(|e| panic!("retention: {e}"));
    store.close().await;
    // The 2024 row went by count already; the 2025-03 one goes by age; yesterday's stays.
    assert_eq!((out.events_expired, out.events_over_limit), (1, 0));
    assert_eq!(count(&s.db, "events").await, 1);
}

both_backends!(
    a_predecessor_database_is_imported_once,
    a_history_csv_is_imported_once,
    the_retention_estimate_is_what_retention_deletes
);
