//! The grouping of the fleet's capacity by one or two tag keys (`group_by`, `subgroup_by`): the
//! request's grouping, the order of its groups and their labels, shared by the summary and the
//! history.

use crate::http::{ApiError, ApiResult, Params};
use crate::resources::history_cache::{GroupKey, Grouping};

/// Label of the systems without a tag.
pub(super) const NONE_LABEL: &str = "(none)";

/// The grouping of a request: `group_by` and `subgroup_by` (which needs `group_by`).
pub(crate) fn grouping(p: &Params) -> ApiResult<Grouping> {
    let group_by = p.tag_key("group_by")?;
    let subgroup_by = p.tag_key("subgroup_by")?;
    if subgroup_by.is_some() && group_by.is_none() {
        return Err(ApiError::bad("subgroup_by needs group_by"));
    }
    Ok(Grouping {
        group_by,
        subgroup_by,
    })
}

/// Orders groups by value, the systems without the tag last (at each level).
pub(super) fn key_order(k: &GroupKey) -> (bool, Option<&str>, bool, Option<&str>) {
    (k.0.is_none(), k.0.as_deref(), k.1.is_none(), k.1.as_deref())
}

/// A group's label: its value(s), `(none)` for a missing tag.
pub(crate) fn group_label(g: &Grouping, k: &GroupKey) -> String {
    let one = |v: &Option<String>| v.clone().unwrap_or_else(|| NONE_LABEL.into());
    if g.subgroup_by.is_some() {
        format!("{} / {}", one(&k.0), one(&k.1))
    } else {
        one(&k.0)
    }
}
