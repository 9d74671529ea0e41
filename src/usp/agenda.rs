//! What happens next to one USP Agent, and when: its agenda (sans-IO, no clock).
//!
//! The USP twin of `cpe::agenda`, shaped the same way (quinn-proto style): the MTP loop asks
//! [`Agenda::next_deadline`], sleeps on the run's clock until then, and calls
//! [`Agenda::on_timeout`] until it returns `None`, acting on each [`Due`]; it tells the agenda
//! what happened on the connection ([`Agenda::on_connected`], [`Agenda::on_lost`]) and to the
//! Notifies ([`Agenda::on_notify_sent`], [`Agenda::on_notify_answered`]). Times are milliseconds
//! since the Unix epoch (`u64`); every sum saturates, so no duration from outside overflows,
//! wraps to "now" or panics.
//!
//! Owns every timer an Agent has:
//! - when to connect: the boot offset, then after a lost connection at once (100 ms) or, after a
//!   failure, TR-369's ConnectRetryTime back-off (`cpe::retry`, the law of CWMP's retries);
//! - `Periodic!` (`--inform-interval`), on the grid `boot + n·period` to the millisecond;
//! - each unanswered Notify's retransmission after the Notify timeout, and its give-up after
//!   [`NOTIFY_RETRIES`] (TR-369 §"Responses to Notifications and Notification Retry");
//! - each asynchronous operation's completion.
//!
//! Invariants (each tested below and property-tested against a plain model): a stale or early
//! timeout does nothing; a retransmission never comes early, twice for one timeout, or after its
//! answer; `Periodic!` never comes early nor twice in one period; only the connect timer runs
//! while the Agent is not connected (Notifies go again on the next connection, a `Periodic!` or
//! an operation due meanwhile comes right after it).

use std::time::Duration;

use crate::cpe::agenda::{at, next_after, next_boundary, NEVER};
use crate::model::identity::mix64;

/// How many times an unanswered Notify is sent again before it counts as unanswered
/// (`Device.LocalAgent.Subscription.{i}.NotifRetry` behaviour, TR-369 §"Responses to
/// Notifications and Notification Retry").
pub const NOTIFY_RETRIES: u8 = 3;

/// How long after a connection the Agent itself closed (Reboot, FactoryReset) it connects again.
pub const RESTART_GAP_MS: u64 = 100;

/// The longest reconnect back-off wait, whatever the attempt.
pub const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(60);

/// What came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Open the connection now (boot, or the end of a reconnect wait).
    Connect,
    /// Send `Periodic!`.
    Periodic,
    /// Send the Notify with this Message ID again (same ID).
    Resend(Box<str>),
    /// The Notify with this Message ID was sent `1 + NOTIFY_RETRIES` times unanswered: give up.
    GiveUp(Box<str>),
    /// The asynchronous operation with this token (from [`Agenda::on_operation`]) has ended.
    OperationDone(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Waiting to connect at `connect_at`.
    Waiting,
    /// Connecting: no timer until `on_connected` or `on_lost`.
    Connecting,
    Connected,
}

/// A Notify waiting for its NotifyResp.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unanswered {
    msg_id: Box<str>,
    /// When it goes again (or is given up), while connected.
    due: u64,
    retries: u8,
    /// NotifExpiration: given up (not resent) at the first resend due at or after this, or
    /// [`NEVER`].
    expires: u64,
}

/// One Agent's timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agenda {
    /// The Agent's index (spreads its reconnect waits from other Agents').
    index: u32,
    notify_timeout_ms: u64,
    link: Link,
    connect_at: u64,
    /// Consecutive failed connections (the back-off's attempt).
    attempt: u32,
    /// The next `Periodic!`, or [`NEVER`].
    periodic_at: u64,
    /// Its period in ms (0 when off).
    period: u64,
    unanswered: Vec<Unanswered>,
    /// Asynchronous operations: (due, token).
    operations: Vec<(u64, u64)>,
    next_token: u64,
}

