//! `sdash-writer replay-dead-letters`: publishes stored dead letters to the stream again, so that
//! the writer stores them once whatever refused them is fixed. A message is deleted from
//! `dead_letters` only after JetStream acknowledged it; one that fails again becomes a new dead
//! letter (with a new stream sequence), never a lost one.

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream;
use sdash_service::bus;

use crate::cli::ReplayArgs;
use crate::config::WriterConfig;
use crate::store::Store;

/// The result of a replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayOutcome {
    /// Published again and deleted from `dead_letters` (with `--dry-run`: would be).
    pub replayed: u64,
    /// Left alone: rejected when decoded (without `--all`).
    pub skipped: u64,
    /// Could not be published (kept; see the log).
    pub failed: u64,
}

/// Publishes the dead letters of `config`'s database to its stream again (see the module docs).
pub async fn replay_dead_letters(
    config: &WriterConfig,
    args: &ReplayArgs,
) -> anyhow::Result<ReplayOutcome> {
    let password = config.database_password()?;
    let store = Store::connect(&config.database_url, password.as_ref())
        .await
        .context("cannot open the database")?;
    let client = bus::connect(&config.nats, "sdash-writer-replay", false).await?;
    let js = jetstream::new(client.clone());
    bus::ensure_stream(&js, &config.stream).await?;
    let mut out = ReplayOutcome::default();
    let mut after = 0;
    'pages: loop {
        let page = store.dead_letters(after, 500).await?;
        if page.is_empty() {
            break;
        }
        for d in page {
            after = d.stream_seq;
            if out.replayed >= args.limit {
                break 'pages;
            }
            if !args.all && !d.reason.worth_replaying() {
                out.skipped += 1;
                continue;
            }
            if args.dry_run {
                tracing::info!(stream_seq = d.stream_seq, subject = %d.subject, reason = %d.reason, "would replay");
                out.replayed += 1;
                continue;
            }
            let mut headers = HeaderMap::new();
            // Replaying the same dead letter twice within the dedupe window stores it once.
            headers.insert(
                "Nats-Msg-Id",
                format!("sdash-replay-{}", d.stream_seq).as_str(),
            );
            let published = match js
                .publish_with_headers(d.subject.clone(), headers, d.payload.into())
                .await
            {
                Ok(ack) => ack.await.map(drop).map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            };
            match published {
                Ok(()) => {
                    store.forget_dead_letter(d.stream_seq).await?;
                    tracing::info!(stream_seq = d.stream_seq, subject = %d.subject, "replayed");
                    out.replayed += 1;
                }
                Err(e) => {
                    tracing::warn!(stream_seq = d.stream_seq, subject = %d.subject, error = %e, "cannot publish the dead letter again; kept");
                    out.failed += 1;
                }
            }
        }
    }
    store.close().await;
    let _ = client.flush().await;
    Ok(out)
}
