//! Publishing an import's records to the `SDASH` stream: each with `Nats-Msg-Id` = its
//! (deterministic) event id, retried with the same id until JetStream acknowledges it, a
//! bounded number in flight. The running writer stores them; nothing here writes the database.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use sdash_service::bus;

use crate::config::WriterConfig;

/// Publishes awaiting their PubAck at once.
const WINDOW: usize = 128;
/// Attempts per message before the import gives up.
const ATTEMPTS: u32 = 8;

struct InFlight {
    subject: String,
    id: String,
    payload: bytes::Bytes,
    ack: PublishAckFuture,
}

/// A JetStream publisher with a window of unacknowledged messages.
pub struct Publisher {
    client: async_nats::Client,
    js: jetstream::Context,
    in_flight: VecDeque<InFlight>,
    /// The highest stream sequence acknowledged so far.
    pub last_seq: u64,
    /// Messages acknowledged (duplicates included).
    pub published: u64,
    /// Of those, the ones the server had within its duplicate window already.
    pub duplicates: u64,
}

impl Publisher {
    pub async fn connect(config: &WriterConfig, name: &str) -> anyhow::Result<Publisher> {
        let client = bus::connect(&config.nats, name, false)
            .await
            .context("cannot connect to NATS")?;
        let js = jetstream::new(client.clone());
        bus::ensure_stream(&js, &config.stream)
            .await
            .context("cannot set up the SDASH stream")?;
        Ok(Publisher {
            client,
            js,
            in_flight: VecDeque::new(),
            last_seq: 0,
            published: 0,
            duplicates: 0,
        })
    }

    async fn start(
        &self,
        subject: &str,
        id: &str,
        payload: bytes::Bytes,
    ) -> anyhow::Result<PublishAckFuture> {
        let mut attempt = 0;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
            match self
                .js
                .publish_with_headers(subject.to_owned(), headers, payload.clone())
                .await
            {
                Ok(ack) => return Ok(ack),
                Err(e) => {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(anyhow::Error::from(e)
                            .context(format!("cannot publish {subject} ({id})")));
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
            }
        }
    }

    /// Waits for the oldest message in flight, publishing it again (same id) until acknowledged.
    async fn settle_one(&mut self) -> anyhow::Result<()> {
        let Some(mut m) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let mut attempt = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), m.ack).await {
                Ok(Ok(ack)) => {
                    self.last_seq = self.last_seq.max(ack.sequence);
                    self.published += 1;
                    if ack.duplicate {
                        self.duplicates += 1;
                    }
                    return Ok(());
                }
                Ok(Err(e)) => {
                    tracing::warn!(subject = %m.subject, error = %e, "no PubAck; publishing again")
                }
                Err(_) => {
                    tracing::warn!(subject = %m.subject, "no PubAck within 10 s; publishing again")
                }
            }
            attempt += 1;
            if attempt >= ATTEMPTS {
                anyhow::bail!(
                    "JetStream did not acknowledge {} ({}) after {ATTEMPTS} attempts",
                    m.subject,
                    m.id
                );
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
            m.ack = self.start(&m.subject, &m.id, m.payload.clone()).await?;
        }
    }

    /// Publishes one message (returns once it is in flight; [`Publisher::finish`] waits).
    pub async fn send(
        &mut self,
        subject: String,
        id: String,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        if self.in_flight.len() >= WINDOW {
            self.settle_one().await?;
        }
        let payload = bytes::Bytes::from(payload);
        let ack = self.start(&subject, &id, payload.clone()).await?;
        self.in_flight.push_back(InFlight {
            subject,
            id,
            payload,
            ack,
        });
        Ok(())
    }

    /// Waits until every message sent is acknowledged.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            self.settle_one().await?;
        }
        let _ = self.client.flush().await;
        Ok(())
    }
}
