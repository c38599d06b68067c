//! The notifier's TOML configuration ([`Config::load`]): timings, receivers (Alertmanager,
//! webhook, email) and routes. Secrets are read from files named by `*_file` keys, never written
//! in the configuration itself; durations use the one syntax of every service
//! ([`sdash_service::parse_duration`]). Errors name the file, the receiver or route and the key,
//! never a secret's content.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sdash_proto::{ChangeKind, Severity, Vendor};
use sdash_service::{Secret, SecretFileError, parse_duration, read_password_file};
use serde::Deserialize;

/// The defaults of the configuration's keys.
pub mod defaults {
    pub const GROUP_WINDOW: &str = "30s";
    pub const REPEAT_INTERVAL: &str = "4h";
    pub const DEDUPE_WINDOW: &str = "24h";
    pub const RESEND_INTERVAL: &str = "1m";
    pub const TIMEOUT: &str = "10s";
    pub const MAX_ATTEMPTS: u32 = 8;
    pub const INITIAL_BACKOFF: &str = "1s";
    pub const MAX_BACKOFF: &str = "1m";
    pub const SMTP_PORT: u16 = 587;
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the notifier configuration {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax or an unknown/mistyped key; the message has the line and column.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: receiver {receiver:?}: {source}", path.display())]
    Secret {
        path: PathBuf,
        receiver: String,
        source: SecretFileError,
    },
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Changes for the same receiver and group arriving within this window are sent together.
    pub group_window: Duration,
    /// Unresolved conditions are sent again to webhooks and email at this interval.
    pub repeat_interval: Duration,
    /// How long what was sent is remembered, so a redelivered change is not sent again.
    pub dedupe_window: Duration,
    /// What makes a group: `system`, `vendor`, `kind`, `severity` or `tag:<key>`.
    pub group_by: Vec<GroupBy>,
    pub retry: RetryPolicy,
    pub receivers: Vec<Receiver>,
    pub routes: Vec<Route>,
}

/// One dimension of the group key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    System,
    Vendor,
    Kind,
    Severity,
    Tag(String),
}

impl GroupBy {
    fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "system" => Some(GroupBy::System),
            "vendor" => Some(GroupBy::Vendor),
            "kind" => Some(GroupBy::Kind),
            "severity" => Some(GroupBy::Severity),
            _ => text
                .strip_prefix("tag:")
                .filter(|k| !k.is_empty())
                .map(|k| GroupBy::Tag(k.to_owned())),
        }
    }

    /// The name this dimension has in a payload's `group` map.
    pub fn name(&self) -> String {
        match self {
            GroupBy::System => "system".into(),
            GroupBy::Vendor => "vendor".into(),
            GroupBy::Kind => "kind".into(),
            GroupBy::Severity => "severity".into(),
            GroupBy::Tag(key) => format!("tag:{key}"),
        }
    }
}

/// Retries of one delivery: exponential backoff from `initial_backoff`, doubled per attempt up
/// to `max_backoff`; after `max_attempts` failed attempts the delivery is dead-lettered.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `initial * 2^(attempt-1)`, capped, with
    /// up to 25 % jitter so receivers coming back are not hit by every notifier at once.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        use std::hash::{BuildHasher, Hasher};
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jitter_ms = (exp.as_millis() as u64 / 4).max(1);
        exp.saturating_sub(Duration::from_millis(r % jitter_ms))
    }
}

/// A named destination.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `[A-Za-z0-9_-]`, unique: routes, metrics and the state name it.
    pub name: String,
    pub kind: ReceiverKind,
}

#[derive(Debug, Clone)]
pub enum ReceiverKind {
    Alertmanager(AlertmanagerConfig),
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

impl ReceiverKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ReceiverKind::Alertmanager(_) => "alertmanager",
            ReceiverKind::Webhook(_) => "webhook",
            ReceiverKind::Email(_) => "email",
        }
    }
}

