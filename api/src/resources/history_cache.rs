//! The fleet history cache. The fleet's daily totals over two years are a sum over every daily
//! rollup (10,000 systems × 730 days = 7.3 M rows): too much to read per request. So, per
//! grouping (the `group_by` and `subgroup_by` tag keys), the summed daily series of the past days
//! (before yesterday) is computed once and kept; yesterday's and today's values, which the writer
//! still changes, are read fresh per request (one query of those two days' rows) and carried
//! from each system's last cached rollup.
//!
//! A cached series is rebuilt when what it was computed from changed:
//! - the grouping of the systems (a tag, `enabled` or `removed` changed, a system came or went:
//!   a fingerprint of the fleet cache's mapping);
//! - a past day's rollup (an imported day, a late snapshot): the writer's marker
//!   `pipeline_status.capacity_past_version` when the schema has it; otherwise a count and
//!   `max(last_at)` of the past days' rollups, taken again only after the writer committed;
//! - the days moved on by a week (the fresh query would grow).
//!
//! The build reads the rollups in chunks of systems (bounded memory, each query well within the
//! query timeout); requests for the same grouping wait for one build. The default groupings are
//! built in the background at start ([`warm`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{DAY_MS, day_name, now};
use crate::db::{Db, DbError, Sql};
use crate::fleet::Fleet;
use crate::state::AppState;

/// A system's last daily rollup stands in for the days after it that have none (the system was
/// unreachable, or today's first poll has not come yet) for at most this many days, so that a
/// missing day does not show as a dip in the fleet's totals. Such points count the system in
/// `carried_forward`.
pub(crate) const CARRY_DAYS: i64 = 7;
/// The days at the end that are read fresh per request (yesterday and today).
const FRESH_DAYS: i64 = 2;
/// A cached series whose boundary is this many days behind today is rebuilt.
const MAX_LAG_DAYS: i64 = 7;
/// Systems per query of a build.
const CHUNK: usize = 50;
/// A marker (a commit time) this close to a build's start leaves the build unsettled.
const SETTLE_MS: i64 = 2000;
/// Most groupings kept; the least recently used goes first.
const MAX_GROUPINGS: usize = 16;
/// The groupings built at start (in one read of the rollups): the whole fleet, the dashboard's
/// default (`storage_type`), `environment`, and the predecessor's report (storage type ×
/// environment).
const WARM: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("storage_type"), None),
    (Some("environment"), None),
    (Some("storage_type"), Some("environment")),
];

/// The tag keys systems are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Grouping {
    pub group_by: Option<String>,
    pub subgroup_by: Option<String>,
}

/// A group: its value of `group_by` and of `subgroup_by` (`None`: the systems without the tag,
/// or no such key).
pub type GroupKey = (Option<String>, Option<String>);

/// Capacity added up over a set of systems.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Tally {
    pub systems: i64,
    /// History only: systems whose value is their last earlier rollup (see [`CARRY_DAYS`]).
    pub carried: i64,
    pub with_capacity: i64,
    pub total: i64,
    pub used: i64,
    pub free: i64,
}

impl Tally {
    pub fn add(&mut self, total: Option<i64>, used: Option<i64>, free: Option<i64>) {
        self.systems += 1;
        if let Some(t) = total {
            self.with_capacity += 1;
            self.total = self.total.saturating_add(t);
            self.used = self.used.saturating_add(used.unwrap_or(0));
            self.free = self.free.saturating_add(free.unwrap_or(0));
        }
    }

    /// Adds another tally (a group's into its subtotal).
    pub fn merge(&mut self, o: &Tally) {
        self.systems += o.systems;
        self.carried += o.carried;
        self.with_capacity += o.with_capacity;
        self.total = self.total.saturating_add(o.total);
        self.used = self.used.saturating_add(o.used);
        self.free = self.free.saturating_add(o.free);
    }

    pub fn used_pct(&self) -> Option<f64> {
        crate::http::percent(Some(self.used), Some(self.total))
    }
}

/// One system's rollup of one day.
#[derive(Debug, Clone, Copy)]
struct Val {
    day: i64,
    total: i64,
    used: i64,
    free: i64,
}

