//! Things the ACS asked for that happen after the session ends (PROTOCOL.md §1.2): the session
//! collects them, the caller (which owns timers and I/O) carries them out, then reports back
//! through [`CpeState`](super::CpeState) methods.

use std::time::Duration;

use crate::cwmp::rpc::inform::MethodEvent;

/// Which RPC asked for a transfer (it names the `M` event of the completion report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TransferKind {
    Download,
    ScheduleDownload,
    Upload,
}

impl TransferKind {
    pub fn is_download(self) -> bool {
        self != TransferKind::Upload
    }

    /// `M Download`, `M ScheduleDownload` or `M Upload`.
    pub fn method_event(self) -> MethodEvent {
        match self {
            TransferKind::Download => MethodEvent::Download,
            TransferKind::ScheduleDownload => MethodEvent::ScheduleDownload,
            TransferKind::Upload => MethodEvent::Upload,
        }
    }
}

/// A transfer the ACS requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub kind: TransferKind,
    pub command_key: Box<str>,
    pub file_type: Box<str>,
    pub url: Box<str>,
    pub username: Box<str>,
    pub password: Box<str>,
    pub file_size: u32,
    pub target_file_name: Box<str>,
    pub delay: Duration,
}

impl TransferRequest {
    /// The transfer a Download, Upload or ScheduleDownload asked for, to start after `delay`.
    pub fn new(kind: TransferKind, args: &crate::cwmp::rpc::download::TransferArgs<'_>, delay: Duration) -> TransferRequest {
        TransferRequest {
            kind,
            command_key: args.command_key.as_ref().into(),
            file_type: args.file_type.as_ref().into(),
            url: args.url.as_ref().into(),
            username: args.username.as_ref().into(),
            password: args.password.as_ref().into(),
            file_size: args.file_size,
            target_file_name: args.target_file_name.as_ref().into(),
            delay,
        }
    }

    /// A firmware image: the CPE reboots into it after a successful download.
    pub fn is_firmware(&self) -> bool {
        self.kind.is_download() && self.file_type.starts_with("1 ")
    }
}

/// A deferred action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferredAction {
    /// Restart, then inform with `1 BOOT` + `M Reboot`. Caller: `CpeState::reboot`.
    Reboot { command_key: Box<str> },
    /// Reset to factory state, then inform with `0 BOOTSTRAP` + `1 BOOT`. Caller:
    /// `CpeState::factory_reset`.
    FactoryReset,
    /// After `delay`, inform with `3 SCHEDULED` + `M ScheduleInform`. Caller:
    /// `CpeState::scheduled_inform_due`.
    ScheduleInform { delay: Duration, command_key: Box<str> },
    /// Fetch or send a file after `delay`, then `CpeState::transfer_finished`.
    Transfer(TransferRequest),
    /// Run a diagnostic test (replacing one of its kind that is pending); when it ends,
    /// `CpeState::diagnostic_complete`.
    Diagnostic(Box<super::diagnostics::DiagnosticRun>),
    /// Stop the pending test of this kind (an input changed; TR-181 DiagnosticsState).
    CancelDiagnostic(super::diagnostics::DiagnosticKind),
}
