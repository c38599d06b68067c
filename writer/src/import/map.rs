//! How the predecessor's values become sdash's: TiB floats to bytes, naive UTC timestamps to
//! milliseconds, free-text names to system ids and tag keys, vendor strings to vendors, and
//! deterministic ids (UUID v5) for everything an import publishes.

use sdash_proto::Vendor;
use sha1::{Digest, Sha1};

/// Bytes in a TiB (the predecessor's "TB").
pub const TIB: f64 = 1_099_511_627_776.0;

/// The namespace of every UUID v5 an import derives (a fixed UUID of its own).
const NAMESPACE: [u8; 16] = [
    0x5d, 0xa5, 0x1d, 0x0e, 0x8e, 0x3a, 0x4c, 0x1b, 0x9f, 0x2e, 0x1a, 0x77, 0x0c, 0x15, 0x00, 0x01,
];

/// A UUID v5 (SHA-1, RFC 9562) of `name` in the import's namespace: the same parts always give
/// the same id, so a re-run publishes the ids of the first run.
pub fn uuid5(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    h.update(NAMESPACE);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// TiB to bytes: `round(tib * 1024^4)`, rounding half away from zero (`f64::round`; Python's
/// `round` would round half to even: at most one byte less on a value exactly halfway). `None`
/// for a negative, infinite or NaN value, or one beyond `u64`.
pub fn tib_to_bytes(tib: f64) -> Option<u64> {
    if !tib.is_finite() || tib < 0.0 {
        return None;
    }
    let bytes = (tib * TIB).round();
    // 2^64 as f64; anything at or above it does not fit.
    (bytes < 18_446_744_073_709_551_616.0).then_some(bytes as u64)
}

/// A naive UTC timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `T` accepted as the separator, a
/// date alone as midnight) as ms since the epoch. A zone suffix (`Z`, `+00:00`) is honoured.
pub fn naive_utc_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    if t.len() < 10 {
        return None;
    }
    let day = day_start_ms(t.get(..10)?)?;
    let rest = t[10..].trim_start_matches(['T', ' ']);
    if rest.is_empty() {
        return Some(day);
    }
    // HH:MM[:SS[.fraction]] then an optional zone.
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let mut parts = clock.trim().split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let (s, frac_ms) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let s: i64 = whole.parse().ok()?;
            let digits: String = frac.chars().take(3).collect();
            let ms = if digits.is_empty() {
                0
            } else {
                format!("{digits:0<3}").parse::<i64>().ok()?
            };
            (s, ms)
        }
    };
    if parts.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&s)
    {
        return None;
    }
    let offset_ms = match zone.map(str::trim) {
        None | Some("Z") | Some("z") | Some("") => 0,
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = z[1..]
                .split_once(':')
                .unwrap_or((z.get(1..3)?, z.get(3..).unwrap_or("0")));
            let zh: i64 = zh.parse().ok()?;
            let zm: i64 = if zm.is_empty() { 0 } else { zm.parse().ok()? };
            sign * (zh * 3_600_000 + zm * 60_000)
        }
    };
    Some(day + h * 3_600_000 + m * 60_000 + s * 1000 + frac_ms - offset_ms)
}

/// Milliseconds since the epoch at 00:00 UTC of a `YYYY-MM-DD` day.
pub fn day_start_ms(day: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).ok()?;
    Some(i64::from(date.to_julian_day() - 2_440_588) * 86_400_000)
}

/// The `YYYY-MM-DD` of a day `ms` falls in (UTC).
pub fn utc_day(ms: i64) -> String {
    crate::store::utc_day(ms)
}

/// The `YYYY-MM-DD` of a stored date (`2025-01-31`, or a timestamp whose first ten characters
/// are one), when it is a real day.
pub fn day_of(text: &str) -> Option<String> {
    let d = text.trim().get(..10)?;
    sdash_proto::history::valid_day(d).then(|| d.to_owned())
}