/// Tallies by day number, from `base` on.
#[derive(Debug, Default, Clone)]
pub(crate) struct DaySeries {
    base: i64,
    days: Vec<Tally>,
}

impl DaySeries {
    fn at_mut(&mut self, day: i64) -> &mut Tally {
        if self.days.is_empty() {
            self.base = day;
        } else if day < self.base {
            let extra = (self.base - day) as usize;
            self.days
                .splice(0..0, std::iter::repeat_n(Tally::default(), extra));
            self.base = day;
        }
        let i = (day - self.base) as usize;
        if i >= self.days.len() {
            self.days.resize(i + 1, Tally::default());
        }
        &mut self.days[i]
    }

    fn get(&self, day: i64) -> Option<&Tally> {
        if day < self.base {
            return None;
        }
        self.days
            .get((day - self.base) as usize)
            .filter(|t| t.systems > 0)
    }

    fn first_day(&self) -> Option<i64> {
        self.days
            .iter()
            .position(|t| t.systems > 0)
            .map(|i| self.base + i as i64)
    }

    /// Adds the rollups of one system (in day order) to the days from `from` to before `until`,
    /// each day counting the system's latest rollup of at most [`CARRY_DAYS`] before.
    fn fill(&mut self, rows: &[Val], from: i64, until: i64) {
        for (i, r) in rows.iter().enumerate() {
            let next = rows.get(i + 1).map_or(i64::MAX, |n| n.day);
            let end = next.min(r.day + CARRY_DAYS + 1).min(until);
            for d in r.day.max(from)..end {
                let t = self.at_mut(d);
                t.add(Some(r.total), Some(r.used), Some(r.free));
                if d > r.day {
                    t.carried += 1;
                }
            }
        }
    }
}

/// Which group each system of the fleet counts in (removed and disabled systems in none).
struct Mapping {
    groups: Vec<GroupKey>,
    /// System id → index in `groups`, for the systems counted.
    of: HashMap<String, usize>,
    fingerprint: u64,
}

/// Which systems count in which group, as one number: a cached series is rebuilt when it moves.
fn fingerprint(fleet: &Fleet, g: &Grouping) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    g.hash(&mut hasher);
    for e in &fleet.entries {
        let counted = e.counted();
        e.id.hash(&mut hasher);
        counted.hash(&mut hasher);
        if counted {
            g.group_by
                .as_deref()
                .and_then(|k| e.tag(k))
                .hash(&mut hasher);
            g.subgroup_by
                .as_deref()
                .and_then(|k| e.tag(k))
                .hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The groups of the fleet's counted systems in order of first appearance, and the group
/// (index) of each system id.
pub(crate) fn assign<'a>(
    fleet: &'a Fleet,
    g: &Grouping,
) -> (Vec<GroupKey>, HashMap<&'a str, usize>) {
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    let mut groups = Vec::new();
    let mut of = HashMap::with_capacity(fleet.entries.len());
    for e in fleet.entries.iter().filter(|e| e.counted()) {
        let key: GroupKey = (
            g.group_by.as_deref().and_then(|k| e.tag(k)),
            g.subgroup_by.as_deref().and_then(|k| e.tag(k)),
        );
        let next = groups.len();
        let i = *index.entry(key.clone()).or_insert(next);
        if i == next {
            groups.push(key);
        }
        of.insert(e.id.as_str(), i);
    }
    (groups, of)
}

impl Mapping {
    fn new(fleet: &Fleet, g: &Grouping) -> Mapping {
        let (groups, of) = assign(fleet, g);
        Mapping {
            groups,
            of: of.into_iter().map(|(id, i)| (id.to_owned(), i)).collect(),
            fingerprint: fingerprint(fleet, g),
        }
    }
}

/// What says that a past day's rollups changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// The writer's `pipeline_status.capacity_past_version`.
    Version(i64),
    /// The past days' row count and newest `last_at` (without the writer's marker).
    Scan { rows: i64, last_at: i64 },
}

/// The writer's progress (`pipeline_status`): its past-day marker, if the schema has one, and its
/// commit mark.
struct Progress {
    version: Option<i64>,
    commit: (Option<i64>, Option<i64>),
}

