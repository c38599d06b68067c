//! The dashboard's lists of statuses, severities, levels, categories, vendors, health values and
//! cluster types (`api/assets/enums.js`) against the enums of `sdash-proto` they mirror: a variant added to
//! proto, or a value mistyped in the dashboard, fails here.

use sdash_proto::{Category, ClusterType, Health, Level, Severity, Status, Vendor};

const ENUMS_JS: &str = include_str!("../assets/enums.js");

/// Every variant of a proto enum, in declaration order. The exhaustive `match` stops compiling
/// when a variant is added, so this list (and with it the dashboard's) has to be extended; the
/// assertion keeps it in step with the enum's own `ALL`.
macro_rules! variants {
    ($enum:ident: $($variant:ident),+ $(,)?) => {{
        let listed = vec![$($enum::$variant),+];
        for v in &listed {
            match v {
                $($enum::$variant)|+ => {}
            }
        }
        assert_eq!(listed, $enum::ALL.to_vec(), concat!(stringify!($enum), "::ALL"));
        listed
    }};
}

/// The serde names of `values`, as the API sends them.
fn serde_names<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|v| match serde_json::to_value(v) {
            Ok(serde_json::Value::String(name)) => name,
            other => panic!("not serialised as a string: {other:?}"),
        })
        .collect()
}

/// The text of `export const NAME = <initializer>;` in enums.js.
fn initializer(name: &str) -> &'static str {
    let start = format!("export const {name} = ");
    let from = ENUMS_JS
        .find(&start)
        .unwrap_or_else(|| panic!("enums.js has no `{start}`"))
        + start.len();
    let rest = &ENUMS_JS[from..];
    &rest[..rest.find(";\n").unwrap_or(rest.len())]
}

/// The double-quoted strings of a list literal, in order.
fn strings(name: &str) -> Vec<String> {
    initializer(name)
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The `key: number` pairs of an object literal, in order.
fn ranks(name: &str) -> Vec<(String, i64)> {
    initializer(name)
        .trim_matches(|c| c == '{' || c == '}' || c == ' ')
        .split(',')
        .map(|pair| {
            let (key, value) = pair
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: {pair:?} is not `key: number`"));
            let value = value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {value:?} is not a number"));
            (key.trim().to_owned(), value)
        })
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn vendors_match_proto() {
    let proto = serde_names(&variants!(Vendor: Pure, Ontap, Storagegrid, Datadomain));
    // VENDORS is a list of [id, display name] pairs.
    let ids: Vec<String> = strings("VENDORS").into_iter().step_by(2).collect();
    assert_eq!(ids, proto);
}

#[test]
fn statuses_match_proto() {
    let mut proto = serde_names(&variants!(Status: Online, Unreachable, AuthFailed, Error));
    // What the API reports for a system that was never polled.
    proto.push("pending".to_owned());
    assert_eq!(strings("STATUSES"), proto);
}

#[test]
fn severities_match_proto() {
    let proto = serde_names(&variants!(Severity: Info, Warning, Error, Critical));
    let mut most_severe_first = proto.clone();
    most_severe_first.reverse();
    assert_eq!(strings("SEVERITIES"), most_severe_first);
    // Ranks sort like proto's order: info lowest.
    let expected: Vec<(String, i64)> = most_severe_first
        .iter()
        .zip((1..=proto.len() as i64).rev())
        .map(|(name, rank)| (name.clone(), rank))
        .collect();
    assert_eq!(ranks("SEV_RANK"), expected);
}

#[test]
fn levels_match_proto_in_order() {
    // The "minimum level" filter compares positions in this list.
    let proto = serde_names(&variants!(Level: Debug, Info, Warning, Error, Critical));
    assert_eq!(strings("LEVELS"), proto);
}

#[test]
fn categories_match_proto() {
    let proto = serde_names(&variants!(
        Category: Connection,
        Authentication,
        ApiCall,
        DataQuery,
        Health
    ));
    assert_eq!(strings("CATEGORIES"), proto);
}

#[test]
fn health_values_match_proto() {
    let proto = serde_names(&variants!(Health: Ok, Warning, Error, Unknown));
    let keys: Vec<String> = ranks("HEALTH_RANK").into_iter().map(|(k, _)| k).collect();
    assert_eq!(sorted(keys), sorted(proto));
}

#[test]
fn cluster_types_match_proto() {
    let proto = serde_names(&variants!(
        ClusterType: Ha,
        Metrocluster,
        ActiveCluster,
        Local,
        MultiSite,
        SingleSite
    ));
    // CLUSTER_TYPES is a list of [id, display name] pairs, offered by the fleet filter.
    let ids: Vec<String> = strings("CLUSTER_TYPES").into_iter().step_by(2).collect();
    assert_eq!(ids, proto);
}
