//! The inventory: a TOML file listing the systems to poll. Secrets are referenced
//! by file (`*_file`) or environment variable (`*_env`), never inlined, and never logged:
//! [`Secret`] prints as `[redacted]`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sdash_proto::{SystemRecord, Vendor};
use sdash_service::parse_duration;
use serde::Deserialize;

use crate::vendors;

/// The defaults of a system's optional settings.
pub mod defaults {
    use std::time::Duration;

    /// Time between two polls of a system (`interval`).
    pub const INTERVAL: Duration = Duration::from_secs(60);
    /// Per-request timeout (`timeout`).
    pub const TIMEOUT: Duration = Duration::from_secs(10);
}

/// A loaded, validated inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub systems: Vec<SystemConfig>,
}

/// One system to poll.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConfig {
    /// Stable id, `[a-z0-9_-]{1,64}`; the last token of its subjects.
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
    /// Base URL of the management API, e.g. `https://fa-prod-01.example.net` (port when not default).
    pub address: String,
    pub interval: Duration,
    pub tags: BTreeMap<String, String>,
    pub enabled: bool,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    /// Optional HTTPS proxy URL for this system's API calls.
    pub proxy: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl SystemConfig {
    /// The non-secret inventory record published on `sdash.v1.system.<id>`.
    pub fn record(&self) -> SystemRecord {
        SystemRecord {
            name: self.name.clone(),
            vendor: self.vendor,
            address: self.address.clone(),
            tags: self.tags.clone(),
            interval_s: self.interval.as_secs(),
            enabled: self.enabled,
            removed: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with a private CA to trust in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification: an explicit opt-in, warned about at start.
    #[serde(default)]
    pub insecure: bool,
}

/// Where a system's credentials come from. Pure uses an API token; the others a user name and password.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    #[serde(default)]
    pub api_token_env: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the user name instead of `username` (for installs that keep user names
    /// secret too, like the predecessor dashboard; `sdash-writer import` writes these).
    #[serde(default)]
    pub username_file: Option<PathBuf>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
}

/// A secret value. Its `Debug` and `Display` never show it; use [`Secret::expose`] at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which secret a vendor authenticates with; each adapter declares its own
/// ([`crate::vendors::ReadCredentials::KIND`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// `api_token_file` or `api_token_env`.
    ApiToken,
    /// `username` plus `password_file` or `password_env`.
    UserPassword,
}

impl CredentialKind {
    /// What the collector could not read when these credentials fail, for the event text.
    pub fn describe(self) -> &'static str {
        match self {
            CredentialKind::ApiToken => "the API token",
            CredentialKind::UserPassword => "the credentials",
        }
    }
}

/// Resolved credentials of one system.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    ApiToken(Secret),
    UserPassword { username: String, password: Secret },
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: system {index} ({id}): field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        index: usize,
        id: String,
        field: &'static str,
        message: String,
    },
    #[error("system {id}: cannot read {field} {path}: {source}")]
    SecretFile {
        id: String,
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("system {id}: {field} names environment variable {var}, which is not set")]
    SecretEnv {
        id: String,
        field: &'static str,
        var: String,
    },
    #[error("system {id}: {message}")]
    Credentials { id: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    system: Vec<RawSystem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    id: String,
    #[serde(default)]
    name: Option<String>,
    vendor: String,
    address: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    tls: TlsConfig,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    proxy: Option<String>,
}