/// The sdash vendor of a predecessor vendor string (case and separators ignored).
pub fn vendor(text: &str) -> Option<Vendor> {
    let key: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Some(match key.as_str() {
        "pure" | "purestorage" | "flasharray" | "purestorageflasharray" | "purefa" => Vendor::Pure,
        "netappontap" | "ontap" | "netappontap9" | "ontap9" => Vendor::Ontap,
        "netappstoragegrid" | "storagegrid" | "sg" => Vendor::Storagegrid,
        "delldatadomain" | "datadomain" | "dd" | "dellpowerprotect" | "powerprotectdd"
        | "dellemcdatadomain" | "emcdatadomain" => Vendor::Datadomain,
        _ => return None,
    })
}

/// Lower-case ASCII of a free text: German letters spelled out, other accents dropped, and
/// every other run of characters outside `[a-z0-9]` as one `sep`, trimmed.
fn slug(text: &str, sep: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = false;
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        let spelled: &str = match c {
            'ä' | 'æ' => "ae",
            'ö' | 'ø' | 'œ' => "oe",
            'ü' => "ue",
            'ß' => "ss",
            'à' | 'á' | 'â' | 'ã' | 'å' => "a",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ò' | 'ó' | 'ô' | 'õ' => "o",
            'ù' | 'ú' | 'û' => "u",
            'ç' => "c",
            'ñ' => "n",
            _ => "",
        };
        if !spelled.is_empty() || c.is_ascii_alphanumeric() {
            if pending && !out.is_empty() {
                out.push(sep);
            }
            pending = false;
            if spelled.is_empty() {
                out.push(c);
            } else {
                out.push_str(spelled);
            }
        } else {
            pending = true;
        }
    }
    out
}

/// The sdash id a system name suggests: `FlashArray Prod 01` → `flasharray-prod-01`
/// (`[a-z0-9-]`, at most 64 characters, never starting with `_`, which sdash reserves).
/// `None` when nothing of the name is left.
pub fn system_id(name: &str) -> Option<String> {
    let mut id = slug(name, '-');
    if id.len() > 56 {
        // Leave room for a collision suffix (`-<predecessor id>`).
        id.truncate(56);
        while id.ends_with('-') {
            id.pop();
        }
    }
    (!id.is_empty()).then_some(id)
}

/// The sdash tag key of a predecessor tag group name: `Storage Art` → `storage_art`,
/// `Themenzugehörigkeit` → `themenzugehoerigkeit` (`[a-z0-9_]`, at most 64 characters, as the
/// API's `group_by` accepts).
pub fn tag_key(group: &str) -> Option<String> {
    let mut key = slug(group, '_');
    key.truncate(64);
    while key.ends_with('_') {
        key.pop();
    }
    (!key.is_empty()).then_some(key)
}

