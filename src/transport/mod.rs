//! Talking HTTP(S) to an ACS: one CWMP session's exchange over one held connection, with
//! cookies, redirects, Basic/Digest auth, TLS (including mTLS), timeouts and a body limit; and
//! fetching Download URLs.
//!
//! - [`cookies`]: a session's cookies, matched by RFC 6265.
//! - [`tls`]: the rustls client configuration from the CLI's TLS options.
//! - [`auth`]: Basic and Digest credentials and the challenge state cached per CPE.
//! - [`conn`]: one HTTP/1.1 connection (TCP or TLS) through hyper.
//! - [`client`]: [`client::HttpSession`], the HTTP side of one CWMP session.
//! - [`fetch`]: Download transfers over HTTP(S), failures mapped to 90xx fault codes.
//!
//! What the ACS answers is data: statuses and bodies come back as values; only what prevents an
//! answer (connect, TLS, timeout, auth, limits) is a [`TransportError`], worded after the
//! reachability checklist users walk (TCP connect → HTTP auth → TLS → CWMP envelope).

pub mod auth;
pub mod client;
pub mod conn;
pub mod cookies;
pub mod fetch;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use auth::Credentials;
pub use client::{AcsResponse, Destination, HttpSession};

/// Default request/response timeout (PROTOCOL.md §1.4: wait at least 30 s for the ACS).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on an ACS response body.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// Redirects followed per session (PROTOCOL.md §1.5).
pub const MAX_REDIRECTS: u8 = 5;

/// How to reach the ACS; shared by every CPE of a run.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Connect timeout, and the time allowed for each response (head and body).
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_body: usize,
    /// TLS settings for https URLs.
    pub tls: Arc<rustls::ClientConfig>,
    /// Credentials for the ACS, if it asks.
    pub credentials: Option<Credentials>,
}

/// A request/response phase, for timeout messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Response,
}

/// Why no usable HTTP answer came back.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("bad ACS URL `{url}`: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("DNS lookup of {host} failed ({source}); TCP connect: does `curl -v {url}` return any HTTP at all? If not, the issue is network, not CWMP")]
    Dns { host: String, url: String, source: std::io::Error },
    #[error("TCP connect to {addr} failed: {source}; {}", connect_hint(source, url))]
    Connect { addr: String, url: String, source: std::io::Error },
    #[error("TLS handshake with {host} failed: {reason}; if the certificate is self-signed try --ca-cert-file=<bundle.pem>, or, as a temporary diagnostic only, --tls-skip-verify=true")]
    Tls { host: String, reason: String },
    #[error("timed out after {after:?} waiting for the ACS ({phase:?}) at {url}")]
    Timeout { url: String, phase: Phase, after: Duration },
    #[error("HTTP auth: the ACS at {url} answered 401 and no --acs-username/--acs-password are set (nor a ManagementServer.Password in the profile)")]
    AuthRequired { url: String },
    #[error("HTTP auth failed: the ACS at {url} answered 401 again after credentials were sent; check --acs-username/--acs-password")]
    AuthRejected { url: String },
    #[error("HTTP auth: the ACS at {url} answered 401 without a usable WWW-Authenticate challenge ({detail})")]
    BadChallenge { url: String, detail: String },
    #[error(
        "{url} asked for credentials after a redirect to another origin than the ACS URL's; they are sent only to the ACS URL's origin"
    )]
    ForeignAuth { url: String },
    #[error("the ACS at {url} answered HTTP {status}{}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    HttpStatus { url: String, status: u16, retry_after: Option<Duration> },
    #[error("more than {MAX_REDIRECTS} redirects, last to {url}")]
    TooManyRedirects { url: String },
    #[error("redirect from {url} without a usable Location header")]
    BadRedirect { url: String },
    #[error("refused a redirect from https to plain http: {from} sent the CPE to {to}, where cookies, credentials and CWMP messages would travel unencrypted; if plain http is really meant, use that URL as --acs-url")]
    InsecureRedirect { from: String, to: String },
    #[error("the ACS response from {url} is larger than the {limit}-byte limit (--max-body)")]
    BodyTooLarge { url: String, limit: usize },
    #[error("the connection to {url} failed: {detail}")]
    Connection { url: String, detail: String },
    #[error("no bytes from {url} for {after:?} (the body stalled)")]
    Stalled { url: String, after: Duration },
}

