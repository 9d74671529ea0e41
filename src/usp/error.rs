//! USP error codes (TR-369 §"Error Codes", the 7000 series) and how the data model's CWMP fault
//! codes map onto them.

use crate::cwmp::fault::FaultCode;

/// A TR-369 error code with its standard message (from `rusp-lib`'s table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UspErr(pub u32);

impl UspErr {
    pub const MESSAGE_FAILED: UspErr = UspErr(7000);
    pub const MESSAGE_NOT_SUPPORTED: UspErr = UspErr(7001);
    pub const REQUEST_DENIED: UspErr = UspErr(7002);
    pub const INTERNAL_ERROR: UspErr = UspErr(7003);
    pub const INVALID_ARGUMENTS: UspErr = UspErr(7004);
    pub const RESOURCES_EXCEEDED: UspErr = UspErr(7005);
    pub const INVALID_PATH_SYNTAX: UspErr = UspErr(7008);
    pub const UNSUPPORTED_PARAMETER: UspErr = UspErr(7010);
    pub const INVALID_TYPE: UspErr = UspErr(7011);
    pub const INVALID_VALUE: UspErr = UspErr(7012);
    pub const NOT_WRITABLE: UspErr = UspErr(7013);
    pub const OBJECT_DOES_NOT_EXIST: UspErr = UspErr(7016);
    pub const NOT_A_TABLE: UspErr = UspErr(7018);
    pub const NOT_CREATABLE: UspErr = UspErr(7019);
    pub const REQUIRED_PARAMETER_FAILED: UspErr = UspErr(7021);
    pub const DELETE_FAILURE: UspErr = UspErr(7024);
    /// "Object exists with duplicate key" (Add, Set: `usp::keys`).
    pub const DUPLICATE_KEY: UspErr = UspErr(7025);
    pub const INVALID_PATH: UspErr = UspErr(7026);

    /// The standard message for the code.
    pub fn message(self) -> &'static str {
        rusp_lib::usp_errors::get_err_msg(self.0)
    }

    /// The USP error for a data-model refusal worded as a CWMP fault (the model speaks TR-069):
    /// an unknown name is an invalid path, a write to a read-only parameter is 7013, and so on.
    pub fn from_fault(f: FaultCode) -> UspErr {
        match f {
            FaultCode::MethodNotSupported => UspErr::MESSAGE_NOT_SUPPORTED,
            FaultCode::RequestDenied => UspErr::REQUEST_DENIED,
            FaultCode::InvalidArguments => UspErr::INVALID_ARGUMENTS,
            FaultCode::ResourcesExceeded => UspErr::RESOURCES_EXCEEDED,
            FaultCode::InvalidParameterName => UspErr::INVALID_PATH,
            FaultCode::InvalidParameterType => UspErr::INVALID_TYPE,
            FaultCode::InvalidParameterValue => UspErr::INVALID_VALUE,
            FaultCode::NonWritableParameter => UspErr::NOT_WRITABLE,
            _ => UspErr::INTERNAL_ERROR,
        }
    }
}

impl std::fmt::Display for UspErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_standard_messages() {
        assert_eq!(UspErr::INVALID_PATH.message(), "Invalid path");
        assert_eq!(UspErr::from_fault(FaultCode::NonWritableParameter), UspErr(7013));
        assert_eq!(UspErr::from_fault(FaultCode::InvalidParameterName).to_string(), "7026 Invalid path");
    }
}
