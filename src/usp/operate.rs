//! Operate (TR-369 §"The Operate Message") for the commands these Agents support:
//! `Device.Reboot()` and `Device.FactoryReset()` (synchronous: answered, then carried out), and
//! `Device.SelfTestDiagnostics()` (asynchronous: answered with a Request object path, finished
//! later with an OperationComplete notification).

use std::collections::HashMap;

use rusp_lib::usp::mod_OperateResp::mod_OperationResult::{OneOfoperation_resp, OutputArgs};
use rusp_lib::usp::mod_OperateResp::OperationResult;
use rusp_lib::usp::{Operate, OperateResp};

use super::UspErr;

/// A command this Agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `Device.Reboot()`: the Agent restarts and sends Boot! with Cause `RemoteReboot`.
    Reboot,
    /// `Device.FactoryReset()`: every change forgotten, Boot! with Cause `RemoteFactoryReset`.
    FactoryReset,
    /// `Device.SelfTestDiagnostics()`: asynchronous; completes after [`SELF_TEST_TIME`].
    SelfTest,
}

/// How long the simulated self test takes (its OperationComplete follows by this much).
pub const SELF_TEST_TIME: std::time::Duration = std::time::Duration::from_millis(500);

impl Command {
    /// Every command, for GetSupportedDM.
    pub const ALL: [Command; 3] = [Command::Reboot, Command::FactoryReset, Command::SelfTest];

    /// The command's name under the root object, as GetSupportedDM lists it.
    pub fn name(self) -> &'static str {
        match self {
            Command::Reboot => "Reboot()",
            Command::FactoryReset => "FactoryReset()",
            Command::SelfTest => "SelfTestDiagnostics()",
        }
    }

    /// Whether the command completes later, with an OperationComplete.
    pub fn is_async(self) -> bool {
        matches!(self, Command::SelfTest)
    }

    /// Output argument names (TR-181 `SelfTestDiagnostics()`: Status, Results).
    pub fn output_args(self) -> &'static [&'static str] {
        match self {
            Command::SelfTest => &["Status", "Results"],
            _ => &[],
        }
    }
}

/// A command accepted, to be carried out by the caller after the response is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub command: Command,
    /// The command's full path (`Device.Reboot()`).
    pub path: String,
    pub command_key: String,
    /// For asynchronous commands: the `Device.LocalAgent.Request.{i}.` path given to the
    /// Controller.
    pub request_path: Option<String>,
    /// Whether the Controller wants the OperateResp.
    pub send_resp: bool,
}

/// Checks an Operate against the commands known under `root` (`Device`).
///
/// # Errors
/// 7008 for a path that is not a command (`…()`) or a malformed search path, 7026 for a command
/// this Agent does not have.
pub fn operate(root: &str, req: &Operate, request_number: u32) -> Result<(OperateResp, Accepted), UspErr> {
    if super::path::is_search(&req.command) {
        // Every command here is on the root object, so a wildcard or search path names none of
        // them: 7026 once its syntax is sound.
        super::path::check_syntax(&req.command)?;
        return Err(UspErr::INVALID_PATH);
    }
    let Some(name) = req.command.strip_prefix(root).and_then(|r| r.strip_prefix('.')) else {
        return Err(if req.command.ends_with("()") { UspErr::INVALID_PATH } else { UspErr::INVALID_PATH_SYNTAX });
    };
    if !name.ends_with("()") {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    let command = Command::ALL.into_iter().find(|c| c.name() == name).ok_or(UspErr::INVALID_PATH)?;
    let request_path = command.is_async().then(|| format!("{root}.LocalAgent.Request.{request_number}."));
    let operation_resp = match &request_path {
        Some(p) => OneOfoperation_resp::req_obj_path(p.clone()),
        None => OneOfoperation_resp::req_output_args(OutputArgs { output_args: HashMap::new() }),
    };
    let resp = OperateResp { operation_results: vec![OperationResult { executed_command: req.command.clone(), operation_resp }] };
    let accepted =
        Accepted { command, path: req.command.clone(), command_key: req.command_key.clone(), request_path, send_resp: req.send_resp };
    Ok((resp, accepted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(cmd: &str) -> Operate {
        Operate { command: cmd.into(), command_key: "k".into(), send_resp: true, input_args: HashMap::new() }
    }

    #[test]
    fn commands() {
        let (_, a) = operate("Device", &op("Device.Reboot()"), 1).unwrap();
        assert_eq!((a.command, a.request_path), (Command::Reboot, None));
        let (resp, a) = operate("Device", &op("Device.SelfTestDiagnostics()"), 7).unwrap();
        assert_eq!(a.request_path.as_deref(), Some("Device.LocalAgent.Request.7."));
        assert!(
            matches!(&resp.operation_results[0].operation_resp, OneOfoperation_resp::req_obj_path(p) if p == "Device.LocalAgent.Request.7.")
        );
        assert_eq!(operate("Device", &op("Device.Explode()"), 1).unwrap_err(), UspErr::INVALID_PATH);
        assert_eq!(operate("Device", &op("Device.Reboot"), 1).unwrap_err(), UspErr::INVALID_PATH_SYNTAX);
        assert_eq!(operate("Device", &op(""), 1).unwrap_err(), UspErr::INVALID_PATH_SYNTAX);
    }
}
