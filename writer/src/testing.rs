//! What the writer's unit and integration tests share; not part of the API.

use sdash_proto::ChangeRecord;

/// `(kind, cause snapshot, from, to, alert id, alert_opened_at, threshold, rising)` of a change.
pub type ChangeSummary = (
    &'static str,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<u8>,
    Option<bool>,
);

/// The fields of `r` the tests compare.
pub fn change_summary(r: &ChangeRecord) -> ChangeSummary {
    (
        r.kind.as_str(),
        r.cause_event_id.clone(),
        r.from.clone(),
        r.to.clone(),
        r.alert.as_ref().map(|a| a.id.clone()),
        r.alert_opened_at,
        r.threshold_percent,
        r.rising,
    )
}

/// A status or health change caused by snapshot `cause`.
pub fn transition(kind: &'static str, cause: &str, from: Option<&str>, to: &str) -> ChangeSummary {
    (
        kind,
        cause.into(),
        from.map(str::to_owned),
        Some(to.into()),
        None,
        None,
        None,
        None,
    )
}

/// An alert instance (alert `id`, opened at `opened_at`) opened or cleared.
pub fn alert_change(kind: &'static str, cause: &str, id: &str, opened_at: i64) -> ChangeSummary {
    (
        kind,
        cause.into(),
        None,
        None,
        Some(id.into()),
        Some(opened_at),
        None,
        None,
    )
}

/// Used capacity crossed `threshold` percent.
pub fn crossing(cause: &str, threshold: u8, rising: bool) -> ChangeSummary {
    (
        "capacity_threshold",
        cause.into(),
        None,
        None,
        None,
        None,
        Some(threshold),
        Some(rising),
    )
}
