//! The generator: the rows of the storage tiers (raw samples by the writer's rule or every
//! poll, hourly and daily rollups) for a range of systems, hour by hour for the whole range
//! (time-major, as the writer writes them), sent in chunks to the loader.

use tokio::sync::mpsc;

use super::model::{HourStats, Model, cycle_table};
use super::{DAY_MS, HOUR_MS, Shape};

/// Which raw samples are stored: the writer's deadband / max-gap rule, or every poll (today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RawRule {
    Deadband,
    EveryPoll,
}

/// What one generation writes: for `systems`, raw samples of the polls in `[raw_from, raw_to)`,
/// hourly rollups of the hours from `hourly_from`, daily rollups of the days from `daily_from`,
/// all before `end` (`i64::MAX`: none of that tier).
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) systems: std::ops::Range<usize>,
    /// Start of the history (the models' epoch) and its end (an hour boundary).
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) raw_from: i64,
    pub(super) raw_to: i64,
    pub(super) hourly_from: i64,
    pub(super) daily_from: i64,
    pub(super) rule: RawRule,
}

#[derive(Default)]
pub(super) struct Chunk {
    pub(super) raw: Vec<(u32, i64, i64, i64)>,
    pub(super) hourly: Vec<(u32, i64, HourStats)>,
    pub(super) daily: Vec<(u32, i64, HourStats)>,
}

impl Chunk {
    pub(super) fn rows(&self) -> usize {
        self.raw.len() + self.hourly.len() + self.daily.len()
    }
}

/// Rows written per tier.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Written {
    pub(super) raw: u64,
    pub(super) hourly: u64,
    pub(super) daily: u64,
}

impl Written {
    pub(super) fn total(&self) -> u64 {
        self.raw + self.hourly + self.daily
    }
}

