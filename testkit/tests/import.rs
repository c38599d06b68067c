//! The inventory `sdash-writer import` writes from the predecessor's database is one the
//! collector accepts: its own parser loads it, the ids, names, vendors, addresses, tags and
//! `enabled` are the predecessor's, and once the operator has filled the secret files the
//! summary lists, the collector reads the credentials from them. No credential of the
//! predecessor is in it.

use std::time::Duration;

use sdash_harness::{NatsServer, TestDatabase};
use sdash_proto::Vendor;
use sdash_service::Shutdown;
use sdash_writer::WriterConfig;
use sdash_writer::import::{ImportArgs, import};
use sqlx::{AssertSqlSafe, Connection};

const SECRET: &str = "planted-secret-4711";

/// id, name, vendor, address, enabled, tags of one inventory system.
type Entry = (String, String, Vendor, String, bool, Vec<(String, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imported_inventory_is_accepted_by_the_collector() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pred = dir.path().join("storage.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&pred)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for sql in [
        // Columns in the order of a long-migrated install: the later ones at the end.
        "CREATE TABLE storage_systems (id INTEGER PRIMARY KEY, name VARCHAR(100) UNIQUE, vendor VARCHAR(50), \
         ip_address VARCHAR(100), port INTEGER, enabled BOOLEAN, api_username TEXT, api_password TEXT, \
         api_token TEXT, created_at DATETIME, updated_at DATETIME, pure1_array_name VARCHAR(100))",
        "CREATE TABLE tag_groups (id INTEGER PRIMARY KEY, name VARCHAR(100) UNIQUE, description TEXT)",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, name VARCHAR(100), group_id INTEGER)",
        "CREATE TABLE storage_system_tags (system_id INTEGER, tag_id INTEGER)",
    ] {
        sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let inserts = format!(
        "INSERT INTO storage_systems (id, name, vendor, ip_address, port, enabled, api_username, api_password, api_token) VALUES \
         (1, 'FlashArray \"Prod\" 01', 'pure', 'fa01.example.net', 443, 1, NULL, NULL, '{SECRET}'), \
         (2, 'Cluster Nord', 'netapp-ontap', 'fd00::10', 8443, 1, 'admin', '{SECRET}', NULL), \
         (3, 'Grid Süd', 'netapp-storagegrid', 'grid.example.net', 443, 0, 'root', '{SECRET}', NULL), \
         (4, 'DD 01', 'dell-datadomain', 'dd01.example.net', 3009, 1, 'sysadmin', '{SECRET}', NULL), \
         (5, 'Mystery Box', 'hitachi', 'box.example.net', 443, 1, NULL, NULL, NULL); \
         INSERT INTO tag_groups (id, name) VALUES (1, 'Storage Art'), (2, 'DataCenter'); \
         INSERT INTO tags (id, name, group_id) VALUES (1, 'Block', 1), (2, 'DC1', 2), (3, 'Objekt \"S3\"', 1); \
         INSERT INTO storage_system_tags (system_id, tag_id) VALUES (1, 1), (1, 2), (3, 3), (3, 2)"
    );
    sqlx::raw_sql(AssertSqlSafe(inserts))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = c.close().await;

    // A running writer (the import only publishes; it reads sdash's database read-only).
    let nats = NatsServer::start();
    let db = TestDatabase::new(sdash_harness::Backend::Sqlite).await;
    let config = WriterConfig::new(&nats.url(), &db.url);
    // The schema first (what a writer does when it starts), then the running writer.
    sdash_writer::Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"))
        .close()
        .await;
    let stop = Shutdown::new();
    let writer = tokio::spawn(sdash_writer::run(config.clone(), stop.clone()));

    let inventory = dir.path().join("conf/inventory.toml");
    let mut args = ImportArgs::none();
    args.from_sqlite = Some(pred.clone());
    args.inventory_out = Some(inventory.clone());
    args.wait = Duration::from_secs(30);
    let summary = import(&config, &args)
        .await
        .unwrap_or_else(|e| panic!("import: {e:#}"));
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;

    let text = std::fs::read_to_string(&inventory).unwrap_or_else(|e| panic!("{e}"));
    for secret in [SECRET, "sysadmin", "admin\"", "root"] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
        assert!(
            !summary.to_string().contains(secret),
            "{secret} in the summary"
        );
    }

    // The collector's own parser accepts it.
    let inv =
        sdash_collector::inventory::load(&inventory).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let got: Vec<Entry> = inv
        .systems
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.name.clone(),
                s.vendor,
                s.address.clone(),
                s.enabled,
                s.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        })
        .collect();
    let tags = |t: &[(&str, &str)]| {
        t.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got,
        vec![
            (
                "flasharray-prod-01".into(),
                "FlashArray \"Prod\" 01".into(),
                Vendor::Pure,
                "https://fa01.example.net".into(),
                true,
                tags(&[("datacenter", "DC1"), ("storage_art", "Block")])
            ),
            (
                "cluster-nord".into(),
                "Cluster Nord".into(),
                Vendor::Ontap,
                "https://[fd00::10]:8443".into(),
                true,
                vec![]
            ),
            (
                "grid-sued".into(),
                "Grid Süd".into(),
                Vendor::Storagegrid,
                "https://grid.example.net".into(),
                false,
                tags(&[("datacenter", "DC1"), ("storage_art", "Objekt \"S3\"")])
            ),
            (
                "dd-01".into(),
                "DD 01".into(),
                Vendor::Datadomain,
                "https://dd01.example.net:3009".into(),
                true,
                vec![]
            ),
        ]
    );
    assert_eq!(
        summary.skipped_for("storage_systems", "unknown vendor \"hitachi\""),
        [5]
    );

    // Until the operator fills the listed files, no credentials; afterwards the collector
    // reads them from where the inventory points.
    // A token for the FlashArray, a user name and a password file for each of the others.
    assert_eq!(summary.secret_files.len(), 1 + 3 * 2);
    for s in &inv.systems {
        assert!(
            s.credentials().is_err(),
            "{}: credentials before the files exist",
            s.id
        );
    }
    let base = inventory.parent().unwrap_or(dir.path());
    for (file, what) in &summary.secret_files {
        let path = base.join(file);
        std::fs::create_dir_all(path.parent().unwrap_or(base)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, format!("value-for-{file}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!what.is_empty());
    }
    for s in &inv.systems {
        let creds = s.credentials().unwrap_or_else(|e| panic!("{}: {e}", s.id));
        match creds {
            sdash_collector::inventory::Credentials::ApiToken(t) => {
                assert_eq!(s.vendor, Vendor::Pure);
                assert_eq!(t.expose(), format!("value-for-secrets/{}.token", s.id));
            }
            sdash_collector::inventory::Credentials::UserPassword { username, password } => {
                assert_ne!(s.vendor, Vendor::Pure);
                assert_eq!(username, format!("value-for-secrets/{}.username", s.id));
                assert_eq!(
                    password.expose(),
                    format!("value-for-secrets/{}.password", s.id)
                );
            }
        }
    }
}
