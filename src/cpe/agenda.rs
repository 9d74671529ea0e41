//! What happens next to one CPE, and when: its agenda (sans-IO, no clock).
//!
//! One small value per CPE owns every timer a CPE has: the owed session's start (first boot, a
//! wake-up, the end of a retry back-off), the periodic Inform (PROTOCOL.md §6) and deferred work
//! the ACS asked for (ScheduleInform, Download/Upload DelaySeconds, the end of a TR-143
//! diagnostic test), and the next active change of a generated value (`cpe::notify`). It is shaped like
//! quinn-proto's connection: the engine asks [`Agenda::next_deadline`], calls
//! [`Agenda::on_timeout`] when that time comes, [`Agenda::on_wake`] when something outside asks
//! for a session, and [`Agenda::on_session_end`] with what the session left behind. Times are
//! milliseconds since the Unix epoch (`u64`); every sum saturates, so no duration from outside
//! can overflow, wrap to "now" or panic.
//!
//! Invariants (each tested below and property-tested against a plain model):
//! - no session without a reason: `on_timeout` asks for a session only when the CPE owes events
//!   (so an Inform's Event array is never empty) or a transfer is due;
//! - a stale timer starts nothing: calling `on_timeout` early, late or twice is harmless;
//! - deferred work never runs early or twice;
//! - a Connection Request (or an active value change) during a back-off starts a session now;
//! - the owed events themselves live in [`CpeState::events`], so an owed `0 BOOTSTRAP` survives
//!   failed sessions until an InformResponse delivers it.

use std::time::Duration;

use crate::cpe::{CpeState, DeferredAction, TransferRequest};
use crate::cwmp::rpc::inform::EventCode;
use crate::time::UnixMillis;

/// "Not scheduled."
pub const NEVER: u64 = u64::MAX;

/// How long after a session a follow-up the CPE owes (a reboot's `1 BOOT`, a transfer and its
/// TransferComplete, a Connection Request that came during the session) starts, in ms. A real
/// CPE takes at least this long; an ACS that ends a session asynchronously (GenieACS releases
/// the device after its 204) refuses a new Inform that comes sooner ("CPE already in session").
pub const FOLLOW_UP_GAP_MS: u64 = 250;

/// One CPE's timers. 32 bytes; the deferred list is boxed and absent for almost every CPE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agenda {
    /// When the owed session may start, or [`NEVER`].
    start: u64,
    /// The next periodic Inform, or [`NEVER`] when periodic informs are off.
    periodic_at: u64,
    /// The periodic period in ms (0 when off).
    period: u64,
    /// Deferred work in due order (ties keep the order the ACS asked in). Boxed: one pointer
    /// per CPE instead of a Vec's three, since almost every CPE has none.
    #[allow(clippy::box_collection)]
    deferred: Option<Box<Vec<Deferred>>>,
}

/// Work the ACS asked for, due at a time of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub due: u64,
    pub work: Work,
}

/// What deferred work does when it comes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// `3 SCHEDULED` + `M ScheduleInform` (TR-069 A.4.1.8).
    ScheduleInform { command_key: Box<str> },
    /// A Download or Upload to perform (by the engine) before the next session.
    Transfer(Box<TransferRequest>),
    /// A TR-143 diagnostic test that ends now: results written, `8 DIAGNOSTICS COMPLETE`.
    Diagnostic(Box<super::diagnostics::DiagnosticRun>),
    /// Generated values with active notification changed (`cpe::notify`): `4 VALUE CHANGE`.
    /// `since` is when it was planned (the end of the session before).
    ValueChange { since: u64, locs: Box<[crate::model::Loc]> },
}

/// Why a session starts (the first reason found; for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionReason {
    /// Events owed from before: first boot, a reboot, a resumed CPE.
    Owed,
    /// The back-off after a failed session ended.
    Retry,
    Periodic,
    Scheduled,
    Transfer,
    Diagnostics,
    ConnectionRequest,
    ValueChange,
}

/// Something outside the agenda wants a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// An authenticated Connection Request (TR-069 §3.2.2): `6 CONNECTION REQUEST`, now.
    ConnectionRequest,
    /// A local change of a parameter with active notification: `4 VALUE CHANGE`, now.
    ValueChange,
}

/// How a session ended, as the agenda needs it.
#[derive(Debug)]
pub struct SessionEnd {
    /// The session completed (the ACS ended it properly).
    pub ok: bool,
    /// What the ACS asked for that happens after the session.
    pub actions: smallvec::SmallVec<[DeferredAction; 1]>,
    /// After a failure: how long to wait before retrying (the TR-069 back-off, or a longer
    /// Retry-After); `None` never retries (one-shot runs).
    pub retry_in: Option<Duration>,
}