async fn progress(db: &Db) -> Result<Progress, DbError> {
    let row = db
        .fetch_one(&Sql::new("SELECT * FROM pipeline_status WHERE id = 1"))
        .await?;
    Ok(match row {
        Some(r) => Progress {
            version: r.i64("capacity_past_version"),
            commit: (r.i64("last_stream_seq"), r.i64("last_commit_at")),
        },
        None => Progress {
            version: None,
            commit: (None, None),
        },
    })
}

crate::row_struct! {
    struct ScanRow {
        n: i64,
        m: Option<i64>,
    }
}

async fn scan_marker(db: &Db, upto: i64) -> Result<Marker, DbError> {
    let mut sql =
        Sql::new("SELECT COUNT(*) AS n, MAX(last_at) AS m FROM capacity_daily WHERE day < ");
    sql.bind(day_name(upto));
    let row = db.fetch_optional_as::<ScanRow>(&sql).await?;
    Ok(Marker::Scan {
        rows: row.as_ref().map_or(0, |r| r.n),
        last_at: row.and_then(|r| r.m).unwrap_or(0),
    })
}

crate::row_struct! {
    struct RollupRow {
        system_id: String,
        day: String,
        total_bytes: i64,
        used_bytes: i64,
        free_bytes: i64,
    }
}

/// The number of a `YYYY-MM-DD` day (days since 1970-01-01), without allocating.
pub(crate) fn day_number(day: &str) -> Option<i64> {
    let b = day.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The rollups of `ids` (in chunks), day order per system, with `day` in `[from, until)`; `each`
/// gets every system's rows.
async fn read_rollups(
    db: &Db,
    ids: &[&String],
    from: Option<i64>,
    until: i64,
    mut each: impl FnMut(&str, &[Val]),
) -> Result<(), DbError> {
    let mut vals: Vec<Val> = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut sql = Sql::new(
            "SELECT system_id, day, total_bytes, used_bytes, free_bytes FROM capacity_daily WHERE system_id IN ",
        );
        sql.bind_list(chunk.iter().map(|s| s.as_str()));
        if let Some(from) = from {
            sql.push(" AND day >= ").bind(day_name(from));
        }
        sql.push(" AND day < ")
            .bind(day_name(until))
            .push(" ORDER BY system_id, day");
        let rows = db.fetch_all_as::<RollupRow>(&sql).await?;
        let mut current: Option<&str> = None;
        for r in &rows {
            let Some(day) = day_number(&r.day) else {
                continue;
            };
            if current != Some(r.system_id.as_str()) {
                if let Some(id) = current {
                    each(id, &vals);
                }
                vals.clear();
                current = Some(r.system_id.as_str());
            }
            vals.push(Val {
                day,
                total: r.total_bytes,
                used: r.used_bytes,
                free: r.free_bytes,
            });
        }
        if let Some(id) = current {
            each(id, &vals);
        }
        vals.clear();
    }
    Ok(())
}

/// One grouping's cached past: the summed series of the days before `upto`.
struct Built {
    fingerprint: u64,
    marker: Marker,
    /// False when the marker is a time close to the build's start: another commit in the same
    /// millisecond could have written a past day after the build read it, so the next request
    /// builds again (a counter marker is always settled).
    settled: bool,
    /// The writer's commit mark when `marker` was last found current (for [`Marker::Scan`]).
    checked: Mutex<(Option<i64>, Option<i64>)>,
    upto: i64,
    groups: Vec<GroupKey>,
    of: HashMap<String, usize>,
    /// Per group (index of `groups`), the days before `upto`.
    past: Vec<DaySeries>,
    /// Per system, its last rollup before `upto` when a fresh day may carry it.
    last: HashMap<String, Val>,
}

