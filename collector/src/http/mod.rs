//! The one HTTP layer every vendor adapter uses: the client, TLS, and error classification.
//! Sessions, paging and poll bookkeeping are vendor concerns and live in [`crate::vendors`].
//!
//! * [`HttpClient::new`] builds a client from a [`SystemConfig`](crate::inventory::SystemConfig):
//!   TLS verification on by default (native roots plus the system's `tls.ca_file`), no
//!   verification only with an explicit `tls.insecure = true`, the optional `proxy`, and `timeout`
//!   as the per-request timeout (connect, headers and body). Systems with the same
//!   TLS/proxy/timeout settings share one connection pool and TLS config (cheap to build per
//!   system, also for 10,000 systems). `address` is a **base URL that may carry a path** (the
//!   simulator serves each system under `https://127.0.0.1:8443/<system-id>`):
//!   [`HttpClient::url`] appends the vendor path (`/api/...`) to it, so always pass paths starting
//!   with `/`.
//! * [`HttpClient::request`] returns a small builder ([`Request`]): `.query()`, `.header()`,
//!   `.json()`, then `.send()`, which succeeds only for 2xx and reads at most [`MAX_BODY_BYTES`]
//!   of the body. Every failure is one [`HttpError`] variant: connect/refused/closed, timeout, TLS,
//!   HTTP status (code + a short body excerpt), too large, empty body, invalid JSON/wrong shape.
//!   [`Response::json`] decodes with serde; a decode error is [`HttpError::Decode`], never a panic.
//! * Each [`HttpError`] knows its [`Status`](sdash_proto::Status) ([`HttpError::status`]:
//!   unreachable / auth_failed / error), its event [`Category`](sdash_proto::Category) and turns
//!   into an [`EventRecord`](sdash_proto::EventRecord) naming the endpoint, the HTTP status and a
//!   short reason ([`HttpError::event`]). Bodies are untrusted: excerpts are cut to
//!   [`EXCERPT_CHARS`] characters and control characters are dropped.
//!
//! Files: [`client`] (pool, request, response), [`tls`] (rustls config, the no-verify verifier),
//! [`errors`] (the error types and their classification).

pub mod client;
pub mod errors;
pub mod tls;

pub use client::{HttpClient, Request, Response, percent_decode};
pub use errors::{EXCERPT_CHARS, HttpError, SetupError, decode, excerpt};
pub use reqwest::Method;
pub use tls::install_crypto_provider;

/// Largest response body read; a bigger body is [`HttpError::TooLarge`].
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