impl Agenda {
    /// Agent `index` that powers on and connects at `boot_at` (ms), Notifies waiting
    /// `notify_timeout` for their answer, and `Periodic!` every `periodic` from `boot_at` on.
    /// A zero period is off; any duration saturates.
    pub fn new(index: u32, boot_at: u64, notify_timeout: Duration, periodic: Option<Duration>) -> Agenda {
        let period = periodic.map_or(0, |p| at(0, p));
        Agenda {
            index,
            notify_timeout_ms: at(0, notify_timeout),
            link: Link::Waiting,
            connect_at: boot_at,
            attempt: 0,
            // The grid boot + n·period, n ≥ 1 (next_after saturates to NEVER).
            periodic_at: if period == 0 { NEVER } else { next_after(boot_at, period, boot_at % period) },
            period,
            unanswered: Vec::new(),
            operations: Vec::new(),
            next_token: 0,
        }
    }

    /// The earliest time something is due, or `None` (while connecting, or nothing planned).
    pub fn next_deadline(&self) -> Option<u64> {
        let t = match self.link {
            Link::Waiting => self.connect_at,
            Link::Connecting => NEVER,
            Link::Connected => {
                let resend = self.unanswered.iter().map(|u| u.due).min().unwrap_or(NEVER);
                let op = self.operations.iter().map(|o| o.0).min().unwrap_or(NEVER);
                self.periodic_at.min(resend).min(op)
            }
        };
        (t != NEVER).then_some(t)
    }

    /// The timer fired at `now`: the first thing due, or `None` when nothing is (an early or stale
    /// call changes nothing). Call again until `None`: retransmissions first, then operations,
    /// then `Periodic!`.
    pub fn on_timeout(&mut self, now: u64) -> Option<Due> {
        match self.link {
            Link::Waiting if self.connect_at <= now => {
                self.link = Link::Connecting;
                self.connect_at = NEVER;
                Some(Due::Connect)
            }
            Link::Waiting | Link::Connecting => None,
            Link::Connected => {
                if let Some(i) = first_due(self.unanswered.iter().map(|u| u.due), now) {
                    let u = &mut self.unanswered[i];
                    if u.retries >= NOTIFY_RETRIES || now >= u.expires {
                        return Some(Due::GiveUp(self.unanswered.remove(i).msg_id));
                    }
                    u.retries += 1;
                    u.due = at(now, Duration::from_millis(self.notify_timeout_ms));
                    return Some(Due::Resend(u.msg_id.clone()));
                }
                if let Some(i) = first_due(self.operations.iter().map(|o| o.0), now) {
                    return Some(Due::OperationDone(self.operations.remove(i).1));
                }
                if self.periodic_at <= now {
                    self.periodic_at = next_boundary(self.periodic_at, self.period, now);
                    return Some(Due::Periodic);
                }
                None
            }
        }
    }

    /// The connection is up at `now`: the back-off starts over, and every unanswered Notify
    /// (which the caller sends again on the new connection) waits a full timeout from now.
    pub fn on_connected(&mut self, now: u64) {
        self.link = Link::Connected;
        self.attempt = 0;
        let due = at(now, Duration::from_millis(self.notify_timeout_ms));
        for u in &mut self.unanswered {
            u.due = due;
        }
    }

    /// The connection ended at `now` (or could not be opened): connect again after
    /// [`RESTART_GAP_MS`] when the Agent closed it itself (`failed` false), else after the
    /// back-off: ConnectRetryTime 5 s × ConnectRetryIntervalMultiplier 2000 for this attempt
    /// (`cpe::retry::retry_wait`), spread per Agent and attempt, at most [`MAX_RECONNECT_WAIT`].
    /// Returns the wait.
    pub fn on_lost(&mut self, now: u64, failed: bool) -> Duration {
        self.link = Link::Waiting;
        let wait = if failed {
            self.attempt = self.attempt.saturating_add(1);
            let unit = (mix64(((self.index as u64) << 32) | self.attempt as u64) >> 11) as f64 / (1u64 << 53) as f64;
            crate::cpe::retry::retry_wait(Duration::from_secs(5), 2000, self.attempt, unit).min(MAX_RECONNECT_WAIT)
        } else {
            Duration::from_millis(RESTART_GAP_MS)
        };
        self.connect_at = at(now, wait);
        wait
    }

