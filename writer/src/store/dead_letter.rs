//! Dead letters: why a message was not stored ([`DeadLetterReason`], kept as text in
//! `dead_letters.reason`), and reading them back for `replay-dead-letters`.

use std::fmt;

use sqlx::{Pool, SqlSafeStr};

use super::StoreError;
use super::sql::{Bind, Sql};

/// Why a message became a dead letter. Stored as `"<kind>: <detail>"` (see [`fmt::Display`]);
/// the kinds are stable, so rows written by any version parse back ([`DeadLetterReason::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// Larger than the payload limit. Detail: the sizes.
    Oversized(String),
    /// Delivered more often than `--max-deliver` (e.g. by writer restarts). Detail: the counts.
    Poison(String),
    /// Failed to decode or validate. Detail: the decoder's error.
    Rejected(String),
    /// Decoded fine, but the database refused it. Detail: the database's error.
    RefusedByDatabase(String),
    /// A stored reason of no known kind, kept as it is.
    Other(String),
}

impl DeadLetterReason {
    const OVERSIZED: &'static str = "oversized";
    const POISON: &'static str = "poison";
    const REJECTED: &'static str = "rejected";
    const REFUSED: &'static str = "refused by the database";

    pub fn oversized(payload_bytes: usize, limit: usize) -> DeadLetterReason {
        DeadLetterReason::Oversized(format!(
            "payload of {payload_bytes} bytes is larger than the {limit}-byte limit"
        ))
    }

    pub fn poison(deliveries: u64, max_deliver: u64) -> DeadLetterReason {
        DeadLetterReason::Poison(format!(
            "delivered {deliveries} times (more than --max-deliver {max_deliver})"
        ))
    }

    /// The reason of a stored row.
    pub fn parse(text: &str) -> DeadLetterReason {
        let Some((kind, detail)) = text.split_once(": ") else {
            return DeadLetterReason::Other(text.to_owned());
        };
        let detail = detail.to_owned();
        match kind {
            Self::OVERSIZED => DeadLetterReason::Oversized(detail),
            Self::POISON => DeadLetterReason::Poison(detail),
            Self::REJECTED => DeadLetterReason::Rejected(detail),
            Self::REFUSED => DeadLetterReason::RefusedByDatabase(detail),
            _ => DeadLetterReason::Other(text.to_owned()),
        }
    }

    /// Whether publishing the message again can succeed: one that failed to decode or validate
    /// would only come back.
    pub fn worth_replaying(&self) -> bool {
        matches!(
            self,
            DeadLetterReason::Poison(_) | DeadLetterReason::RefusedByDatabase(_)
        )
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, detail) = match self {
            DeadLetterReason::Oversized(d) => (Self::OVERSIZED, d),
            DeadLetterReason::Poison(d) => (Self::POISON, d),
            DeadLetterReason::Rejected(d) => (Self::REJECTED, d),
            DeadLetterReason::RefusedByDatabase(d) => (Self::REFUSED, d),
            DeadLetterReason::Other(text) => return f.write_str(text),
        };
        write!(f, "{kind}: {detail}")
    }
}

/// A message the writer could not store, kept with its raw bytes.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in the stream when it was received (the row's key).
    pub stream_seq: i64,
    pub subject: String,
    pub payload: Vec<u8>,
    pub reason: DeadLetterReason,
    pub deliveries: i64,
}

/// Up to `limit` stored dead letters, oldest stream sequence first, after `after`.
pub(crate) async fn page<DB: Sql>(
    pool: &Pool<DB>,
    after: i64,
    limit: i64,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut c = pool.acquire().await?;
    let rows = DB::fetch_all(
        &mut c,
        "SELECT stream_seq, subject, payload, reason, deliveries FROM dead_letters \
         WHERE stream_seq > $1 ORDER BY stream_seq LIMIT $2"
            .into_sql_str(),
        &[Bind::Int(after), Bind::Int(limit)],
    )
    .await?;
    let letter = |r: &DB::Row| {
        Ok::<_, sqlx::Error>(DeadLetter {
            stream_seq: DB::int(r, 0)?,
            subject: DB::text(r, 1)?,
            payload: DB::bytes(r, 2)?,
            reason: DeadLetterReason::parse(&DB::text(r, 3)?),
            deliveries: DB::int(r, 4)?,
        })
    };
    Ok(rows.iter().map(letter).collect::<Result<_, _>>()?)
}

/// Deletes one dead letter (after it was published again).
pub(crate) async fn forget<DB: Sql>(pool: &Pool<DB>, stream_seq: i64) -> Result<(), StoreError> {
    let mut c = pool.acquire().await?;
    DB::execute(
        &mut c,
        "DELETE FROM dead_letters WHERE stream_seq = $1".into_sql_str(),
        &[Bind::Int(stream_seq)],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_reasons_parse_back() {
        for reason in [
            DeadLetterReason::oversized(2_000_000, 1_048_576),
            DeadLetterReason::poison(11, 10),
            DeadLetterReason::Rejected("invalid MessagePack".into()),
            DeadLetterReason::RefusedByDatabase("value too long: a: b".into()),
            DeadLetterReason::Other("something else".into()),
        ] {
            assert_eq!(DeadLetterReason::parse(&reason.to_string()), reason);
        }
        assert_eq!(
            DeadLetterReason::poison(11, 10).to_string(),
            "poison: delivered 11 times (more than --max-deliver 10)"
        );
        assert!(DeadLetterReason::parse("poison: x").worth_replaying());
        assert!(DeadLetterReason::parse("refused by the database: x").worth_replaying());
        assert!(!DeadLetterReason::parse("rejected: x").worth_replaying());
        assert!(!DeadLetterReason::parse("oversized: x").worth_replaying());
    }
}
