//! Replays the corpus of the fuzz target `api_query` (`fuzz/corpus/{name}/` and its seeds `fuzz/seeds/{name}/`, see `FUZZING.md`)
//! on stable Rust through the same function the target runs, and checks that every route with
//! the example values of its parameters (the route table's, as in the OpenAPI document) is
//! accepted, so the harness is not rejecting everything.
//!
//! `SDASH_FUZZ_WRITE_SEEDS=<dir>` also writes those requests into `<dir>` as seeds.

use std::path::{Path, PathBuf};

use sdash_api::fuzzing::query;
use sdash_api::routes::ROUTES;

/// The minimised corpus and the seeds of the target.
fn corpus_dirs() -> [PathBuf; 2] {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    [fuzz.join("corpus/api_query"), fuzz.join("seeds/api_query")]
}

/// Each route's path with an id and every parameter with a non-empty example.
fn example_requests() -> Vec<String> {
    ROUTES
        .iter()
        .map(|route| {
            let path = route.path.replace("{id}", "fa-prod-01");
            let pairs: Vec<(&str, &str)> = route
                .params
                .iter()
                .filter(|p| !p.example.is_empty())
                .map(|p| (p.name, p.example))
                .collect();
            let query = serde_urlencoded::to_string(&pairs).expect("encode a query");
            format!("{path}?{query}")
        })
        .collect()
}

#[test]
fn every_route_with_its_example_parameters_is_accepted() {
    let seeds = std::env::var_os("SDASH_FUZZ_WRITE_SEEDS").map(PathBuf::from);
    for (i, request) in example_requests().into_iter().enumerate() {
        if let Err(e) = query(request.as_bytes()) {
            panic!("{request}: {e:?}");
        }
        if let Some(dir) = &seeds {
            std::fs::write(dir.join(format!("route-{i:02}")), &request).expect("write seed");
        }
    }
    // And what the parsing exists to refuse.
    for bad in [
        "/api/v1/nowhere",
        "/api/v1/systems?limit=0",
        "/api/v1/systems?unknown=1",
        "/api/v1/systems?limit=1&limit=2",
        "/api/v1/systems/FA!/capacity",
        "/api/v1/alerts?cursor=zz",
        "/api/v1/events?since=yesterday",
    ] {
        assert!(query(bad.as_bytes()).is_err(), "{bad} accepted");
    }
}

#[test]
fn every_corpus_input_parses_or_fails_without_panicking() {
    let mut replayed = 0;
    for dir in corpus_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let input = std::fs::read(&path).expect("read corpus file");
            eprintln!("replaying {}", path.display());
            let _ = query(&input);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the corpus is empty");
}
