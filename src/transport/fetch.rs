//! Carrying out a Download or Upload the ACS asked for, over HTTP(S), and mapping what went wrong
//! to the TransferComplete fault code (PROTOCOL.md §8: 9015 unreachable, 9012 auth, 9016 no
//! access, 9017 incomplete, 9011 upload failure).

use bytes::Bytes;
use http::Method;

use super::auth::{AuthState, Credentials};
use super::client::{Destination, HttpSession};
use super::{TransportConfig, TransportError};
use crate::cpe::TransferRequest;
use crate::cwmp::FaultCode;

/// Largest file a Download will hold in memory (the simulator discards it afterwards).
pub const MAX_DOWNLOAD: usize = 256 * 1024 * 1024;

/// How a transfer ended: `None` on success, else the fault and a detail for FaultString.
pub type TransferFault = Option<(FaultCode, String)>;

/// Performs `req` and reports the fault to put in TransferComplete, if any.
pub async fn perform(cfg: &TransportConfig, req: &TransferRequest) -> TransferFault {
    let creds = (!req.username.is_empty()).then(|| Credentials { username: req.username.to_string(), password: req.password.to_string() });
    let mut file_cfg = cfg.clone();
    file_cfg.credentials = None;
    file_cfg.max_body = MAX_DOWNLOAD;
    let mut auth = AuthState::default();
    let download = req.kind.is_download();
    let mut session = match HttpSession::new(&file_cfg, &mut auth, Destination::Url(&req.url)) {
        Ok(s) => s.with_credentials(creds.as_ref()),
        Err(e) => return Some((FaultCode::UnsupportedTransferProtocol, e.to_string())),
    };
    let (method, body) = if download {
        (Method::GET, Bytes::new())
    } else {
        (Method::PUT, Bytes::from(format!("cpe-sim upload: {} ({})\n", req.file_type, req.command_key)))
    };
    let unreachable = if download { FaultCode::FileServerUnreachable } else { FaultCode::UploadFailure };
    let incomplete = if download { FaultCode::DownloadIncomplete } else { FaultCode::UploadFailure };
    match session.request(method, body).await {
        Err(e) => Some(match e {
            TransportError::Dns { .. } | TransportError::Connect { .. } | TransportError::Tls { .. } => (unreachable, e.to_string()),
            TransportError::AuthRejected { .. } | TransportError::AuthRequired { .. } | TransportError::BadChallenge { .. } => {
                (FaultCode::TransferAuthFailure, e.to_string())
            }
            TransportError::TooManyRedirects { .. } | TransportError::BadRedirect { .. } => {
                (if download { FaultCode::FileAccessFailure } else { FaultCode::UploadFailure }, e.to_string())
            }
            _ => (incomplete, e.to_string()),
        }),
        Ok(r) => match r.status {
            200..=299 if download && req.file_size > 0 && r.body.len() as u64 != req.file_size as u64 => {
                Some((FaultCode::DownloadIncomplete, format!("got {} bytes, FileSize said {}", r.body.len(), req.file_size)))
            }
            200..=299 => None,
            401 | 403 => Some((FaultCode::TransferAuthFailure, format!("the file server answered HTTP {}", r.status))),
            s if download => Some((FaultCode::FileAccessFailure, format!("the file server answered HTTP {s}"))),
            s => Some((FaultCode::UploadFailure, format!("the upload server answered HTTP {s}"))),
        },
    }
}
