//! PostgreSQL URLs that name several servers, chosen the way libpq chooses them:
//! `postgres://user@host1:5432,host2:5432/db?target_session_attrs=read-write` is tried host by
//! host, in order, and the first server whose session has the wanted attributes is used (a
//! primary after a switchover, a standby to read from...). sqlx parses only single-host URLs, so
//! [`PgUrl`] splits such a URL into one single-host URL per server; with the `postgres` feature,
//! [`PgServers`] connects to them and picks the right one.
//!
//! A URL with one host and no `target_session_attrs` behaves exactly like before: one server,
//! no check of its session.

use std::fmt;

/// The URL parameter naming which server a session must be on (libpq's name).
pub const TARGET_SESSION_ATTRS: &str = "target_session_attrs";

/// libpq's `target_session_attrs`: which kind of server a session must be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// Any server that accepts the connection (libpq's default).
    #[default]
    Any,
    /// A server that accepts writes: not a standby, not read-only by default.
    ReadWrite,
    /// A server whose sessions are read-only (a standby, or a primary set read-only).
    ReadOnly,
    /// A server that is not in recovery.
    Primary,
    /// A server in recovery (a streaming replica).
    Standby,
    /// A standby if one answers, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    pub const ALL: [TargetSessionAttrs; 6] = [
        TargetSessionAttrs::Any,
        TargetSessionAttrs::ReadWrite,
        TargetSessionAttrs::ReadOnly,
        TargetSessionAttrs::Primary,
        TargetSessionAttrs::Standby,
        TargetSessionAttrs::PreferStandby,
    ];

    /// The spelling in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    pub fn parse(text: &str) -> Option<TargetSessionAttrs> {
        TargetSessionAttrs::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
    }

    /// Whether a session must be asked about its server before it is used.
    pub fn needs_check(self) -> bool {
        !matches!(
            self,
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby
        )
    }

    /// Whether a session on a server in `state` may be used (`prefer-standby` takes any: the
    /// preference only orders the servers).
    pub fn accepts(self, state: ServerState) -> bool {
        match self {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => true,
            TargetSessionAttrs::ReadWrite => !state.read_only,
            TargetSessionAttrs::ReadOnly => state.read_only,
            TargetSessionAttrs::Primary => !state.in_recovery,
            TargetSessionAttrs::Standby => state.in_recovery,
        }
    }

    /// Whether these attributes let a session write.
    pub fn is_writable(self) -> bool {
        matches!(
            self,
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary
        )
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a session learns about its server ([`ServerState::QUERY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerState {
    /// `pg_is_in_recovery()`: a standby.
    pub in_recovery: bool,
    /// `transaction_read_only`: new transactions are read-only (always so on a standby).
    pub read_only: bool,
}

impl ServerState {
    /// One round trip answering both questions, in this order. Run it before the session sets
    /// anything of its own (a session made read-only would read as a read-only server).
    pub const QUERY: &'static str =
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'";
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.in_recovery, self.read_only) {
            (true, _) => "a standby (read-only)",
            (false, true) => "a primary that is read-only",
            (false, false) => "a read-write primary",
        })
    }
}

/// Why a PostgreSQL URL cannot be used. The messages never repeat the URL (it may hold a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    #[error(
        "target_session_attrs={0:?} in the database URL is not one of any, read-write, read-only, primary, standby, prefer-standby"
    )]
    TargetSessionAttrs(String),
    #[error("the database URL's host list has an empty entry (two commas, or a trailing comma)")]
    EmptyHost,
    #[error(
        "several servers go in the database URL's host part (postgres://user@host1:5432,host2:5432/db), not in a host= or port= parameter"
    )]
    HostListInQuery,
    #[error(
        "target_session_attrs={0} in the database URL: the writer needs a server it can write to (read-write or primary)"
    )]
    NotWritable(TargetSessionAttrs),
}

/// One server of a [`PgUrl`].
#[derive(Clone, PartialEq, Eq)]
pub struct PgServerUrl {
    /// `host:port` as written in the URL (for logs; never holds a password).
    pub addr: String,
    /// The single-host URL of this server (the original's user, database and parameters,
    /// without `target_session_attrs`), for sqlx. May hold a password: never log it.
    pub url: String,
}

impl fmt::Debug for PgServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServerUrl")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A `postgres://` URL split per server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    servers: Vec<PgServerUrl>,
    target_session_attrs: Option<TargetSessionAttrs>,
}

impl PgUrl {
    /// Splits `url` (`postgres://[user[:password]@]host[:port][,host[:port]...][/db][?params]`)
    /// into one URL per host, in order. Anything that is not a host list is kept as written (a
    /// URL without `://`, or one with an empty host, such as a socket in `?host=`).
    pub fn parse(url: &str) -> Result<PgUrl, PgUrlError> {
        let (before_query, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut target_session_attrs = None;
        let mut kept = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == TARGET_SESSION_ATTRS {
                target_session_attrs = Some(
                    TargetSessionAttrs::parse(value)
                        .ok_or_else(|| PgUrlError::TargetSessionAttrs(value.to_owned()))?,
                );
            } else {
                if (key == "host" || key == "port" || key == "hostaddr") && value.contains(',') {
                    return Err(PgUrlError::HostListInQuery);
                }
                if !pair.is_empty() {
                    kept.push(pair);
                }
            }
        }
        let query = match kept.is_empty() {
            true => String::new(),
            false => format!("?{}", kept.join("&")),
        };
        let Some((scheme, rest)) = before_query.split_once("://") else {
            return Ok(PgUrl {
                servers: vec![PgServerUrl {
                    addr: String::new(),
                    url: format!("{before_query}{query}"),
                }],
                target_session_attrs,
            });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // The last '@' ends the user info (an '@' in a password must be percent-encoded, but
        // this is also where the `url` crate splits).
        let (user_info, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let hosts: Vec<&str> = hosts.split(',').collect();
        if hosts.len() > 1 && hosts.iter().any(|h| h.is_empty()) {
            return Err(PgUrlError::EmptyHost);
        }
        let servers = hosts
            .into_iter()
            .map(|host| PgServerUrl {
                addr: host.to_owned(),
                url: format!("{scheme}://{user_info}{host}{path}{query}"),
            })
            .collect();
        Ok(PgUrl {
            servers,
            target_session_attrs,
        })
    }

    /// The servers, in the URL's order (at least one).
    pub fn servers(&self) -> &[PgServerUrl] {
        &self.servers
    }

    pub fn is_multi_host(&self) -> bool {
        self.servers.len() > 1
    }

    /// `target_session_attrs` as given in the URL.
    pub fn target_session_attrs(&self) -> Option<TargetSessionAttrs> {
        self.target_session_attrs
    }

    /// The attributes for a session that reads: as given, else `any` (libpq's default).
    pub fn for_reading(&self) -> TargetSessionAttrs {
        self.target_session_attrs.unwrap_or_default()
    }

    /// The attributes for a session that writes: with several servers it must find the
    /// writable one, so `read-write` unless the URL says `primary`; with one server, as given
    /// (by default no check, as before). Read-only attributes are an error.
    pub fn for_writing(&self) -> Result<TargetSessionAttrs, PgUrlError> {
        match self.target_session_attrs {
            Some(a) if a.is_writable() => Ok(a),
            None | Some(TargetSessionAttrs::Any) if self.is_multi_host() => {
                Ok(TargetSessionAttrs::ReadWrite)
            }
            None | Some(TargetSessionAttrs::Any) => Ok(TargetSessionAttrs::Any),
            Some(other) => Err(PgUrlError::NotWritable(other)),
        }
    }
}

#[cfg(feature = "postgres")]
mod connect;
#[cfg(feature = "postgres")]
pub use connect::{ConnectError, NoServerError, PgServers, is_connection_error, server_state};

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(url: &str) -> Vec<(String, String)> {
        PgUrl::parse(url)
            .map(|u| {
                u.servers()
                    .iter()
                    .map(|s| (s.addr.clone(), s.url.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn one_host_is_kept_as_written() {
        for url in [
            "postgres://sdash@db.example.net/sdash",
            "postgresql://u:p%40ss@127.0.0.1:5433/db?sslmode=require&application_name=x",
            "postgres://h",
            "postgres:///sdash?host=/var/run/postgresql",
            "postgres://[::1]:5432/db",
        ] {
            let parsed = PgUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.servers().len(), 1, "{url}");
            assert_eq!(parsed.servers()[0].url, url);
            assert!(!parsed.is_multi_host());
            assert_eq!(parsed.target_session_attrs(), None);
            assert_eq!(parsed.for_reading(), TargetSessionAttrs::Any);
            assert_eq!(parsed.for_writing(), Ok(TargetSessionAttrs::Any));
        }
    }

    #[test]
    fn several_hosts_become_one_url_each() {
        assert_eq!(
            urls(
                "postgres://u:pw@10.0.0.1:5432,10.0.0.2:5433,[::1]/sdash?sslmode=disable&target_session_attrs=read-write"
            ),
            vec![
                (
                    "10.0.0.1:5432".to_owned(),
                    "postgres://u:pw@10.0.0.1:5432/sdash?sslmode=disable".to_owned()
                ),
                (
                    "10.0.0.2:5433".to_owned(),
                    "postgres://u:pw@10.0.0.2:5433/sdash?sslmode=disable".to_owned()
                ),
                (
                    "[::1]".to_owned(),
                    "postgres://u:pw@[::1]/sdash?sslmode=disable".to_owned()
                ),
            ]
        );
        assert_eq!(
            urls("postgres://a,b"),
            vec![
                ("a".to_owned(), "postgres://a".to_owned()),
                ("b".to_owned(), "postgres://b".to_owned())
            ]
        );
    }

    #[test]
    fn target_session_attrs_are_read_and_checked() {
        let url = |attrs: &str| format!("postgres://u@h1:1,h2:2/db?{TARGET_SESSION_ATTRS}={attrs}");
        for attrs in TargetSessionAttrs::ALL {
            let parsed = PgUrl::parse(&url(attrs.as_str())).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.target_session_attrs(), Some(attrs));
            assert_eq!(parsed.for_reading(), attrs);
            assert!(parsed.servers().iter().all(|s| !s.url.contains('?')));
        }
        let err = PgUrl::parse(&url("readwrite")).err();
        assert_eq!(
            err,
            Some(PgUrlError::TargetSessionAttrs("readwrite".to_owned()))
        );
        let writer = |attrs: &str| PgUrl::parse(&url(attrs)).and_then(|u| u.for_writing());
        assert_eq!(writer("any"), Ok(TargetSessionAttrs::ReadWrite));
        assert_eq!(writer("primary"), Ok(TargetSessionAttrs::Primary));
        assert_eq!(
            writer("standby"),
            Err(PgUrlError::NotWritable(TargetSessionAttrs::Standby))
        );
        let multi = PgUrl::parse("postgres://h1,h2/db").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(multi.for_reading(), TargetSessionAttrs::Any);
        assert_eq!(multi.for_writing(), Ok(TargetSessionAttrs::ReadWrite));
    }

    #[test]
    fn malformed_host_lists_are_refused_without_showing_the_url() {
        for (url, expected) in [
            ("postgres://u:secret@h1,,h2/db", PgUrlError::EmptyHost),
            ("postgres://u:secret@h1,/db", PgUrlError::EmptyHost),
            (
                "postgres://u:secret@/db?host=h1,h2",
                PgUrlError::HostListInQuery,
            ),
            (
                "postgres://u:secret@h/db?port=1,2",
                PgUrlError::HostListInQuery,
            ),
        ] {
            let err = PgUrl::parse(url).err();
            assert_eq!(err.as_ref(), Some(&expected), "{url}");
            assert!(!expected.to_string().contains("secret"));
        }
    }

    #[test]
    fn sessions_are_accepted_by_libpq_rules() {
        let primary = ServerState {
            in_recovery: false,
            read_only: false,
        };
        let read_only_primary = ServerState {
            in_recovery: false,
            read_only: true,
        };
        let standby = ServerState {
            in_recovery: true,
            read_only: true,
        };
        use TargetSessionAttrs::*;
        let accepted = |a: TargetSessionAttrs| {
            [primary, read_only_primary, standby]
                .map(|s| a.accepts(s))
                .to_vec()
        };
        assert_eq!(accepted(Any), [true, true, true]);
        assert_eq!(accepted(ReadWrite), [true, false, false]);
        assert_eq!(accepted(ReadOnly), [false, true, true]);
        assert_eq!(accepted(Primary), [true, true, false]);
        assert_eq!(accepted(Standby), [false, false, true]);
        assert_eq!(accepted(PreferStandby), [true, true, true]);
        assert!(!format!("{:?}", PgUrl::parse("postgres://u:pw@h/db")).contains("pw"));
    }
}
