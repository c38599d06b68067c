//! Entry points shared by the cargo-fuzz targets (`fuzz/`, see `FUZZING.md`) and the corpus
//! replay tests (`collector/tests/fuzz_corpus.rs`): each takes the raw bytes a target is given
//! and runs the collector's own parsing on them, so the test replays exactly what was fuzzed. Not
//! an API for anything else.

use std::path::Path;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use sdash_proto::codec::decode_record;
use sdash_proto::{Envelope, Snapshot};
use serde::de::DeserializeOwned;

use crate::http::{HttpError, Response};
use crate::inventory::{self, Inventory, InventoryError};
use crate::vendors::bookkeeping::{AlertMemory, PollContext};
use crate::vendors::{datadomain, ontap, pure, storagegrid};

/// The path inventory text is parsed as: only named in errors and used to resolve relative
/// secret paths; nothing is read from it (parsing reads no secret files).
pub const INVENTORY_PATH: &str = "/fuzz/inventory.toml";

/// Parses fuzz input as inventory text (lossy UTF-8, as a file read would fail on invalid UTF-8
/// before parsing; the parser itself only sees text). A parsed inventory must hold only valid
/// system ids, each once, with an interval of at least a second and an http(s) address.
pub fn inventory(data: &[u8]) -> Result<Inventory, InventoryError> {
    let text = String::from_utf8_lossy(data);
    let parsed = inventory::parse(Path::new(INVENTORY_PATH), &text);
    if let Ok(inventory) = &parsed {
        let mut ids = std::collections::HashSet::new();
        for system in &inventory.systems {
            assert!(sdash_proto::valid_system_id(&system.id), "{:?}", system.id);
            assert!(ids.insert(system.id.as_str()), "{:?} twice", system.id);
            assert!(system.interval >= std::time::Duration::from_secs(1));
            assert!(system.address.starts_with("http"), "{:?}", system.address);
            let _ = system.record();
        }
    }
    parsed
}

/// The answers of one poll in a fuzz input: the bodies of the vendor's calls in the order a poll
/// makes them, separated by NUL bytes (JSON text never holds one). A missing body is an empty
/// answer, which the HTTP client's decoder rejects as a poll would. Each body is decoded by the
/// client's own [`Response::json`], so the target reads bodies exactly as a poll does.
struct Answers<'a> {
    bodies: std::slice::Split<'a, u8, fn(&u8) -> bool>,
}