/// What `on_session_end` did that the engine must follow up on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EndEffects {
    /// The CPE rebooted (Reboot, or FactoryReset): its connections and auth start over.
    pub restarted: bool,
    /// The CPE was reset to factory state: its periodic plan must be computed again.
    pub factory_reset: bool,
}

impl Default for Agenda {
    fn default() -> Self {
        Agenda::idle()
    }
}

impl Agenda {
    /// Nothing scheduled.
    pub const fn idle() -> Agenda {
        Agenda { start: NEVER, periodic_at: NEVER, period: 0, deferred: None }
    }

    /// A CPE that powers on at `at` (ms) and informs then what it owes.
    pub const fn boot_at(at: u64) -> Agenda {
        Agenda { start: at, periodic_at: NEVER, period: 0, deferred: None }
    }

    /// The earliest time something is due, or `None`. While the CPE is in a session (or waiting
    /// for a slot) only the periodic timer counts: a periodic Inform due then is late.
    pub fn next_deadline(&self, in_session: bool) -> Option<u64> {
        let mut t = self.periodic_at;
        if !in_session {
            t = t.min(self.start);
            if let Some(d) = self.deferred.as_deref().and_then(|d| d.first()) {
                t = t.min(d.due);
            }
        }
        (t != NEVER).then_some(t)
    }

    /// When the owed session may start ([`NEVER`] when none is planned).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The next periodic Inform ([`NEVER`] when off) and its period in ms.
    pub fn periodic(&self) -> (u64, u64) {
        (self.periodic_at, self.period)
    }

    /// Deferred work not yet due.
    pub fn deferred(&self) -> &[Deferred] {
        self.deferred.as_deref().map_or(&[], |d| d.as_slice())
    }

    /// Plans periodic informs at `phase + n·period` (ms), the first strictly after `now`;
    /// `None` turns them off.
    pub fn set_periodic(&mut self, plan: Option<super::periodic::Periodic>, now: u64) {
        match plan {
            Some(p) if p.period_ms > 0 => {
                self.period = p.period_ms;
                self.periodic_at = next_after(now, p.period_ms, p.phase_ms);
            }
            _ => {
                self.period = 0;
                self.periodic_at = NEVER;
            }
        }
    }

    /// A timer fired at `now` for an idle CPE: applies what is due to `cpe` (periodic and
    /// scheduled events), moves due transfers to `transfers` (the engine performs them, then
    /// calls `CpeState::transfer_finished`, then runs the session), and says whether a session
    /// starts now. A call with nothing due changes nothing and returns `None`.
    pub fn on_timeout(&mut self, cpe: &mut CpeState, now: u64, transfers: &mut Vec<TransferRequest>) -> Option<SessionReason> {
        let in_backoff = cpe.retry_count > 0 && self.start != NEVER && self.start > now;
        let mut reason = None;
        if self.periodic_at <= now {
            cpe.periodic_due();
            self.periodic_at = next_boundary(self.periodic_at, self.period, now);
            reason = Some(SessionReason::Periodic);
            // A periodic Inform during a back-off joins the retry (TR-069 §3.2.1.1).
            if !in_backoff {
                self.start = self.start.min(now);
            }
        }
        let had_transfers = transfers.len();
        if let Some(list) = self.deferred.as_mut() {
            while list.first().is_some_and(|d| d.due <= now) {
                match list.remove(0).work {
                    Work::ScheduleInform { command_key } => {
                        cpe.scheduled_inform_due(&command_key);
                        reason.get_or_insert(SessionReason::Scheduled);
                        self.start = self.start.min(now);
                    }
                    Work::Transfer(req) => {
                        transfers.push(*req);
                        reason.get_or_insert(SessionReason::Transfer);
                    }
                    Work::Diagnostic(run) => {
                        cpe.diagnostic_complete(&run, UnixMillis(now));
                        reason.get_or_insert(SessionReason::Diagnostics);
                        self.start = self.start.min(now);
                    }
                    Work::ValueChange { locs, .. } => {
                        for loc in locs.iter() {
                            cpe.delta.mark_changed(loc.clone());
                        }
                        cpe.events.add(EventCode::ValueChange);
                        reason.get_or_insert(SessionReason::ValueChange);
                        self.start = self.start.min(now);
                    }
                }
            }
            if list.is_empty() {
                self.deferred = None;
            }
        }
        if transfers.len() > had_transfers {
            // The transfer's TransferComplete is owed right after it: the session starts now.
            self.start = NEVER;
            return reason;
        }
        if self.start > now {
            return None;
        }
        self.start = NEVER;
        if !owes_session(cpe) {
            // Stale: whatever asked for this session was delivered or dropped since.
            return None;
        }
        Some(reason.unwrap_or(if cpe.retry_count > 0 { SessionReason::Retry } else { SessionReason::Owed }))
    }

