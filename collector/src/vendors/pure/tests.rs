//! Unit tests of the Pure rules.

use super::*;
#[test]
fn versions_compare_numerically() {
    let v = |list: &[&str]| pick_version(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        v(&["1.19", "2.9", "2.10", "2.26", "2.3"]),
        Some("2.26".into())
    );
    assert_eq!(v(&["2.9", "2.10"]), Some("2.10".into()));
    assert_eq!(v(&["1.0", "x", "3.0"]), None);
}

#[test]
fn health_rules() {
    assert_eq!(hardware_health("unused"), None);
    assert_eq!(hardware_health("critical"), Some(Health::Error));
    assert_eq!(hardware_health("unknown"), Some(Health::Warning));
    assert_eq!(drive_health("empty"), None);
    assert_eq!(drive_health("recovering"), Some(Health::Ok));
    assert_eq!(drive_health("missing"), Some(Health::Error));
    assert_eq!(drive_health("evacuating"), Some(Health::Warning));
    let c = |status: &str, mode: &str| ControllerItem {
        name: None,
        status: Some(status.into()),
        mode: Some(mode.into()),
        model: None,
        r#type: None,
        version: None,
    };
    assert_eq!(controller_health(&c("ready", "primary")), Health::Ok);
    assert_eq!(
        controller_health(&c("updating", "secondary")),
        Health::Warning
    );
    assert_eq!(
        controller_health(&c("not ready", "secondary")),
        Health::Error
    );
    assert_eq!(controller_health(&c("ready", "offline")), Health::Error);
}

#[test]
fn capacity_prefers_total_used() {
    let item = |used, physical| SpaceItem {
        capacity: Some(100),
        space: Some(Space {
            total_used: used,
            total_physical: physical,
            data_reduction: None,
            ..Space::default()
        }),
    };
    assert_eq!(
        capacity(&item(Some(40), Some(50))).map(|c| c.used_bytes),
        Some(40)
    );
    assert_eq!(
        capacity(&item(None, Some(50))).map(|c| c.used_bytes),
        Some(50)
    );
    assert_eq!(
        capacity(&item(Some(120), None)).map(|c| c.free_bytes),
        Some(0)
    );
    assert_eq!(capacity(&item(None, None)), None);
}

#[test]
fn cluster_rules() {
    let pod = |arrays: Vec<(&str, &str)>| PodItem {
        name: Some("p".into()),
        array_count: Some(arrays.len() as u64),
        arrays: Some(
            arrays
                .into_iter()
                .map(|(s, m)| PodArray {
                    name: Some("a".into()),
                    status: Some(s.into()),
                    mediator_status: Some(m.into()),
                })
                .collect(),
        ),
    };
    assert_eq!(cluster_health(&[], &[]).0, Health::Ok);
    assert_eq!(
        cluster_health(&[], &[pod(vec![("offline", "online")])]).0,
        Health::Ok,
        "not stretched"
    );
    assert_eq!(
        cluster_health(
            &[],
            &[pod(vec![("online", "online"), ("online", "online")])]
        )
        .0,
        Health::Ok
    );
    assert_eq!(
        cluster_health(
            &[],
            &[pod(vec![("online", "unreachable"), ("online", "online")])]
        )
        .0,
        Health::Warning
    );
    assert_eq!(
        cluster_health(
            &[],
            &[pod(vec![("online", "online"), ("offline", "online")])]
        )
        .0,
        Health::Warning
    );
    assert_eq!(
        cluster_health(
            &[],
            &[pod(vec![("offline", "online"), ("offline", "online")])]
        )
        .0,
        Health::Error
    );
    let conn = ConnectionItem {
        name: Some("x".into()),
        status: Some("disconnected".into()),
        r#type: Some("async-replication".into()),
    };
    assert_eq!(cluster_health(&[conn], &[]).0, Health::Warning);
}
