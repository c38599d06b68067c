//! Which receivers a change goes to: the union of the receivers of every route it matches.

use sdash_proto::ChangeKind;

use crate::change::Change;
use crate::config::Route;

/// Whether every condition of `route` holds for `change` (an empty list matches everything,
/// except that operators' own updates of alerts, `alert_updated`, go only to routes naming them:
/// nobody wants to be told what they just did).
pub fn matches(route: &Route, change: &Change) -> bool {
    let r = &change.record;
    let kind = if route.kinds.is_empty() {
        r.kind != ChangeKind::AlertUpdated
    } else {
        route.kinds.contains(&r.kind)
    };
    kind && (route.severities.is_empty() || route.severities.contains(&change.severity()))
        && (route.vendors.is_empty() || route.vendors.contains(&r.vendor))
        && route
            .tags
            .iter()
            .all(|(key, value)| r.tags.get(key) == Some(value))
}

/// The receivers of every route `change` matches, each once, in the order they are first named.
pub fn receivers_for(routes: &[Route], change: &Change) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for route in routes.iter().filter(|r| matches(r, change)) {
        for name in &route.receivers {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sdash_proto::{ChangeKind, ChangeRecord, Severity, Vendor};

    use super::*;

    fn change(kind: ChangeKind, vendor: Vendor, env: &str) -> Change {
        Change {
            id: "c1".into(),
            system_id: "s1".into(),
            observed_at: 0,
            record: ChangeRecord {
                tags: [("environment".to_owned(), env.to_owned())].into(),
                ..ChangeRecord::transition(kind, "e", vendor, "online", "unreachable")
            },
        }
    }

    fn route(receivers: &[&str]) -> Route {
        Route {
            kinds: vec![],
            severities: vec![],
            vendors: vec![],
            tags: BTreeMap::new(),
            receivers: receivers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let prod_pure = change(ChangeKind::StatusChanged, Vendor::Pure, "prod");
        let mut critical_prod = route(&["pager", "hook"]);
        critical_prod.severities = vec![Severity::Critical];
        critical_prod
            .tags
            .insert("environment".into(), "prod".into());
        let mut ontap_only = route(&["ontap-team"]);
        ontap_only.vendors = vec![Vendor::Ontap];
        let mut alerts_only = route(&["hook", "mail"]);
        alerts_only.kinds = vec![ChangeKind::AlertOpened];
        let everything = route(&["archive", "hook"]);
        let routes = [critical_prod, ontap_only, alerts_only, everything];
        assert_eq!(
            receivers_for(&routes, &prod_pure),
            ["pager", "hook", "archive"]
        );
        let dev = change(ChangeKind::StatusChanged, Vendor::Ontap, "dev");
        assert_eq!(
            receivers_for(&routes, &dev),
            ["ontap-team", "archive", "hook"]
        );
    }
}