/// Runs `job` on a thread of its own, sending chunks of rows to `tx`.
pub(super) fn generate(shape: Shape, job: Job, tx: mpsc::Sender<Chunk>) -> anyhow::Result<()> {
    let cycle = cycle_table();
    let span = job.end - job.start;
    let models: Vec<Model> = job
        .systems
        .clone()
        .map(|s| Model::new(s, job.start, span, shape.interval_ms))
        .collect();
    let polls = shape.polls_per_hour();
    let iv = shape.interval_ms;
    let first_hour = job
        .raw_from
        .min(job.hourly_from)
        .min(job.daily_from.div_euclid(DAY_MS) * DAY_MS)
        .max(job.start)
        .div_euclid(HOUR_MS)
        * HOUR_MS;
    let last_hour = job.end.min(
        if job.hourly_from == i64::MAX && job.daily_from == i64::MAX {
            job.raw_to
        } else {
            job.end
        },
    );
    // Per system: the last stored raw sample (at, total, used), the day being summed up.
    let mut last_raw: Vec<Option<(i64, i64, i64)>> = vec![None; models.len()];
    let mut days: Vec<HourStats> = vec![HourStats::empty(); models.len()];
    let mut chunk = Chunk::default();
    let mut hour = first_hour;
    while hour < last_hour {
        let day = hour.div_euclid(DAY_MS) * DAY_MS;
        let day_ends = hour + HOUR_MS >= day + DAY_MS || hour + HOUR_MS >= last_hour;
        let simulate = hour + HOUR_MS > job.raw_from && hour < job.raw_to;
        for (i, m) in models.iter().enumerate() {
            let idx = (job.systems.start + i) as u32;
            let stats = if simulate {
                let mut st = HourStats::empty();
                for k in 0..polls {
                    let t = hour + m.offset_ms + k * iv;
                    let (total, used) = m.poll(t, &cycle);
                    st.add_poll(t, total, used);
                    if t < job.raw_from || t >= job.raw_to {
                        continue;
                    }
                    let store = match (job.rule, last_raw[i]) {
                        (RawRule::EveryPoll, _) | (_, None) => true,
                        (RawRule::Deadband, Some((at, lt, lu))) => {
                            // The band of the last stored sample, as the writer has it.
                            let band = (shape.deadband_pct / 100.0 * lt as f64)
                                .max(shape.deadband_min_bytes);
                            (used - lu).abs() as f64 > band
                                || (total - lt).abs() as f64 > band
                                || t - at >= shape.max_gap_ms
                        }
                    };
                    if store {
                        last_raw[i] = Some((t, total, used));
                        chunk.raw.push((idx, t, total, used));
                    }
                }
                st
            } else {
                m.hour_closed(hour, polls, iv, &cycle)
            };
            if hour >= job.hourly_from {
                chunk.hourly.push((idx, hour, stats));
            }
            if day + DAY_MS > job.daily_from {
                days[i].add(&stats);
                if day_ends {
                    chunk.daily.push((idx, day, days[i]));
                    days[i] = HourStats::empty();
                }
            }
        }
        hour += HOUR_MS;
        if chunk.rows() >= 200_000 || hour >= last_hour {
            let full = std::mem::take(&mut chunk);
            if full.rows() > 0 && tx.blocking_send(full).is_err() {
                anyhow::bail!("the database side stopped");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Options;

    fn shape() -> Shape {
        let mut o = Options::new(true);
        o.systems = Some(3);
        Shape::of(&o)
    }

    /// Runs `job` and gathers every chunk.
    fn gather(shape: &Shape, job: Job) -> Chunk {
        let (tx, mut rx) = mpsc::channel(1_000_000);
        generate(shape.clone(), job, tx).expect("generate");
        let mut all = Chunk::default();
        while let Ok(c) = rx.try_recv() {
            all.raw.extend(c.raw);
            all.hourly.extend(c.hourly);
            all.daily.extend(c.daily);
        }
        all
    }

    fn job(shape: &Shape, rule: RawRule) -> Job {
        let end = 1_780_000_000_000i64.div_euclid(HOUR_MS) * HOUR_MS;
        let start = end - shape.days * DAY_MS;
        Job {
            systems: 0..3,
            start,
            end,
            raw_from: end - shape.raw_days * DAY_MS,
            raw_to: end,
            hourly_from: end - shape.hourly_days * DAY_MS,
            daily_from: start,
            rule,
        }
    }

    #[test]
    fn tiers_hold_what_the_writer_keeps() {
        let shape = shape();
        let j = job(&shape, RawRule::Deadband);
        let c = gather(&shape, j.clone());
        // One hourly rollup per system and hour of the hourly window, each of every poll.
        assert_eq!(c.hourly.len() as i64, 3 * shape.hourly_days * 24);
        assert!(c.hourly.iter().all(|(_, h, st)| st.samples == 60
            && *h >= j.hourly_from
            && *h < j.end
            && st.min <= st.used
            && st.used <= st.max
            && st.last_at >= *h
            && st.last_at < *h + HOUR_MS));
        // Daily rollups cover every day of the history (the first and last may be partial).
        let days = c.daily.iter().filter(|d| d.0 == 0).count() as i64;
        assert!(days == shape.days || days == shape.days + 1, "{days}");
        // The raw samples follow the deadband / max-gap rule, within the raw window.
        for s in 0..3u32 {
            let raw: Vec<_> = c.raw.iter().filter(|r| r.0 == s).collect();
            assert!(
                raw.len() as i64 >= shape.raw_days * DAY_MS / shape.max_gap_ms,
                "{}",
                raw.len()
            );
            assert!((raw.len() as i64) < shape.raw_days * 1440);
            for w in raw.windows(2) {
                let (a, b) = (w[0], w[1]);
                assert!(b.1 - a.1 <= shape.max_gap_ms, "gap {}", b.1 - a.1);
                assert!(b.1 >= j.raw_from && b.1 < j.raw_to);
                let band = shape.deadband_pct / 100.0 * a.2 as f64;
                let moved = (b.3 - a.3).abs() as f64 > band || b.2 != a.2;
                assert!(moved || b.1 - a.1 >= shape.max_gap_ms);
            }
        }
        // A day's rollup sums up its hours (where the hours are kept).
        let &(s, day, d) = c
            .daily
            .iter()
            .find(|d| d.0 == 1 && d.1 >= j.hourly_from && d.1 + DAY_MS <= j.end)
            .expect("a whole day in the hourly window");
        let hours: Vec<_> = c
            .hourly
            .iter()
            .filter(|(hs, h, _)| *hs == s && *h >= day && *h < day + DAY_MS)
            .collect();
        assert_eq!(hours.len(), 24);
        assert_eq!(d.samples, hours.iter().map(|h| h.2.samples).sum::<i64>());
        assert_eq!(d.min, hours.iter().map(|h| h.2.min).min().unwrap_or(0));
        assert_eq!(d.max, hours.iter().map(|h| h.2.max).max().unwrap_or(0));
        let sum: f64 = hours.iter().map(|h| h.2.sum).sum();
        assert!((d.sum - sum).abs() <= sum * 1e-12);
        assert_eq!(d.used, hours[23].2.used);
    }

    #[test]
    fn baseline_stores_every_poll() {
        let shape = shape();
        let mut j = job(&shape, RawRule::EveryPoll);
        j.hourly_from = i64::MAX;
        let c = gather(&shape, j);
        assert_eq!(c.raw.len() as i64, 3 * shape.raw_days * 1440);
        assert!(c.hourly.is_empty());
    }

    #[test]
    fn expired_day_only() {
        let shape = shape();
        let mut j = job(&shape, RawRule::EveryPoll);
        j.raw_from = j.end - 8 * DAY_MS;
        j.raw_to = j.end - 7 * DAY_MS;
        j.hourly_from = i64::MAX;
        j.daily_from = i64::MAX;
        let c = gather(&shape, j.clone());
        assert_eq!(c.raw.len(), 3 * 1440);
        assert!(c.raw.iter().all(|r| r.1 >= j.raw_from && r.1 < j.raw_to));
        assert!(c.daily.is_empty());
    }
}
