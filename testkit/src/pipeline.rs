//! The whole pipeline in one test process: a real nats-server, the simulator, the writer, one or
//! more collectors and the API, each through the same library entry point its binary calls.
//! Dropping the [`Pipeline`] stops everything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sdash_harness::{Backend, NatsServer, TestDatabase};
use sdash_service::Shutdown;

use crate::sim::{Fleet, SimConfig};

/// A running pipeline.
pub struct Pipeline {
    pub nats: NatsServer,
    pub db: TestDatabase,
    pub fleet: Fleet,
    pub api: SocketAddr,
    pub inventory: PathBuf,
    dir: tempfile::TempDir,
    stop: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How to start one.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub backend: Backend,
    pub sim: SimConfig,
    /// Poll interval written into the inventory, e.g. "1s".
    pub interval: String,
    pub collectors: usize,
}

impl Pipeline {
    pub async fn start(options: PipelineOptions) -> anyhow::Result<Pipeline> {
        Pipeline::start_with_api(options, |_| {}).await
    }

    /// [`Pipeline::start`] with the API's configuration adjusted by `configure` (operator
    /// tokens, a read token, the poll-now interval).
    pub async fn start_with_api(
        options: PipelineOptions,
        configure: impl FnOnce(&mut sdash_api::Config),
    ) -> anyhow::Result<Pipeline> {
        crate::install_crypto_provider();
        let nats = NatsServer::start();
        let db = TestDatabase::new(options.backend).await;
        let fleet = Fleet::start(options.sim.clone()).await?;
        let dir = tempfile::tempdir()?;
        let inventory = dir.path().join("inventory.toml");
        fleet.write_inventory(&inventory, &options.interval)?;
        let stop = Shutdown::new();
        let mut tasks = Vec::new();

        let writer = sdash_writer::WriterConfig::new(&nats.url(), &db.url);
        let writer_stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = sdash_writer::run(writer, writer_stop).await {
                tracing::error!(error = %e, "writer failed");
            }
        }));

        for n in 0..options.collectors.max(1) {
            let cli = sdash_collector::app::Cli::try_parse_from([
                "sdash-collector",
                "--nats-url",
                &nats.url(),
                "--inventory",
                &inventory.display().to_string(),
                "--collector-id",
                &format!("test-collector-{n}"),
                "--lease-seconds",
                "3",
                "--heartbeat-seconds",
                "1",
            ])?;
            let collector_stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = sdash_collector::app::run(cli.run, collector_stop).await {
                    tracing::error!(error = %e, "collector failed");
                }
            }));
        }

        // The API opens the database read-only: wait until the writer has created it.
        let mut api_config = sdash_api::Config::new(&db.url);
        api_config.nats = Some(sdash_service::bus::NatsArgs::plain(&nats.url()));
        configure(&mut api_config);
        let mut attempt = 0;
        let (api, api_task) = loop {
            match sdash_api::spawn_with_shutdown(api_config.clone(), stop.clone()).await {
                Ok(v) => break v,
                Err(e) if attempt < 100 => {
                    attempt += 1;
                    tracing::debug!(error = %e, "api not up yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tasks.push(api_task);
        Ok(Pipeline {
            nats,
            db,
            fleet,
            api,
            inventory,
            dir,
            stop,
            tasks,
        })
    }

    /// `http://127.0.0.1:<port>` of the API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// A scratch directory that lives as long as the pipeline.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops every service and waits for them (bounded); the database and the servers stay
    /// until the pipeline is dropped, so a test can inspect them.
    pub async fn shutdown(&mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }

    /// Stops every service and drops everything.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}
