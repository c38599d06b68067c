//! Plausible daily capacity history of a simulated fleet, written in the predecessor
//! dashboard's history CSV format (`date,system_name,total_tb,used_tb,free_tb,percent_used`,
//! TiB with two decimals), so that `sdash-writer import --from-csv` can bring it in: the demo
//! then shows two years of history, forecasts and group histories on its first run.
//!
//! Per system, deterministic from the fleet's seed: used capacity grows by 8 to 60 % a year
//! (with a little day-to-day noise and a quieter weekend), a few jumps (a migration in, a
//! clean-up), some systems got a capacity expansion on the way, and the fullest system fills up
//! fast over its last four months. Every series ends the day before today at the system's
//! current capacity, so the imported lines meet the live ones.

use std::fmt::Write as _;
use std::path::Path;

use super::{Fleet, SimError, mix64};

const TIB: f64 = 1_099_511_627_776.0;
const DAY_MS: i64 = 86_400_000;

/// One system's history inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySystem {
    /// The name the history names it by (the inventory's display name).
    pub name: String,
    /// Capacity now, bytes.
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// A per-system seed.
    pub seed: u64,
    /// The one system that fills up fast.
    pub fast: bool,
}

/// One day of history, TiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    /// Days since the epoch (UTC).
    pub day: i64,
    pub total_tib: f64,
    pub used_tib: f64,
}

/// A number in `[0, 1)` for `salt` of a system.
fn unit(seed: u64, salt: u64) -> f64 {
    (mix64(seed ^ mix64(salt)) >> 11) as f64 / (1_u64 << 53) as f64
}

/// The display name the simulator's inventory gives a system ([`Fleet::write_inventory`]).
pub fn display_name(vendor: sdash_proto::Vendor, id: &str) -> String {
    format!("Simulated {} {id}", vendor.as_str())
}

