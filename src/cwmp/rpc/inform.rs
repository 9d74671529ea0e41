//! Inform (TR-069 §A.3.3.1): the event codes a CPE reports and reading the InformResponse.
//! The Inform envelope itself is rendered from a pre-built template (`session::template`).

use crate::cwmp::parse::{Cursor, Elem, ParseError};

use super::AcsMessage;

/// The single (numbered) event codes, each at most once per Inform (PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventCode {
    Bootstrap = 0,
    Boot = 1,
    Periodic = 2,
    Scheduled = 3,
    ValueChange = 4,
    Kicked = 5,
    ConnectionRequest = 6,
    TransferComplete = 7,
    DiagnosticsComplete = 8,
    RequestDownload = 9,
    AutonomousTransferComplete = 10,
    DuStateChangeComplete = 11,
    AutonomousDuStateChangeComplete = 12,
    Wakeup = 13,
    Heartbeat = 14,
}

impl EventCode {
    pub const ALL: [EventCode; 15] = [
        EventCode::Bootstrap,
        EventCode::Boot,
        EventCode::Periodic,
        EventCode::Scheduled,
        EventCode::ValueChange,
        EventCode::Kicked,
        EventCode::ConnectionRequest,
        EventCode::TransferComplete,
        EventCode::DiagnosticsComplete,
        EventCode::RequestDownload,
        EventCode::AutonomousTransferComplete,
        EventCode::DuStateChangeComplete,
        EventCode::AutonomousDuStateChangeComplete,
        EventCode::Wakeup,
        EventCode::Heartbeat,
    ];

    /// The wire text (`0 BOOTSTRAP`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::Bootstrap => "0 BOOTSTRAP",
            EventCode::Boot => "1 BOOT",
            EventCode::Periodic => "2 PERIODIC",
            EventCode::Scheduled => "3 SCHEDULED",
            EventCode::ValueChange => "4 VALUE CHANGE",
            EventCode::Kicked => "5 KICKED",
            EventCode::ConnectionRequest => "6 CONNECTION REQUEST",
            EventCode::TransferComplete => "7 TRANSFER COMPLETE",
            EventCode::DiagnosticsComplete => "8 DIAGNOSTICS COMPLETE",
            EventCode::RequestDownload => "9 REQUEST DOWNLOAD",
            EventCode::AutonomousTransferComplete => "10 AUTONOMOUS TRANSFER COMPLETE",
            EventCode::DuStateChangeComplete => "11 DU STATE CHANGE COMPLETE",
            EventCode::AutonomousDuStateChangeComplete => "12 AUTONOMOUS DU STATE CHANGE COMPLETE",
            EventCode::Wakeup => "13 WAKEUP",
            EventCode::Heartbeat => "14 HEARTBEAT",
        }
    }

    /// Whether the event survives a failed session (PROTOCOL.md §4: only `6 CONNECTION REQUEST`
    /// is "must not retry"; the ACS re-issues the request instead).
    pub fn retried_on_failure(self) -> bool {
        self != EventCode::ConnectionRequest
    }
}

/// `M <Method>` events, one per CommandKey (PROTOCOL.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MethodEvent {
    Reboot,
    ScheduleInform,
    Download,
    ScheduleDownload,
    Upload,
    ChangeDuState,
}

impl MethodEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodEvent::Reboot => "M Reboot",
            MethodEvent::ScheduleInform => "M ScheduleInform",
            MethodEvent::Download => "M Download",
            MethodEvent::ScheduleDownload => "M ScheduleDownload",
            MethodEvent::Upload => "M Upload",
            MethodEvent::ChangeDuState => "M ChangeDUState",
        }
    }
}

/// Reads an InformResponse; MaxEnvelopes is accepted whatever its value (PROTOCOL.md §3).
pub fn parse_response<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AcsMessage<'a>, ParseError> {
    let mut max_envelopes = 1;
    super::read_fields(cur, m, |name, text| {
        if name == "MaxEnvelopes" {
            max_envelopes = text.trim().parse().unwrap_or(1);
        }
        Ok(())
    })?;
    Ok(AcsMessage::InformResponse { max_envelopes })
}
