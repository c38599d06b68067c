//! What an import did (or, with `--dry-run`, would do): counts per kind of row, every skipped
//! row with its reason (row ids of the predecessor's tables, line numbers of a CSV, as ranges),
//! notes, and the secret files the operator must fill.

use std::collections::BTreeMap;
use std::fmt;

/// Counts of one kind of row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Rows read from the source.
    pub read: u64,
    /// New to sdash: published (with `--dry-run`: would be).
    pub imported: u64,
    /// Mapped, but sdash has them already (measured days, rows of an earlier import).
    pub already: u64,
    /// Not imported; each one is listed in [`Summary::skipped`].
    pub skipped: u64,
}

/// Rows skipped for one reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The predecessor row ids (or CSV line numbers), ascending.
    pub rows: Vec<i64>,
}

/// The outcome of an import.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub dry_run: bool,
    /// `systems`, `capacity days`, `events`, `alert states`, `assignee names`, `system tags`.
    pub counts: BTreeMap<&'static str, Count>,
    /// `(where, reason)` → rows: `where` is `storage_systems`, `capacity_history`,
    /// `system_logs`, `alert_states`, … or a CSV file's name (then the rows are line numbers).
    pub skipped: BTreeMap<(String, String), Skipped>,
    /// Things worth knowing that are not skips (values mapped with a default, joined tags, …).
    pub notes: Vec<String>,
    /// Secret files the generated inventory references, with what goes in each.
    pub secret_files: Vec<(String, String)>,
    /// Where the inventory was written.
    pub inventory_out: Option<String>,
    /// Imported events that event retention as configured now would delete (by age, by the
    /// per-system limit); `None` when they are kept (`--keep-imported-events`).
    pub retention_would_remove: Option<(u64, u64)>,
    /// The predecessor's log settings as the equivalent sdash flags.
    pub predecessor_settings: Vec<String>,
    /// After waiting for the writer: whether it stored everything published.
    pub stored: Option<bool>,
    /// Commands of this and earlier imports as the writer recorded them: (outcome, reason) → n.
    pub command_outcomes: BTreeMap<(String, String), u64>,
}

impl Summary {
    pub fn count(&mut self, what: &'static str) -> &mut Count {
        self.counts.entry(what).or_default()
    }

    /// Records that row `row` of `table` was skipped for `reason` (and counts it under `what`).
    pub fn skip(&mut self, what: &'static str, table: &str, row: i64, reason: impl Into<String>) {
        self.count(what).skipped += 1;
        self.skipped
            .entry((table.to_owned(), reason.into()))
            .or_default()
            .rows
            .push(row);
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// How many rows were skipped in all.
    pub fn skipped_rows(&self) -> u64 {
        self.counts.values().map(|c| c.skipped).sum()
    }

    /// The rows skipped from `table` for a reason containing `reason`.
    pub fn skipped_for(&self, table: &str, reason: &str) -> Vec<i64> {
        let mut rows: Vec<i64> = self
            .skipped
            .iter()
            .filter(|((t, r), _)| t == table && r.contains(reason))
            .flat_map(|(_, s)| s.rows.iter().copied())
            .collect();
        rows.sort_unstable();
        rows
    }
}

/// `1-3, 7, 9-10` for 1, 2, 3, 7, 9, 10.
pub fn ranges(rows: &[i64]) -> String {
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        writeln!(
            f,
            "{}",
            if self.dry_run {
                "sdash import summary (DRY RUN: nothing was published)"
            } else {
                "sdash import summary"
            }
        )?;
        for (what, c) in &self.counts {
            writeln!(
                f,
                "  {what:<15} {:>8} read, {:>8} {verb}, {:>8} already in sdash, {:>8} skipped",
                c.read, c.imported, c.already, c.skipped
            )?;
        }
        match self.retention_would_remove {
            Some((0, 0)) => {}
            Some((age, count)) => writeln!(
                f,
                "  event retention as configured now would delete {} of the imported events \
                 ({age} older than --event-retention-days, {count} beyond --events-per-system); \
                 import with --keep-imported-events to keep them",
                age + count
            )?,
            None => writeln!(
                f,
                "  imported events are kept by event retention (--keep-imported-events)"
            )?,
        }
        match self.stored {
            Some(true) => writeln!(f, "  the writer has stored everything published")?,
            Some(false) => writeln!(
                f,
                "  the writer has NOT stored everything yet (is sdash-writer running?): it will \
                 when it runs; running the import again publishes the same ids"
            )?,
            None => {}
        }
        if !self.command_outcomes.is_empty() {
            writeln!(f, "alert commands of imports, as the writer recorded them:")?;
            for ((outcome, reason), n) in &self.command_outcomes {
                match reason.is_empty() {
                    true => writeln!(f, "  {n:>6} {outcome}")?,
                    false => writeln!(f, "  {n:>6} {outcome}: {reason}")?,
                }
            }
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped:")?;
            let mut all: Vec<_> = self.skipped.iter().collect();
            all.sort_by_key(|((table, _), s)| (table.clone(), s.rows.iter().min().copied()));
            for ((table, reason), s) in all {
                let unit = if table.starts_with("CSV ") {
                    "line"
                } else {
                    "id"
                };
                let plural = if s.rows.len() == 1 { "" } else { "s" };
                writeln!(f, "  {table} {unit}{plural} {}: {reason}", ranges(&s.rows))?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "notes:")?;
            for n in &self.notes {
                writeln!(f, "  {n}")?;
            }
        }
        if !self.predecessor_settings.is_empty() {
            writeln!(
                f,
                "the predecessor's log settings, as sdash-writer flags: {}",
                self.predecessor_settings.join(" ")
            )?;
        }
        if let Some(path) = &self.inventory_out {
            writeln!(f, "inventory written to {path}")?;
        }
        if !self.secret_files.is_empty() {
            writeln!(
                f,
                "secrets were NOT imported; create these files (one value each, mode 0600) \
                 before starting the collector:"
            )?;
            for (file, what) in &self.secret_files {
                writeln!(f, "  {file}: {what}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_as_ranges() {
        assert_eq!(ranges(&[9, 1, 2, 3, 7, 10, 2]), "1-3, 7, 9-10");
        assert_eq!(ranges(&[]), "");
    }
}