impl<'a> Answers<'a> {
    fn new(data: &'a [u8]) -> Answers<'a> {
        let separator: fn(&u8) -> bool = |b| *b == 0;
        Answers {
            bodies: data.split(separator),
        }
    }

    /// The next call's answer: a 200 on `endpoint` with the next body.
    fn next(&mut self, endpoint: &str) -> Response {
        Response {
            endpoint: endpoint.to_owned(),
            status: 200,
            headers: HeaderMap::new(),
            body: Bytes::copy_from_slice(self.bodies.next().unwrap_or_default()),
        }
    }
}

/// The end of every vendor target: the shell's last step ([`PollContext::finish`]), then the
/// check that the bus contract accepts the snapshot as the writer decodes it (one it refused
/// would be dead-lettered: the system's status and alerts lost with it).
fn finish(mut ctx: PollContext, snapshot: Snapshot) -> Snapshot {
    let snapshot = ctx.finish(snapshot);
    let envelope = Envelope {
        schema: sdash_proto::SCHEMA_VERSION,
        event_id: "fuzz".into(),
        collector_id: "fuzz".into(),
        system_id: "fuzz-01".into(),
        observed_at: 1,
        body: snapshot,
    };
    let bytes = sdash_proto::encode(&envelope)
        .unwrap_or_else(|e| panic!("the snapshot does not encode: {e}"));
    if let Err(e) = decode_record("sdash.v1.snapshot.fuzz-01", &bytes) {
        panic!(
            "the bus contract refuses the snapshot: {e} ({:?})",
            envelope.body
        );
    }
    envelope.body
}

/// A FlashArray poll (REST 2.26): the bodies of `api_version`, `arrays`, `arrays/space`,
/// `controllers`, `hardware`, `drives`, `alerts`, `array-connections`, `pods`,
/// `network-interfaces` and `arrays/performance`, through
/// [`pure::snapshot`] as [`pure::Pure`]'s poll runs it.
pub fn pure(data: &[u8]) -> Result<Snapshot, HttpError> {
    fn list<T: DeserializeOwned>(answers: &mut Answers, path: &str) -> Result<Vec<T>, HttpError> {
        let response = answers.next(path);
        let list: pure::PureList<T> = response.json()?;
        let _ = pure::next_token(&response, &list);
        Ok(list.items)
    }
    let mut answers = Answers::new(data);
    let mut ctx = PollContext::new();
    let version = pure::offered_version(&answers.next("/api/api_version"))?;
    let path = |resource: &str| format!("/api/{version}{resource}");
    let array = pure::first_array(list(&mut answers, &path("/arrays"))?, &path("/arrays"))?;
    let responses = pure::Responses {
        array,
        space: ctx.keep(list(&mut answers, &path("/arrays/space"))),
        controllers: ctx.keep(list(&mut answers, &path("/controllers"))),
        hardware: ctx.keep(list(&mut answers, &path("/hardware"))),
        drives: ctx.keep(list(&mut answers, &path("/drives"))),
        alerts: ctx.keep(list(&mut answers, &path("/alerts"))),
        connections: ctx.keep(list(&mut answers, &path("/array-connections"))),
        pods: ctx.keep(list(&mut answers, &path("/pods"))),
        interfaces: ctx.keep(list(&mut answers, &path("/network-interfaces"))),
        performance: list(&mut answers, &path("/arrays/performance"))
            .ok()
            .and_then(|items| items.into_iter().next()),
        management_url: Some("https://fuzz.example/".into()),
    };
    let snapshot = pure::snapshot(responses, &version, &mut ctx, &mut AlertMemory::default());
    Ok(finish(ctx, snapshot))
}

/// The clock of ONTAP fuzz inputs (2026-11-20T12:00Z, after the fixtures' EMS events).
pub const ONTAP_NOW_MS: i64 = 1_795_176_000_000;

/// An ONTAP poll: the bodies of `cluster`, `cluster/nodes`, `storage/aggregates`,
/// `storage/disks`, the EMS problems and recoveries, `cluster/peers`, `snapmirror/relationships`,
/// `cluster/metrocluster`, `network/ip/interfaces` and `network/ethernet/ports`, through [`ontap::snapshot`] as [`ontap::Ontap`]'s poll runs it
/// (every collection's `_links.next.href` is split as paging does).
pub fn ontap(data: &[u8]) -> Result<Snapshot, HttpError> {
    fn collection<T: DeserializeOwned>(
        answers: &mut Answers,
        path: &str,
    ) -> Result<Vec<T>, HttpError> {
        let page: ontap::OntapCollection<T> = answers.next(path).json()?;
        let _ = page.next_href().map(ontap::split_href);
        Ok(page.records)
    }
    let mut answers = Answers::new(data);
    let mut ctx = PollContext::new();
    let cluster = answers.next("/api/cluster").json()?;
    let nodes = ctx.keep(collection(&mut answers, "/api/cluster/nodes"));
    let aggregates = ctx.keep(collection(&mut answers, "/api/storage/aggregates"));
    let disks = ctx.keep(collection(&mut answers, "/api/storage/disks"));
    let problems = ctx.keep(collection(&mut answers, "/api/support/ems/events"));
    let recoveries = match problems {
        Some(_) => ctx.keep(collection(&mut answers, "/api/support/ems/events")),
        None => None,
    };
    let responses = ontap::Responses {
        cluster,
        nodes,
        aggregates,
        disks,
        problems,
        recoveries,
        peers: ctx.keep(collection(&mut answers, "/api/cluster/peers")),
        snapmirror: ctx.keep(collection(&mut answers, "/api/snapmirror/relationships")),
        metrocluster: ctx.keep(answers.next("/api/cluster/metrocluster").json()),
        interfaces: ctx.keep(collection(&mut answers, "/api/network/ip/interfaces")),
        ports: ctx.keep(collection(&mut answers, "/api/network/ethernet/ports")),
        management_url: Some("https://fuzz.example/".into()),
    };
    let snapshot = ontap::snapshot(
        responses,
        ONTAP_NOW_MS,
        ontap::EMS_WINDOW,
        &mut ctx,
        &mut AlertMemory::default(),
    );
    Ok(finish(ctx, snapshot))
}

/// A StorageGRID poll: the bodies of `versions`, `grid/health`, `grid/config/product-version`,
/// `grid/node-health`, `grid/alerts`, the three metric queries (total, data, usable) and the two
/// bandwidth queries (read, write), through
/// [`storagegrid::snapshot`] as [`storagegrid::StorageGrid`]'s poll runs it.
pub fn storagegrid(data: &[u8]) -> Result<Snapshot, HttpError> {
    let mut answers = Answers::new(data);
    let mut ctx = PollContext::new();
    let version = storagegrid::offered_version(&answers.next("/api/versions"))?;
    let path = |rest: &str| storagegrid::api_path(version, rest);
    let health = storagegrid::envelope_data(&answers.next(&path("/grid/health")))?;
    let product_version = ctx.keep(storagegrid::envelope_data(
        &answers.next(&path("/grid/config/product-version")),
    ));
    let nodes = ctx.keep(storagegrid::envelope_data(
        &answers.next(&path("/grid/node-health")),
    ));
    let alerts = ctx.keep(storagegrid::envelope_data(
        &answers.next(&path("/grid/alerts")),
    ));
    let metric_path = path("/grid/metric-query");
    let total = ctx.keep(storagegrid::envelope_data(&answers.next(&metric_path)));
    let data = match total {
        Some(_) => ctx.keep(storagegrid::envelope_data(&answers.next(&metric_path))),
        None => None,
    };
    let usable = match (&total, &data) {
        (Some(_), Some(_)) => storagegrid::envelope_data(&answers.next(&metric_path)).ok(),
        _ => None,
    };
    let responses = storagegrid::Responses {
        health,
        product_version,
        grid_name: None,
        nodes,
        alerts,
        total,
        data,
        usable,
        performance: storagegrid::envelope_data(&answers.next(&metric_path)).ok(),
        ilm_pools: storagegrid::envelope_data(&answers.next(&path(storagegrid::ILM_POOLS_REST)))
            .ok(),
        management_url: Some("https://fuzz.example/".into()),
    };
    let snapshot = storagegrid::snapshot(responses, version, &mut ctx, &mut AlertMemory::default());
    Ok(finish(ctx, snapshot))
}

/// A DataDomain poll: the bodies of `system`, `alerts`, `storage/disks`, `ha` (only for an HA
/// system, as a poll asks it) and `mtree-replications`, through [`datadomain::snapshot`] as
/// [`datadomain::DataDomain`]'s poll runs it (each list's `paging_info` is read as paging does).
pub fn datadomain(data: &[u8]) -> Result<Snapshot, HttpError> {
    fn list<L: datadomain::DdList>(
        answers: &mut Answers,
        path: &str,
    ) -> Result<Vec<L::Item>, HttpError> {
        let (items, paging) = answers.next(path).json::<L>()?.split();
        let _ = paging.and_then(|p| p.next_page());
        Ok(items)
    }
    let mut answers = Answers::new(data);
    let mut ctx = PollContext::new();
    let system: datadomain::SystemInfo = answers.next(datadomain::SYSTEM_PATH).json()?;
    let alerts = ctx.keep(list::<datadomain::AlertList>(
        &mut answers,
        datadomain::ALERTS_PATH,
    ));
    let disks = ctx.keep(list::<datadomain::DiskList>(
        &mut answers,
        datadomain::DISKS_PATH,
    ));
    let ha = if system.is_ha() {
        ctx.keep(answers.next(datadomain::HA_PATH).json())
    } else {
        None
    };
    let replications = ctx.keep(list::<datadomain::ReplicationList>(
        &mut answers,
        datadomain::REPLICATION_PATH,
    ));
    let nics = ctx.keep(list::<datadomain::NicList>(
        &mut answers,
        datadomain::NICS_PATH,
    ));
    let responses = datadomain::Responses {
        system,
        alerts,
        disks,
        ha,
        replications,
        nics,
        performance: list::<datadomain::PerformanceList>(
            &mut answers,
            datadomain::PERFORMANCE_PATH,
        )
        .ok(),
        management_url: Some("https://fuzz.example/".into()),
    };
    let snapshot = datadomain::snapshot(responses, &mut ctx, &mut AlertMemory::default());
    Ok(finish(ctx, snapshot))
}
