//! CWMP fault codes: the 9000-series a CPE answers with and the 8000-series an ACS may send
//! (TR-069 §A.5.1 / PROTOCOL.md §8).

/// A CPE fault code (what the simulated CPE answers an ACS request with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum FaultCode {
    MethodNotSupported = 9000,
    RequestDenied = 9001,
    InternalError = 9002,
    InvalidArguments = 9003,
    ResourcesExceeded = 9004,
    InvalidParameterName = 9005,
    InvalidParameterType = 9006,
    InvalidParameterValue = 9007,
    NonWritableParameter = 9008,
    NotificationRejected = 9009,
    DownloadFailure = 9010,
    UploadFailure = 9011,
    TransferAuthFailure = 9012,
    UnsupportedTransferProtocol = 9013,
    FileServerUnreachable = 9015,
    FileAccessFailure = 9016,
    DownloadIncomplete = 9017,
    FileCorrupted = 9018,
    CancelNotPermitted = 9021,
}

impl FaultCode {
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The standard FaultString.
    pub fn message(self) -> &'static str {
        match self {
            FaultCode::MethodNotSupported => "Method not supported",
            FaultCode::RequestDenied => "Request denied (no reason specified)",
            FaultCode::InternalError => "Internal error",
            FaultCode::InvalidArguments => "Invalid arguments",
            FaultCode::ResourcesExceeded => "Resources exceeded",
            FaultCode::InvalidParameterName => "Invalid parameter name",
            FaultCode::InvalidParameterType => "Invalid parameter type",
            FaultCode::InvalidParameterValue => "Invalid parameter value",
            FaultCode::NonWritableParameter => "Attempt to set a non-writable parameter",
            FaultCode::NotificationRejected => "Notification request rejected",
            FaultCode::DownloadFailure => "Download failure",
            FaultCode::UploadFailure => "Upload failure",
            FaultCode::TransferAuthFailure => "File transfer server authentication failure",
            FaultCode::UnsupportedTransferProtocol => "Unsupported protocol for file transfer",
            FaultCode::FileServerUnreachable => "Unable to contact file server",
            FaultCode::FileAccessFailure => "Unable to access file",
            FaultCode::DownloadIncomplete => "Unable to complete download",
            FaultCode::FileCorrupted => "File corrupted",
            FaultCode::CancelNotPermitted => "Cancelation not permitted in current transfer state",
        }
    }

    /// SOAP `faultcode`: `Client` when the request was at fault, `Server` otherwise
    /// (PROTOCOL.md §8, as icwmp and easycwmp answer).
    pub fn soap_faultcode(self) -> &'static str {
        match self {
            FaultCode::InvalidArguments
            | FaultCode::InvalidParameterName
            | FaultCode::InvalidParameterType
            | FaultCode::InvalidParameterValue
            | FaultCode::NonWritableParameter
            | FaultCode::NotificationRejected
            | FaultCode::MethodNotSupported => "Client",
            _ => "Server",
        }
    }
}

impl std::fmt::Display for FaultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.message())
    }
}

/// A fault the ACS sent (8000-series, or anything it chose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcsFaultCode(pub u32);

impl AcsFaultCode {
    pub fn meaning(self) -> &'static str {
        match self.0 {
            8000 => "Method not supported",
            8001 => "Request denied",
            8002 => "Internal error",
            8003 => "Invalid arguments",
            8004 => "Resources exceeded",
            8005 => "Retry request",
            8006 => "ACS version incompatible with CPE",
            8800..=8899 => "Vendor defined",
            _ => "Unknown ACS fault",
        }
    }
}
