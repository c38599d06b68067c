//! Vendor sessions: a token kept across polls, logged in lazily and renewed **once per poll** when
//! a call answers 401 ([`session_call`]); a second 401, or a failing login, is `auth_failed`.

use std::fmt;

use sdash_proto::{Category, EventRecord, Level};

use super::bookkeeping::PollContext;
use crate::http::{HttpError, Request, Response};

/// A vendor session token kept across polls. Its `Debug` never shows the token.
#[derive(Default)]
pub struct Session {
    token: Option<String>,
    renewed_this_poll: bool,
    /// Logins performed over the adapter's life (first login and renewals).
    pub logins: u64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("logins", &self.logins)
            .finish()
    }
}

impl Session {
    /// Resets the renewal budget: one renewal per poll.
    pub fn begin_poll(&mut self) {
        self.renewed_this_poll = false;
    }

    /// Forgets the token (after logout, or when the server rejected it).
    pub fn clear(&mut self) -> Option<String> {
        self.token.take()
    }

    pub fn is_active(&self) -> bool {
        self.token.is_some()
    }
}

/// Sends the request built by `call(token)` with a session token. Logs in first when there is no
/// token (`login()` builds the login request, `extract` takes the token out of its response; a
/// `debug` authentication event). When the call answers 401 and no renewal happened yet in this
/// poll, it logs in again (an `info` authentication event "session rejected, logging in again")
/// and retries once. A failing login, or a 401 after the renewal, returns that error (its
/// [`HttpError::status`] is `auth_failed` for 401/403) and forgets the token.
///
/// The closures are plain (not async) so the poll future stays `Send` for `tokio::spawn`.
pub async fn session_call<'a>(
    session: &mut Session,
    ctx: &mut PollContext,
    login: impl Fn() -> Result<Request<'a>, HttpError>,
    extract: impl Fn(&Response) -> Result<String, HttpError>,
    call: impl Fn(&str) -> Request<'a>,
) -> Result<Response, HttpError> {
    let mut renewed_now = false;
    loop {
        let token = match session.token.clone() {
            Some(token) => token,
            None => {
                let resp = login()?.send().await?;
                let token = extract(&resp)?;
                session.logins += 1;
                ctx.push(EventRecord {
                    level: Level::Debug,
                    category: Category::Authentication,
                    message: format!("{}: logged in, new session", resp.endpoint),
                    details: None,
                    http_status: Some(resp.status),
                    endpoint: Some(resp.endpoint.clone()),
                });
                session.token = Some(token.clone());
                token
            }
        };
        match call(&token).send().await {
            Err(e) if e.is_unauthorized() => {
                session.token = None;
                if session.renewed_this_poll || renewed_now {
                    return Err(e);
                }
                session.renewed_this_poll = true;
                renewed_now = true;
                ctx.push(EventRecord {
                    level: Level::Info,
                    category: Category::Authentication,
                    message: format!(
                        "{}: session rejected (HTTP 401), logging in again",
                        e.endpoint()
                    ),
                    details: None,
                    http_status: Some(401),
                    endpoint: Some(e.endpoint().to_owned()),
                });
            }
            other => return other,
        }
    }
}
