//! Carrying out a Download or Upload the ACS asked for (TR-069 A.3.2.8/A.4.1.5), and what its
//! TransferComplete reports: the fault code for each way a transfer fails (PROTOCOL.md §8: 9015
//! unreachable, 9012 auth, 9016 no access, 9017 incomplete, 9011 upload failure, 9013
//! unsupported protocol).

use crate::cpe::TransferRequest;
use crate::cwmp::FaultCode;
use crate::transport::fetch::{self, FetchError, FileRequest};
use crate::transport::TransportConfig;

/// Performs `req` within `timeout` (the whole transfer; `cfg.timeout` bounds each wait); `None`
/// on success, else the fault and a detail for the FaultString (never the URL's userinfo).
pub async fn perform(cfg: &TransportConfig, req: &TransferRequest, timeout: std::time::Duration) -> Option<(FaultCode, String)> {
    let download = req.kind.is_download();
    let file = FileRequest {
        download,
        url: &req.url,
        username: &req.username,
        password: &req.password,
        body: bytes::Bytes::from(format!("cpe-sim upload: {} ({})\n", req.file_type, req.command_key)),
        expected_size: (download && req.file_size > 0).then_some(req.file_size as u64),
        timeout,
    };
    match fetch::transfer(cfg, &file).await {
        Ok(_) => None,
        Err(e) => Some((fault_code(&e, download), e.to_string())),
    }
}

/// The TransferComplete fault for a failed transfer.
pub fn fault_code(e: &FetchError, download: bool) -> FaultCode {
    match (e, download) {
        (FetchError::BadUrl(_), _) => FaultCode::UnsupportedTransferProtocol,
        (FetchError::Auth(_), _) | (FetchError::Status(401 | 403), _) => FaultCode::TransferAuthFailure,
        (_, false) => FaultCode::UploadFailure,
        (FetchError::Unreachable(_), true) => FaultCode::FileServerUnreachable,
        (FetchError::Redirect(_) | FetchError::Status(_), true) => FaultCode::FileAccessFailure,
        (FetchError::Incomplete { .. } | FetchError::TooLarge(_) | FetchError::TimedOut(_) | FetchError::Broken(_), true) => {
            FaultCode::DownloadIncomplete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_fault() {
        let t = || crate::transport::TransportError::BadUrl { url: "x".into(), reason: "test" };
        assert_eq!(fault_code(&FetchError::BadUrl(t()), true), FaultCode::UnsupportedTransferProtocol);
        assert_eq!(fault_code(&FetchError::Unreachable(t()), true), FaultCode::FileServerUnreachable);
        assert_eq!(fault_code(&FetchError::Unreachable(t()), false), FaultCode::UploadFailure);
        assert_eq!(fault_code(&FetchError::Auth(t()), false), FaultCode::TransferAuthFailure);
        assert_eq!(fault_code(&FetchError::Status(403), true), FaultCode::TransferAuthFailure);
        assert_eq!(fault_code(&FetchError::Status(404), true), FaultCode::FileAccessFailure);
        assert_eq!(fault_code(&FetchError::Status(500), false), FaultCode::UploadFailure);
        assert_eq!(fault_code(&FetchError::Incomplete { got: 1, expected: 2 }, true), FaultCode::DownloadIncomplete);
        assert_eq!(fault_code(&FetchError::Broken(t()), true), FaultCode::DownloadIncomplete);
        assert_eq!(fault_code(&FetchError::Redirect(t()), true), FaultCode::FileAccessFailure);
        assert_eq!(fault_code(&FetchError::TooLarge(1), true), FaultCode::DownloadIncomplete);
        assert_eq!(fault_code(&FetchError::TimedOut(std::time::Duration::from_secs(1)), true), FaultCode::DownloadIncomplete);
        assert_eq!(fault_code(&FetchError::TimedOut(std::time::Duration::from_secs(1)), false), FaultCode::UploadFailure);
    }
}