    /// A Notify with Message ID `msg_id` went out at `now` for the first time: it goes again
    /// after the timeout unless answered, and not at or after `expires` (its subscription's
    /// NotifExpiration, ms; `None`: only the retry count ends it). An ID already waiting starts
    /// over.
    pub fn on_notify_sent(&mut self, msg_id: &str, now: u64, expires: Option<u64>) {
        self.unanswered.retain(|u| &*u.msg_id != msg_id);
        let due = at(now, Duration::from_millis(self.notify_timeout_ms));
        self.unanswered.push(Unanswered { msg_id: msg_id.into(), due, retries: 0, expires: expires.unwrap_or(NEVER) });
    }

    /// `Periodic!` from now on every `period` (the Controller's PeriodicNotifInterval as it is
    /// after the one sent at `now`): an unchanged period keeps its grid; another starts a grid at
    /// `now` (the next one `period` after it). A zero period turns it off.
    pub fn set_period(&mut self, period: Duration, now: u64) {
        let period = at(0, period);
        if period == self.period {
            return;
        }
        self.period = period;
        self.periodic_at = if period == 0 { NEVER } else { next_after(now, period, now % period) };
    }

    /// The NotifyResp for `msg_id` came: no more retransmissions. False when it was not waiting
    /// (already given up, or never sent).
    pub fn on_notify_answered(&mut self, msg_id: &str) -> bool {
        let before = self.unanswered.len();
        self.unanswered.retain(|u| &*u.msg_id != msg_id);
        self.unanswered.len() < before
    }

    /// An asynchronous operation accepted at `now` ends after `takes`: its token, returned by
    /// [`Due::OperationDone`] then.
    pub fn on_operation(&mut self, now: u64, takes: Duration) -> u64 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1);
        self.operations.push((at(now, takes), token));
        token
    }

    /// The Notifies waiting for their answer.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// The next `Periodic!` ([`NEVER`] when off) and the period in ms.
    pub fn periodic(&self) -> (u64, u64) {
        (self.periodic_at, self.period)
    }
}

