//! The predecessor's systems and tags in sdash: their ids (matched to the systems sdash knows,
//! else made from the name), one value per tag key, the collector inventory written for them
//! and the [`SystemRecord`]s of the systems sdash does not know yet.

use std::collections::{BTreeMap, HashMap, HashSet};

use sdash_proto::SystemRecord;
use sdash_proto::subjects::Kind;

use super::inventory::{self, InventorySystem};
use super::{Mapped, Run, map, predecessor, sdash};

impl Run<'_> {
    /// Maps the predecessor's systems to sdash ids; the skipped ones with their reasons.
    pub(super) fn map_systems(&mut self, systems: &[predecessor::System]) -> HashMap<i64, String> {
        let mut skipped = HashMap::new();
        let mut claimed: HashSet<String> = HashSet::new();
        let sdash_ids: HashSet<String> = self.sdash.systems.iter().map(|s| s.id.clone()).collect();
        for s in systems {
            self.out.count("systems").read += 1;
            let name = s.name.as_deref().unwrap_or_default().trim().to_owned();
            let reason = if name.is_empty() {
                Some("no name".to_owned())
            } else {
                None
            };
            let vendor = match (&reason, &s.vendor) {
                (Some(_), _) => None,
                (None, None) => {
                    skipped.insert(s.id, "no vendor".to_owned());
                    None
                }
                (None, Some(v)) => match map::vendor(v) {
                    Some(v) => Some(v),
                    None => {
                        skipped.insert(s.id, format!("unknown vendor {v:?}"));
                        None
                    }
                },
            };
            if let Some(r) = reason {
                skipped.insert(s.id, r);
            }
            let Some(vendor) = vendor else {
                let why = skipped.get(&s.id).cloned().unwrap_or_default();
                self.out.skip(
                    "systems",
                    "storage_systems",
                    s.id,
                    format!("{name:?}: {why}"),
                );
                continue;
            };
            let Some(address) = s
                .ip_address
                .as_deref()
                .and_then(|h| map::address(h, s.port, vendor))
            else {
                let why = format!("no usable address (ip_address {:?})", s.ip_address);
                self.out.skip(
                    "systems",
                    "storage_systems",
                    s.id,
                    format!("{name:?}: {why}"),
                );
                skipped.insert(s.id, why);
                continue;
            };
            // sdash knows the system already when one of its systems has this name (exactly,
            // else ignoring case) and the vendor; else the id comes from the name, made unique.
            let lower = name.to_lowercase();
            let candidates = |exact: bool| -> Vec<&sdash::SdashSystem> {
                self.sdash
                    .systems
                    .iter()
                    .filter(|x| {
                        (if exact {
                            x.name.trim() == name
                        } else {
                            x.name.trim().to_lowercase() == lower
                        }) && x.vendor == vendor.as_str()
                            && !claimed.contains(&x.id)
                    })
                    .collect()
            };
            let exact = candidates(true);
            let found = if exact.len() == 1 {
                Some(exact[0].clone())
            } else if exact.is_empty() {
                let loose = candidates(false);
                (loose.len() == 1).then(|| loose[0].clone())
            } else {
                None
            };
            let (id, known) = match found {
                Some(x) => (x.id.clone(), x.updated_at > 0),
                None => {
                    let base = map::system_id(&name).unwrap_or_else(|| format!("system-{}", s.id));
                    // An id sdash has only from snapshots or history (no inventory record
                    // yet) of the same vendor is this system: the collector polls it under the
                    // id this import's inventory gave it.
                    let free = |id: &str| {
                        !claimed.contains(id)
                            && (!sdash_ids.contains(id)
                                || self.sdash.systems.iter().any(|x| {
                                    x.id == id && x.updated_at == 0 && x.vendor == vendor.as_str()
                                }))
                    };
                    let mut id = base.clone();
                    if !free(&id) {
                        id = format!("{base}-{}", s.id);
                        let mut n = 2;
                        while !free(&id) {
                            id = format!("{base}-{}-{n}", s.id);
                            n += 1;
                        }
                    }
                    (id, false)
                }
            };
            if id != map::system_id(&name).unwrap_or_default() {
                self.out.note(format!(
                    "storage_systems id {}: {name:?} is sdash system {id}",
                    s.id
                ));
            }
            claimed.insert(id.clone());
            let updated_ms = s
                .updated_at
                .as_deref()
                .or(s.created_at.as_deref())
                .and_then(map::naive_utc_ms)
                .unwrap_or(1);
            self.mapped.push(Mapped {
                pred_id: s.id,
                id,
                name,
                vendor,
                address,
                enabled: s.enabled.unwrap_or(true),
                tags: BTreeMap::new(),
                known,
                updated_ms,
            });
        }
        skipped
    }

    /// Tags: one value per key in sdash; several values of one group are joined.
    pub(super) fn map_tags(
        &mut self,
        systems: &[predecessor::System],
        tags: &predecessor::Tags,
        skipped_systems: &HashMap<i64, String>,
    ) {
        const WHAT: &str = "system tags";
        let existing: HashSet<i64> = systems.iter().map(|s| s.id).collect();
        let mut keys: BTreeMap<i64, String> = BTreeMap::new();
        let mut used: HashSet<String> = HashSet::new();
        for (gid, name) in &tags.groups {
            let Some(base) = name.as_deref().and_then(map::tag_key) else {
                continue;
            };
            let mut key = base.clone();
            let mut n = 2;
            while used.contains(&key) {
                key = format!("{base}_{n}");
                n += 1;
            }
            if name.as_deref() != Some(key.as_str()) {
                self.out.note(format!(
                    "tag group {:?} is the sdash tag key {key}",
                    name.as_deref().unwrap_or_default()
                ));
            }
            used.insert(key.clone());
            keys.insert(*gid, key);
        }
        let mut values: BTreeMap<i64, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (row, system, tag) in &tags.links {
            self.out.count(WHAT).read += 1;
            let (Some(system), Some(tag)) = (system, tag) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    "system_id or tag_id is NULL",
                );
                continue;
            };
            if !existing.contains(system) {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: system {system} no longer exists"),
                );
                continue;
            }
            if let Some(why) = skipped_systems.get(system) {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("system {system} is not imported ({why})"),
                );
                continue;
            }
            let Some((Some(value), group)) = tags.tags.get(tag) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: tag {tag} no longer exists (or has no name)"),
                );
                continue;
            };
            let Some(key) = group.and_then(|g| keys.get(&g)) else {
                self.out.skip(
                    WHAT,
                    "storage_system_tags",
                    *row,
                    format!("orphan: the tag group of tag {tag} no longer exists (or has no name)"),
                );
                continue;
            };
            self.out.count(WHAT).imported += 1;
            values
                .entry(*system)
                .or_default()
                .entry(key.clone())
                .or_default()
                .push(value.clone());
        }
        for m in &mut self.mapped {
            let Some(v) = values.remove(&m.pred_id) else {
                continue;
            };
            for (key, mut vals) in v {
                vals.sort();
                vals.dedup();
                if vals.len() > 1 {
                    self.out.notes.push(format!(
                        "{}: tag {key} has {} values in the predecessor ({}); sdash keeps one \
                         value per key, so they are joined as {:?}",
                        m.id,
                        vals.len(),
                        vals.join(", "),
                        vals.join(", ")
                    ));
                }
                m.tags.insert(key, vals.join(", "));
            }
        }
    }

    pub(super) fn write_inventory(&mut self, label: &str) -> anyhow::Result<()> {
        let systems: Vec<InventorySystem> = self
            .mapped
            .iter()
            .map(|m| InventorySystem {
                id: m.id.clone(),
                name: m.name.clone(),
                vendor: m.vendor,
                address: m.address.clone(),
                enabled: m.enabled,
                tags: m.tags.clone(),
                predecessor_id: Some(m.pred_id),
            })
            .collect();
        let Some(path) = &self.args.inventory_out else {
            if !systems.is_empty() {
                self.out.note(
                    "no --inventory-out given: the systems' inventory was not written".to_owned(),
                );
            }
            return Ok(());
        };
        self.out.secret_files = inventory::secret_files(&systems, &self.args.secrets_dir);
        if self.args.dry_run {
            self.out.note(format!(
                "would write the inventory of {} system(s) to {}",
                systems.len(),
                path.display()
            ));
            return Ok(());
        }
        inventory::write(
            path,
            &systems,
            &self.args.secrets_dir,
            &format!("the predecessor's {label}"),
        )?;
        self.out.inventory_out = Some(path.display().to_string());
        Ok(())
    }

    pub(super) async fn system_record(&mut self, m: &Mapped) -> anyhow::Result<()> {
        let body = SystemRecord {
            name: m.name.clone(),
            vendor: m.vendor,
            address: m.address.clone(),
            tags: m.tags.clone(),
            interval_s: 60,
            enabled: m.enabled,
            removed: false,
        };
        // The predecessor's own time: the collector's records of the system are newer and win.
        let at = m.updated_ms.clamp(1, self.now);
        let tags = serde_json::to_string(&m.tags).unwrap_or_default();
        let id = map::uuid5(&[
            "system",
            &m.id,
            &at.to_string(),
            &m.name,
            &m.address,
            &tags,
            &m.enabled.to_string(),
        ]);
        let env = self.envelope(&m.id, id, at, body);
        self.out.count("systems").imported += 1;
        self.publish(Kind::System.subject(&m.id), &env).await
    }
}