/// What to try after a failed connect: resource limits of the simulator's own host first.
fn connect_hint(e: &std::io::Error, url: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "too many open files: raise `ulimit -n` (cpe-sim raises its soft limit to the hard one at start) or lower --max-connections"
                .into()
        }
        Some(libc::EADDRNOTAVAIL) => {
            "out of local ports: use --connection-mode pooled, widen net.ipv4.ip_local_port_range, or lower --max-connections".into()
        }
        _ => format!("is the ACS running and reachable? (`curl -v {url}`)"),
    }
}

/// The cause of a failure as a small `Copy` key, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    Auth,
    HttpStatus(u16),
    Redirect,
    BodyTooLarge,
    Connection,
    BadUrl,
}

impl TransportError {
    /// The failure's kind.
    pub fn kind(&self) -> FailureKind {
        match self {
            TransportError::BadUrl { .. } => FailureKind::BadUrl,
            TransportError::Dns { .. } => FailureKind::Dns,
            TransportError::Connect { .. } => FailureKind::Connect,
            TransportError::Tls { .. } => FailureKind::Tls,
            TransportError::Timeout { .. } | TransportError::Stalled { .. } => FailureKind::Timeout,
            TransportError::AuthRequired { .. }
            | TransportError::AuthRejected { .. }
            | TransportError::ForeignAuth { .. }
            | TransportError::BadChallenge { .. } => FailureKind::Auth,
            TransportError::HttpStatus { status, .. } => FailureKind::HttpStatus(*status),
            TransportError::TooManyRedirects { .. } | TransportError::BadRedirect { .. } | TransportError::InsecureRedirect { .. } => {
                FailureKind::Redirect
            }
            TransportError::BodyTooLarge { .. } => FailureKind::BodyTooLarge,
            TransportError::Connection { .. } => FailureKind::Connection,
        }
    }

    /// How long the ACS asked the CPE to wait (503 + Retry-After).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_name_the_local_limit() {
        let err = |code| TransportError::Connect {
            addr: "127.0.0.1:7547".into(),
            url: "http://127.0.0.1:7547/".into(),
            source: std::io::Error::from_raw_os_error(code),
        };
        assert!(err(libc::EMFILE).to_string().contains("raise `ulimit -n`"));
        assert!(err(libc::EADDRNOTAVAIL).to_string().contains("out of local ports"));
        assert!(err(libc::ECONNREFUSED).to_string().contains("is the ACS running"));
        assert_eq!(err(libc::EMFILE).kind(), FailureKind::Connect);
    }
}

/// A URL for a log line: credentials in its userinfo (`http://user:pass@host/`) are never shown.
pub fn without_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else { return url.into() };
    // Up to the query, not the path: in `http://user:pa/ss@host/` the `/` is the password's, and
    // when in doubt more is hidden, never less.
    let authority_end = url[start..].find(['?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}<hidden>@{}", &url[..start], &url[start + at + 1..]).into(),
        None => url.into(),
    }
}

/// A text for a log line (a SOAP body, say) with the userinfo of every URL in it hidden, as
/// [`without_userinfo`] does for one URL.
pub fn without_userinfo_in(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = i + 3;
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| matches!(c, '/' | '?' | '#' | '<' | '>' | '"' | '\'' | '&') || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("<hidden>");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod userinfo_tests {
    use super::{without_userinfo, without_userinfo_in};

    #[test]
    fn urls_in_bodies_carry_no_credentials() {
        assert_eq!(
            without_userinfo_in("<URL>http://u:p%40ss@h:1/f.bin?a=@b</URL><URL>https://h/x@y</URL>"),
            "<URL>http://<hidden>@h:1/f.bin?a=@b</URL><URL>https://h/x@y</URL>"
        );
        assert_eq!(without_userinfo_in("mail a@b, see ftp://x"), "mail a@b, see ftp://x");
        assert_eq!(without_userinfo_in("http://u:p@h"), "http://<hidden>@h");
    }

    #[test]
    fn urls_in_messages_carry_no_credentials() {
        assert_eq!(without_userinfo("http://u:p@h:1/f?x=@y"), "http://<hidden>@h:1/f?x=@y");
        assert_eq!(without_userinfo("https://h/a@b"), "https://<hidden>@b", "in doubt, hidden");
        assert_eq!(without_userinfo("http://admin:se/cret@127.0.0.1/img"), "http://<hidden>@127.0.0.1/img");
        assert_eq!(without_userinfo("http://h/p?q=a@b"), "http://h/p?q=a@b");
        assert_eq!(without_userinfo("ftp://a@b@c"), "ftp://<hidden>@c");
        assert_eq!(without_userinfo("no scheme"), "no scheme");
    }
}
