//! The predecessor's history CSV (`date,system_name,total_tb,used_tb,free_tb,percent_used`,
//! header required, columns found by name): rows with their line numbers, or the reason a row
//! is refused. Quoted fields (RFC 4180: `"a, b"`, `""` for a quote) are understood.

use std::collections::{BTreeMap, HashMap};

use super::map;

/// One usable row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    /// 1-based line number of the row (the header is line 1).
    pub line: i64,
    pub day: String,
    pub system_name: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// `free_tb` as given (`None` when empty); a cross-check only.
    pub free_tib: Option<f64>,
    pub total_tib: f64,
    pub used_tib: f64,
}

/// A row that is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvSkip {
    pub line: i64,
    pub reason: String,
}

/// Splits one CSV record into fields.
fn fields(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() && !was_quoted => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed");
    }
    out.push(cur);
    Ok(out)
}

/// A TiB value of column `name` (`None` when empty).
fn tib(value: Option<&String>, name: &str) -> Result<Option<f64>, String> {
    let Some(v) = value.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match v.replace(',', ".").parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => Ok(Some(f)),
        Ok(_) => Err(format!("{name} {v:?} is negative or not finite")),
        Err(_) => Err(format!("{name} {v:?} is not a number")),
    }
}

/// Parses the CSV text: the usable rows and the refused ones (each with its line). A file
/// without the header's required columns is an error. Rows of one system whose dates are all
/// whole weeks apart are refused: they are the predecessor's weekly export, whose values are
/// the sums of a week's days (up to 7× too large), not daily data. A second row for a system
/// and day is refused as a repeat.
pub fn parse(text: &str) -> anyhow::Result<(Vec<CsvRow>, Vec<CsvSkip>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((i, l)) => break (i, l),
            None => anyhow::bail!("the CSV is empty (a header line is required)"),
        }
    };
    let names: Vec<String> = fields(header.1)
        .map_err(|e| anyhow::anyhow!("line {}: {e}", header.0 + 1))?
        .iter()
        .map(|f| f.trim().to_lowercase())
        .collect();
    let col = |n: &str| names.iter().position(|h| h == n);
    let (Some(c_date), Some(c_name), Some(c_total), Some(c_used)) = (
        col("date"),
        col("system_name"),
        col("total_tb"),
        col("used_tb"),
    ) else {
        anyhow::bail!(
            "line {}: the header must name date, system_name, total_tb and used_tb (found {:?})",
            header.0 + 1,
            names
        );
    };
    let c_free = col("free_tb");
    let mut rows = Vec::new();
    let mut skips = Vec::new();
    for (i, l) in lines {
        let line = i as i64 + 1;
        if l.trim().is_empty() {
            continue;
        }
        let skip = |reason: String| CsvSkip { line, reason };
        let f = match fields(l) {
            Ok(f) => f,
            Err(e) => {
                skips.push(skip(e.into()));
                continue;
            }
        };
        let get = |c: usize| f.get(c).map(|s| s.trim()).filter(|s| !s.is_empty());
        let Some(date) = get(c_date) else {
            skips.push(skip("no date".into()));
            continue;
        };
        let Some(day) = map::day_of(date).filter(|d| d.len() == date.len() || date.len() > 10)
        else {
            skips.push(skip(format!("date {date:?} is not YYYY-MM-DD")));
            continue;
        };
        let Some(name) = get(c_name) else {
            skips.push(skip("no system_name".into()));
            continue;
        };
        let (total, used, free) = match (
            tib(f.get(c_total), "total_tb"),
            tib(f.get(c_used), "used_tb"),
            c_free.map_or(Ok(None), |c| tib(f.get(c), "free_tb")),
        ) {
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                skips.push(skip(e));
                continue;
            }
            (Ok(None), _, _) => {
                skips.push(skip("no total_tb".into()));
                continue;
            }
            (_, Ok(None), _) => {
                skips.push(skip("no used_tb".into()));
                continue;
            }
            (Ok(Some(t)), Ok(Some(u)), Ok(free)) => (t, u, free),
        };
        let (Some(total_bytes), Some(used_bytes)) =
            (map::tib_to_bytes(total), map::tib_to_bytes(used))
        else {
            skips.push(skip("a TiB value is too large".into()));
            continue;
        };
        rows.push(CsvRow {
            line,
            day,
            system_name: name.to_owned(),
            total_bytes,
            used_bytes,
            free_tib: free,
            total_tib: total,
            used_tib: used,
        });
    }
    // Repeats of a (system, day): the first row counts.
    let mut first: HashMap<(String, String), i64> = HashMap::new();
    let mut kept = Vec::with_capacity(rows.len());
    for r in rows {
        let key = (r.system_name.to_lowercase(), r.day.clone());
        match first.get(&key) {
            Some(&l) => skips.push(CsvSkip {
                line: r.line,
                reason: format!("repeats the day of line {l} for this system"),
            }),
            None => {
                first.insert(key, r.line);
                kept.push(r);
            }
        }
    }
    // Weekly exports: every gap between a system's days a whole number of weeks.
    let mut by_system: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in kept.iter().enumerate() {
        by_system
            .entry(r.system_name.to_lowercase())
            .or_default()
            .push(i);
    }
    let mut weekly = vec![false; kept.len()];
    for idx in by_system.values() {
        let mut days: Vec<(i64, usize)> = idx
            .iter()
            .filter_map(|&i| map::day_start_ms(&kept[i].day).map(|d| (d / 86_400_000, i)))
            .collect();
        days.sort_unstable();
        if days.len() < 3 {
            continue;
        }
        if days.windows(2).all(|w| {
            let gap = w[1].0 - w[0].0;
            gap >= 7 && gap % 7 == 0
        }) {
            for &(_, i) in &days {
                weekly[i] = true;
            }
        }
    }
    let mut daily = Vec::with_capacity(kept.len());
    for (r, w) in kept.into_iter().zip(weekly) {
        if w {
            skips.push(CsvSkip {
                line: r.line,
                reason: "weekly rows (this system's dates are whole weeks apart): the \
                         predecessor's weekly export summed the days of a week, so these are \
                         not daily values"
                    .into(),
            });
        } else {
            daily.push(r);
        }
    }
    skips.sort_by_key(|s| s.line);
    Ok((daily, skips))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_refusals() {
        let text = "date,system_name,total_tb,used_tb,free_tb,percent_used\n\
            2025-01-31,FlashArray Prod 01,100.00,61.52,38.48,61.5\n\
            2025-02-01,\"FlashArray Prod 01\",100.00,61.60,,\n\
            2025-02-01,flasharray prod 01,100.00,61.70,,\n\
            2025-13-01,X,1,1,,\n\
            2025-02-02,X,abc,1,,\n\
            \n\
            2025-02-02,,1,1,,\n\
            2025-02-03,\"Quoted, name\",1.5,-1,,\n";
        let (rows, skips) = parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].used_bytes, 67_641_955_340_780);
        assert_eq!(rows[1].system_name, "FlashArray Prod 01");
        let lines: Vec<i64> = skips.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 8, 9]);
        assert!(skips[0].reason.contains("line 3"));
        assert!(parse("a,b\n1,2\n").is_err());
    }

    #[test]
    fn weekly_exports_are_refused() {
        let mut text = String::from("date,system_name,total_tb,used_tb\n");
        for d in ["2025-01-05", "2025-01-12", "2025-01-19", "2025-01-26"] {
            text.push_str(&format!("{d},W,700,420\n"));
        }
        for d in ["2025-01-05", "2025-01-06", "2025-01-12"] {
            text.push_str(&format!("{d},D,100,60\n"));
        }
        let (rows, skips) = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.system_name == "D"));
        assert_eq!(skips.len(), 4);
        assert!(skips.iter().all(|s| s.reason.contains("weekly")));
    }
}
