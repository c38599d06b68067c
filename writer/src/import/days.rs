//! Daily capacity from both sources (the predecessor's `capacity_history` and its CSV): each
//! day checked and converted to bytes, the days sdash stored already left out (a measured day
//! is never replaced), the rest published as history records.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context as _;
use sdash_proto::subjects::Kind;
use sdash_proto::{HistoryDay, HistoryRecord, Vendor};

use super::sdash::SdashState;
use super::{
    DAYS_PER_RECORD, Mapped, Run, SOURCE_CSV, SOURCE_DB, csv, inventory, map, predecessor,
    unreadable,
};

/// What the summary counts these rows as.
const WHAT: &str = "capacity days";

impl Run<'_> {
    /// Checks one day's values; the bytes `(total, used, free)` or why it is refused.
    fn day_values(
        &self,
        day: &str,
        total: Option<f64>,
        used: Option<f64>,
    ) -> Result<(u64, u64, u64), String> {
        if day >= self.today.as_str() {
            return Err("today or later: sdash measures the current day itself".into());
        }
        let (Some(total), Some(used)) = (total, used) else {
            return Err(match total {
                None => "total_tb is empty",
                Some(_) => "used_tb is empty",
            }
            .into());
        };
        let (Some(t), Some(u)) = (map::tib_to_bytes(total), map::tib_to_bytes(used)) else {
            return Err(format!(
                "total_tb {total} or used_tb {used} is negative, not finite or too large"
            ));
        };
        if t == 0 {
            return Err("total_tb is 0 (no measurement that day)".into());
        }
        if u > t.saturating_mul(4) {
            return Err(format!(
                "used_tb {used} is implausibly larger than total_tb {total}"
            ));
        }
        Ok((t, u, t.saturating_sub(u)))
    }

    /// Counts a valid `day` against what sdash stored of it (`stored`: day -> source); true
    /// when sdash has none, so it is imported.
    fn is_new_day(&mut self, stored: &HashMap<String, String>, day: &str) -> bool {
        match stored.get(day).map(String::as_str) {
            Some(source) => {
                self.out.count(WHAT).already += 1;
                if source != "imported" {
                    self.measured_kept += 1;
                }
                false
            }
            None => {
                self.out.count(WHAT).imported += 1;
                true
            }
        }
    }

    /// Publishes `days` of `system` in records of at most [`DAYS_PER_RECORD`].
    async fn publish_days(
        &mut self,
        system: &str,
        vendor: Vendor,
        source: &str,
        mut days: Vec<HistoryDay>,
    ) -> anyhow::Result<()> {
        days.sort_by(|a, b| a.day.cmp(&b.day));
        for chunk in days.chunks(DAYS_PER_RECORD) {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let id = map::uuid5(&[
                "history-days",
                source,
                system,
                &first.day,
                &last.day,
                &chunk.len().to_string(),
            ]);
            let body = HistoryRecord {
                source: source.to_owned(),
                vendor,
                days: chunk.to_vec(),
                events: Vec::new(),
                keep_events: false,
            };
            let env = self.envelope(system, id, self.now, body);
            self.publish(Kind::History.subject(system), &env).await?;
        }
        Ok(())
    }

    pub(super) async fn history(
        &mut self,
        m: &Mapped,
        rows: Vec<predecessor::HistoryRow>,
    ) -> anyhow::Result<()> {
        let stored = SdashState::days(&self.sdash_db, &m.id).await?;
        let mut seen: HashMap<String, i64> = HashMap::new();
        let mut days = Vec::new();
        let (mut free_mismatch, mut free_zero) = (0_u64, 0_u64);
        for r in rows {
            self.out.count(WHAT).read += 1;
            let Some(day) = r.date.as_deref().and_then(map::day_of) else {
                self.out.skip(
                    WHAT,
                    "capacity_history",
                    r.id,
                    unreadable("date", r.date.as_deref(), "a day"),
                );
                continue;
            };
            let (total, used, free) = match self.day_values(&day, r.total_tb, r.used_tb) {
                Ok(v) => v,
                Err(why) => {
                    self.out.skip(WHAT, "capacity_history", r.id, why);
                    continue;
                }
            };
            if let Some(&first) = seen.get(&day) {
                self.out.skip(
                    WHAT,
                    "capacity_history",
                    r.id,
                    format!("repeats day {day} of row {first}"),
                );
                continue;
            }
            seen.insert(day.clone(), r.id);
            if let (Some(f), Some(t), Some(u)) = (r.free_tb, r.total_tb, r.used_tb) {
                if f == 0.0 && t - u > 0.005 {
                    free_zero += 1;
                } else if (f - (t - u)).abs() > 0.015 {
                    free_mismatch += 1;
                }
            }
            if self.is_new_day(&stored, &day) {
                self.days_done.insert((m.id.clone(), day.clone()));
                days.push(HistoryDay {
                    day,
                    total_bytes: total,
                    used_bytes: used,
                    free_bytes: free,
                });
            }
        }
        if free_zero + free_mismatch > 0 {
            self.out.note(format!(
                "{}: free_tb was 0 on {free_zero} day(s) and disagreed with total_tb - used_tb on \
                 {free_mismatch}; free is taken as total - used",
                m.id
            ));
        }
        self.publish_days(&m.id, m.vendor, SOURCE_DB, days).await
    }

    // ---- the history CSV ----

    pub(super) async fn csv(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let label = format!("CSV {}", path.display());
        let (rows, skips) = csv::parse(&text).with_context(|| format!("{}", path.display()))?;
        for s in &skips {
            self.out.count(WHAT).read += 1;
            self.out.skip(WHAT, &label, s.line, s.reason.clone());
        }
        // Names (and ids) → systems: this run's, sdash's, the --inventory's.
        let mut names: HashMap<String, Vec<(String, Vendor)>> = HashMap::new();
        let mut add = |key: &str, id: &str, vendor: Vendor| {
            let list = names.entry(key.trim().to_lowercase()).or_default();
            if !list.iter().any(|(i, _)| i == id) {
                list.push((id.to_owned(), vendor));
            }
        };
        for m in &self.mapped {
            add(&m.name, &m.id, m.vendor);
        }
        for s in &self.sdash.systems {
            if let Some(v) = Vendor::parse(&s.vendor) {
                add(&s.name, &s.id, v);
                add(&s.id, &s.id, v);
            }
        }
        if let Some(inv) = &self.args.inventory {
            for k in inventory::read_known(inv)? {
                add(&k.name, &k.id, k.vendor);
                add(&k.id, &k.id, k.vendor);
            }
        }
        let mut by_system: BTreeMap<(String, Vendor), Vec<csv::CsvRow>> = BTreeMap::new();
        for r in rows {
            self.out.count(WHAT).read += 1;
            match names.get(&r.system_name.to_lowercase()).map(Vec::as_slice) {
                Some([(id, vendor)]) => by_system.entry((id.clone(), *vendor)).or_default().push(r),
                Some(several) if several.len() > 1 => {
                    let ids: Vec<&str> = several.iter().map(|(i, _)| i.as_str()).collect();
                    self.out.skip(
                        WHAT,
                        &label,
                        r.line,
                        format!("system_name {:?} matches several systems: {}", r.system_name, ids.join(", ")),
                    );
                }
                _ => self.out.skip(
                    WHAT,
                    &label,
                    r.line,
                    format!(
                        "system_name {:?} matches no system (of sdash, --inventory or the imported database)",
                        r.system_name
                    ),
                ),
            }
        }
        for ((system, vendor), rows) in by_system {
            let stored = SdashState::days(&self.sdash_db, &system).await?;
            let mut days = Vec::new();
            let mut free_mismatch = 0_u64;
            for r in rows {
                let (total, used, free) =
                    match self.day_values(&r.day, Some(r.total_tib), Some(r.used_tib)) {
                        Ok(v) => v,
                        Err(why) => {
                            self.out.skip(WHAT, &label, r.line, why);
                            continue;
                        }
                    };
                if let Some(f) = r.free_tib
                    && f != 0.0
                    && (f - (r.total_tib - r.used_tib)).abs() > 0.015
                {
                    free_mismatch += 1;
                }
                if self.days_done.contains(&(system.clone(), r.day.clone())) {
                    self.out.count(WHAT).already += 1;
                    continue;
                }
                if self.is_new_day(&stored, &r.day) {
                    days.push(HistoryDay {
                        day: r.day,
                        total_bytes: total,
                        used_bytes: used,
                        free_bytes: free,
                    });
                }
            }
            if free_mismatch > 0 {
                self.out.note(format!(
                    "{system}: free_tb disagreed with total_tb - used_tb on {free_mismatch} CSV \
                     row(s); free is taken as total - used"
                ));
            }
            self.publish_days(&system, vendor, SOURCE_CSV, days).await?;
        }
        Ok(())
    }
}
