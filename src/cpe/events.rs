//! The events a CPE owes the ACS, and what happens to them when a session delivers or fails
//! (PROTOCOL.md §4).
//!
//! Single codes are bits; `M <Method>` events with their CommandKeys and pending TransferComplete
//! reports live in a box allocated only when there are any. `4 VALUE CHANGE` is derived from the
//! delta's changed parameters and `7 TRANSFER COMPLETE` + `M Download`/`M Upload` from the pending
//! transfer reports, which are re-sent until the ACS acknowledges them.

use crate::cwmp::rpc::inform::{EventCode, MethodEvent};
use crate::time::UnixMillis;

/// The result of a Download or Upload, waiting to be reported with TransferComplete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransferResult {
    pub command_key: Box<str>,
    pub kind: super::action::TransferKind,
    /// 0 on success, else a 9000-series code.
    pub fault_code: u16,
    pub fault_string: Box<str>,
    pub start_at: UnixMillis,
    pub complete_at: UnixMillis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Extra {
    methods: Vec<(MethodEvent, Box<str>)>,
    transfers: Vec<TransferResult>,
}

/// A CPE's undelivered events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventQueue {
    codes: u16,
    extra: Option<Box<Extra>>,
}

/// What one Inform carried, so delivery or failure can be applied to exactly that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub codes: u16,
    pub methods: usize,
    pub value_changes: usize,
}

/// TR-069 caps an Inform's Event array at 64 entries.
const MAX_EVENTS: usize = crate::cwmp::limits::EVENTS;

impl EventQueue {
    /// A factory-fresh CPE's first events: `0 BOOTSTRAP` + `1 BOOT`.
    pub fn first_boot() -> EventQueue {
        let mut q = EventQueue::default();
        q.add(EventCode::Bootstrap);
        q.add(EventCode::Boot);
        q
    }

    pub fn add(&mut self, code: EventCode) {
        self.codes |= 1 << code as u8;
    }

    pub fn has(&self, code: EventCode) -> bool {
        self.codes & (1 << code as u8) != 0
    }

    pub fn remove(&mut self, code: EventCode) {
        self.codes &= !(1 << code as u8);
    }

    /// Adds an `M <Method>` event with its CommandKey.
    pub fn add_method(&mut self, m: MethodEvent, command_key: &str) {
        self.extra.get_or_insert_with(Default::default).methods.push((m, command_key.into()));
    }

    /// Queues a TransferComplete report (and with it `7 TRANSFER COMPLETE` + `M Download`).
    pub fn add_transfer(&mut self, t: TransferResult) {
        self.extra.get_or_insert_with(Default::default).transfers.push(t);
    }

    /// The oldest TransferComplete report not yet acknowledged.
    pub fn next_transfer(&self) -> Option<&TransferResult> {
        self.extra.as_ref()?.transfers.first()
    }

    /// The ACS acknowledged the oldest report (TransferCompleteResponse).
    pub fn transfer_acknowledged(&mut self) {
        if let Some(e) = self.extra.as_mut() {
            if !e.transfers.is_empty() {
                e.transfers.remove(0);
            }
        }
        self.shrink();
    }

    fn methods(&self) -> &[(MethodEvent, Box<str>)] {
        self.extra.as_ref().map_or(&[], |e| e.methods.as_slice())
    }

    fn transfers(&self) -> &[TransferResult] {
        self.extra.as_ref().map_or(&[], |e| e.transfers.as_slice())
    }

    fn shrink(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.methods.is_empty() && e.transfers.is_empty()) {
            self.extra = None;
        }
    }

    /// True when nothing is owed (a periodic timer must add `2 PERIODIC` to start a session).
    pub fn is_empty(&self) -> bool {
        self.codes == 0 && self.extra.is_none()
    }

    /// The events for the next Inform, with `value_changes` pending value-change parameters.
    pub fn for_inform(&self, value_changes: usize) -> InformEventList<'_> {
        let mut codes = self.codes;
        if value_changes > 0 {
            codes |= 1 << EventCode::ValueChange as u8;
        }
        if !self.transfers().is_empty() {
            codes |= 1 << EventCode::TransferComplete as u8;
        }
        let singles = codes.count_ones() as usize;
        // Within the 64: the single codes, then the transfer reports (re-sent until acknowledged),
        // then the `M` events; what does not fit waits for the next Inform.
        let transfers = self.transfers().len().min(MAX_EVENTS.saturating_sub(singles));
        let methods = self.methods().len().min(MAX_EVENTS.saturating_sub(singles + transfers));
        InformEventList { queue: self, codes, methods, transfers, value_changes }
    }

    /// The single event codes of the next Inform as a bit set (bit `EventCode as u8`), for
    /// counting sessions by event code.
    pub fn codes_for_inform(&self, value_changes: usize) -> u16 {
        self.for_inform(value_changes).codes
    }

    /// The Inform was answered: its events are delivered.
    pub fn delivered(&mut self, sent: Sent) {
        self.codes &= !sent.codes;
        if let Some(e) = self.extra.as_mut() {
            let n = sent.methods.min(e.methods.len());
            e.methods.drain(..n);
        }
        self.shrink();
    }

    /// The session failed before the Inform was answered: drop what must not be retried.
    pub fn undelivered(&mut self, sent: Sent) {
        for code in EventCode::ALL {
            if sent.codes & (1 << code as u8) != 0 && !code.retried_on_failure() {
                self.remove(code);
            }
        }
    }

    /// A reboot: keep what survives one (PROTOCOL.md §4, "Reboot" column), add `1 BOOT`.
    pub fn rebooted(&mut self) {
        let survives = [
            EventCode::Bootstrap,
            EventCode::Periodic,
            EventCode::Scheduled,
            EventCode::Kicked,
            EventCode::TransferComplete,
            EventCode::RequestDownload,
        ];
        self.codes &= survives.iter().fold(0u16, |m, c| m | 1 << *c as u8);
        self.add(EventCode::Boot);
    }

    /// The codes, for logs (`[0 BOOTSTRAP, 1 BOOT]`).
    pub fn describe(&self, value_changes: usize) -> String {
        let list = self.for_inform(value_changes);
        let mut parts: Vec<String> =
            EventCode::ALL.iter().filter(|c| list.codes & (1 << **c as u8) != 0).map(|c| c.as_str().to_string()).collect();
        parts.extend(self.methods()[..list.methods].iter().map(|(m, _)| m.as_str().to_string()));
        parts.extend(self.transfers()[..list.transfers].iter().map(|t| t.kind.method_event().as_str().to_string()));
        format!("[{}]", parts.join(", "))
    }
}