/// How an HTTP receiver authenticates us, and which CA it may be signed by.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub timeout: Duration,
    /// PEM file with extra CA certificates (beside the platform's roots).
    pub ca_file: Option<PathBuf>,
    /// HTTP basic authentication: user name and password (from `password_file`).
    pub basic_auth: Option<(String, Secret)>,
    /// `Authorization: Bearer` token (from `bearer_token_file`).
    pub bearer_token: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://alertmanager:9093`; alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    /// Firing alerts are posted again at this interval; keep it below Alertmanager's
    /// `resolve_timeout` (5 m by default). Each post says `endsAt` = now + 4 intervals, so the
    /// alerts of a notifier that stopped resolve by themselves.
    pub resend_interval: Duration,
    pub http: HttpOptions,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 key of `X-Sdash-Signature` (from `secret_file`).
    pub secret: Secret,
    pub http: HttpOptions,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (the default).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all: only for a relay on the same host.
    None,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    /// User name and password (from `password_file`) for SMTP AUTH.
    pub credentials: Option<(String, Secret)>,
    pub from: String,
    pub to: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// Which changes go to which receivers. Every condition given must hold (an empty list or a
/// missing key matches everything); a change goes to the receivers of every route it matches.
#[derive(Debug, Clone)]
pub struct Route {
    pub kinds: Vec<ChangeKind>,
    pub severities: Vec<Severity>,
    pub vendors: Vec<Vendor>,
    /// Each tag must be present with this value.
    pub tags: BTreeMap<String, String>,
    pub receivers: Vec<String>,
}

// ----- the TOML shape -----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    group_window: Option<String>,
    repeat_interval: Option<String>,
    dedupe_window: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default, rename = "receiver")]
    receivers: Vec<RawReceiver>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    initial_backoff: Option<String>,
    max_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    bearer_token_file: Option<PathBuf>,
    // alertmanager
    resend_interval: Option<String>,
    // webhook
    secret_file: Option<PathBuf>,
    // email
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    severities: Vec<String>,
    #[serde(default)]
    vendors: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    receivers: Vec<String>,
}