/// The index of the earliest of `dues` that is `<= now` (ties: the first).
fn first_due(dues: impl Iterator<Item = u64>, now: u64) -> Option<usize> {
    dues.enumerate().filter(|(_, d)| *d <= now).min_by_key(|(i, d)| (*d, *i)).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;
    const T: Duration = Duration::from_secs(30);

    fn connected(periodic: Option<Duration>) -> Agenda {
        let mut a = Agenda::new(1, T0, T, periodic);
        assert_eq!(a.on_timeout(T0), Some(Due::Connect));
        a.on_connected(T0);
        a
    }

    fn drain(a: &mut Agenda, now: u64) -> Vec<Due> {
        std::iter::from_fn(|| a.on_timeout(now)).collect()
    }

    #[test]
    fn connects_at_its_boot_time_not_before_and_once() {
        let mut a = Agenda::new(3, T0 + 500, T, None);
        assert_eq!(a.next_deadline(), Some(T0 + 500));
        assert_eq!(a.on_timeout(T0 + 499), None);
        assert_eq!(a.on_timeout(T0 + 500), Some(Due::Connect));
        assert_eq!(a.on_timeout(T0 + 500), None, "a stale timeout does nothing");
        assert_eq!(a.next_deadline(), None, "nothing while connecting");
    }

    #[test]
    fn reconnects_with_the_back_off_and_at_once_after_a_restart() {
        let mut a = Agenda::new(3, T0, T, None);
        a.on_timeout(T0);
        let w1 = a.on_lost(T0, true);
        assert!((5..=10).contains(&w1.as_secs()), "{w1:?}");
        assert_eq!(a.next_deadline(), Some(T0 + w1.as_millis() as u64));
        a.on_timeout(T0 + w1.as_millis() as u64);
        let w2 = a.on_lost(T0, true);
        assert!((10..=20).contains(&w2.as_secs()), "{w2:?}");
        for _ in 0..20 {
            a.on_timeout(NEVER - 1);
            assert!(a.on_lost(T0, true) <= MAX_RECONNECT_WAIT);
        }
        a.on_timeout(NEVER - 1);
        a.on_connected(T0);
        assert_eq!(a.on_lost(T0, false), Duration::from_millis(RESTART_GAP_MS));
        a.on_timeout(T0 + RESTART_GAP_MS);
        assert_eq!(a.on_lost(T0, true).as_secs() / 5, 1, "a connection resets the back-off");
    }

    #[test]
    fn a_notify_is_resent_after_each_timeout_then_given_up() {
        let mut a = connected(None);
        a.on_notify_sent("n1", T0 + 10, None);
        let t = T.as_millis() as u64;
        assert_eq!(a.next_deadline(), Some(T0 + 10 + t));
        assert_eq!(drain(&mut a, T0 + 9 + t), vec![], "never early");
        for k in 1..=NOTIFY_RETRIES as u64 {
            assert_eq!(drain(&mut a, T0 + 10 + k * t), vec![Due::Resend("n1".into())], "retry {k}");
            assert_eq!(drain(&mut a, T0 + 10 + k * t), vec![], "never twice");
        }
        assert_eq!(drain(&mut a, T0 + 10 + 4 * t), vec![Due::GiveUp("n1".into())]);
        assert_eq!(a.unanswered(), 0);
        assert!(!a.on_notify_answered("n1"), "a late answer finds nothing");
    }

    #[test]
    fn notif_expiration_ends_the_resends() {
        let t = T.as_millis() as u64;
        let mut a = connected(None);
        // Expires between the first and second resend: one resend, then given up.
        a.on_notify_sent("n1", T0, Some(T0 + t + 1));
        assert_eq!(drain(&mut a, T0 + t), vec![Due::Resend("n1".into())]);
        assert_eq!(drain(&mut a, T0 + 2 * t), vec![Due::GiveUp("n1".into())]);
        // Already expired when its first resend comes: given up, never resent.
        a.on_notify_sent("n2", T0, Some(T0));
        assert_eq!(a.next_deadline(), Some(T0 + t), "not given up before its timeout");
        assert_eq!(drain(&mut a, T0 + t), vec![Due::GiveUp("n2".into())]);
        assert_eq!(a.unanswered(), 0);
    }

    #[test]
    fn a_new_period_starts_its_grid_at_the_periodic_just_sent() {
        let mut a = connected(Some(Duration::from_secs(60)));
        assert_eq!(drain(&mut a, T0 + 60_000), vec![Due::Periodic]);
        a.set_period(Duration::from_secs(60), T0 + 60_000);
        assert_eq!(a.periodic().0, T0 + 120_000, "an unchanged period keeps its grid");
        a.set_period(Duration::from_secs(10), T0 + 60_000);
        assert_eq!(a.periodic(), (T0 + 70_000, 10_000));
        assert_eq!(drain(&mut a, T0 + 69_999), vec![]);
        assert_eq!(drain(&mut a, T0 + 70_000), vec![Due::Periodic]);
        a.set_period(Duration::ZERO, T0 + 70_000);
        assert_eq!(a.periodic(), (NEVER, 0), "zero turns it off");
        a.set_period(Duration::from_secs(u64::MAX), T0);
        assert_eq!(a.periodic().0, NEVER, "a huge period saturates");
    }

    #[test]
    fn an_answered_notify_is_never_resent() {
        let mut a = connected(None);
        a.on_notify_sent("n1", T0, None);
        a.on_notify_sent("n2", T0, None);
        assert!(a.on_notify_answered("n1"));
        assert_eq!(drain(&mut a, T0 + T.as_millis() as u64), vec![Due::Resend("n2".into())]);
    }

    #[test]
    fn only_the_connect_timer_runs_while_not_connected() {
        let mut a = connected(Some(Duration::from_secs(60)));
        a.on_notify_sent("n1", T0, None);
        a.on_operation(T0, Duration::from_secs(1));
        let wait = a.on_lost(T0 + 5, true).as_millis() as u64;
        assert_eq!(a.next_deadline(), Some(T0 + 5 + wait));
        assert_eq!(drain(&mut a, T0 + 5 + wait), vec![Due::Connect]);
        let back = T0 + 200_000;
        a.on_connected(back);
        // Overdue: the operation and Periodic! come at once; the Notify waits a timeout anew.
        assert_eq!(drain(&mut a, back), vec![Due::OperationDone(0), Due::Periodic]);
        assert_eq!(a.next_deadline(), Some(back + T.as_millis() as u64));
    }

    #[test]
    fn periodic_keeps_its_grid_and_never_comes_twice_per_period() {
        let mut a = connected(Some(Duration::from_millis(60_250)));
        assert_eq!(a.next_deadline(), Some(T0 + 60_250));
        assert_eq!(drain(&mut a, T0 + 60_249), vec![]);
        assert_eq!(drain(&mut a, T0 + 60_260), vec![Due::Periodic]);
        assert_eq!(drain(&mut a, T0 + 60_260), vec![]);
        assert_eq!(a.periodic().0, T0 + 120_500, "the sub-second phase is kept");
        // Far behind: one Periodic!, then the next boundary after now.
        assert_eq!(drain(&mut a, T0 + 1_000_000), vec![Due::Periodic]);
        assert_eq!(a.periodic().0, T0 + 17 * 60_250);
    }

    #[test]
    fn an_operation_ends_at_its_time_once() {
        let mut a = connected(None);
        let k = a.on_operation(T0 + 1, Duration::from_secs(2));
        assert_eq!(drain(&mut a, T0 + 2000), vec![]);
        assert_eq!(drain(&mut a, T0 + 2001), vec![Due::OperationDone(k)]);
        assert_eq!(drain(&mut a, T0 + 9999), vec![]);
    }

    #[test]
    fn durations_from_outside_saturate() {
        let huge = Duration::from_secs(u64::MAX);
        let mut a = Agenda::new(u32::MAX, NEVER - 1, huge, Some(Duration::from_secs(u32::MAX as u64)));
        assert_eq!(a.on_timeout(NEVER - 1), Some(Due::Connect));
        a.on_connected(NEVER - 1);
        a.on_notify_sent("n", NEVER - 1, None);
        a.on_operation(NEVER - 1, huge);
        assert_eq!(a.next_deadline(), None, "everything saturates to never");
        assert_eq!(drain(&mut a, NEVER - 1), vec![]);
        let mut b = connected(Some(Duration::from_secs(u32::MAX as u64)));
        assert_eq!(b.periodic().0, T0 + u32::MAX as u64 * 1000);
        assert_eq!(Agenda::new(0, T0, T, Some(Duration::ZERO)).periodic(), (NEVER, 0), "a zero period is off");
        assert!(b.on_lost(NEVER, true) <= MAX_RECONNECT_WAIT);
        assert_eq!(b.next_deadline(), None, "a reconnect past the end of time is never");
    }
}

