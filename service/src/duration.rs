//! The one duration syntax of every flag and inventory field: a whole number with a unit,
//! `ms`, `s`, `m`, `h` or `d` (`250ms`, `30s`, `5m`, `1h`, `7d`). **A bare number is seconds**
//! (`"30"` is 30 s), as the collector's inventory always read it.

use std::time::Duration;

/// Why a duration was refused; the message shows the text and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration like 250ms, 30s, 5m, 1h or 7d (a bare number is seconds)")]
    Malformed(String),
    #[error("unknown duration unit {unit:?} in {text:?} (use ms, s, m, h or d)")]
    Unit { unit: String, text: String },
    #[error("{0:?} is too long a duration")]
    Overflow(String),
}

/// Parses `250ms`, `30s`, `5m`, `1h`, `7d`; a bare number is seconds. Usable directly as a clap
/// `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| DurationError::Malformed(text.to_owned()))?;
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(DurationError::Unit {
                unit: other.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    n.checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError::Overflow(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        let ok = |t: &str| parse_duration(t).ok();
        assert_eq!(ok("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(ok("30"), Some(Duration::from_secs(30)));
        assert_eq!(ok(" 30s "), Some(Duration::from_secs(30)));
        assert_eq!(ok("5m"), Some(Duration::from_secs(300)));
        assert_eq!(ok("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(ok("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(ok("0"), Some(Duration::ZERO));
        assert!(matches!(
            parse_duration(""),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("5w"),
            Err(DurationError::Unit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("9999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(
            parse_duration("5w")
                .expect_err("unknown unit")
                .to_string()
                .contains("5w")
        );
    }
}
