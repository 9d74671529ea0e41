//! One simulated CPE's own state, kept compact for million-CPE fleets: its index, boot time, retry
//! count, undelivered events and data-model delta (a few dozen bytes until something changes).
//!
//! The lifecycle methods here are what a caller runs after a session's deferred actions
//! (`reboot`, `factory_reset`, `scheduled_inform_due`, `transfer_finished`) or when a timer or a
//! Connection Request fires. No I/O, no clock.

pub mod action;
pub mod agenda;
pub mod diagnostics;
pub mod events;
pub mod notify;
pub mod periodic;
pub mod retry;

pub use action::{DeferredAction, TransferKind, TransferRequest};
pub use events::{EventQueue, TransferResult};

use crate::cwmp::rpc::inform::{EventCode, MethodEvent};
use crate::model::{Delta, DeviceId, DeviceMut, Model};
use crate::time::UnixMillis;

/// One CPE's state besides the shared profile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpeState {
    pub id: DeviceId,
    /// Consecutive failed sessions (the Inform's RetryCount).
    pub retry_count: u16,
    /// Whether a `0 BOOTSTRAP` has ever been delivered.
    pub bootstrapped: bool,
    /// The next cwmp:ID this CPE will use for a request of its own.
    pub next_message_id: u32,
    pub boot_at: UnixMillis,
    pub events: EventQueue,
    pub delta: Delta,
}

impl CpeState {
    /// A factory-fresh CPE powered on at `now`: it owes `0 BOOTSTRAP` + `1 BOOT`.
    pub fn new(id: DeviceId, now: UnixMillis) -> CpeState {
        CpeState {
            id,
            retry_count: 0,
            bootstrapped: false,
            next_message_id: 1,
            boot_at: now,
            events: EventQueue::first_boot(),
            delta: Delta::default(),
        }
    }

    /// A writable view of this CPE's data model.
    pub fn device_mut<'a>(&'a mut self, model: &'a Model, now: UnixMillis) -> DeviceMut<'a> {
        DeviceMut { model, id: self.id, delta: &mut self.delta, boot_at: self.boot_at, now }
    }

    /// Restarts the CPE because the ACS asked (Reboot RPC): `1 BOOT` + `M Reboot`.
    pub fn reboot(&mut self, command_key: &str, now: UnixMillis) {
        self.restart(now);
        self.events.add_method(MethodEvent::Reboot, command_key);
    }

    /// Restarts the CPE (power cycle): uptime starts over, `1 BOOT`, pending value changes dropped.
    pub fn restart(&mut self, now: UnixMillis) {
        self.boot_at = now;
        self.events.rebooted();
        if let Some(d) = self.delta.inner() {
            let n = d.changed.len();
            self.delta.clear_changed(n);
        }
    }

    /// Factory reset: every change forgotten, `0 BOOTSTRAP` + `1 BOOT`.
    pub fn factory_reset(&mut self, now: UnixMillis) {
        let id = self.id;
        let next = self.next_message_id;
        *self = CpeState::new(id, now);
        self.next_message_id = next;
    }

    /// A ScheduleInform delay elapsed: `3 SCHEDULED` + `M ScheduleInform`.
    pub fn scheduled_inform_due(&mut self, command_key: &str) {
        self.events.add(EventCode::Scheduled);
        self.events.add_method(MethodEvent::ScheduleInform, command_key);
    }

    /// The periodic inform timer fired: `2 PERIODIC`.
    pub fn periodic_due(&mut self) {
        self.events.add(EventCode::Periodic);
    }

    /// An authenticated Connection Request arrived: `6 CONNECTION REQUEST`.
    pub fn connection_requested(&mut self) {
        self.events.add(EventCode::ConnectionRequest);
    }

    /// A firmware image downloaded fine: installs it by `model`'s firmware rule, setting
    /// `DeviceInfo.SoftwareVersion` in this CPE's delta (so it survives `--state-dir` restarts).
    ///
    /// # Returns
    /// The TransferComplete fault for a bad image (the version stays), else `None`.
    pub fn install_firmware(&mut self, model: &Model, req: &TransferRequest) -> Option<(crate::cwmp::FaultCode, &'static str)> {
        use crate::model::firmware::Install;
        match model.firmware.install(model.identity.seed, self.id, &req.url, &req.target_file_name) {
            Install::Rejected(code, detail) => Some((code, detail)),
            Install::Unchanged => None,
            Install::Version(v) => {
                if let Some(node) = model.well_known.software_version {
                    // Set by the CPE itself; the restart that follows drops pending value
                    // changes, and SoftwareVersion is in every Inform anyway (forced).
                    self.delta.set_value(crate::model::Loc::plain(node), &v, crate::model::Source::Cpe);
                }
                None
            }
        }
    }

    /// A transfer finished (successfully when `fault` is `None`). A firmware image that downloaded
    /// fine is installed by rebooting: the next Inform carries `1 BOOT` too.
    pub fn transfer_finished(
        &mut self,
        req: &TransferRequest,
        fault: Option<(crate::cwmp::FaultCode, &str)>,
        start_at: UnixMillis,
        complete_at: UnixMillis,
    ) {
        let (fault_code, fault_string) = match fault {
            None => (0, String::new()),
            Some((code, detail)) => {
                (code.code(), if detail.is_empty() { code.message().to_string() } else { format!("{}: {detail}", code.message()) })
            }
        };
        if fault.is_none() && req.is_firmware() {
            self.restart(complete_at);
        }
        self.events.add_transfer(TransferResult {
            command_key: req.command_key.clone(),
            kind: req.kind,
            fault_code,
            fault_string: fault_string.into(),
            start_at,
            complete_at,
        });
    }

    /// A diagnostic test ended at `now`: its results and final DiagnosticsState are written, and
    /// `8 DIAGNOSTICS COMPLETE` is owed (TR-069 §3.7.1.5).
    pub fn diagnostic_complete(&mut self, run: &diagnostics::DiagnosticRun, now: UnixMillis) {
        diagnostics::complete(&mut self.delta, run, now);
        self.events.add(EventCode::DiagnosticsComplete);
    }

    /// Takes the next cwmp:ID for a CPE-originated message.
    pub fn take_message_id(&mut self) -> u32 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }
}
