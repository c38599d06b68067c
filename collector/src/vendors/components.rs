//! Component helpers shared by the vendors' normalization rules.

use sdash_proto::{Alert, Component, Health, Snapshot};

use super::bookkeeping::AlertMemory;

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

/// The components, synthetic alerts (see [`super::topology::check_alert`]) and health of one
/// check of things that can be down (LIFs, ports, NICs, management interfaces).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub components: Vec<Component>,
    pub alerts: Vec<Alert>,
    pub health: Health,
}

impl Check {
    /// The check of `checked` things, `down` of them down (one component and alert each): a
    /// summary component `kind` ("`checked` `what`, N `state`") goes first, and any thing down
    /// makes the check a warning.
    pub fn from_down(
        kind: &str,
        what: &str,
        state: &str,
        checked: usize,
        mut down: Vec<Component>,
        alerts: Vec<Alert>,
    ) -> Check {
        let n = down.len();
        let health = if n > 0 { Health::Warning } else { Health::Ok };
        down.insert(
            0,
            Component {
                kind: kind.into(),
                name: kind.into(),
                status: health,
                detail: Some(format!("{checked} {what}, {n} {state}")),
            },
        );
        Check {
            components: down,
            alerts,
            health,
        }
    }
}

/// Which health of a snapshot a check counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthPart {
    Hardware,
    Cluster,
}

/// Folds components into a snapshot: their worst health into `part`, the components into the
/// snapshot's.
pub fn fold_components(snapshot: &mut Snapshot, part: HealthPart, components: Vec<Component>) {
    let health = match part {
        HealthPart::Hardware => &mut snapshot.hardware,
        HealthPart::Cluster => &mut snapshot.cluster,
    };
    *health = health.worst(worst_health(&components));
    snapshot.components.extend(components);
}

/// Folds one check into a snapshot (`None`: its query failed): its health into `part`, its
/// components into the snapshot's, and its alerts through [`AlertMemory::resolve_check`] (a
/// failed query keeps the check's last alerts).
pub fn fold_check(
    snapshot: &mut Snapshot,
    part: HealthPart,
    memory: &mut AlertMemory,
    name: &'static str,
    check: Option<Check>,
) {
    let found = check.map(|c| {
        let health = match part {
            HealthPart::Hardware => &mut snapshot.hardware,
            HealthPart::Cluster => &mut snapshot.cluster,
        };
        *health = health.worst(c.health);
        snapshot.components.extend(c.components);
        c.alerts
    });
    snapshot.alerts.extend(memory.resolve_check(name, found));
}
