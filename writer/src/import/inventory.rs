//! The collector inventory an import writes (the format of `collector/src/inventory.rs`), and
//! the names, ids and vendors read back from an existing inventory (`--inventory`).
//!
//! Secrets are never written: every system's credentials are `*_file` references under the
//! secrets directory, and the summary lists the files to fill. The predecessor stored user
//! names encrypted like passwords; they are not imported either: the inventory names a
//! `username_file` for them (the collector reads it like a password file).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use sdash_proto::Vendor;

/// One system of the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct InventorySystem {
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
    pub address: String,
    pub enabled: bool,
    pub tags: BTreeMap<String, String>,
    /// The predecessor's row id, for the comment above the entry.
    pub predecessor_id: Option<i64>,
}

/// Whether the vendor logs in with an API token (Pure) rather than a user name and password.
fn uses_token(vendor: Vendor) -> bool {
    vendor == Vendor::Pure
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The secret files of `systems` under `secrets_dir`, with what goes in each.
pub fn secret_files(systems: &[InventorySystem], secrets_dir: &str) -> Vec<(String, String)> {
    let dir = secrets_dir.trim_end_matches('/');
    let mut out = Vec::new();
    for s in systems {
        if uses_token(s.vendor) {
            out.push((
                format!("{dir}/{}.token", s.id),
                format!("the API token of {} ({})", s.name, s.vendor.as_str()),
            ));
        } else {
            out.push((
                format!("{dir}/{}.username", s.id),
                format!(
                    "the user name {} ({}) logs in with",
                    s.name,
                    s.vendor.as_str()
                ),
            ));
            out.push((
                format!("{dir}/{}.password", s.id),
                format!("the password of {} ({})", s.name, s.vendor.as_str()),
            ));
        }
    }
    out
}

/// The inventory text.
pub fn render(systems: &[InventorySystem], secrets_dir: &str, source: &str) -> String {
    let dir = secrets_dir.trim_end_matches('/');
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# sdash inventory written by `sdash-writer import` from {source}.\n\
         # Credentials were NOT imported: create the files under {dir}/ named below (one value\n\
         # each, user names too; relative paths are relative to this file). TLS certificates\n\
         # are verified: add tls = {{ ca_file = \"...\" }} for a private CA (or, knowingly,\n\
         # insecure = true)."
    );
    for s in systems {
        t.push('\n');
        if let Some(p) = s.predecessor_id {
            let _ = writeln!(t, "# predecessor storage_systems.id = {p}");
        }
        let _ = writeln!(t, "[[system]]");
        let _ = writeln!(t, "id = {}", toml_str(&s.id));
        let _ = writeln!(t, "name = {}", toml_str(&s.name));
        let _ = writeln!(t, "vendor = {}", toml_str(s.vendor.as_str()));
        let _ = writeln!(t, "address = {}", toml_str(&s.address));
        let _ = writeln!(t, "enabled = {}", s.enabled);
        if !s.tags.is_empty() {
            let tags: Vec<String> = s
                .tags
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
                .collect();
            let _ = writeln!(t, "tags = {{ {} }}", tags.join(", "));
        }
        if uses_token(s.vendor) {
            let _ = writeln!(
                t,
                "auth = {{ api_token_file = {} }}",
                toml_str(&format!("{dir}/{}.token", s.id))
            );
        } else {
            let _ = writeln!(
                t,
                "auth = {{ username_file = {}, password_file = {} }}",
                toml_str(&format!("{dir}/{}.username", s.id)),
                toml_str(&format!("{dir}/{}.password", s.id))
            );
        }
    }
    t
}

/// Writes the inventory to `path` (replacing it).
pub fn write(
    path: &Path,
    systems: &[InventorySystem],
    secrets_dir: &str,
    source: &str,
) -> anyhow::Result<()> {
    let text = render(systems, secrets_dir, source);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A system of an existing inventory (`--inventory`): what matching a CSV's names needs.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownSystem {
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
}

/// The systems of an existing collector inventory (only `id`, `name`, `vendor` are read).
pub fn read_known(path: &Path) -> anyhow::Result<Vec<KnownSystem>> {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default)]
        system: Vec<RawSystem>,
    }
    #[derive(serde::Deserialize)]
    struct RawSystem {
        id: String,
        #[serde(default)]
        name: Option<String>,
        vendor: String,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw: Raw =
        toml::from_str(&text).with_context(|| format!("{} is not an inventory", path.display()))?;
    raw.system
        .into_iter()
        .map(|s| {
            let vendor = Vendor::parse(&s.vendor).with_context(|| {
                format!(
                    "{}: system {}: unknown vendor {:?}",
                    path.display(),
                    s.id,
                    s.vendor
                )
            })?;
            Ok(KnownSystem {
                name: s.name.unwrap_or_else(|| s.id.clone()),
                id: s.id,
                vendor,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn the_inventory_reads_back() {
        let systems = vec![InventorySystem {
            id: "dd-01".into(),
            name: "DD \"Backup\" 01".into(),
            vendor: Vendor::Datadomain,
            address: "https://dd01:3009".into(),
            enabled: false,
            tags: [("storage_art".to_owned(), "Backup".to_owned())].into(),
            predecessor_id: Some(7),
        }];
        let text = render(&systems, "secrets", "test");
        assert!(text.contains("password_file = \"secrets/dd-01.password\""));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("inv.toml");
        write(&path, &systems, "secrets", "test").unwrap_or_else(|e| panic!("{e}"));
        let known = read_known(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            known,
            vec![KnownSystem {
                id: "dd-01".into(),
                name: "DD \"Backup\" 01".into(),
                vendor: Vendor::Datadomain
            }]
        );
    }
}