/// Builds the series of several groupings in one read of the rollups (their mappings count the
/// same systems, grouped differently).
async fn build_all(
    db: &Db,
    mappings: Vec<Mapping>,
    marker: Marker,
    commit: (Option<i64>, Option<i64>),
    upto: i64,
) -> Result<Vec<Built>, DbError> {
    let started = std::time::Instant::now();
    let started_ms = now();
    let mut ids: Vec<&String> = mappings
        .first()
        .map(|m| m.of.keys().collect())
        .unwrap_or_default();
    ids.sort_unstable();
    let mut pasts: Vec<Vec<DaySeries>> = mappings
        .iter()
        .map(|m| vec![DaySeries::default(); m.groups.len()])
        .collect();
    let mut last = HashMap::new();
    read_rollups(db, &ids, None, upto, |id, vals| {
        for (m, past) in mappings.iter().zip(pasts.iter_mut()) {
            if let Some(&g) = m.of.get(id) {
                past[g].fill(vals, i64::MIN, upto);
            }
        }
        if let Some(v) = vals.last()
            && v.day >= upto - CARRY_DAYS
        {
            last.insert(id.to_owned(), *v);
        }
    })
    .await?;
    tracing::debug!(
        systems = ids.len(),
        groupings = mappings.len(),
        ms = started.elapsed().as_millis() as u64,
        "built the cached fleet history"
    );
    let settled = match marker {
        Marker::Version(v) => v < started_ms - SETTLE_MS,
        Marker::Scan { .. } => true,
    };
    Ok(mappings
        .into_iter()
        .zip(pasts)
        .map(|(m, past)| Built {
            fingerprint: m.fingerprint,
            marker,
            settled,
            checked: Mutex::new(commit),
            upto,
            groups: m.groups,
            of: m.of,
            past,
            last: last.clone(),
        })
        .collect())
}

/// A grouping's daily totals as one request sees them: the cached past and the fresh days.
pub(crate) struct View {
    built: Arc<Built>,
    /// Per group, the days from the cache's boundary to today.
    fresh: Arc<Vec<DaySeries>>,
    pub today: i64,
}

impl View {
    pub fn groups(&self) -> &[GroupKey] {
        &self.built.groups
    }

    /// Group `g`'s totals on day `day` (`None`: no system of the group has a value).
    pub fn tally(&self, g: usize, day: i64) -> Option<&Tally> {
        if day < self.built.upto {
            self.built.past.get(g)?.get(day)
        } else {
            self.fresh.get(g)?.get(day)
        }
    }

    /// The first day any group has a value.
    pub fn first_day(&self) -> Option<i64> {
        self.built
            .past
            .iter()
            .chain(self.fresh.iter())
            .filter_map(DaySeries::first_day)
            .min()
    }
}

/// One cached grouping.
#[derive(Default)]
struct Slot {
    built: tokio::sync::Mutex<Option<Arc<Built>>>,
    used_at: AtomicI64,
    /// The fingerprint of the grouping in the fleet copy it was computed for (a weak reference
    /// keeps the copy's allocation, so no later copy can have its address).
    fingerprint: Mutex<Option<(Weak<Fleet>, u64)>>,
    /// The fresh days last read: for which build, day and writer commit.
    fresh: Mutex<Option<FreshDays>>,
}

/// Fresh days read for a build, valid while the writer has not committed and the day is the same.
struct FreshDays {
    built: Arc<Built>,
    today: i64,
    commit: (Option<i64>, Option<i64>),
    days: Arc<Vec<DaySeries>>,
}

impl Slot {
    fn fingerprint(&self, fleet: &Arc<Fleet>, g: &Grouping) -> u64 {
        let mut cached = self.fingerprint.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((f, fp)) = cached.as_ref()
            && std::ptr::eq(f.as_ptr(), Arc::as_ptr(fleet))
        {
            return *fp;
        }
        let fp = fingerprint(fleet, g);
        *cached = Some((Arc::downgrade(fleet), fp));
        fp
    }

    fn cached_fresh(
        &self,
        b: &Arc<Built>,
        today: i64,
        commit: (Option<i64>, Option<i64>),
    ) -> Option<Arc<Vec<DaySeries>>> {
        let cached = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|f| {
                Arc::ptr_eq(&f.built, b)
                    && f.today == today
                    && f.commit == commit
                    && commit.0.is_some()
            })
            .map(|f| f.days.clone())
    }
}

/// The cache of every grouping asked for.
#[derive(Default)]
pub struct HistoryCache {
    slots: Mutex<HashMap<Grouping, Arc<Slot>>>,
}