/// Whether `name` is usable as a receiver name (a KV key token and a metrics label).
pub fn valid_receiver_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Config {
    /// Reads and checks the configuration file, and the secret files it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses `text` (the content of `path`, which errors name; relative `*_file` paths are
    /// relative to the current directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let duration = |key: &str, value: &Option<String>, default: &str| {
            let text = value.as_deref().unwrap_or(default);
            match parse_duration(text) {
                Ok(d) if d.is_zero() => Err(invalid(format!("{key} must be longer than 0"))),
                Ok(d) => Ok(d),
                Err(e) => Err(invalid(format!("{key}: {e}"))),
            }
        };
        let group_window = duration("group_window", &raw.group_window, defaults::GROUP_WINDOW)?;
        let repeat_interval = duration(
            "repeat_interval",
            &raw.repeat_interval,
            defaults::REPEAT_INTERVAL,
        )?;
        let dedupe_window = duration("dedupe_window", &raw.dedupe_window, defaults::DEDUPE_WINDOW)?;
        let group_by = match &raw.group_by {
            None => vec![GroupBy::System],
            Some(list) => list
                .iter()
                .map(|g| {
                    GroupBy::parse(g).ok_or_else(|| {
                        invalid(format!(
                            "group_by: unknown {g:?} (use system, vendor, kind, severity or tag:<key>)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let retry = RetryPolicy {
            max_attempts: raw.retry.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS),
            initial_backoff: duration(
                "retry.initial_backoff",
                &raw.retry.initial_backoff,
                defaults::INITIAL_BACKOFF,
            )?,
            max_backoff: duration(
                "retry.max_backoff",
                &raw.retry.max_backoff,
                defaults::MAX_BACKOFF,
            )?,
        };
        if retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts must be at least 1".into()));
        }

        let mut receivers = Vec::new();
        let mut names = BTreeSet::new();
        for r in raw.receivers {
            if !valid_receiver_name(&r.name) {
                return Err(invalid(format!(
                    "receiver name {:?}: use 1 to 64 of A-Z a-z 0-9 - _",
                    r.name
                )));
            }
            if !names.insert(r.name.clone()) {
                return Err(invalid(format!("receiver {:?} is defined twice", r.name)));
            }
            receivers.push(receiver(path, r, &duration)?);
        }

        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let at = |message: String| invalid(format!("route {} : {message}", i + 1));
            if r.receivers.is_empty() {
                return Err(at("receivers is empty".into()));
            }
            for name in &r.receivers {
                if !names.contains(name) {
                    return Err(at(format!("receiver {name:?} is not defined")));
                }
            }
            let kinds = parse_each(&r.kinds, ChangeKind::parse, |k| {
                let all: Vec<_> = ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                at(format!("unknown kind {k:?} (one of {})", all.join(", ")))
            })?;
            let severities = parse_each(&r.severities, Severity::parse, |s| {
                at(format!(
                    "unknown severity {s:?} (info, warning, error, critical)"
                ))
            })?;
            let vendors = parse_each(&r.vendors, Vendor::parse, |v| {
                let all: Vec<_> = Vendor::ALL.iter().map(|v| v.as_str()).collect();
                at(format!("unknown vendor {v:?} (one of {})", all.join(", ")))
            })?;
            routes.push(Route {
                kinds,
                severities,
                vendors,
                tags: r.tags,
                receivers: r.receivers,
            });
        }
        if receivers.is_empty() {
            return Err(invalid("no [[receiver]] is defined".into()));
        }
        if routes.is_empty() {
            return Err(invalid(
                "no [[route]] is defined: nothing would be sent".into(),
            ));
        }
        Ok(Config {
            group_window,
            repeat_interval,
            dedupe_window,
            group_by,
            retry,
            receivers,
            routes,
        })
    }
}

/// Parses every name; the first one `parse` does not know is reported by `unknown`.
fn parse_each<T, E>(
    names: &[String],
    parse: impl Fn(&str) -> Option<T>,
    unknown: impl Fn(&str) -> E,
) -> Result<Vec<T>, E> {
    names
        .iter()
        .map(|name| parse(name).ok_or_else(|| unknown(name)))
        .collect()
}

/// Reads one duration key of the file: its name, its value, and the default.
type DurationKey<'a> = dyn Fn(&str, &Option<String>, &str) -> Result<Duration, ConfigError> + 'a;

fn receiver(path: &Path, r: RawReceiver, duration: &DurationKey) -> Result<Receiver, ConfigError> {
    let name = r.name.clone();
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_owned(),
        message: format!("receiver {name:?} ({}): {message}", r.kind),
    };
    let secret = |key: &'static str, file: &Path| {
        read_password_file(key, file).map_err(|source| ConfigError::Secret {
            path: path.to_owned(),
            receiver: name.clone(),
            source,
        })
    };
    let require = |key: &str, value: &Option<String>| {
        value
            .clone()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| invalid(format!("{key} is required")))
    };
    // Keys of one type given on another are mistakes worth stopping for.
    let refuse = |present: &[(&str, bool)]| match present.iter().find(|(_, given)| *given) {
        Some((key, _)) => Err(invalid(format!("{key} does not apply to this type"))),
        None => Ok(()),
    };
    let timeout = duration(
        &format!("receiver {name:?} timeout"),
        &r.timeout,
        defaults::TIMEOUT,
    )?;
    let http_url = |value: &Option<String>| -> Result<String, ConfigError> {
        let url = require("url", value)?;
        match reqwest::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                if !u.username().is_empty() || u.password().is_some() {
                    return Err(invalid(
                        "url must not carry credentials: use username and password_file".into(),
                    ));
                }
                Ok(url.trim_end_matches('/').to_owned())
            }
            Ok(_) => Err(invalid("url must be http:// or https://".into())),
            Err(e) => Err(invalid(format!("url is not a URL: {e}"))),
        }
    };
    let credentials = || match (&r.username, &r.password_file) {
        (Some(user), Some(file)) => Ok(Some((user.clone(), secret("password_file", file)?))),
        (None, None) => Ok(None),
        _ => Err(invalid("username and password_file go together".into())),
    };
    let http = |r: &RawReceiver| -> Result<HttpOptions, ConfigError> {
        let basic_auth = credentials()?;
        let bearer_token = match &r.bearer_token_file {
            Some(file) => Some(secret("bearer_token_file", file)?),
            None => None,
        };
        if basic_auth.is_some() && bearer_token.is_some() {
            return Err(invalid(
                "give either username/password_file or bearer_token_file".into(),
            ));
        }
        Ok(HttpOptions {
            timeout,
            ca_file: r.ca_file.clone(),
            basic_auth,
            bearer_token,
        })
    };
    let email_only = [
        ("smtp_host", r.smtp_host.is_some()),
        ("smtp_port", r.smtp_port.is_some()),
        ("tls", r.tls.is_some()),
        ("from", r.from.is_some()),
        ("to", r.to.is_some()),
    ];
    let kind = match r.kind.as_str() {
        "alertmanager" => {
            refuse(&[("secret_file", r.secret_file.is_some())])?;
            refuse(&email_only)?;
            ReceiverKind::Alertmanager(AlertmanagerConfig {
                url: http_url(&r.url)?,
                resend_interval: duration(
                    &format!("receiver {name:?} resend_interval"),
                    &r.resend_interval,
                    defaults::RESEND_INTERVAL,
                )?,
                http: http(&r)?,
            })
        }
        "webhook" => {
            refuse(&[("resend_interval", r.resend_interval.is_some())])?;
            refuse(&email_only)?;
            let Some(file) = &r.secret_file else {
                return Err(invalid(
                    "secret_file is required (the HMAC-SHA256 signing key)".into(),
                ));
            };
            ReceiverKind::Webhook(WebhookConfig {
                url: http_url(&r.url)?,
                secret: secret("secret_file", file)?,
                http: http(&r)?,
            })
        }
        "email" => {
            refuse(&[
                ("url", r.url.is_some()),
                ("resend_interval", r.resend_interval.is_some()),
                ("secret_file", r.secret_file.is_some()),
                ("bearer_token_file", r.bearer_token_file.is_some()),
            ])?;
            let tls = match r.tls.as_deref().unwrap_or("starttls") {
                "starttls" => SmtpTls::Starttls,
                "implicit" => SmtpTls::Implicit,
                "none" => SmtpTls::None,
                other => {
                    return Err(invalid(format!(
                        "tls {other:?}: use starttls (default), implicit or none"
                    )));
                }
            };
            let from = require("from", &r.from)?;
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(invalid(format!("from {from:?} is not an email address")));
            }
            let to = r.to.clone().unwrap_or_default();
            if to.is_empty() {
                return Err(invalid("to must name at least one address".into()));
            }
            for address in &to {
                if address.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(invalid(format!("to {address:?} is not an email address")));
                }
            }
            let credentials = credentials()?;
            ReceiverKind::Email(EmailConfig {
                smtp_host: require("smtp_host", &r.smtp_host)?,
                smtp_port: r.smtp_port.unwrap_or(match tls {
                    SmtpTls::Implicit => 465,
                    _ => defaults::SMTP_PORT,
                }),
                tls,
                credentials,
                from,
                to,
                ca_file: r.ca_file.clone(),
                timeout,
            })
        }
        other => {
            return Err(invalid(format!(
                "unknown type {other:?} (alertmanager, webhook or email)"
            )));
        }
    };
    Ok(Receiver { name: r.name, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("notify.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_parse() {
        for d in [
            defaults::GROUP_WINDOW,
            defaults::REPEAT_INTERVAL,
            defaults::DEDUPE_WINDOW,
            defaults::RESEND_INTERVAL,
            defaults::TIMEOUT,
            defaults::INITIAL_BACKOFF,
            defaults::MAX_BACKOFF,
        ] {
            assert!(parse_duration(d).is_ok(), "{d}");
        }
    }

    #[test]
    fn a_minimal_configuration() {
        let config = parse(
            r#"
            [[receiver]]
            name = "am"
            type = "alertmanager"
            url = "http://127.0.0.1:9093/"

            [[route]]
            receivers = ["am"]
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.group_window, Duration::from_secs(30));
        assert_eq!(config.group_by, vec![GroupBy::System]);
        let ReceiverKind::Alertmanager(am) = &config.receivers[0].kind else {
            panic!("not alertmanager");
        };
        assert_eq!(am.url, "http://127.0.0.1:9093");
        assert_eq!(am.resend_interval, Duration::from_secs(60));
    }

    #[test]
    fn mistakes_are_named() {
        let am = "[[receiver]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"http://a:1\"\n";
        for (text, expected) in [
            ("group_window = 5", "invalid type"),
            ("grup_window = \"5s\"", "unknown field `grup_window`"),
            ("group_window = \"5 parsecs\"", "group_window"),
            (
                &format!("{am}[[route]]\nreceivers = [\"nope\"]"),
                "receiver \"nope\" is not defined",
            ),
            (
                &format!("{am}[[route]]\nreceivers = [\"am\"]\nkinds = [\"alert_open\"]"),
                "unknown kind \"alert_open\"",
            ),
            (
                &format!("{am}[[route]]\nreceivers = [\"am\"]\nseverities = [\"huge\"]"),
                "unknown severity",
            ),
            (am, "no [[route]]"),
            (
                "[[receiver]]\nname = \"x\"\ntype = \"pager\"\n[[route]]\nreceivers=[\"x\"]",
                "unknown type \"pager\"",
            ),
            (
                "[[receiver]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"http://a\"\n",
                "secret_file is required",
            ),
            (
                "[[receiver]]\nname = \"w\"\ntype = \"alertmanager\"\nurl = \"http://u:pw@a\"\n",
                "must not carry credentials",
            ),
            (
                "[[receiver]]\nname = \"m\"\ntype = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b\"\n",
                "to must name",
            ),
            (
                "[[receiver]]\nname = \"bad name\"\ntype = \"email\"\n",
                "receiver name",
            ),
        ] {
            let err = parse(text)
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.contains(expected), "{text}\n-> {err}");
            assert!(err.starts_with("notify.toml"), "{err}");
        }
        // The TOML error says where.
        let err = parse("group_window = \n").err().unwrap_or_default();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secret = dir.path().join("hook.secret");
        std::fs::write(&secret, "hunter2-signing\n").unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "[[receiver]]\nname = \"w\"\ntype = \"webhook\"\nurl = \"https://h/x\"\nsecret_file = \"{}\"\n[[route]]\nreceivers = [\"w\"]\n",
            secret.display()
        );
        let config = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let ReceiverKind::Webhook(w) = &config.receivers[0].kind else {
            panic!("not a webhook");
        };
        assert_eq!(w.secret.expose(), "hunter2-signing");
        assert!(!format!("{config:?}").contains("hunter2"));
        std::fs::write(&secret, "\n").unwrap_or_else(|e| panic!("{e}"));
        let err = parse(&text).err().unwrap_or_default();
        assert!(
            err.contains("receiver \"w\"") && err.contains("is empty"),
            "{err}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let d = policy.backoff(attempt).as_millis() as u64;
            assert!(d <= full && d >= full * 3 / 4, "attempt {attempt}: {d}");
        }
    }
}
