//! The CWMP schema's limits on strings (cwmp-1-0 … cwmp-1-4 xsd `maxLength`, in characters), in
//! one place: what the CPE accepts in an ACS request ([`check_request`]) and what it sends
//! ([`clip`]). An argument beyond its limit gets the fault TR-069 names for it (9005 for a
//! parameter name, 9003 for any other argument), with nothing carried out; a string the CPE
//! composes itself (a FaultString built from a long URL or error text) is clipped to its limit.

use super::fault::FaultCode;
use super::rpc::download::TransferArgs;
use super::rpc::AcsRequest;

/// `CommandKeyType`.
pub const COMMAND_KEY: usize = 32;
/// `ParameterKeyType`.
pub const PARAMETER_KEY: usize = 32;
/// Parameter and object names (`string(256)`).
pub const PARAMETER_NAME: usize = 256;
/// `FaultString`.
pub const FAULT_STRING: usize = 256;
/// `EventCodeType`.
pub const EVENT_CODE: usize = 64;
/// EventStructs in one Inform.
pub const EVENTS: usize = 64;
/// Download/Upload `URL`.
pub const URL: usize = 1024;
/// Download/Upload `Username`, `Password`.
pub const CREDENTIAL: usize = 256;
/// Download/Upload `FileType`.
pub const FILE_TYPE: usize = 64;
/// Download `TargetFileName`.
pub const TARGET_FILE_NAME: usize = 256;
/// An `AccessList` entry.
pub const ACCESS_LIST_ENTRY: usize = 64;
/// ScheduleDownload `UserMessage`.
pub const USER_MESSAGE: usize = 256;
/// ScheduleDownload `WindowMode`, GetOptions `OptionName`.
pub const WINDOW_MODE: usize = 64;
/// GetOptions `OptionName`.
pub const OPTION_NAME: usize = 64;
/// DeviceIdStruct `OUI`.
pub const OUI: usize = 6;
/// DeviceIdStruct `Manufacturer`, `ProductClass`, `SerialNumber`.
pub const DEVICE_ID_FIELD: usize = 64;

fn too_long(s: &str, max: usize) -> bool {
    // Bytes bound characters from above: only long strings need counting.
    s.len() > max && s.chars().count() > max
}

/// `s` cut to at most `max` characters.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Checks every string argument of `req` against its schema limit.
///
/// # Errors
/// The fault to answer with and a detail naming the argument and its limit.
pub fn check_request(req: &AcsRequest<'_>) -> Result<(), (FaultCode, String)> {
    let arg = |name: &str, s: &str, max: usize| {
        if too_long(s, max) {
            return Err((FaultCode::InvalidArguments, format!("{name} longer than {max} characters")));
        }
        Ok(())
    };
    let names = |list: &mut dyn Iterator<Item = &str>| {
        for n in list {
            if too_long(n, PARAMETER_NAME) {
                return Err((FaultCode::InvalidParameterName, format!("a name longer than {PARAMETER_NAME} characters")));
            }
        }
        Ok(())
    };
    let transfer = |a: &TransferArgs<'_>| {
        arg("CommandKey", &a.command_key, COMMAND_KEY)?;
        arg("FileType", &a.file_type, FILE_TYPE)?;
        arg("URL", &a.url, URL)?;
        arg("Username", &a.username, CREDENTIAL)?;
        arg("Password", &a.password, CREDENTIAL)?;
        arg("TargetFileName", &a.target_file_name, TARGET_FILE_NAME)
    };
    match req {
        AcsRequest::GetParameterValues(r) => names(&mut r.names.iter().map(|n| n.as_ref())),
        AcsRequest::GetParameterAttributes(r) => names(&mut r.names.iter().map(|n| n.as_ref())),
        AcsRequest::GetParameterNames(r) => names(&mut std::iter::once(r.path.as_ref())),
        AcsRequest::SetParameterValues(r) => {
            names(&mut r.params.iter().map(|p| p.name.as_ref()))?;
            arg("ParameterKey", &r.parameter_key, PARAMETER_KEY)
        }
        AcsRequest::SetParameterAttributes(r) => {
            names(&mut r.params.iter().map(|p| p.name.as_ref()))?;
            for p in &r.params {
                for e in p.access_list.iter().flatten() {
                    arg("AccessList entry", e, ACCESS_LIST_ENTRY)?;
                }
            }
            Ok(())
        }
        AcsRequest::AddObject(r) => {
            names(&mut std::iter::once(r.object_name.as_ref()))?;
            arg("ParameterKey", &r.parameter_key, PARAMETER_KEY)
        }
        AcsRequest::DeleteObject(r) => {
            names(&mut std::iter::once(r.object_name.as_ref()))?;
            arg("ParameterKey", &r.parameter_key, PARAMETER_KEY)
        }
        AcsRequest::Reboot(r) => arg("CommandKey", &r.command_key, COMMAND_KEY),
        AcsRequest::ScheduleInform(r) => arg("CommandKey", &r.command_key, COMMAND_KEY),
        AcsRequest::CancelTransfer(r) => arg("CommandKey", &r.command_key, COMMAND_KEY),
        AcsRequest::Download(r) => {
            transfer(&r.args)?;
            arg("SuccessURL", &r.success_url, URL)?;
            arg("FailureURL", &r.failure_url, URL)
        }
        AcsRequest::Upload(r) => transfer(&r.args),
        AcsRequest::ScheduleDownload(r) => {
            transfer(&r.args)?;
            for w in &r.windows {
                arg("WindowMode", &w.mode, WINDOW_MODE)?;
                arg("UserMessage", &w.user_message, USER_MESSAGE)?;
            }
            Ok(())
        }
        AcsRequest::ChangeDuState(r) => arg("CommandKey", &r.command_key, COMMAND_KEY),
        AcsRequest::GetOptions(r) => arg("OptionName", &r.option_name, OPTION_NAME),
        // No string arguments (or none kept): listed so that a new RPC needs a decision here.
        AcsRequest::GetRpcMethods
        | AcsRequest::FactoryReset
        | AcsRequest::GetQueuedTransfers
        | AcsRequest::GetAllQueuedTransfers
        | AcsRequest::SetVouchers(_)
        | AcsRequest::Unknown { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_keeps_them_whole() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé");
        assert!(!too_long(&"é".repeat(32), 32), "32 two-byte characters are 32 characters");
        assert!(too_long(&"a".repeat(33), 32));
    }
}