/// Reads and validates an inventory file. Errors name the file, the line and the field.
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses inventory text; `path` is only used in error messages and to resolve relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Inventory, InventoryError> {
    let raw: RawInventory = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((0, 0));
        let field = e.span().and_then(|span| key_at(text, span.start));
        let message = match field {
            Some(key) => format!("field `{key}`: {}", e.message()),
            None => e.message().to_owned(),
        };
        InventoryError::Parse {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen = std::collections::HashSet::new();
    let mut systems = Vec::with_capacity(raw.system.len());
    for (index, s) in raw.system.into_iter().enumerate() {
        let invalid = |field: &'static str, message: String| InventoryError::Invalid {
            path: path.to_owned(),
            index: index + 1,
            id: s.id.clone(),
            field,
            message,
        };
        if !sdash_proto::valid_system_id(&s.id) {
            return Err(invalid(
                "id",
                "must be 1 to 64 characters of a-z, 0-9, '-' and '_'".into(),
            ));
        }
        if s.id.starts_with('_') {
            return Err(invalid(
                "id",
                format!(
                    "may not begin with '_': such ids are reserved for targets that are no system (like {:?})",
                    sdash_proto::FLEET_TARGET
                ),
            ));
        }
        if !seen.insert(s.id.clone()) {
            return Err(invalid("id", "is used by an earlier system too".into()));
        }
        let vendor = Vendor::parse(&s.vendor)
            .filter(|v| vendors::registration(*v).is_some())
            .ok_or_else(|| {
                let known: Vec<&str> = vendors::REGISTRY
                    .iter()
                    .map(|r| r.vendor.as_str())
                    .collect();
                invalid(
                    "vendor",
                    format!("{:?} is not one of {}", s.vendor, known.join(", ")),
                )
            })?;
        let address = s.address.trim_end_matches('/').to_owned();
        if !(address.starts_with("https://") || address.starts_with("http://"))
            || address.contains('@')
        {
            return Err(invalid(
                "address",
                "must be an http(s) URL without credentials".into(),
            ));
        }
        let interval = match &s.interval {
            Some(text) => parse_duration(text).map_err(|e| {
                invalid(
                    "interval",
                    format!("{text:?} is not a duration like 60s or 5m ({e})"),
                )
            })?,
            None => defaults::INTERVAL,
        };
        if interval < Duration::from_secs(1) {
            return Err(invalid("interval", "must be at least 1s".into()));
        }
        let timeout = match &s.timeout {
            Some(text) => parse_duration(text).map_err(|e| {
                invalid(
                    "timeout",
                    format!("{text:?} is not a duration like 10s ({e})"),
                )
            })?,
            None => defaults::TIMEOUT,
        };
        if let Some(ca) = &s.tls.ca_file
            && s.tls.insecure
        {
            return Err(invalid(
                "tls",
                format!(
                    "ca_file {} and insecure = true contradict each other",
                    ca.display()
                ),
            ));
        }
        let mut tls = s.tls.clone();
        tls.ca_file = tls
            .ca_file
            .map(|p| if p.is_relative() { base.join(p) } else { p });
        let mut auth = s.auth.clone();
        auth.api_token_file = auth
            .api_token_file
            .map(|p| if p.is_relative() { base.join(p) } else { p });
        auth.password_file = auth
            .password_file
            .map(|p| if p.is_relative() { base.join(p) } else { p });
        auth.username_file = auth
            .username_file
            .map(|p| if p.is_relative() { base.join(p) } else { p });
        match vendors::credential_kind(vendor) {
            CredentialKind::ApiToken => {
                if auth.api_token_file.is_none() && auth.api_token_env.is_none() {
                    return Err(invalid(
                        "auth",
                        format!("{} needs api_token_file or api_token_env", vendor.as_str()),
                    ));
                }
            }
            CredentialKind::UserPassword => {
                if auth.username.is_none() && auth.username_file.is_none() {
                    return Err(invalid(
                        "auth.username",
                        format!("{} needs a username (or username_file)", vendor.as_str()),
                    ));
                }
                if auth.username.is_some() && auth.username_file.is_some() {
                    return Err(invalid(
                        "auth.username_file",
                        "username and username_file contradict each other".into(),
                    ));
                }
                if auth.password_file.is_none() && auth.password_env.is_none() {
                    return Err(invalid(
                        "auth",
                        format!("{} needs password_file or password_env", vendor.as_str()),
                    ));
                }
            }
        }
        systems.push(SystemConfig {
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            id: s.id,
            vendor,
            address,
            interval,
            tags: s.tags,
            enabled: s.enabled.unwrap_or(true),
            tls,
            auth,
            proxy: s.proxy,
            timeout,
        });
    }
    Ok(Inventory { systems })
}

impl SystemConfig {
    /// Reads the credentials now (files may be rotated between polls).
    pub fn credentials(&self) -> Result<Credentials, InventoryError> {
        let read = |field: &'static str,
                    file: &Option<PathBuf>,
                    env: &Option<String>|
         -> Result<Option<Secret>, InventoryError> {
            if let Some(path) = file {
                let text =
                    std::fs::read_to_string(path).map_err(|source| InventoryError::SecretFile {
                        id: self.id.clone(),
                        field,
                        path: path.clone(),
                        source,
                    })?;
                return Ok(Some(Secret::new(
                    text.trim_end_matches(['\r', '\n']).to_owned(),
                )));
            }
            if let Some(var) = env {
                let value = std::env::var(var).map_err(|_| InventoryError::SecretEnv {
                    id: self.id.clone(),
                    field,
                    var: var.clone(),
                })?;
                return Ok(Some(Secret::new(value)));
            }
            Ok(None)
        };
        match vendors::credential_kind(self.vendor) {
            CredentialKind::ApiToken => read(
                "api_token_file",
                &self.auth.api_token_file,
                &self.auth.api_token_env,
            )?
            .map(Credentials::ApiToken)
            .ok_or_else(|| InventoryError::Credentials {
                id: self.id.clone(),
                message: "no API token configured".into(),
            }),
            CredentialKind::UserPassword => {
                let password = read(
                    "password_file",
                    &self.auth.password_file,
                    &self.auth.password_env,
                )?
                .ok_or_else(|| InventoryError::Credentials {
                    id: self.id.clone(),
                    message: "no password configured".into(),
                })?;
                let from_file = read("username_file", &self.auth.username_file, &None)?;
                let username =
                    match from_file {
                        Some(name) => name.expose().to_owned(),
                        None => self.auth.username.clone().ok_or_else(|| {
                            InventoryError::Credentials {
                                id: self.id.clone(),
                                message: "no username configured".into(),
                            }
                        })?,
                    };
                Ok(Credentials::UserPassword { username, password })
            }
        }
    }
}

