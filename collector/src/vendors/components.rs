//! Component helpers shared by the vendors' normalization rules.

use sdash_proto::{Component, Health};

/// The worst health of some components (`ok` when there are none).
pub fn worst_health<'a>(components: impl IntoIterator<Item = &'a Component>) -> Health {
    components
        .into_iter()
        .fold(Health::Ok, |acc, c| acc.worst(c.status))
}

/// A `disks` summary component (the worst disk health, "N disks, M unhealthy") followed by one
/// `disk` component per unhealthy disk; `describe` gives an unhealthy disk's name and detail.
pub fn disk_components<D>(
    disks: &[D],
    health: impl Fn(&D) -> Health,
    describe: impl Fn(&D) -> (String, String),
) -> Vec<Component> {
    let mut out = Vec::new();
    let mut worst = Health::Ok;
    for d in disks {
        let status = health(d);
        if status != Health::Ok {
            worst = worst.worst(status);
            let (name, detail) = describe(d);
            out.push(Component {
                kind: "disk".into(),
                name,
                status,
                detail: Some(detail),
            });
        }
    }
    let unhealthy = out.len();
    out.insert(
        0,
        Component {
            kind: "disks".into(),
            name: "disks".into(),
            status: worst,
            detail: Some(format!("{} disks, {unhealthy} unhealthy", disks.len())),
        },
    );
    out
}