/// The agenda against a plain reference model over random event sequences.
#[cfg(test)]
mod model_check {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_800_000_000_000;

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        /// An early or stale timer: `on_timeout` at the current time, whatever is planned.
        Poke,
        /// The connection attempt ends (true: up) or the connection is lost (failed or not).
        Link(bool, bool),
        /// A Notify goes out, with a NotifExpiration this many ms later, or none.
        Send(Option<u64>),
        /// The answer to the Notify sent k-th from last.
        Answer(usize),
        Operation(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..100_000).prop_map(Op::Advance),
            1 => Just(Op::Poke),
            2 => (any::<bool>(), any::<bool>()).prop_map(|(up, failed)| Op::Link(up, failed)),
            2 => proptest::option::of(0u64..200_000).prop_map(Op::Send),
            2 => (0usize..4).prop_map(Op::Answer),
            1 => (0u64..50_000).prop_map(Op::Operation),
        ]
    }

    /// The reference: each Notify's last send time, retries, and whether it is still waiting.
    #[derive(Debug)]
    struct Notify {
        id: String,
        last: u64,
        retries: u8,
        waiting: bool,
        expires: Option<u64>,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn agenda_keeps_its_invariants(
            ops in proptest::collection::vec(op(), 1..80),
            timeout_ms in 1u64..60_000,
            period in proptest::option::of(1u64..90_000),
        ) {
            let mut a = Agenda::new(9, T0, Duration::from_millis(timeout_ms), period.map(Duration::from_millis));
            let mut now = T0;
            let mut up = false;
            let mut connecting = false;
            let mut notifies: Vec<Notify> = Vec::new();
            let mut ops_due: Vec<(u64, u64)> = Vec::new();
            let mut periodic_next = period.map(|p| T0 + p);
            let mut connect_at = Some(T0);
            let check = |a: &mut Agenda, now: u64, notifies: &mut Vec<Notify>, ops_due: &mut Vec<(u64, u64)>,
                             periodic_next: &mut Option<u64>, connecting: &mut bool, connect_at: &mut Option<u64>, up: bool|
             -> Result<(), TestCaseError> {
                while let Some(due) = a.on_timeout(now) {
                    match due {
                        Due::Connect => {
                            prop_assert!(!up && connect_at.is_some_and(|t| t <= now), "connect early or twice");
                            *connect_at = None;
                            *connecting = true;
                        }
                        Due::Resend(id) | Due::GiveUp(id) if !up => prop_assert!(false, "{} while not connected", id),
                        Due::Resend(id) => {
                            let n = notifies.iter_mut().find(|n| *n.id == *id && n.waiting);
                            prop_assert!(n.is_some(), "resent after its answer or give-up: {}", id);
                            let n = n.unwrap();
                            prop_assert!(now >= n.last + timeout_ms, "resent early: {} last {} now {}", id, n.last, now);
                            prop_assert!(n.retries < NOTIFY_RETRIES);
                            prop_assert!(n.expires.is_none_or(|e| now < e), "resent after its NotifExpiration: {}", id);
                            n.retries += 1;
                            n.last = now;
                        }
                        Due::GiveUp(id) => {
                            let n = notifies.iter_mut().find(|n| *n.id == *id && n.waiting);
                            prop_assert!(n.is_some(), "given up twice or after its answer: {}", id);
                            let n = n.unwrap();
                            let expired = n.expires.is_some_and(|e| now >= e);
                            prop_assert!(now >= n.last + timeout_ms && (n.retries == NOTIFY_RETRIES || expired), "given up early");
                            n.waiting = false;
                        }
                        Due::OperationDone(k) => {
                            prop_assert!(up);
                            let i = ops_due.iter().position(|o| o.1 == k);
                            prop_assert!(i.is_some(), "an operation ended twice");
                            let (d, _) = ops_due.remove(i.unwrap());
                            prop_assert!(d <= now, "an operation ended early");
                        }
                        Due::Periodic => {
                            prop_assert!(up);
                            let p = period.unwrap();
                            let next = periodic_next.unwrap();
                            prop_assert!(next <= now, "Periodic! early: due {} now {}", next, now);
                            // The next boundary of the grid T0 + n·p strictly after now.
                            *periodic_next = Some(T0 + ((now - T0) / p + 1) * p);
                        }
                    }
                }
                // Nothing due is left behind (no spinning on a stale deadline).
                prop_assert!(a.next_deadline().is_none_or(|t| t > now));
                Ok(())
            };
            let mut sent = 0u32;
            for op in ops {
                match op {
                    Op::Advance(dt) => {
                        let target = now + dt;
                        while let Some(t) = a.next_deadline().filter(|t| *t <= target) {
                            now = now.max(t);
                            check(&mut a, now, &mut notifies, &mut ops_due, &mut periodic_next, &mut connecting, &mut connect_at, up)?;
                        }
                        now = target;
                    }
                    Op::Poke => check(&mut a, now, &mut notifies, &mut ops_due, &mut periodic_next, &mut connecting, &mut connect_at, up)?,
                    Op::Link(ok, failed) => {
                        if connecting && ok {
                            a.on_connected(now);
                            connecting = false;
                            up = true;
                            for n in notifies.iter_mut().filter(|n| n.waiting) {
                                n.last = now;
                            }
                        } else if connecting || up {
                            let wait = a.on_lost(now, failed || connecting);
                            connecting = false;
                            up = false;
                            connect_at = Some(now + wait.as_millis() as u64);
                            prop_assert_eq!(a.next_deadline(), connect_at);
                        }
                    }
                    Op::Send(expiry) => {
                        sent += 1;
                        let id = format!("m{sent}");
                        let expires = expiry.map(|e| now + e);
                        a.on_notify_sent(&id, now, expires);
                        notifies.push(Notify { id, last: now, retries: 0, waiting: true, expires });
                    }
                    Op::Answer(k) => {
                        if let Some(n) = notifies.iter_mut().rev().nth(k) {
                            prop_assert_eq!(a.on_notify_answered(&n.id), n.waiting);
                            n.waiting = false;
                        }
                    }
                    Op::Operation(ms) => {
                        let k = a.on_operation(now, Duration::from_millis(ms));
                        ops_due.push((now + ms, k));
                    }
                }
            }
            prop_assert_eq!(a.unanswered(), notifies.iter().filter(|n| n.waiting).count());
        }
    }
}