/// The key of the `key = value` line containing `offset`, to name the field in parse errors.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let (key, _) = text[start..end].split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[system]]
id = "fa-prod-01"
name = "FlashArray Prod 01"
vendor = "pure"
address = "https://fa-prod-01.example.net/"
interval = "60s"
tags = { environment = "production", storage_type = "block" }
tls = { ca_file = "certs/ca.pem" }
auth = { api_token_file = "/run/secrets/fa" }

[[system]]
id = "ontap-1"
vendor = "ontap"
address = "https://ontap-1:8443"
interval = "5m"
auth = { username = "monitor", password_env = "ONTAP_PW" }
"#;

    #[test]
    fn a_valid_inventory_loads() {
        let inv = parse(Path::new("/etc/sdash/inventory.toml"), GOOD).expect("valid");
        assert_eq!(inv.systems.len(), 2);
        let fa = &inv.systems[0];
        assert_eq!(fa.address, "https://fa-prod-01.example.net");
        assert_eq!(fa.interval, Duration::from_secs(60));
        assert_eq!(
            fa.tls.ca_file.as_deref(),
            Some(Path::new("/etc/sdash/certs/ca.pem"))
        );
        assert_eq!(fa.tags["environment"], "production");
        assert_eq!(inv.systems[1].name, "ontap-1");
        assert_eq!(inv.systems[1].interval, Duration::from_secs(300));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = GOOD.replace("interval = \"5m\"", "interval = 5");
        let err = parse(Path::new("inv.toml"), &bad)
            .expect_err("wrong type")
            .to_string();
        assert!(err.starts_with("inv.toml:16:"), "{err}");
        assert!(err.contains("field `interval`"), "{err}");

        let bad = GOOD.replace("vendor = \"ontap\"", "vendor = \"emc\"");
        let err = parse(Path::new("inv.toml"), &bad)
            .expect_err("vendor")
            .to_string();
        assert!(err.contains("vendor") && err.contains("ontap-1"), "{err}");

        let bad = GOOD.replace(
            "address = \"https://ontap-1:8443\"",
            "address = \"https://ontap-1:8443\"\npassword = \"hunter2\"",
        );
        let err = parse(Path::new("inv.toml"), &bad)
            .expect_err("inline secret")
            .to_string();
        assert!(err.contains("password"), "{err}");
        assert!(err.starts_with("inv.toml:16:"), "{err}");

        let bad = GOOD.replace("fa-prod-01", "FA PROD");
        assert!(
            parse(Path::new("inv.toml"), &bad)
                .expect_err("id")
                .to_string()
                .contains("`id`")
        );

        // Ids beginning with '_' are reserved (`_fleet` is the target of fleet commands).
        for id in ["_fleet", "_x"] {
            let bad = GOOD.replace("id = \"ontap-1\"", &format!("id = \"{id}\""));
            let err = parse(Path::new("inv.toml"), &bad)
                .expect_err("reserved id")
                .to_string();
            assert!(err.contains("`id`") && err.contains("reserved"), "{err}");
        }
    }

    #[test]
    fn a_user_name_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("user"), "monitor\n").expect("write");
        std::fs::write(dir.path().join("pw"), "hunter2\n").expect("write");
        let text = GOOD.replace(
            "auth = { username = \"monitor\", password_env = \"ONTAP_PW\" }",
            "auth = { username_file = \"user\", password_file = \"pw\" }",
        );
        let inv = parse(&dir.path().join("inventory.toml"), &text).expect("valid");
        let creds = inv.systems[1].credentials().expect("credentials");
        assert!(matches!(
            creds,
            Credentials::UserPassword { username, password }
                if username == "monitor" && password.expose() == "hunter2"
        ));
        let both = text.replace(
            "username_file = \"user\"",
            "username = \"x\", username_file = \"user\"",
        );
        let err = parse(Path::new("inv.toml"), &both)
            .expect_err("both")
            .to_string();
        assert!(err.contains("username_file"), "{err}");
        let neither = text.replace("username_file = \"user\", ", "");
        assert!(parse(Path::new("inv.toml"), &neither).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let c = Credentials::UserPassword {
            username: "u".into(),
            password: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn durations_parse() {
        // The shared rule of every service (`sdash_service::parse_duration`): a bare number is
        // seconds, and `d` (days) is a unit like the others.
        let parse_duration = |text: &str| parse_duration(text).ok();
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5w"), None);
        assert_eq!(parse_duration("5d"), Some(Duration::from_secs(5 * 86_400)));
    }
}