/// The exact event list of one Inform.
pub struct InformEventList<'q> {
    queue: &'q EventQueue,
    codes: u16,
    methods: usize,
    transfers: usize,
    value_changes: usize,
}

impl InformEventList<'_> {
    /// What to remember for delivery/failure bookkeeping.
    pub fn sent(&self) -> Sent {
        // Derived codes (4, 7) are not stored bits; clearing them is harmless.
        Sent { codes: self.codes, methods: self.methods, value_changes: self.value_changes }
    }
}

impl<'q> InformEventList<'q> {
    /// How many EventStructs the Inform carries (at most 64).
    pub fn count(&self) -> usize {
        self.codes.count_ones() as usize + self.methods + self.transfers
    }

    /// Each EventStruct as (EventCode, CommandKey), in the order they are sent: single codes
    /// ascending, then `M` events, then the transfer reports' `M Download`/`M Upload`.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &'q str)> + '_ {
        let codes = EventCode::ALL.into_iter().filter(|c| self.codes & (1 << *c as u8) != 0).map(|c| (c.as_str(), ""));
        let methods = self.queue.methods()[..self.methods].iter().map(|(m, key)| (m.as_str(), &**key));
        let transfers = self.queue.transfers()[..self.transfers].iter().map(|t| (t.kind.method_event().as_str(), &*t.command_key));
        codes.chain(methods).chain(transfers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_request_is_dropped_on_failure_others_kept() {
        let mut q = EventQueue::default();
        q.add(EventCode::Periodic);
        q.add(EventCode::ConnectionRequest);
        let sent = q.for_inform(0).sent();
        q.undelivered(sent);
        assert!(q.has(EventCode::Periodic));
        assert!(!q.has(EventCode::ConnectionRequest));
        q.delivered(q.for_inform(0).sent());
        assert!(q.is_empty());
    }

    #[test]
    fn events_added_during_a_session_survive_its_delivery() {
        let mut q = EventQueue::default();
        q.add_method(MethodEvent::Reboot, "k1");
        let sent = q.for_inform(0).sent();
        q.add_method(MethodEvent::ScheduleInform, "k2");
        q.delivered(sent);
        assert_eq!(q.methods().len(), 1);
        assert_eq!(&*q.methods()[0].1, "k2");
    }

    /// A successful Download's report.
    fn downloaded(command_key: &str) -> TransferResult {
        TransferResult {
            command_key: command_key.into(),
            kind: crate::cpe::action::TransferKind::Download,
            fault_code: 0,
            fault_string: "".into(),
            start_at: UnixMillis(0),
            complete_at: UnixMillis(0),
        }
    }

    #[test]
    fn an_inform_never_carries_more_than_64_events() {
        let mut q = EventQueue::default();
        q.add(EventCode::Boot);
        for i in 0..40 {
            q.add_method(MethodEvent::ScheduleInform, &format!("k{i}"));
            q.add_transfer(downloaded(&format!("t{i}")));
        }
        let list = q.for_inform(0);
        assert_eq!(list.count(), 64);
        assert_eq!(list.entries().count(), 64);
    }

    #[test]
    fn pending_transfers_repeat_until_acknowledged() {
        let mut q = EventQueue::default();
        q.add_transfer(downloaded("fw"));
        let list = q.for_inform(0);
        assert_eq!(list.count(), 2);
        assert_eq!(list.entries().collect::<Vec<_>>(), [("7 TRANSFER COMPLETE", ""), ("M Download", "fw")]);
        let sent = list.sent();
        q.delivered(sent);
        assert_eq!(q.describe(0), "[7 TRANSFER COMPLETE, M Download]");
        q.transfer_acknowledged();
        assert!(q.is_empty());
    }
}
