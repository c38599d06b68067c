//! The capacity model of one system over time (growth trend, daily cycle, noise, jumps, an
//! expansion), deterministic per system, and the hourly / daily rollup of its polls.

use std::sync::Arc;

use super::{DAY_MS, TIB};

pub(super) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A small deterministic random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = splitmix(self.0);
        unit(self.0)
    }
}

/// One system's capacity over time: a growth trend, a daily cycle, noise, a few jumps (data
/// migrated in or deleted) and for some systems a capacity expansion.
#[derive(Debug, Clone)]
pub(super) struct Model {
    seed: u64,
    /// Epoch of the trend (start of the history).
    t0: i64,
    /// Poll offset within the interval, so that the fleet's polls spread.
    pub(super) offset_ms: i64,
    total0: f64,
    expand_at: i64,
    expand_factor: f64,
    used0: f64,
    /// Bytes per ms.
    rate: f64,
    jumps: Vec<(i64, f64)>,
    cycle_amp: f64,
    cycle_phase_ms: i64,
    noise: f64,
}

/// sin over one day, by minute (the daily cycle without a sin per poll).
pub(super) fn cycle_table() -> Arc<Vec<f64>> {
    Arc::new(
        (0..1440)
            .map(|m| (m as f64 / 1440.0 * std::f64::consts::TAU).sin())
            .collect(),
    )
}

impl Model {
    pub(super) fn new(system: usize, t0: i64, span_ms: i64, interval_ms: i64) -> Model {
        let seed = splitmix(system as u64 ^ 0x5DA5_4157_0000_0000);
        let mut r = Rng(seed);
        let total0 = ((20.0 + 480.0 * r.next()) * TIB).round();
        let used0 = total0 * (0.15 + 0.4 * r.next());
        // 0.02 % to 0.15 % of the capacity per day; one system in 50 fills up fast.
        let per_day = if system % 50 == 7 {
            0.004
        } else {
            0.0002 + 0.0013 * r.next()
        };
        let rate = total0 * per_day / DAY_MS as f64;
        let jumps = (0..(r.next() * 4.0) as usize)
            .map(|_| {
                let at = t0 + (r.next() * span_ms as f64) as i64;
                let delta = total0 * (-0.05 + 0.13 * r.next());
                (at, delta)
            })
            .collect();
        let (expand_at, expand_factor) = if r.next() < 0.3 {
            (t0 + (r.next() * span_ms as f64) as i64, 1.5)
        } else {
            (i64::MAX, 1.0)
        };
        Model {
            seed,
            t0,
            offset_ms: (splitmix(seed) % interval_ms.max(1) as u64) as i64,
            total0,
            expand_at,
            expand_factor,
            used0,
            rate,
            jumps,
            cycle_amp: total0 * 0.001 * r.next(),
            cycle_phase_ms: (r.next() * DAY_MS as f64) as i64,
            noise: total0 * (0.00002 + 0.0002 * r.next()),
        }
    }

    fn total(&self, t: i64) -> f64 {
        if t >= self.expand_at {
            self.total0 * self.expand_factor
        } else {
            self.total0
        }
    }

    /// Used bytes without the noise at `t`.
    fn trend(&self, t: i64, cycle: &[f64]) -> f64 {
        let mut u = self.used0 + self.rate * (t - self.t0) as f64;
        for &(at, d) in &self.jumps {
            if t >= at {
                u += d;
            }
        }
        let minute = ((t + self.cycle_phase_ms).rem_euclid(DAY_MS) / 60_000) as usize;
        u + self.cycle_amp * cycle[minute.min(1439)]
    }

    fn clamp(&self, u: f64, total: f64) -> f64 {
        u.clamp(total * 0.01, total * 0.985)
    }

    /// The poll at `t` (the k-th of the system): total and used bytes.
    pub(super) fn poll(&self, t: i64, cycle: &[f64]) -> (i64, i64) {
        let total = self.total(t);
        let n = 2.0 * unit(splitmix(self.seed ^ t as u64)) - 1.0;
        let used = self.clamp(self.trend(t, cycle) + self.noise * n, total);
        (total as i64, used as i64)
    }

    /// One hour's rollup in closed form: the first and last poll of the hour from the trend,
    /// min and max beyond them by the noise bound, the average between them.
    pub(super) fn hour_closed(
        &self,
        hour: i64,
        polls: i64,
        interval_ms: i64,
        cycle: &[f64],
    ) -> HourStats {
        let first = hour + self.offset_ms;
        let last = first + (polls - 1) * interval_ms;
        let total = self.total(last);
        let d0 = self.clamp(self.trend(first, cycle), total);
        let d1 = self.clamp(self.trend(last, cycle), total);
        let h = splitmix(self.seed ^ (hour as u64).wrapping_mul(31));
        let (a, b, c) = (unit(h), unit(splitmix(h)), unit(splitmix(h ^ 1)));
        let min = self.clamp(d0.min(d1) - self.noise * (0.8 + 0.2 * a), total);
        let max = self.clamp(d0.max(d1) + self.noise * (0.8 + 0.2 * b), total);
        let last_used = (d1 + self.noise * (2.0 * c - 1.0)).clamp(min, max);
        HourStats {
            samples: polls,
            min: min as i64,
            max: max as i64,
            sum: (d0 + d1) / 2.0 * polls as f64,
            last_at: last,
            total: total as i64,
            used: last_used as i64,
        }
    }
}

/// One hour (or day) of polls summed up, as the rollup tables hold it.
#[derive(Debug, Clone, Copy)]
pub(super) struct HourStats {
    pub(super) samples: i64,
    pub(super) min: i64,
    pub(super) max: i64,
    pub(super) sum: f64,
    pub(super) last_at: i64,
    pub(super) total: i64,
    pub(super) used: i64,
}

impl HourStats {
    pub(super) fn empty() -> HourStats {
        HourStats {
            samples: 0,
            min: i64::MAX,
            max: i64::MIN,
            sum: 0.0,
            last_at: 0,
            total: 0,
            used: 0,
        }
    }

    pub(super) fn add(&mut self, o: &HourStats) {
        self.samples += o.samples;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        if o.last_at >= self.last_at {
            self.last_at = o.last_at;
            self.total = o.total;
            self.used = o.used;
        }
    }

    pub(super) fn add_poll(&mut self, t: i64, total: i64, used: i64) {
        self.add(&HourStats {
            samples: 1,
            min: used,
            max: used,
            sum: used as f64,
            last_at: t,
            total,
            used,
        });
    }
}
