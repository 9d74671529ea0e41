//! Fetching or sending one file over HTTP(S) for a Download or Upload: a GET or PUT with the
//! file server's own credentials (Basic or Digest), redirects followed, the body bounded. HTTP
//! only: what a failure means to the ACS (the TransferComplete fault code) is the engine's
//! business (`engine::transfer`).

use bytes::Bytes;
use http::Method;

use super::auth::{AuthState, Credentials};
use super::client::{Destination, HttpSession};
use super::{TransportConfig, TransportError};

/// Largest file a Download will hold in memory (the simulator discards it afterwards).
pub const MAX_DOWNLOAD: usize = 256 * 1024 * 1024;

/// One file to move.
#[derive(Debug, Clone)]
pub struct FileRequest<'a> {
    /// GET (a download) or PUT `body` (an upload).
    pub download: bool,
    pub url: &'a str,
    /// The file server's credentials (empty username: none).
    pub username: &'a str,
    pub password: &'a str,
    /// What an upload sends.
    pub body: Bytes,
    /// The size the download must have, if known.
    pub expected_size: Option<u64>,
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
    /// Anything else after connecting (a timeout, a reset, a body over the limit).
    #[error("{0}")]
    Broken(TransportError),
}

/// Moves one file; returns the bytes received (download) or sent (upload).
///
/// # Errors
/// [`FetchError`], by what went wrong.
pub async fn transfer(cfg: &TransportConfig, req: &FileRequest<'_>) -> Result<u64, FetchError> {
    let creds = (!req.username.is_empty()).then(|| Credentials { username: req.username.to_string(), password: req.password.to_string() });
    let mut file_cfg = cfg.clone();
    file_cfg.credentials = None;
    file_cfg.max_body = MAX_DOWNLOAD;
    let mut auth = AuthState::default();
    let mut session = match HttpSession::new(&file_cfg, &mut auth, Destination::Url(req.url)) {
        Ok(s) => s.with_credentials(creds.as_ref()),
        Err(e) => return Err(FetchError::BadUrl(e)),
    };
    let (method, body) = if req.download { (Method::GET, Bytes::new()) } else { (Method::PUT, req.body.clone()) };
    let sent = body.len() as u64;
    match session.request(method, body).await {
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
            _ => FetchError::Broken(e),
        }),
        Ok(r) => match r.status {
            200..=299 if req.download => {
                let got = r.body.len() as u64;
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