/// `days` days of history of `s`, ending on day `last_day` (days since the epoch), oldest first.
pub fn history(s: &HistorySystem, last_day: i64, days: u32) -> Vec<HistoryPoint> {
    let total_now = s.total_bytes as f64 / TIB;
    let used_now = (s.used_bytes as f64 / TIB).min(total_now);
    let growth = 0.08 + 0.52 * unit(s.seed, 1);
    // A capacity expansion for about half the systems, 100 to 600 days ago, from 60-80 %.
    let expansion = (unit(s.seed, 2) < 0.5).then(|| {
        (
            100 + (unit(s.seed, 3) * 500.0) as i64,
            0.6 + 0.2 * unit(s.seed, 4),
        )
    });
    // Two jumps: data moved in (+5 to +15 %) and a clean-up (-3 to -10 %), both before the
    // last four months (what a forecast is fitted on stays a clean trend).
    let jumps = [
        (
            130 + (unit(s.seed, 5) * 560.0) as i64,
            1.05 + 0.10 * unit(s.seed, 6),
        ),
        (
            130 + (unit(s.seed, 7) * 560.0) as i64,
            0.90 + 0.07 * unit(s.seed, 8),
        ),
    ];
    let mut out = Vec::with_capacity(days as usize);
    for back in (0..i64::from(days)).rev() {
        let day = last_day - back;
        let years = back as f64 / 365.0;
        let mut used = if s.fast && back < 120 {
            // The last four months: from half full to now, a straight line.
            let start = total_now * 0.5;
            used_now - (used_now - start) * back as f64 / 120.0
        } else if s.fast {
            total_now * 0.5 / (1.0 + growth).powf((back - 120) as f64 / 365.0)
        } else {
            used_now / (1.0 + growth).powf(years)
        };
        if !s.fast {
            for (at, factor) in jumps {
                if back >= at {
                    used /= factor;
                }
            }
        }
        // Noise of about ±0.4 %, and weekends a little quieter.
        let noise = 1.0 + 0.008 * (unit(s.seed, 1000 + day as u64) - 0.5);
        let weekend = if (day + 3).rem_euclid(7) >= 5 {
            0.998
        } else {
            1.0
        };
        if back > 0 {
            used *= noise * weekend;
        }
        let mut total = total_now;
        if let Some((at, fraction)) = expansion
            && back >= at
            && !s.fast
        {
            total = (total_now * fraction).max(used / 0.9);
        }
        out.push(HistoryPoint {
            day,
            total_tib: round2(total),
            used_tib: round2(used.clamp(0.0, total)),
        });
    }
    out
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The `YYYY-MM-DD` of a day since the epoch.
fn day_name(day: i64) -> String {
    let date = time::Date::from_julian_day((day + 2_440_588) as i32).unwrap_or(time::Date::MIN);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The CSV text of `systems`' history: `days` days each, ending on `last_day`.
pub fn csv(systems: &[HistorySystem], last_day: i64, days: u32) -> String {
    let mut text = String::from("date,system_name,total_tb,used_tb,free_tb,percent_used\n");
    for s in systems {
        let name = if s.name.contains([',', '"']) {
            format!("\"{}\"", s.name.replace('"', "\"\""))
        } else {
            s.name.clone()
        };
        for p in history(s, last_day, days) {
            let free = round2(p.total_tib - p.used_tib);
            let pct = if p.total_tib > 0.0 {
                (p.used_tib * 1000.0 / p.total_tib).round() / 10.0
            } else {
                0.0
            };
            let _ = writeln!(
                text,
                "{},{name},{:.2},{:.2},{free:.2},{pct:.1}",
                day_name(p.day),
                p.total_tib,
                p.used_tib
            );
        }
    }
    text
}

impl Fleet {
    /// The history inputs of every system: named as in the inventory, ending at the capacity it
    /// serves now; the fullest system fills up fast.
    pub fn history_systems(&self) -> Vec<HistorySystem> {
        let mut out: Vec<HistorySystem> = self
            .systems()
            .into_iter()
            .enumerate()
            .filter_map(|(i, info)| {
                let c = self.expected_capacity(&info.id)?;
                Some(HistorySystem {
                    name: display_name(info.vendor, &info.id),
                    total_bytes: c.total_bytes,
                    used_bytes: c.used_bytes,
                    seed: mix64(i as u64 + 1) ^ mix64(info.id.len() as u64),
                    fast: false,
                })
            })
            .collect();
        let fullest = out
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                let fa = a.used_bytes as f64 / a.total_bytes.max(1) as f64;
                let fb = b.used_bytes as f64 / b.total_bytes.max(1) as f64;
                fa.total_cmp(&fb)
            })
            .map(|(i, _)| i);
        if let Some(i) = fullest {
            out[i].fast = true;
        }
        out
    }

    /// Writes `days` days of history of every system, ending yesterday (UTC), as the
    /// predecessor's history CSV; returns the number of rows.
    pub fn write_history_csv(&self, path: &Path, days: u32) -> Result<usize, SimError> {
        let now_ms = sdash_proto::now_ms();
        let yesterday = now_ms.div_euclid(DAY_MS) - 1;
        let systems = self.history_systems();
        let text = csv(&systems, yesterday, days);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, &text).map_err(|source| SimError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(text.lines().count().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(fast: bool, seed: u64) -> HistorySystem {
        HistorySystem {
            name: "Simulated pure sim-pure-0001".into(),
            total_bytes: 500 << 40,
            used_bytes: if fast { 470 << 40 } else { 250 << 40 },
            seed,
            fast,
        }
    }

    #[test]
    fn two_years_end_at_the_current_capacity_and_grow() {
        for seed in 1..50 {
            let h = history(&system(false, seed), 20_000, 730);
            assert_eq!(h.len(), 730);
            assert_eq!(h[0].day, 20_000 - 729);
            let last = h[729];
            assert_eq!((last.total_tib, last.used_tib), (500.0, 250.0));
            assert!(h[0].used_tib < last.used_tib, "seed {seed}: no growth");
            assert!(
                h.iter()
                    .all(|p| p.used_tib <= p.total_tib && p.used_tib > 0.0)
            );
        }
    }

    #[test]
    fn the_fast_one_fills_up_over_its_last_months() {
        let h = history(&system(true, 3), 20_000, 730);
        let at = |back: usize| h[729 - back].used_tib / h[729 - back].total_tib;
        assert!(at(120) < 0.52 && at(0) > 0.93, "{} {}", at(120), at(0));
        // About 0.36 percentage points a day: full within weeks.
        assert!((at(0) - at(30)) > 0.08);
    }

    #[test]
    fn the_csv_is_the_predecessors_format() {
        let text = csv(&[system(false, 1)], 20_000, 3);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "date,system_name,total_tb,used_tb,free_tb,percent_used"
        );
        assert_eq!(lines.len(), 4);
        assert!(
            lines[3]
                .starts_with("2024-10-04,Simulated pure sim-pure-0001,500.00,250.00,250.00,50.0"),
            "{}",
            lines[3]
        );
        assert_eq!(day_name(0), "1970-01-01");
    }
}