impl HistoryCache {
    pub fn new() -> HistoryCache {
        HistoryCache::default()
    }

    fn slot(&self, g: &Grouping) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(g.clone()).or_default().clone();
        slot.used_at.store(now(), Ordering::Relaxed);
        if slots.len() > MAX_GROUPINGS
            && let Some(oldest) = slots
                .iter()
                .filter(|(k, _)| *k != g)
                .min_by_key(|(_, s)| s.used_at.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone())
        {
            slots.remove(&oldest);
        }
        slot
    }

    /// The daily totals of `g`'s groups up to today.
    pub(crate) async fn view(&self, st: &AppState, g: &Grouping) -> Result<View, DbError> {
        let fleet = st.fleet.get(&st.db).await?;
        let today = now().div_euclid(DAY_MS);
        let progress = progress(&st.db).await?;
        let slot = self.slot(g);
        let fp = slot.fingerprint(&fleet, g);
        let built = {
            let mut current = slot.built.lock().await;
            let valid = match current.as_ref() {
                Some(b) if b.fingerprint == fp && b.upto >= today - MAX_LAG_DAYS => {
                    current_marker(&st.db, b, &progress).await?
                }
                _ => false,
            };
            match current.as_ref() {
                Some(b) if valid => b.clone(),
                _ => {
                    let upto = today - FRESH_DAYS + 1;
                    let marker = match progress.version {
                        Some(v) => Marker::Version(v),
                        None => scan_marker(&st.db, upto).await?,
                    };
                    let mapping = Mapping::new(&fleet, g);
                    let built =
                        build_all(&st.db, vec![mapping], marker, progress.commit, upto).await?;
                    let Some(b) = built.into_iter().next().map(Arc::new) else {
                        return Err(DbError::Column {
                            column: "capacity_daily".into(),
                            problem: "no series built",
                        });
                    };
                    *current = Some(b.clone());
                    b
                }
            }
        };
        let fresh = match slot.cached_fresh(&built, today, progress.commit) {
            Some(days) => days,
            None => {
                let days = Arc::new(fresh_days(&st.db, &built, today).await?);
                *slot.fresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(FreshDays {
                    built: built.clone(),
                    today,
                    commit: progress.commit,
                    days: days.clone(),
                });
                days
            }
        };
        Ok(View {
            built,
            fresh,
            today,
        })
    }
}

/// Whether `b`'s past days are still what the database holds.
async fn current_marker(db: &Db, b: &Built, p: &Progress) -> Result<bool, DbError> {
    match (b.marker, p.version) {
        (Marker::Version(v), Some(now)) => Ok(v == now && b.settled),
        (Marker::Version(_), None) | (Marker::Scan { .. }, Some(_)) => Ok(false),
        (Marker::Scan { .. }, None) => {
            if *b.checked.lock().unwrap_or_else(|e| e.into_inner()) == p.commit {
                return Ok(true);
            }
            let same = scan_marker(db, b.upto).await? == b.marker;
            if same {
                *b.checked.lock().unwrap_or_else(|e| e.into_inner()) = p.commit;
            }
            Ok(same)
        }
    }
}

/// The days from `b`'s boundary to today, per group: the fresh rollups, and each system's last
/// cached one carried.
async fn fresh_days(db: &Db, b: &Built, today: i64) -> Result<Vec<DaySeries>, DbError> {
    let mut sql = Sql::new(
        "SELECT system_id, day, total_bytes, used_bytes, free_bytes FROM capacity_daily WHERE day >= ",
    );
    sql.bind(day_name(b.upto))
        .push(" AND day <= ")
        .bind(day_name(today))
        .push(" ORDER BY system_id, day");
    let rows = db.fetch_all_as::<RollupRow>(&sql).await?;
    let mut by_system: HashMap<&str, Vec<Val>> = HashMap::new();
    for r in &rows {
        if let Some(day) = day_number(&r.day) {
            by_system
                .entry(r.system_id.as_str())
                .or_default()
                .push(Val {
                    day,
                    total: r.total_bytes,
                    used: r.used_bytes,
                    free: r.free_bytes,
                });
        }
    }
    let mut fresh = vec![DaySeries::default(); b.groups.len()];
    let mut vals = Vec::new();
    for (id, &g) in &b.of {
        vals.clear();
        if let Some(v) = b.last.get(id) {
            vals.push(*v);
        }
        if let Some(rows) = by_system.get(id.as_str()) {
            vals.extend_from_slice(rows);
        }
        fresh[g].fill(&vals, b.upto, today + 1);
    }
    Ok(fresh)
}

