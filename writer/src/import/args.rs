//! The flags of `sdash-writer import` ([`ImportArgs`]) and their defaults for tests and tools.

use std::path::PathBuf;
use std::time::Duration;

use sdash_service::parse_duration;

/// The flags of `sdash-writer import` (the NATS and database flags are the writer's own,
/// given before the command or from the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The predecessor's SQLite database file (opened read-only).
    #[arg(long = "from-sqlite", env = "SDASH_IMPORT_FROM_SQLITE")]
    pub from_sqlite: Option<PathBuf>,
    /// The predecessor's PostgreSQL database, postgres://USER@HOST:PORT/DB (read-only
    /// sessions; the password from the URL, a pgpass file or --from-postgres-password-file).
    #[arg(
        long = "from-postgres",
        env = "SDASH_IMPORT_FROM_POSTGRES",
        conflicts_with = "from_sqlite"
    )]
    pub from_postgres: Option<String>,
    /// File holding the password of --from-postgres (trailing newline removed).
    #[arg(
        long = "from-postgres-password-file",
        env = "SDASH_IMPORT_FROM_POSTGRES_PASSWORD_FILE"
    )]
    pub from_postgres_password_file: Option<PathBuf>,
    /// The predecessor's history CSV (date,system_name,total_tb,used_tb[,free_tb,percent_used]);
    /// its system names are matched, case-insensitively, to sdash's systems, to --inventory and
    /// to the systems of the database imported in the same run.
    #[arg(long = "from-csv", env = "SDASH_IMPORT_FROM_CSV")]
    pub from_csv: Option<PathBuf>,
    /// Write the predecessor's systems as a collector inventory (TOML) to this file; secrets
    /// are referenced as files under --secrets-dir, never imported.
    #[arg(long = "inventory-out", env = "SDASH_IMPORT_INVENTORY_OUT")]
    pub inventory_out: Option<PathBuf>,
    /// Directory of the secret files the written inventory references (relative paths are
    /// relative to the inventory file).
    #[arg(
        long = "secrets-dir",
        env = "SDASH_IMPORT_SECRETS_DIR",
        default_value = "secrets"
    )]
    pub secrets_dir: String,
    /// A collector inventory whose systems' names and ids the CSV's system names may match.
    #[arg(long = "inventory", env = "SDASH_IMPORT_INVENTORY")]
    pub inventory: Option<PathBuf>,
    /// Show what would be imported: nothing is published and no file is written.
    #[arg(long = "dry-run", env = "SDASH_IMPORT_DRY_RUN")]
    pub dry_run: bool,
    /// Mark the imported log events so that event retention (by age and per system) keeps them.
    #[arg(long = "keep-imported-events", env = "SDASH_IMPORT_KEEP_EVENTS")]
    pub keep_events: bool,
    /// Do not import the predecessor's system logs.
    #[arg(long = "no-events", env = "SDASH_IMPORT_NO_EVENTS")]
    pub no_events: bool,
    /// How long to wait for the running writer to store what was published (0 = do not wait).
    #[arg(long = "wait", env = "SDASH_IMPORT_WAIT", default_value = "10m", value_parser = parse_duration)]
    pub wait: Duration,
    /// The id the import publishes under (the envelopes' collector_id, the commands'
    /// publisher); keep it the same between runs so that earlier imports are recognized.
    #[arg(
        long = "import-id",
        env = "SDASH_IMPORT_ID",
        default_value = "sdash-import"
    )]
    pub import_id: String,
}

impl ImportArgs {
    /// The defaults, for the CSV at `csv` (tests, tools).
    pub fn csv(csv: impl Into<PathBuf>) -> ImportArgs {
        ImportArgs {
            from_csv: Some(csv.into()),
            ..ImportArgs::none()
        }
    }

    /// The defaults, without a source.
    pub fn none() -> ImportArgs {
        ImportArgs {
            from_sqlite: None,
            from_postgres: None,
            from_postgres_password_file: None,
            from_csv: None,
            inventory_out: None,
            secrets_dir: "secrets".into(),
            inventory: None,
            dry_run: false,
            keep_events: false,
            no_events: false,
            wait: Duration::from_secs(600),
            import_id: "sdash-import".into(),
        }
    }
}
