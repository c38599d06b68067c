//! Paging shared by the list routes: the page envelope, and keyset pagination over lists ordered
//! newest first by a time column with an id column breaking ties (alerts and events). A cursor is
//! the last item's `(time, id)`; the next page starts strictly after it, so rows written between
//! two requests neither repeat nor shift the pages.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::db::{Param, Sql};
use crate::http::{ApiError, ApiResult, Params, decode_cursor, encode_cursor};

/// One page of a list.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub limit: i64,
}

/// Position in a keyset-paged list: the `(time, id)` of the last item of the previous page.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeysetCursor<I> {
    t: i64,
    id: I,
}

/// The ordering columns of a keyset-paged list (`time DESC, id DESC`).
#[derive(Debug, Clone, Copy)]
pub struct Keyset {
    pub time_column: &'static str,
    pub id_column: &'static str,
}

impl Keyset {
    /// The request's `cursor`, checked to be one of this list's (`id` of type `I`).
    pub fn cursor<I: DeserializeOwned>(p: &Params) -> ApiResult<Option<KeysetCursor<I>>> {
        let Some(text) = p.get("cursor") else {
            return Ok(None);
        };
        serde_json::from_value(decode_cursor(text)?)
            .map(Some)
            .map_err(|_| ApiError::bad("cursor does not belong to this list"))
    }

    /// Appends the condition "after `cursor`" (the SQL must already have a `WHERE`), the order and
    /// a limit of one more row than the page, which tells whether there is a next page.
    pub fn finish_query<I: Into<Param>>(
        &self,
        sql: &mut Sql,
        cursor: Option<KeysetCursor<I>>,
        limit: i64,
    ) {
        let (time, id) = (self.time_column, self.id_column);
        if let Some(c) = cursor {
            sql.push(" AND (")
                .push(time)
                .push(" < ")
                .bind(c.t)
                .push(" OR (")
                .push(time)
                .push(" = ")
                .bind(c.t)
                .push(" AND ")
                .push(id)
                .push(" < ")
                .bind(c.id)
                .push("))");
        }
        sql.push(" ORDER BY ")
            .push(time)
            .push(" DESC, ")
            .push(id)
            .push(" DESC LIMIT ")
            .bind(limit.saturating_add(1));
    }

    /// The page of `rows` (fetched by a query from [`Keyset::finish_query`]), with the cursor of
    /// its last row when more follow. `key` gives a row's `(time, id)`.
    pub fn page<R, T, I: Serialize>(
        rows: Vec<R>,
        limit: i64,
        key: impl Fn(&R) -> (i64, I),
        item: impl FnMut(R) -> T,
    ) -> Page<T> {
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit_usize;
        let mut rows = rows;
        rows.truncate(limit_usize);
        let next_cursor = if more {
            rows.last().map(|r| {
                let (t, id) = key(r);
                encode_cursor(&serde_json::to_value(KeysetCursor { t, id }).unwrap_or_default())
            })
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(item).collect(),
            next_cursor,
            limit,
        }
    }
}