    /// A timer fired at `now` while the CPE is in a session or waiting for a slot: a periodic
    /// Inform due now is late (it is not queued; TR-069 has one Inform per period). Returns true
    /// when one was.
    pub fn on_timeout_in_session(&mut self, now: u64) -> bool {
        if self.periodic_at > now {
            return false;
        }
        self.periodic_at = next_boundary(self.periodic_at, self.period, now);
        true
    }

    /// Something outside asks for a session at `now`: the event is owed and the session starts
    /// now, even during a back-off (PROTOCOL.md §5).
    pub fn on_wake(&mut self, cpe: &mut CpeState, wake: Wake, now: u64) {
        match wake {
            Wake::ConnectionRequest => cpe.connection_requested(),
            Wake::ValueChange => cpe.events.add(EventCode::ValueChange),
        }
        self.start = self.start.min(now);
    }

    /// A session ended at `now`. Carries out the ACS's deferred actions (reboot and factory
    /// reset at once; ScheduleInform and transfers at their own due times, a transfer no sooner
    /// than [`FOLLOW_UP_GAP_MS`]), then plans what is still owed: [`FOLLOW_UP_GAP_MS`] on after a
    /// success, after `retry_in` after a failure.
    pub fn on_session_end(&mut self, cpe: &mut CpeState, end: SessionEnd, now: u64) -> EndEffects {
        let mut effects = EndEffects::default();
        for action in end.actions {
            match action {
                DeferredAction::Reboot { command_key } => {
                    cpe.reboot(&command_key, UnixMillis(now));
                    effects.restarted = true;
                }
                DeferredAction::FactoryReset => {
                    cpe.factory_reset(UnixMillis(now));
                    self.deferred = None;
                    effects.restarted = true;
                    effects.factory_reset = true;
                }
                DeferredAction::ScheduleInform { delay, command_key } => {
                    self.defer(at(now, delay), Work::ScheduleInform { command_key });
                }
                DeferredAction::Transfer(req) => {
                    let due = at(now, req.delay).max(now + FOLLOW_UP_GAP_MS);
                    self.defer(due, Work::Transfer(Box::new(req)));
                }
                DeferredAction::Diagnostic(run) => {
                    // A new request replaces a test of its kind still running (TR-143).
                    self.cancel_diagnostic(run.kind);
                    let due = at(now, run.duration).max(now + FOLLOW_UP_GAP_MS);
                    self.defer(due, Work::Diagnostic(run));
                }
                DeferredAction::CancelDiagnostic(kind) => self.cancel_diagnostic(kind),
            }
        }
        self.start = match (end.ok, end.retry_in) {
            (true, _) if owes_session(cpe) => now + FOLLOW_UP_GAP_MS,
            (true, _) => NEVER,
            // Saturates just below NEVER: a back-off of any length is still a back-off.
            (false, Some(wait)) => at(now, wait).min(NEVER - 1),
            (false, None) => NEVER,
        };
        effects
    }

    /// Drops deferred work due after `t` (a one-shot run does not wait years for it); returns
    /// how much was dropped.
    pub fn drop_deferred_after(&mut self, t: u64) -> usize {
        let Some(list) = self.deferred.as_mut() else { return 0 };
        let keep = list.partition_point(|d| d.due <= t);
        let dropped = list.len() - keep;
        list.truncate(keep);
        if list.is_empty() {
            self.deferred = None;
        }
        dropped
    }

    /// The CPE goes dark (a scenario's outage: powered off or cut off): nothing is planned,
    /// periodic informs included, and deferred work is lost with its power.
    pub fn power_off(&mut self) {
        *self = Agenda::idle();
    }

    /// The CPE powers on at `now` (after an outage, or a power cycle in a reboot wave): it
    /// restarts (`1 BOOT`, uptime from `now`) and informs at `at` (≥ `now`); the engine plans
    /// periodic informs again after that session, as after the first boot.
    pub fn power_on(&mut self, cpe: &mut CpeState, now: u64, at: u64) {
        cpe.restart(UnixMillis(now));
        *self = Agenda::boot_at(at.max(now));
    }

    /// Drops every plan but the periodic one (a one-shot CPE whose session failed is done).
    pub fn clear_work(&mut self) {
        self.start = NEVER;
        self.deferred = None;
    }