impl HistoryCache {
    /// Builds every grouping of `groupings` whose series is missing or out of date, in one read.
    async fn build_missing(&self, st: &AppState, groupings: &[Grouping]) -> Result<(), DbError> {
        let fleet = st.fleet.get(&st.db).await?;
        let today = now().div_euclid(DAY_MS);
        let progress = progress(&st.db).await?;
        let slots: Vec<Arc<Slot>> = groupings.iter().map(|g| self.slot(g)).collect();
        let mut guards = Vec::with_capacity(slots.len());
        for slot in &slots {
            guards.push(slot.built.lock().await);
        }
        let mut todo = Vec::new();
        for (i, g) in groupings.iter().enumerate() {
            let fp = slots[i].fingerprint(&fleet, g);
            let valid = match guards[i].as_ref() {
                Some(b) if b.fingerprint == fp && b.upto >= today - MAX_LAG_DAYS => {
                    current_marker(&st.db, b, &progress).await?
                }
                _ => false,
            };
            if !valid {
                todo.push(i);
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let upto = today - FRESH_DAYS + 1;
        let marker = match progress.version {
            Some(v) => Marker::Version(v),
            None => scan_marker(&st.db, upto).await?,
        };
        let mappings = todo
            .iter()
            .map(|&i| Mapping::new(&fleet, &groupings[i]))
            .collect();
        let built = build_all(&st.db, mappings, marker, progress.commit, upto).await?;
        for (i, b) in todo.into_iter().zip(built) {
            *guards[i] = Some(Arc::new(b));
        }
        Ok(())
    }
}

/// Builds the default groupings (in one read of the rollups) once the database answers (the
/// API may start before the writer made the schema); gives up after a few minutes.
pub async fn warm(st: Arc<AppState>) {
    let groupings: Vec<Grouping> = WARM
        .iter()
        .map(|(group_by, subgroup_by)| Grouping {
            group_by: group_by.map(str::to_owned),
            subgroup_by: subgroup_by.map(str::to_owned),
        })
        .collect();
    for _ in 0..60 {
        match st.history.build_missing(&st, &groupings).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "fleet history not built yet"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(
            day_number("2026-03-01"),
            super::super::day_index("2026-03-01")
        );
        assert_eq!(
            day_number("2024-02-29"),
            super::super::day_index("2024-02-29")
        );
        assert_eq!(day_number("1969-12-31"), Some(-1));
        assert_eq!(day_number("2026-13-01"), None);
        assert_eq!(day_number("2026-1-01"), None);
    }

    #[test]
    fn fill_carries_for_at_most_seven_days() {
        let v = |day, used| Val {
            day,
            total: 100,
            used,
            free: 100 - used,
        };
        let mut s = DaySeries::default();
        s.fill(&[v(10, 1), v(12, 2), v(30, 3)], 0, 40);
        assert_eq!(s.get(10).map(|t| (t.used, t.carried)), Some((1, 0)));
        assert_eq!(s.get(11).map(|t| (t.used, t.carried)), Some((1, 1)));
        assert_eq!(s.get(12).map(|t| (t.used, t.carried)), Some((2, 0)));
        assert_eq!(s.get(19).map(|t| t.used), Some(2));
        assert!(s.get(20).is_none());
        assert_eq!(s.get(37).map(|t| t.used), Some(3));
        assert!(s.get(38).is_none());
        assert_eq!(s.first_day(), Some(10));
        // Days before `from` are left out, carried values start at it.
        let mut s = DaySeries::default();
        s.fill(&[v(10, 1)], 13, 40);
        assert_eq!(s.first_day(), Some(13));
        assert_eq!(s.get(13).map(|t| t.carried), Some(1));
    }
}