/// The management address of a system: `https://host` with the port when it is not 443
/// (DataDomain's REST API is on 3009, which a missing port means for it). An address given as
/// a URL keeps its scheme and port. `None` without a host.
pub fn address(host: &str, port: Option<i64>, vendor: Vendor) -> Option<String> {
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('@') {
        return None;
    }
    if host.starts_with("https://") || host.starts_with("http://") {
        return Some(host.to_owned());
    }
    // An IPv6 literal goes in brackets; a host that already carries a port (`host:8443`,
    // `[fd00::5]:8443`) keeps it.
    let (host, has_port) = if let Some(rest) = host.strip_prefix('[') {
        let has_port = rest.split_once(']').is_some_and(|(_, p)| {
            p.strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok())
        });
        (host.to_owned(), has_port)
    } else if host.matches(':').count() > 1 {
        (format!("[{host}]"), false)
    } else if let Some((_, p)) = host.split_once(':') {
        if p.parse::<u16>().is_err() {
            return None;
        }
        (host.to_owned(), true)
    } else {
        (host.to_owned(), false)
    };
    let port = match (port, vendor) {
        _ if has_port => None,
        (Some(p), _) if (1..=65535).contains(&p) && p != 443 => Some(p),
        (Some(443), _) => None,
        (_, Vendor::Datadomain) => Some(3009),
        _ => None,
    };
    Some(match port {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tib_becomes_bytes() {
        assert_eq!(tib_to_bytes(1.0), Some(1_099_511_627_776));
        assert_eq!(tib_to_bytes(0.0), Some(0));
        // 61.52 as a double is 61.52000000000000312…: × 2^40 = 67641955340779.52…
        assert_eq!(tib_to_bytes(61.52), Some(67_641_955_340_780));
        // 256.23 as a double × 2^40 is exactly 281727864385044.5: half away from zero (Python's
        // round() would give …044).
        assert_eq!(tib_to_bytes(256.23), Some(281_727_864_385_045));
        assert_eq!(tib_to_bytes(2f64.powi(-41)), Some(1));
        assert_eq!(tib_to_bytes(-0.01), None);
        assert_eq!(tib_to_bytes(f64::NAN), None);
        assert_eq!(tib_to_bytes(1e30), None);
    }

    #[test]
    fn naive_timestamps_are_utc() {
        assert_eq!(naive_utc_ms("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            naive_utc_ms("2025-01-31 12:30:00.123456"),
            Some(1_738_281_600_000 + 45_000_000 + 123)
        );
        assert_eq!(
            naive_utc_ms("2025-01-31T12:30:00"),
            naive_utc_ms("2025-01-31 13:30:00+01:00")
        );
        assert_eq!(naive_utc_ms("2025-01-31"), Some(1_738_281_600_000));
        assert_eq!(naive_utc_ms("2025-01-31 25:00:00"), None);
        assert_eq!(naive_utc_ms("yesterday"), None);
        assert_eq!(naive_utc_ms(""), None);
    }

    #[test]
    fn names_become_ids_and_keys() {
        assert_eq!(
            system_id("FlashArray Prod 01").as_deref(),
            Some("flasharray-prod-01")
        );
        assert_eq!(system_id("  __Größe/NAS  ").as_deref(), Some("groesse-nas"));
        assert_eq!(system_id("!!!"), None);
        let long = system_id(&"x".repeat(100)).unwrap_or_default();
        assert!(long.len() <= 56 && sdash_proto::valid_system_id(&long));
        assert_eq!(tag_key("Storage Art").as_deref(), Some("storage_art"));
        assert_eq!(
            tag_key("Themenzugehörigkeit").as_deref(),
            Some("themenzugehoerigkeit")
        );
        assert_eq!(tag_key("DataCenter").as_deref(), Some("datacenter"));
    }

    #[test]
    fn vendors_and_addresses() {
        assert_eq!(vendor("netapp-ontap"), Some(Vendor::Ontap));
        assert_eq!(vendor("NetApp_StorageGRID"), Some(Vendor::Storagegrid));
        assert_eq!(vendor("dell-datadomain"), Some(Vendor::Datadomain));
        assert_eq!(vendor("pure"), Some(Vendor::Pure));
        assert_eq!(vendor("hitachi-vsp"), None);
        assert_eq!(
            address("dd01.example.net", Some(3009), Vendor::Datadomain).as_deref(),
            Some("https://dd01.example.net:3009")
        );
        assert_eq!(
            address("dd01.example.net", None, Vendor::Datadomain).as_deref(),
            Some("https://dd01.example.net:3009")
        );
        assert_eq!(
            address("10.0.0.5", Some(443), Vendor::Pure).as_deref(),
            Some("https://10.0.0.5")
        );
        assert_eq!(
            address("fa.example:8443", Some(443), Vendor::Pure).as_deref(),
            Some("https://fa.example:8443")
        );
        assert_eq!(
            address("fd00::5", Some(8443), Vendor::Ontap).as_deref(),
            Some("https://[fd00::5]:8443")
        );
        assert_eq!(address(" ", Some(443), Vendor::Pure), None);
        assert_eq!(address("user@host", Some(443), Vendor::Pure), None);
    }

    #[test]
    fn uuid5_is_deterministic_and_versioned() {
        let a = uuid5(&["x", "y"]);
        assert_eq!(a, uuid5(&["x", "y"]));
        assert_ne!(a, uuid5(&["xy"]));
        assert_eq!(a.as_bytes()[14], b'5');
    }
}