    /// Runs a diagnostic test from `now` (a resumed CPE's test that was running when the
    /// simulator stopped), replacing one of its kind.
    pub fn defer_diagnostic(&mut self, run: Box<super::diagnostics::DiagnosticRun>, now: u64) {
        self.cancel_diagnostic(run.kind);
        let due = at(now, run.duration).max(now + FOLLOW_UP_GAP_MS);
        self.defer(due, Work::Diagnostic(run));
    }

    /// Plans the next active value change of generated parameters (`cpe::notify::plan` at
    /// `now`), replacing the one planned before; `None` drops it.
    pub fn set_value_change(&mut self, next: Option<(u64, Box<[crate::model::Loc]>)>, now: u64) {
        if let Some(list) = self.deferred.as_mut() {
            list.retain(|d| !matches!(d.work, Work::ValueChange { .. }));
            if list.is_empty() {
                self.deferred = None;
            }
        }
        if let Some((due, locs)) = next {
            self.defer(due, Work::ValueChange { since: now, locs });
        }
    }

    /// When the value change still waiting for its throttle was planned, if one is.
    pub fn value_change_since(&self) -> Option<u64> {
        self.deferred().iter().find_map(|d| match d.work {
            Work::ValueChange { since, .. } => Some(since),
            _ => None,
        })
    }

    /// Drops the pending diagnostic test of `kind`, if any.
    fn cancel_diagnostic(&mut self, kind: super::diagnostics::DiagnosticKind) {
        let Some(list) = self.deferred.as_mut() else { return };
        list.retain(|d| !matches!(&d.work, Work::Diagnostic(r) if r.kind == kind));
        if list.is_empty() {
            self.deferred = None;
        }
    }

    fn defer(&mut self, due: u64, work: Work) {
        let list = self.deferred.get_or_insert_with(Default::default);
        let pos = list.partition_point(|d| d.due <= due);
        list.insert(pos, Deferred { due, work });
    }
}

/// Whether `cpe` owes the ACS an Inform: undelivered events, or pending TransferComplete
/// reports. Passive value changes alone wait for the next Inform.
pub fn owes_session(cpe: &CpeState) -> bool {
    !cpe.events.is_empty()
}

