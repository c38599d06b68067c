//! Unit tests of the DataDomain rules against the recorded fixtures.

use sdash_proto::{Capacity, Health, Severity};

use super::*;
const TIB: u64 = 1 << 40;

#[test]
fn system_capacity_and_identity() {
    let s: SystemInfo = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/datadomain/rest_v1.0_system.json"
    ))
    .unwrap_or_default();
    assert!(s.is_ha());
    assert_eq!(s.version, "Data Domain OS 8.3.0.15-1161254");
    assert_eq!(
        (s.model.as_str(), s.serialno.as_str()),
        ("DD9410", "APM00242100071")
    );
    let c = capacity(&s);
    assert_eq!(
        c,
        Some(Capacity {
            total_bytes: 500 * TIB,
            used_bytes: 346_346_162_749_440,
            free_bytes: 203_409_651_138_560,
            data_reduction: Some(18.4),
            provisioned_bytes: None,
        })
    );
    assert_eq!(capacity(&SystemInfo::default()), None);
}

#[test]
fn alerts_only_active_with_mapped_severities() {
    let l: AlertList = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/datadomain/rest_v1.0_dd-systems_0_alerts.json"
    ))
    .unwrap_or_default();
    assert_eq!(l.alert_list.len(), 4);
    let a = alerts(&l.alert_list);
    let sev: Vec<_> = a.iter().map(|a| a.severity).collect();
    assert_eq!(
        sev,
        vec![Severity::Critical, Severity::Warning, Severity::Info]
    );
    assert_eq!(a[0].id, "p0-1207");
    assert_eq!(a[0].component.as_deref(), Some("Disk 3.9"));
    assert_eq!(a[0].opened_at, Some(1_795_147_200_000));
    assert_eq!(alert_hardware(&l.alert_list), Health::Error);
    for (w, s) in [
        ("EMERGENCY", Severity::Critical),
        ("ALERT", Severity::Critical),
        ("ERROR", Severity::Error),
        ("INFO", Severity::Info),
    ] {
        assert_eq!(alert_severity(w), s);
    }
}

#[test]
fn disks_ha_replication() {
    let d: DiskList = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_storage_disks.json"
    ))
    .unwrap_or_default();
    let comps = disk_components(&d.disk_info);
    assert_eq!(comps.len(), 2);
    assert_eq!(
        (comps[0].status, comps[1].name.as_str()),
        (Health::Error, "3.9")
    );
    let ha: HaSysInfo = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_ha.json"
    ))
    .unwrap_or_default();
    let comps = ha_components(&ha);
    assert_eq!(comps.len(), 2);
    assert!(comps.iter().all(|c| c.status == Health::Ok));
    assert_eq!(ha_state_health("degraded"), Health::Warning);
    assert_eq!(ha_state_health("failed"), Health::Error);
    let r: ReplicationList = serde_json::from_str(include_str!(
        "../../../../testkit/fixtures/datadomain/api_v1_dd-systems_0_mtree-replications.json"
    ))
    .unwrap_or_default();
    let mut ctx = r.contexts.clone();
    assert!(
        replication_components(&ctx)
            .iter()
            .all(|c| c.status == Health::Ok)
    );
    ctx[1].connected = Some(false);
    assert_eq!(replication_components(&ctx)[1].status, Health::Warning);
}

#[test]
fn dd_paging() {
    let p = DdPagingInfo {
        current_page: Some(0),
        page_entries: Some(2),
        total_entries: Some(5),
        page_size: Some(2),
    };
    assert_eq!(p.next_page(), Some(1));
    let p = DdPagingInfo {
        current_page: Some(2),
        page_entries: Some(1),
        total_entries: Some(5),
        page_size: Some(2),
    };
    assert_eq!(p.next_page(), None);
}

#[test]
fn auth_and_error_bodies() {
    let wrapped = br#"{"service_status":{"details":"bad token","code":5023}}"#;
    assert_eq!(error_reason(wrapped).as_deref(), Some("5023: bad token"));
    let bare = include_bytes!("../../../../testkit/fixtures/datadomain/error.json");
    assert_eq!(
        error_reason(bare).as_deref(),
        Some("5023: Authentication failed. Invalid or expired token.")
    );
    assert_eq!(error_reason(b"<html>"), None);
}

#[test]
fn performance_window_by_the_arrays_date() {
    assert_eq!(
        http_date_s("Fri, 20 Nov 2026 08:00:00 GMT"),
        Some(1_795_161_600)
    );
    assert_eq!(http_date_s("2026-11-20T08:00:00Z"), None);
    assert_eq!(
        deep::performance_filter(1_795_161_600),
        "collection_epoch=(1795160700,)"
    );
}

#[test]
fn performance_latency_is_weighted_by_iops_or_a_plain_mean_without_any() {
    let sample = |read_seq: u64, read_rand: u64| PerfSample {
        collection_epoch: 10,
        iops: PerfIops {
            read_sequential: Some(read_seq),
            read_random: Some(read_rand),
            ..PerfIops::default()
        },
        protocol_latency: PerfLatency {
            read_sequential: Some(1.0),
            read_random: Some(4.0),
            ..PerfLatency::default()
        },
        ..PerfSample::default()
    };
    let p = deep::performance(&[sample(300, 100)]).unwrap_or_default();
    assert_eq!(
        (p.read_iops, p.read_latency_us),
        (Some(400.0), Some(1750.0))
    );
    let idle = deep::performance(&[sample(0, 0)]).unwrap_or_default();
    assert_eq!(
        (idle.read_iops, idle.read_latency_us),
        (Some(0.0), Some(2500.0))
    );
    // Nothing about writes: absent, not 0.
    assert_eq!((idle.write_iops, idle.write_latency_us), (None, None));
    assert_eq!(deep::performance(&[]), None);
}
