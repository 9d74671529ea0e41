//! Fetching or sending one file over HTTP(S) for a Download or Upload: a GET or PUT with the
//! file server's own credentials (Basic or Digest; from the URL's userinfo when none are given),
//! redirects followed. A download is streamed: each chunk is counted and dropped as it arrives,
//! so memory stays bounded whatever the file size. HTTP only: what a failure means to the ACS
//! (the TransferComplete fault code) is the engine's business (`engine::transfer`).
//!
//! Two clocks: the exchange timeout (`--timeout`) bounds connecting, the wait for the response
//! head and every wait for more bytes (a stalled server); the transfer timeout
//! (`--transfer-timeout`) bounds the whole transfer, so a slow but progressing server is not cut
//! by the exchange timeout.

use std::time::Duration;

use bytes::Bytes;
use http::Method;

use super::auth::{AuthState, Credentials};
use super::client::{Destination, HttpSession, Stream};
use super::conn::Target;
use super::{TransportConfig, TransportError};

/// Largest file a Download accepts (counted, not held: the simulator discards it as it arrives).
pub const MAX_DOWNLOAD: u64 = 64 * 1024 * 1024 * 1024;

/// hyper's read buffer cap on a file server connection: what a streamed download holds at most
/// (with the chunk being handed over), whatever the file size.
pub const READ_BUFFER: usize = 64 * 1024;

/// Default time a whole transfer may take (`--transfer-timeout`).
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// One file to move.
#[derive(Debug, Clone)]
pub struct FileRequest<'a> {
    /// GET (a download) or PUT `body` (an upload).
    pub download: bool,
    pub url: &'a str,
    /// The file server's credentials (empty username: those of the URL's userinfo, if any).
    pub username: &'a str,
    pub password: &'a str,
    /// What an upload sends.
    pub body: Bytes,
    /// The size the download must have, if known.
    pub expected_size: Option<u64>,
    /// The time the whole transfer may take.
    pub timeout: Duration,
}

/// Why a file could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be used (scheme, syntax).
    #[error("{0}")]
    BadUrl(TransportError),
    /// DNS, TCP or TLS failed: the server was not reached.
    #[error("{0}")]
    Unreachable(TransportError),
    /// The server wanted credentials we do not have, or refused ours.
    #[error("{0}")]
    Auth(TransportError),
    /// Redirects that loop, lead nowhere, or lead from https to plain http.
    #[error("{0}")]
    Redirect(TransportError),
    /// The server answered with this non-2xx status.
    #[error("the file server answered HTTP {0}")]
    Status(u16),
    /// The body was not the size announced.
    #[error("got {got} bytes, FileSize said {expected}")]
    Incomplete { got: u64, expected: u64 },
    /// The body went past what a download accepts.
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The whole transfer took longer than the transfer timeout.
    #[error("the transfer did not finish within {0:?} (--transfer-timeout)")]
    TimedOut(Duration),
    /// Anything else after connecting (a timeout or stall, a reset).
    #[error("{0}")]
    Broken(TransportError),
}

/// Moves one file; returns the bytes received (download) or sent (upload).
///
/// # Errors
/// [`FetchError`], by what went wrong.
pub async fn transfer(cfg: &TransportConfig, req: &FileRequest<'_>) -> Result<u64, FetchError> {
    match tokio::time::timeout(req.timeout, transfer_unbounded(cfg, req)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::TimedOut(req.timeout)),
    }
}

async fn transfer_unbounded(cfg: &TransportConfig, req: &FileRequest<'_>) -> Result<u64, FetchError> {
    let target = Target::parse(req.url).map_err(FetchError::BadUrl)?;
    let creds = if req.username.is_empty() {
        target.userinfo.as_ref().map(|(u, p)| Credentials { username: u.clone(), password: p.clone() })
    } else {
        Some(Credentials { username: req.username.to_string(), password: req.password.to_string() })
    };
    let mut file_cfg = cfg.clone();
    file_cfg.credentials = None;
    let mut auth = AuthState::default();
    let mut session = match HttpSession::new(&file_cfg, &mut auth, Destination::Parsed(&target)) {
        Ok(s) => s.with_credentials(creds.as_ref()).with_read_buffer(READ_BUFFER),
        Err(e) => return Err(FetchError::BadUrl(e)),
    };
    // A file past its FileSize fails as soon as it is.
    let limit = req.expected_size.map_or(MAX_DOWNLOAD, |e| e.min(MAX_DOWNLOAD));
    let result = if req.download {
        let mut sink = |_: &[u8]| {};
        session.request_streaming(Method::GET, Bytes::new(), Stream { stall: cfg.timeout, limit, sink: &mut sink }).await
    } else {
        session.request(Method::PUT, req.body.clone()).await
    };
    let sent = req.body.len() as u64;
    match result {
        Err(e) => Err(match e {
            TransportError::Dns { .. } | TransportError::Connect { .. } | TransportError::Tls { .. } => FetchError::Unreachable(e),
            TransportError::AuthRejected { .. }
            | TransportError::AuthRequired { .. }
            | TransportError::ForeignAuth { .. }
            | TransportError::BadChallenge { .. } => FetchError::Auth(e),
            TransportError::TooManyRedirects { .. } | TransportError::BadRedirect { .. } | TransportError::InsecureRedirect { .. } => {
                FetchError::Redirect(e)
            }
            TransportError::BadUrl { .. } => FetchError::BadUrl(e),
            TransportError::BodyTooLarge { .. } if req.download => FetchError::TooLarge(limit),
            _ => FetchError::Broken(e),
        }),
        Ok(r) => match r.status {
            200..=299 if req.download => {
                let got = r.streamed;
                match req.expected_size {
                    Some(expected) if expected != got => Err(FetchError::Incomplete { got, expected }),
                    _ => Ok(got),
                }
            }
            200..=299 => Ok(sent),
            s => Err(FetchError::Status(s)),
        },
    }
}