/// `now + d` in ms, saturating (a duration of any size from outside is safe).
pub fn at(now: u64, d: Duration) -> u64 {
    now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The first time strictly after `now` on the grid `phase + n·period` (ms). `period` 0 is never.
pub fn next_after(now: u64, period: u64, phase: u64) -> u64 {
    if period == 0 {
        return NEVER;
    }
    let phase = phase % period;
    let since = (now as u128 + period as u128 - phase as u128) % period as u128;
    let t = now as u128 + (period as u128 - since);
    u64::try_from(t).unwrap_or(NEVER)
}

/// The first time after `now` on the grid `deadline + n·period` (n ≥ 1): the periodic timer that
/// was due at `deadline` fired at `now` and re-arms one period on, skipping boundaries already
/// past when the engine fell behind.
pub fn next_boundary(deadline: u64, period: u64, now: u64) -> u64 {
    if period == 0 || deadline == NEVER {
        return NEVER;
    }
    let first = deadline.saturating_add(period);
    if first > now {
        return first;
    }
    let behind = (now - first) / period + 1;
    first.saturating_add(behind.saturating_mul(period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpe::periodic::Periodic;
    use crate::cpe::TransferKind;
    use crate::model::DeviceId;

    const T0: u64 = 1_700_000_000_000;

    fn fresh() -> CpeState {
        CpeState::new(DeviceId(1), UnixMillis(T0))
    }

    /// A CPE that bootstrapped and owes nothing.
    fn quiet() -> CpeState {
        let mut c = fresh();
        let sent = c.events.for_inform(0).sent();
        c.events.delivered(sent);
        c
    }

    fn transfer(delay: Duration) -> TransferRequest {
        TransferRequest {
            kind: TransferKind::Download,
            command_key: "dl".into(),
            file_type: "3 Vendor Configuration File".into(),
            url: "http://127.0.0.1/x".into(),
            username: "".into(),
            password: "".into(),
            file_size: 0,
            target_file_name: "".into(),
            delay,
        }
    }

    fn ok(actions: Vec<DeferredAction>) -> SessionEnd {
        SessionEnd { ok: true, actions: actions.into_iter().collect(), retry_in: None }
    }

    fn failed(wait: Duration) -> SessionEnd {
        SessionEnd { ok: false, actions: Default::default(), retry_in: Some(wait) }
    }

    #[test]
    fn boot_starts_a_session_at_its_time_not_before() {
        let (mut a, mut c, mut t) = (Agenda::boot_at(T0 + 100), fresh(), vec![]);
        assert_eq!(a.next_deadline(false), Some(T0 + 100));
        assert_eq!(a.on_timeout(&mut c, T0 + 99, &mut t), None);
        assert_eq!(a.on_timeout(&mut c, T0 + 100, &mut t), Some(SessionReason::Owed));
        // Started: a second call (a duplicate timer) starts nothing.
        assert_eq!(a.on_timeout(&mut c, T0 + 100, &mut t), None);
        assert_eq!(a.next_deadline(false), None);
    }

    #[test]
    fn an_outage_plans_nothing_and_power_on_owes_boot() {
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        a.set_periodic(Some(Periodic { period_ms: 1000, phase_ms: 0 }), T0);
        a.on_session_end(&mut c, ok(vec![DeferredAction::ScheduleInform { delay: Duration::from_secs(5), command_key: "k".into() }]), T0);
        assert!(a.next_deadline(false).is_some());
        a.power_off();
        assert_eq!(a.next_deadline(false), None, "dark: no periodic, no deferred work");
        assert_eq!(a.on_timeout(&mut c, T0 + 10_000, &mut t), None);
        a.power_on(&mut c, T0 + 20_000, T0 + 20_500);
        assert_eq!(c.boot_at, UnixMillis(T0 + 20_000));
        assert_eq!(a.next_deadline(false), Some(T0 + 20_500));
        assert_eq!(a.on_timeout(&mut c, T0 + 20_500, &mut t), Some(SessionReason::Owed));
        assert_eq!(c.events.describe(0), "[1 BOOT]");
        // Never before power comes back.
        a.power_on(&mut c, T0 + 30_000, T0);
        assert_eq!(a.next_deadline(false), Some(T0 + 30_000));
    }

    #[test]
    fn no_session_without_a_reason() {
        // A retry whose events were all delivered (the session failed after its InformResponse).
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        c.retry_count = 1;
        a.on_session_end(&mut c, failed(Duration::from_secs(5)), T0);
        assert_eq!(a.next_deadline(false), Some(T0 + 5000));
        assert_eq!(a.on_timeout(&mut c, T0 + 5000, &mut t), None, "nothing owed: no empty Inform");
        // A Connection Request that failed is dropped (not retried): its retry starts nothing either.
        let (mut a, mut c) = (Agenda::idle(), quiet());
        a.on_wake(&mut c, Wake::ConnectionRequest, T0);
        assert!(a.on_timeout(&mut c, T0, &mut t).is_some());
        let sent = c.events.for_inform(0).sent();
        c.events.undelivered(sent);
        c.retry_count = 1;
        a.on_session_end(&mut c, failed(Duration::from_secs(5)), T0 + 10);
        assert_eq!(a.on_timeout(&mut c, T0 + 10_000, &mut t), None);
    }

    #[test]
    fn connection_request_during_backoff_starts_now() {
        let (mut a, mut c, mut t) = (Agenda::idle(), fresh(), vec![]);
        c.retry_count = 3;
        a.on_session_end(&mut c, failed(Duration::from_secs(40)), T0);
        assert_eq!(a.on_timeout(&mut c, T0 + 1000, &mut t), None);
        a.on_wake(&mut c, Wake::ConnectionRequest, T0 + 1000);
        assert_eq!(a.next_deadline(false), Some(T0 + 1000));
        assert!(a.on_timeout(&mut c, T0 + 1000, &mut t).is_some());
        assert!(c.events.has(EventCode::ConnectionRequest));
        // The old back-off timer is gone: it starts nothing later.
        assert_eq!(a.next_deadline(false), None);
    }

    #[test]
    fn periodic_during_backoff_joins_the_retry() {
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        a.set_periodic(Some(Periodic { period_ms: 1000, phase_ms: 0 }), T0);
        c.events.add(EventCode::Boot);
        c.retry_count = 1;
        a.on_session_end(&mut c, failed(Duration::from_millis(5500)), T0);
        assert_eq!(a.on_timeout(&mut c, T0 + 1000, &mut t), None, "periodic waits for the back-off");
        assert!(c.events.has(EventCode::Periodic));
        assert!(a.on_timeout(&mut c, T0 + 5500, &mut t).is_some());
        assert!(c.events.has(EventCode::Periodic) && c.events.has(EventCode::Boot));
    }

    fn diagnostic(kind: crate::cpe::diagnostics::DiagnosticKind, ms: u64) -> DeferredAction {
        DeferredAction::Diagnostic(Box::new(crate::cpe::diagnostics::DiagnosticRun {
            kind,
            duration: Duration::from_millis(ms),
            state: crate::model::Loc::plain(crate::model::NodeId(1)),
            end_state: "Complete",
            values: Vec::new(),
            times: Vec::new(),
            hops: None,
        }))
    }

    #[test]
    fn a_diagnostic_ends_at_its_time_once_and_a_cancel_or_a_new_request_replaces_it() {
        use crate::cpe::diagnostics::DiagnosticKind::{IpPing, TraceRoute};
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        a.on_session_end(&mut c, ok(vec![diagnostic(IpPing, 5000), diagnostic(TraceRoute, 9000)]), T0);
        assert_eq!(a.next_deadline(false), Some(T0 + 5000));
        assert_eq!(a.on_timeout(&mut c, T0 + 4999, &mut t), None, "never early");
        assert_eq!(a.on_timeout(&mut c, T0 + 5000, &mut t), Some(SessionReason::Diagnostics));
        assert!(c.events.has(EventCode::DiagnosticsComplete));
        c.events = Default::default();
        // A new TraceRoute request replaces the running one; then a cancel drops it.
        a.on_session_end(&mut c, ok(vec![diagnostic(TraceRoute, 60_000)]), T0 + 6000);
        assert_eq!(a.deferred().len(), 1);
        assert_eq!(a.deferred()[0].due, T0 + 66_000);
        assert_eq!(a.on_timeout(&mut c, T0 + 9000, &mut t), None, "the replaced test does not end");
        a.on_session_end(&mut c, ok(vec![DeferredAction::CancelDiagnostic(TraceRoute)]), T0 + 10_000);
        assert!(a.deferred().is_empty());
        assert_eq!(a.on_timeout(&mut c, T0 + 66_000, &mut t), None);
        assert!(!c.events.has(EventCode::DiagnosticsComplete));
    }

    #[test]
    fn deferred_work_runs_at_its_own_time_once() {
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        a.set_periodic(Some(Periodic { period_ms: 10_000_000, phase_ms: 60_000 }), T0);
        let actions = vec![
            DeferredAction::ScheduleInform { delay: Duration::from_secs(3600), command_key: "si".into() },
            DeferredAction::Transfer(transfer(Duration::from_secs(120))),
        ];
        a.on_session_end(&mut c, ok(actions), T0);
        // A periodic session before either is due carries neither.
        let p = next_after(T0, 10_000_000, 60_000);
        assert!(!(T0 + 120_000..=T0 + 3_600_000).contains(&p), "the test needs the periodic boundary away from the deferred work");
        assert_eq!(a.on_timeout(&mut c, p, &mut t), Some(SessionReason::Periodic));
        assert!(t.is_empty() && !c.events.has(EventCode::Scheduled));
        assert_eq!(a.deferred().len(), 2);
        // The transfer at +120 s, exactly once.
        assert_eq!(a.on_timeout(&mut c, T0 + 119_999, &mut t), None);
        assert_eq!(a.on_timeout(&mut c, T0 + 120_000, &mut t), Some(SessionReason::Transfer).or(Some(SessionReason::Periodic)));
        assert_eq!(t.len(), 1);
        t.clear();
        assert_eq!(a.on_timeout(&mut c, T0 + 120_000, &mut t), None);
        assert!(t.is_empty());
        // The ScheduleInform at +3600 s.
        c.events = Default::default();
        assert!(!c.events.has(EventCode::Scheduled));
        let before = T0 + 3_599_999;
        let _ = a.on_timeout(&mut c, before, &mut t);
        assert!(!c.events.has(EventCode::Scheduled));
        assert!(a.on_timeout(&mut c, T0 + 3_600_000, &mut t).is_some());
        assert!(c.events.has(EventCode::Scheduled));
        assert!(a.deferred().is_empty());
    }

    #[test]
    fn an_owed_bootstrap_survives_failures() {
        let (mut a, mut c, mut t) = (Agenda::boot_at(T0), fresh(), vec![]);
        for n in 1..20u16 {
            let now = a.next_deadline(false).expect("a retry is planned");
            assert!(a.on_timeout(&mut c, now, &mut t).is_some());
            let sent = c.events.for_inform(0).sent();
            c.events.undelivered(sent);
            c.retry_count = n;
            a.on_session_end(&mut c, failed(Duration::from_secs(n as u64)), now);
            assert!(c.events.has(EventCode::Bootstrap));
        }
    }

    #[test]
    fn reboot_owes_a_session_now_and_success_with_nothing_owed_plans_none() {
        let (mut a, mut c) = (Agenda::idle(), quiet());
        let e = a.on_session_end(&mut c, ok(vec![DeferredAction::Reboot { command_key: "r".into() }]), T0);
        assert!(e.restarted);
        assert_eq!(a.start(), T0 + FOLLOW_UP_GAP_MS);
        let (mut a, mut c) = (Agenda::idle(), quiet());
        a.on_session_end(&mut c, ok(vec![]), T0);
        assert_eq!(a.next_deadline(false), None);
    }

    #[test]
    fn durations_from_outside_saturate() {
        let (mut a, mut c) = (Agenda::idle(), fresh());
        c.retry_count = 1;
        a.on_session_end(&mut c, failed(Duration::MAX), T0);
        assert_eq!(a.start(), NEVER - 1, "a back-off of any length is still a back-off");
        // A periodic Inform during it joins the retry instead of starting a session.
        a.set_periodic(Some(Periodic { period_ms: 1000, phase_ms: 0 }), T0);
        assert_eq!(a.on_timeout(&mut c, T0 + 1000, &mut vec![]), None);
        let mut a = Agenda::idle();
        a.on_session_end(
            &mut quiet(),
            ok(vec![DeferredAction::ScheduleInform { delay: Duration::from_secs(u64::MAX), command_key: "".into() }]),
            T0,
        );
        assert_eq!(a.deferred()[0].due, NEVER);
        // Periodic intervals up to u32::MAX seconds, at any time.
        let p = Periodic { period_ms: u32::MAX as u64 * 1000, phase_ms: 0 };
        for now in [0, T0, NEVER - 1] {
            a.set_periodic(Some(p), now);
            assert!(a.periodic().0 > now || a.periodic().0 == NEVER);
        }
        assert_eq!(next_boundary(NEVER - 5, 10, NEVER - 1), NEVER);
        assert_eq!(next_after(NEVER - 1, 7, 3), NEVER);
    }

    #[test]
    fn periodic_late_while_in_session_is_not_queued() {
        let (mut a, mut c, mut t) = (Agenda::idle(), quiet(), vec![]);
        a.set_periodic(Some(Periodic { period_ms: 1000, phase_ms: 250 }), T0);
        let first = a.periodic().0;
        assert_eq!(first % 1000, 250);
        assert!(a.on_timeout_in_session(first));
        assert!(!a.on_timeout_in_session(first));
        assert!(!c.events.has(EventCode::Periodic));
        assert_eq!(a.periodic().0, first + 1000);
        assert_eq!(a.on_timeout(&mut c, first + 1000, &mut t), Some(SessionReason::Periodic));
    }

    #[test]
    fn a_one_shot_run_drops_work_due_too_late() {
        let mut a = Agenda::idle();
        let actions = vec![
            DeferredAction::ScheduleInform { delay: Duration::from_secs(60), command_key: "soon".into() },
            DeferredAction::ScheduleInform { delay: Duration::from_secs(u32::MAX as u64), command_key: "far".into() },
        ];
        a.on_session_end(&mut quiet(), ok(actions), T0);
        assert_eq!(a.drop_deferred_after(T0 + 86_400_000), 1);
        assert_eq!(a.deferred().len(), 1);
        assert_eq!(a.drop_deferred_after(T0), 1);
        assert!(a.deferred().is_empty() && a.next_deadline(false).is_none());
    }

    #[test]
    fn grids() {
        assert_eq!(next_boundary(100, 10, 100), 110);
        assert_eq!(next_boundary(100, 10, 105), 110);
        assert_eq!(next_boundary(100, 10, 110), 120);
        assert_eq!(next_boundary(100, 10, 135), 140);
        assert_eq!(next_boundary(0, 1, 0), 1);
        assert_eq!(next_after(100, 10, 0), 110);
        assert_eq!(next_after(105, 10, 3), 113);
        assert_eq!(next_after(103, 10, 3), 113);
        assert_eq!(next_after(5, 10, 13), 13);
        assert_eq!(next_after(5, 0, 0), NEVER);
    }
}

/// The agenda against a plain reference model over random event sequences.
#[cfg(test)]
mod model_check {
    use super::*;
    use crate::cpe::TransferKind;
    use crate::model::DeviceId;
    use proptest::prelude::*;

    const T0: u64 = 1_800_000_000_000;

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        Wake(bool),
        /// A session runs if one is due; `ok`, plus a ScheduleInform/transfer delay in s, a reboot.
        End {
            ok: bool,
            schedule: Option<u64>,
            transfer: Option<u64>,
            reboot: bool,
            retry_s: u64,
        },
        Periodic(Option<(u64, u64)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..200_000).prop_map(Op::Advance),
            1 => any::<bool>().prop_map(Op::Wake),
            3 => (any::<bool>(), proptest::option::of(0u64..300), proptest::option::of(0u64..300), any::<bool>(), 0u64..100)
                .prop_map(|(ok, schedule, transfer, reboot, retry_s)| Op::End { ok, schedule, transfer, reboot, retry_s }),
            1 => proptest::option::of((1u64..120_000, 0u64..120_000)).prop_map(Op::Periodic),
        ]
    }

    /// The reference: every piece of deferred work with its due time, by a unique key.
    #[derive(Default)]
    struct Reference {
        pending: Vec<(u64, String)>,
        done: Vec<String>,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn agenda_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..60)) {
            let mut a = Agenda::boot_at(T0);
            let mut cpe = CpeState::new(DeviceId(7), UnixMillis(T0));
            let mut now = T0;
            let mut reference = Reference::default();
            let mut in_session = false;
            let mut key = 0u32;
            for op in ops {
                match op {
                    Op::Advance(dt) => {
                        let target = now + dt;
                        // Fire every deadline up to target, in order, as the engine does.
                        while let Some(t) = a.next_deadline(in_session).filter(|t| *t <= target) {
                            now = now.max(t);
                            if in_session {
                                prop_assert!(a.on_timeout_in_session(now));
                                continue;
                            }
                            let mut transfers = Vec::new();
                            let scheduled_before = cpe.events.has(EventCode::Scheduled);
                            let started = a.on_timeout(&mut cpe, now, &mut transfers);
                            for tr in &transfers {
                                let i = reference.pending.iter().position(|(_, k)| **k == *tr.command_key);
                                prop_assert!(i.is_some(), "a transfer ran twice or was never asked for");
                                let (due, k) = reference.pending.remove(i.unwrap());
                                prop_assert!(due <= now, "transfer ran early: due {} now {}", due, now);
                                reference.done.push(k);
                            }
                            if cpe.events.has(EventCode::Scheduled) && !scheduled_before {
                                let i = reference.pending.iter().position(|(d, k)| k.starts_with('s') && *d <= now);
                                prop_assert!(i.is_some(), "a ScheduleInform fired early");
                            }
                            reference.pending.retain(|(d, k)| !(k.starts_with('s') && *d <= now));
                            if started.is_some() {
                                prop_assert!(owes_session(&cpe) || !transfers.is_empty(), "a session without a reason");
                                in_session = true;
                            }
                            // Nothing due is left behind (no spinning on a stale deadline).
                            prop_assert!(in_session || a.next_deadline(false).is_none_or(|t| t > now));
                        }
                        now = target;
                    }
                    Op::Wake(cr) => {
                        if !in_session {
                            a.on_wake(&mut cpe, if cr { Wake::ConnectionRequest } else { Wake::ValueChange }, now);
                            prop_assert!(a.next_deadline(false).unwrap() <= now, "a wake starts a session now");
                        }
                    }
                    Op::End { ok, schedule, transfer, reboot, retry_s } => {
                        if !in_session {
                            continue;
                        }
                        in_session = false;
                        let sent = cpe.events.for_inform(0).sent();
                        if ok { cpe.events.delivered(sent); cpe.retry_count = 0; } else { cpe.events.undelivered(sent); cpe.retry_count += 1; }
                        let mut actions = Vec::new();
                        if let Some(s) = schedule {
                            key += 1;
                            let k = format!("s{key}");
                            reference.pending.push((now + s * 1000, k.clone()));
                            actions.push(DeferredAction::ScheduleInform { delay: Duration::from_secs(s), command_key: k.into() });
                        }
                        if let Some(s) = transfer {
                            key += 1;
                            let k = format!("t{key}");
                            reference.pending.push((now + s * 1000, k.clone()));
                            actions.push(DeferredAction::Transfer(TransferRequest {
                                kind: TransferKind::Download, command_key: k.into(), file_type: "".into(), url: "".into(),
                                username: "".into(), password: "".into(), file_size: 0, target_file_name: "".into(),
                                delay: Duration::from_secs(s),
                            }));
                        }
                        if reboot {
                            actions.push(DeferredAction::Reboot { command_key: "r".into() });
                        }
                        a.on_session_end(&mut cpe, SessionEnd { ok, actions: actions.into_iter().collect(), retry_in: Some(Duration::from_secs(retry_s)) }, now);
                        if ok && owes_session(&cpe) {
                            prop_assert_eq!(a.start(), now + FOLLOW_UP_GAP_MS, "a session owed after success follows at once");
                        }
                    }
                    Op::Periodic(p) => a.set_periodic(p.map(|(period_ms, phase_ms)| crate::cpe::periodic::Periodic { period_ms, phase_ms }), now),
                }
            }
            // Everything deferred is either done or still on the agenda, never lost.
            for (_, k) in &reference.pending {
                if k.starts_with('t') {
                    prop_assert!(a.deferred().iter().any(|d| matches!(&d.work, Work::Transfer(t) if *t.command_key == **k)), "lost transfer {}", k);
                }
            }
        }
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn an_agenda_is_32_bytes() {
        assert_eq!(std::mem::size_of::<super::Agenda>(), 32);
    }
}
