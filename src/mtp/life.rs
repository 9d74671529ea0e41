//! One Agent's life across connections, whatever the MTP: its `usp::Agent`, the Boot! it owes,
//! the Notifies its subscriptions ask for (`usp::subscription::notifies` decides; those with
//! NotifRetry wait for their NotifyResp, retransmitted after `--timeout`, given up after
//! [`NOTIFY_RETRIES`] or at NotifExpiration), asynchronous commands, `Periodic!`, the device state API's messages and
//! `--state-dir` snapshots. The MTP loops (`agent` for MQTT, `ws` for WebSocket) own the socket
//! and hand Records in; Records go out through an [`Outbox`].
//!
//! Every timer (when to connect, retransmissions, operations, `Periodic!`) is the Agent's
//! [`Agenda`]'s; the loops sleep until its next deadline on the run's [`Clock`]
//! ([`Life::wait_to_connect`], [`Life::sleep_until_due`]), so a run in virtual time
//! (`Clock::manual`) schedules exactly as a real one. Life reads the time only from that clock;
//! the latencies it reports (round trips, time to answer) are measured on the monotonic
//! stopwatch, since the I/O is real even when the schedule is virtual.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::mqtt::ClientSettings;
use super::report::{AgentFigures, ConnFailure};
use crate::cpe::CpeState;
use crate::engine::clock::Clock;
use crate::model::{DeviceId, Model};
use crate::owners::{answer, CpeMsg};
use crate::persist::StateSink;
use crate::time::UnixMillis;
pub use crate::usp::agenda::NOTIFY_RETRIES;
use crate::usp::agenda::{Agenda, Due};
use crate::usp::defaults;
use crate::usp::notify::BootCause;
use crate::usp::operate::{Accepted, Command, SELF_TEST_TIME};
use crate::usp::subscription::{self, Event};
use crate::usp::{Agent, EndpointTemplate, MsgKind};

/// Where the run's Agents connect.
#[derive(Clone)]
pub enum Transport {
    /// An MQTT broker (one connection per Agent).
    Mqtt(ClientSettings),
    /// A Controller's WebSocket URL (`v1.usp` subprotocol), with the connect timeout and, for
    /// `wss://`, the rustls configuration (the CWMP side's: CA file, skip-verify, mTLS).
    WebSocket { url: String, connect_timeout: Duration, tls: Option<Arc<rustls::ClientConfig>> },
}

/// What every Agent task of a run shares.
pub struct Shared {
    pub model: Arc<Model>,
    pub transport: Transport,
    pub endpoints: EndpointTemplate,
    /// The Controller every Agent reports to, and (MQTT) its topic.
    pub controller_id: String,
    pub controller_topic: String,
    /// How long a Notify waits for its NotifyResp before it is sent again.
    pub notify_timeout: Duration,
    /// `Periodic!` every this long (`--inform-interval`), if at all.
    pub periodic: Option<Duration>,
    pub figures: Mutex<AgentFigures>,
    /// `--state-dir`: where an Agent's state goes after every change.
    pub sink: Option<StateSink>,
    /// The run's clock: every Agent's timers and the times it tells the Controller.
    pub clock: Clock,
}

impl Shared {
    pub fn figures(&self) -> std::sync::MutexGuard<'_, AgentFigures> {
        // A poisoned lock only means another task panicked mid-update: counters stay usable.
        self.figures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where an outgoing Record goes.
#[derive(Debug, Clone, Copy)]
pub enum To<'a> {
    /// The run's Controller (Notifies).
    Controller,
    /// The sender of a request: its endpoint ID and, over MQTT 5, the Response Topic it gave.
    Reply { to_id: &'a str, reply_topic: Option<&'a str> },
}

/// The send side of an MTP connection.
pub trait Outbox {
    /// Queues `record`; false when it could not be queued (counted as `publish_failed`).
    fn send(&mut self, record: Vec<u8>, to: To<'_>) -> bool;
}

/// A Notify waiting for its NotifyResp (its timers are the agenda's).
struct Pending {
    what: &'static str,
    record: Vec<u8>,
    /// The round trip's stopwatch.
    first_sent_at: Instant,
    /// The Agent's first Boot! (counts the Agent as booted when answered).
    first_boot: bool,
}

/// Which notification a Notify is, as the report names it.
pub fn notify_name(n: &rusp_lib::usp::Notify) -> &'static str {
    use rusp_lib::usp::mod_Notify::OneOfnotification as N;
    match &n.notification {
        N::event(e) if e.event_name == "Boot!" => "Boot!",
        N::event(e) if e.event_name == "Periodic!" => "Periodic!",
        N::event(_) => "Event",
        N::value_change(_) => "ValueChange",
        N::obj_creation(_) => "ObjectCreation",
        N::obj_deletion(_) => "ObjectDeletion",
        N::oper_complete(_) => "OperationComplete",
        N::on_board_req(_) => "OnBoardRequest",
        N::None => "None",
    }
}

/// One Agent across its connections.
pub struct Life {
    pub shared: Arc<Shared>,
    pub index: u32,
    pub agent: Agent,
    /// The Boot! to send once connected, with its cause and command key.
    boot_owed: Option<(BootCause, String)>,
    first_boot: bool,
    /// The Agent has been counted as booted (once, whatever number of Boot! subscriptions).
    counted_booted: bool,
    pending: HashMap<String, Pending>,
    /// Asynchronous operations by their agenda token.
    operations: HashMap<u64, Accepted>,
    agenda: Agenda,
}

impl Life {
    /// Agent `index`, new or resumed from `--state-dir` (it powers on again), that connects
    /// first `start_after` from now (the boot spread).
    pub fn new(shared: Arc<Shared>, index: u32, start_after: Duration, resumed: Option<CpeState>) -> Life {
        let fresh = resumed.is_none();
        let now = shared.clock.now();
        let boot_at = now.plus(start_after);
        let cpe = match resumed {
            Some(mut cpe) => {
                cpe.restart(boot_at);
                cpe
            }
            None => CpeState::new(DeviceId(index), boot_at),
        };
        let endpoint = shared.endpoints.endpoint_id(&shared.model, DeviceId(index));
        let mut agent = Agent::new(endpoint, shared.controller_id.clone(), cpe);
        agent.factory.periodic = shared.periodic;
        // A new Agent gets the factory defaults; so does a resumed one that has no row for the
        // run's Controller (a `--state-dir` saved before the defaults existed, or by a run with
        // another `--controller-id`): without one it could never send a Boot!.
        let knows_controller = || {
            let cpe = &agent.cpe;
            let dev = shared.model.device(cpe.id, &cpe.delta, cpe.boot_at, boot_at);
            subscription::controller_row(&dev, &shared.controller_id).is_some()
        };
        if fresh || !knows_controller() {
            agent.factory_defaults(&shared.model, boot_at);
        } else {
            // A resumed Agent powers on with this run's --inform-interval.
            defaults::apply_interval(&shared.model, &mut agent.cpe, &agent.factory, boot_at);
        }
        // Periodic! (with --inform-interval) every the run Controller's PeriodicNotifInterval: the
        // factory default is --inform-interval (to the millisecond); a Controller may Set another.
        let periodic = shared.periodic.map(|every| {
            let cpe = &agent.cpe;
            let dev = shared.model.device(cpe.id, &cpe.delta, cpe.boot_at, boot_at);
            defaults::periodic_for(&dev, &shared.controller_id, every)
        });
        let agenda = Agenda::new(index, boot_at.0, shared.notify_timeout, periodic);
        Life {
            shared,
            index,
            agent,
            boot_owed: Some((BootCause::LocalReboot, String::new())),
            first_boot: true,
            counted_booted: false,
            pending: HashMap::new(),
            operations: HashMap::new(),
            agenda,
        }
    }

    fn now(&self) -> UnixMillis {
        self.shared.clock.now()
    }

    /// Sleeps on the run's clock until the agenda says to connect. False when the run stops
    /// first.
    ///
    /// The device state API is answered meanwhile (`inbox`): an Agent waiting for its boot
    /// offset or a reconnect back-off is still there to inspect and change. Notifies a local
    /// change causes cannot go out now: those with NotifRetry go on the next connection, the
    /// others count as `publish_failed`.
    pub async fn wait_to_connect(&mut self, stop: &mut watch::Receiver<bool>, inbox: &mut Option<mpsc::UnboundedReceiver<CpeMsg>>) -> bool {
        let clock = self.shared.clock.clone();
        loop {
            tokio::select! {
                _ = sleep_until(&clock, self.agenda.next_deadline()) => {}
                Some(msg) = next_msg(inbox) => {
                    self.on_api(&mut Offline, msg);
                    continue;
                }
                _ = stopped(stop) => return false,
            }
            if self.agenda.on_timeout(clock.now().0) == Some(Due::Connect) {
                return true;
            }
        }
    }

    /// Resolves when the agenda's next timer is due (never while nothing is planned); then call
    /// [`Life::on_timers`]. Owns nothing, so it can race the connection in a `select!`.
    pub fn sleep_until_due(&self) -> impl std::future::Future<Output = ()> + 'static {
        let clock = self.shared.clock.clone();
        let at = self.agenda.next_deadline();
        async move { sleep_until(&clock, at).await }
    }

    /// The connection ended: why (`None`: the Agent closed it to restart), counted as a failure
    /// by cause; the agenda plans the next connection, and the Agent waits for it as
    /// [`Life::wait_to_connect`] does. False when the run stops first.
    pub async fn reconnect(
        &mut self,
        ended: Option<ConnFailure>,
        stop: &mut watch::Receiver<bool>,
        inbox: &mut Option<mpsc::UnboundedReceiver<CpeMsg>>,
    ) -> bool {
        if let Some(cause) = ended {
            *self.shared.figures().failures.entry(cause).or_default() += 1;
        }
        let now = self.now().0;
        self.agenda.on_lost(now, ended.is_some());
        self.wait_to_connect(stop, inbox).await
    }

    /// The connection is up (subscribed, or the WebSocket open): counted, then the Notifies still
    /// owed from a lost connection go again, then the Boot! if one is owed.
    pub fn on_connected(&mut self, out: &mut dyn Outbox, took: Duration) {
        self.agenda.on_connected(self.now().0);
        self.shared.figures().connected_now(took);
        for p in self.pending.values_mut() {
            if !out.send(p.record.clone(), To::Controller) {
                self.shared.figures().publish_failed += 1;
            }
        }
        if let Some((cause, key)) = self.boot_owed.take() {
            let first = std::mem::replace(&mut self.first_boot, false);
            self.emit(out, &Event::Boot { cause, command_key: &key }, first);
        }
    }

    /// Sends the Notifies `event` causes (one per matching subscription). Only the run's
    /// Controller is reachable over this Agent's MTP: a Notify for another Recipient is counted
    /// as `no_route` and dropped. Without NotifRetry a Notify is sent once and not awaited; the
    /// first Boot! then counts the Agent as booted when sent.
    fn emit(&mut self, out: &mut dyn Outbox, event: &Event<'_>, first_boot: bool) {
        let shared = self.shared.clone();
        let now = self.now();
        let outgoing = {
            let cpe = &self.agent.cpe;
            let dev = shared.model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
            subscription::notifies(&dev, event, &shared.controller_id)
        };
        for o in outgoing {
            if o.to != shared.controller_id {
                shared.figures().notify_no_route += 1;
                continue;
            }
            let what = notify_name(&o.notify);
            let (msg_id, record) = self.agent.notify(o.notify);
            // Kept for resends only when NotifRetry asks for an answer.
            let (sent, kept) = if o.retry { (record.clone(), Some(record)) } else { (record, None) };
            if !out.send(sent, To::Controller) {
                shared.figures().publish_failed += 1;
            }
            shared.figures().notify_sent(what);
            let Some(record) = kept else {
                if first_boot && what == "Boot!" {
                    self.count_booted();
                }
                continue;
            };
            let expires_at = o.expires_after.map(|d| now.plus(d).0);
            self.agenda.on_notify_sent(&msg_id, now.0, expires_at);
            self.pending.insert(msg_id, Pending { what, record, first_sent_at: Instant::now(), first_boot });
        }
    }

    /// `Periodic!` (with `--inform-interval`) every the run Controller's PeriodicNotifInterval as
    /// it is now: an unchanged period keeps its grid, another starts one now
    /// ([`Agenda::set_period`]).
    fn follow_periodic_interval(&mut self) {
        let Some(every) = self.shared.periodic else { return };
        let now = self.now();
        let cpe = &self.agent.cpe;
        let dev = self.shared.model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        let period = defaults::periodic_for(&dev, &self.shared.controller_id, every);
        self.agenda.set_period(period, now.0);
    }

    /// Counts this Agent as booted: its first Boot! was answered (or sent, without NotifRetry).
    /// Once per Agent, however many subscriptions name `Device.Boot!`.
    fn count_booted(&mut self) {
        if !std::mem::replace(&mut self.counted_booted, true) {
            self.shared.figures().booted += 1;
        }
    }

    /// After every change of the Agent's data model (a Controller's Set/Add/Delete, Reboot or
    /// FactoryReset, a local change through the state API): `--state-dir` gets it, and `Periodic!`
    /// follows the run Controller's PeriodicNotifInterval and Enable as they are now.
    fn changed(&mut self) {
        self.save();
        self.follow_periodic_interval();
    }

    fn save(&self) {
        if let Some(sink) = &self.shared.sink {
            sink.save(&self.agent.cpe);
        }
    }

    /// Handles one Record from the connection. Returns true when the Agent accepted a Reboot or
    /// FactoryReset: the caller flushes, closes the connection and reconnects at once, and the
    /// next connection sends Boot! with the remote cause.
    pub fn on_record(&mut self, out: &mut dyn Outbox, bytes: &[u8], reply_topic: Option<&str>) -> bool {
        let shared = self.shared.clone();
        let started = Instant::now();
        let handled = match self.agent.handle(&shared.model, bytes, self.now()) {
            Ok(h) => h,
            Err(cause) => {
                tracing::debug!(agent = %self.agent.endpoint_id, cause = cause.name(), "record dropped");
                *shared.figures().dropped.entry(cause).or_default() += 1;
                return false;
            }
        };
        if let Some((msg_id, err)) = &handled.answered {
            if let Some(p) = self.pending.remove(msg_id) {
                self.agenda.on_notify_answered(msg_id);
                if err.is_none() {
                    shared.figures().notify_answered(p.what, p.first_sent_at.elapsed());
                    if p.first_boot {
                        self.count_booted();
                    }
                } else {
                    shared.figures().notify.entry(p.what).or_default().unanswered += 1;
                }
            }
            return false;
        }
        if let Some((to_id, record)) = handled.reply {
            if !out.send(record, To::Reply { to_id: &to_id, reply_topic }) {
                shared.figures().publish_failed += 1;
            }
        }
        if matches!(handled.kind, MsgKind::Set | MsgKind::Add | MsgKind::Delete) && handled.refused.is_none() {
            // A Controller that Sets its PeriodicNotifInterval (or disables its row) gets the
            // new period from now, not after the next Periodic! at the old one.
            self.changed();
        }
        {
            let mut f = shared.figures();
            f.handled(handled.kind, started.elapsed());
            if let Some(e) = handled.refused {
                *f.refused.entry(e.0).or_default() += 1;
            }
        }
        for path in &handled.changed.created {
            self.emit(out, &Event::ObjectCreation { path }, false);
        }
        for path in &handled.changed.deleted {
            self.emit(out, &Event::ObjectDeletion { path }, false);
        }
        let Some(accepted) = handled.accepted else { return false };
        match accepted.command {
            Command::SelfTest => {
                let token = self.agenda.on_operation(self.now().0, SELF_TEST_TIME);
                self.operations.insert(token, accepted);
                false
            }
            c => {
                let restart = self.agent.carry_out(&shared.model, c, self.now());
                self.changed();
                match restart {
                    Some(cause) => {
                        self.boot_owed = Some((cause, accepted.command_key));
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// Acts on every timer the agenda has due now (while connected): retransmissions (same
    /// Message ID) and give-ups, asynchronous commands that are done, `Periodic!`.
    pub fn on_timers(&mut self, out: &mut dyn Outbox) {
        let shared = self.shared.clone();
        let now = self.now().0;
        while let Some(due) = self.agenda.on_timeout(now) {
            match due {
                Due::Resend(id) => {
                    let Some(p) = self.pending.get(&*id) else { continue };
                    shared.figures().notify.entry(p.what).or_default().retransmitted += 1;
                    if !out.send(p.record.clone(), To::Controller) {
                        shared.figures().publish_failed += 1;
                    }
                }
                Due::GiveUp(id) => {
                    if let Some(p) = self.pending.remove(&*id) {
                        shared.figures().notify.entry(p.what).or_default().unanswered += 1;
                    }
                }
                Due::OperationDone(token) => {
                    let Some(accepted) = self.operations.remove(&token) else { continue };
                    let output = HashMap::from([("Status".to_string(), "Complete".to_string()), ("Results".to_string(), String::new())]);
                    self.emit(out, &Event::OperationComplete { accepted: &accepted, output: &output }, false);
                }
                Due::Periodic => self.emit(out, &Event::Periodic { controller: &shared.controller_id }, false),
                // Only while waiting to connect (`wait_to_connect`).
                Due::Connect => {}
            }
        }
    }

    /// Answers the device state API (`--api-bind-addr`): the Agent's state as JSON, and local
    /// changes, each followed by a ValueChange for every enabled subscription naming the
    /// parameter.
    pub fn on_api(&mut self, out: &mut dyn Outbox, msg: CpeMsg) {
        let shared = self.shared.clone();
        let model = &shared.model;
        let now = self.now();
        match msg {
            CpeMsg::Inspect { reply, .. } => {
                let _ = reply.send(Ok(answer::inspect(model, &self.agent.cpe, now)));
            }
            CpeMsg::SetLocal { params, reply, .. } => {
                let result = answer::set_local(model, &mut self.agent.cpe, &params, now);
                let ok = result.is_ok();
                let _ = reply.send(result);
                if !ok {
                    return;
                }
                self.changed();
                for (name, _) in &params {
                    self.emit(out, &Event::ValueChange { path: name }, false);
                }
            }
            // Connection Requests are CWMP's; a USP Agent has no credentials to look up.
            CpeMsg::Lookup { reply, .. } => {
                let _ = reply.send(None);
            }
            CpeMsg::LookupUser { reply, .. } => {
                let _ = reply.send(None);
            }
            CpeMsg::Wake { .. } => {}
        }
    }
}

/// The send side while the Agent has no connection: nothing can be queued.
struct Offline;

impl Outbox for Offline {
    fn send(&mut self, _record: Vec<u8>, _to: To<'_>) -> bool {
        false
    }
}

/// Sleeps on `clock` until `at` (ms since the epoch), or forever when `at` is `None`.
async fn sleep_until(clock: &Clock, at: Option<u64>) {
    match at {
        Some(t) => clock.sleep_until(UnixMillis(t), None).await,
        None => std::future::pending().await,
    }
}

/// The next message from the device state API, or never without one.
pub async fn next_msg(inbox: &mut Option<mpsc::UnboundedReceiver<CpeMsg>>) -> Option<CpeMsg> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves once the run asks its Agents to stop (or the run is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrowed value is dropped here, so the future stays Send.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what a Life sends.
    #[derive(Default)]
    struct Sent(Vec<Vec<u8>>);

    impl Outbox for Sent {
        fn send(&mut self, record: Vec<u8>, _to: To<'_>) -> bool {
            self.0.push(record);
            true
        }
    }

    const CTL: &str = "self::ctl";

    /// An Agent on a manual clock, connected at once (no boot spread).
    fn life() -> (Life, Arc<crate::engine::clock::ManualClock>) {
        life_with(None, None)
    }

    /// The same with `--inform-interval` `periodic`, resumed from `resumed`.
    fn life_with(periodic: Option<Duration>, resumed: Option<CpeState>) -> (Life, Arc<crate::engine::clock::ManualClock>) {
        let model =
            crate::config::load_profile(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-tr181-gateway")).unwrap();
        let (clock, manual) = Clock::manual(UnixMillis(1_800_000_000_000));
        let shared = Arc::new(Shared {
            model: Arc::new(model),
            transport: Transport::WebSocket { url: "ws://127.0.0.1:1/".into(), connect_timeout: Duration::from_secs(1), tls: None },
            endpoints: EndpointTemplate::compile("os::{oui}-{serial}").unwrap(),
            controller_id: CTL.into(),
            controller_topic: String::new(),
            notify_timeout: Duration::from_secs(1),
            periodic,
            figures: Mutex::new(AgentFigures::default()),
            sink: None,
            clock,
        });
        let mut l = Life::new(shared, 0, Duration::ZERO, resumed);
        assert_eq!(l.agenda.on_timeout(l.now().0), Some(Due::Connect));
        (l, manual)
    }

    /// Sets a parameter of the factory-default Boot! subscription (`Subscription.1`).
    fn boot_subscription(l: &mut Life, name: &str, value: &str) {
        let model = l.shared.model.clone();
        let now = l.now();
        l.agent.cpe.device_mut(&model, now).set_local(&format!("Device.LocalAgent.Subscription.1.{name}"), value).unwrap();
    }

    // The retry settings are the subscription's: NotifRetry resends after --timeout (here 1 s)
    // until answered; NotifExpiration ends that; without NotifRetry the Notify goes once, is not
    // awaited, and a first Boot! counts the Agent as booted when sent. Time is the manual
    // clock's: no sleeping.
    #[test]
    fn retries_follow_notif_retry_and_notif_expiration() {
        // NotifRetry (the factory default): resent after the timeout.
        let (mut l, clock) = life();
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert_eq!((out.0.len(), l.pending.len()), (1, 1));
        clock.advance(Duration::from_millis(999));
        l.on_timers(&mut out);
        assert_eq!(out.0.len(), 1, "not before --timeout");
        clock.advance(Duration::from_millis(1));
        l.on_timers(&mut out);
        assert_eq!(out.0.len(), 2, "resent after --timeout");
        assert_eq!(l.shared.figures().notify["Boot!"].retransmitted, 1);
        // NotifExpiration 1 s: given up at the first resend instead.
        let (mut l, clock) = life();
        boot_subscription(&mut l, "NotifExpiration", "1");
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        l.on_timers(&mut out);
        assert_eq!(out.0.len(), 1, "expired, not resent");
        assert!(l.pending.is_empty());
        assert_eq!(l.shared.figures().notify["Boot!"].unanswered, 1);
        // No NotifRetry: once, send_resp false, nothing pending, booted on send.
        let (mut l, clock) = life();
        boot_subscription(&mut l, "NotifRetry", "false");
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert_eq!((out.0.len(), l.pending.len(), l.shared.figures().booted), (1, 0, 1));
        let opened = crate::usp::record::open(&out.0[0], CTL).unwrap();
        let body = opened.msg.body.unwrap().msg_body;
        use rusp_lib::usp::mod_Body::OneOfmsg_body;
        use rusp_lib::usp::mod_Request::OneOfreq_type;
        let OneOfmsg_body::request(rusp_lib::usp::Request { req_type: OneOfreq_type::notify(n) }) = body else { panic!() };
        assert_eq!((n.subscription_id.as_str(), n.send_resp), ("cpe-sim-boot", false));
        clock.advance(Duration::from_secs(10));
        l.on_timers(&mut out);
        assert_eq!(out.0.len(), 1, "never resent");
        assert_eq!(l.agenda.next_deadline(), None, "nothing left to wake for");
        // Disabled: no Boot! at all.
        let (mut l, _clock) = life();
        boot_subscription(&mut l, "Enable", "false");
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert!(out.0.is_empty());
    }

    // A resumed Agent keeps what Controllers did to its subscriptions, but one saved without a
    // row for the run's Controller (an older --state-dir) gets the factory defaults, so it still
    // sends Boot!.
    #[test]
    fn a_resumed_agent_without_the_runs_controller_gets_the_defaults() {
        let (l, _clock) = life();
        let shared = l.shared.clone();
        let old = CpeState::new(DeviceId(0), l.now());
        let mut resumed = Life::new(shared.clone(), 0, Duration::ZERO, Some(old));
        let mut out = Sent::default();
        resumed.on_connected(&mut out, Duration::ZERO);
        assert_eq!(out.0.len(), 1, "Boot! from the restored defaults");
        // One whose Controller disabled the Boot! subscription stays as the Controller left it.
        let (mut l, _clock) = life();
        boot_subscription(&mut l, "Enable", "false");
        let mut resumed = Life::new(shared, 0, Duration::ZERO, Some(l.agent.cpe.clone()));
        let mut out = Sent::default();
        resumed.on_connected(&mut out, Duration::ZERO);
        assert!(out.0.is_empty(), "no Boot!: the defaults were not written again");
    }

    // Two subscriptions naming Device.Boot! send two Boot! Notifies, but the Agent boots once.
    #[test]
    fn an_agent_counts_as_booted_once_whatever_its_boot_subscriptions() {
        let (mut l, _clock) = life();
        boot_subscription(&mut l, "NotifRetry", "false");
        let model = l.shared.model.clone();
        let now = l.now();
        let mut dm = l.agent.cpe.device_mut(&model, now);
        let n = dm.add_object("Device.LocalAgent.Subscription.", "").unwrap();
        for (k, v) in
            [("Enable", "true"), ("ID", "mine"), ("NotifType", "Event"), ("ReferenceList", "Device.Boot!"), ("NotifRetry", "false")]
        {
            dm.set_local(&format!("Device.LocalAgent.Subscription.{n}.{k}"), v).unwrap();
        }
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert_eq!(out.0.len(), 2, "one Boot! per subscription");
        assert_eq!(l.shared.figures().booted, 1, "booted once");
    }

    /// `req` from the run's Controller, as a Record for the Agent.
    fn request_record(l: &Life, msg_type: rusp_lib::usp::mod_Header::MsgType, req: rusp_lib::usp::mod_Request::OneOfreq_type) -> Vec<u8> {
        use rusp_lib::usp::mod_Body::OneOfmsg_body;
        use rusp_lib::usp::{Body, Header, Msg, Request};
        let msg = Msg {
            header: Some(Header { msg_id: "req-1".into(), msg_type }),
            body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: req }) }),
        };
        crate::usp::record::seal(&msg, CTL, &l.agent.endpoint_id)
    }

    /// A Set of `path` to `value` from the run's Controller, as a Record for the Agent.
    fn set_record(l: &Life, path: &str, value: &str) -> Vec<u8> {
        use rusp_lib::usp::mod_Set::{UpdateObject, UpdateParamSetting};
        let (obj, param) = path.rsplit_once('.').unwrap();
        let set = rusp_lib::usp::Set {
            allow_partial: false,
            update_objs: vec![UpdateObject {
                obj_path: format!("{obj}."),
                param_settings: vec![UpdateParamSetting { param: param.into(), value: value.into(), required: true }],
            }],
        };
        request_record(l, rusp_lib::usp::mod_Header::MsgType::SET, rusp_lib::usp::mod_Request::OneOfreq_type::set(set))
    }

    // Periodic! follows the run Controller's row after every kind of change, not only a
    // Controller's Set: a FactoryReset (back to --inform-interval), a local change through the
    // state API, and a disabled row (off: a disabled Controller is not talked to).
    #[test]
    fn the_periodic_period_follows_every_change_of_the_controllers_row() {
        let (mut l, clock) = life_with(Some(Duration::from_secs(3600)), None);
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert!(!l.on_record(&mut out, &set_record(&l, "Device.LocalAgent.Controller.1.PeriodicNotifInterval", "60"), None));
        assert_eq!(l.agenda.periodic().1, 60_000);
        let reset = rusp_lib::usp::Operate {
            command: "Device.FactoryReset()".into(),
            command_key: "k".into(),
            send_resp: true,
            input_args: Default::default(),
        };
        let operate =
            request_record(&l, rusp_lib::usp::mod_Header::MsgType::OPERATE, rusp_lib::usp::mod_Request::OneOfreq_type::operate(reset));
        assert!(l.on_record(&mut out, &operate, None), "a FactoryReset restarts the Agent");
        assert_eq!(l.agenda.periodic().1, 3_600_000, "the factory interval again");
        // A local change through the device state API.
        let (reply, answered) = tokio::sync::oneshot::channel();
        let params = vec![("Device.LocalAgent.Controller.1.PeriodicNotifInterval".to_string(), "120".to_string())];
        l.on_api(&mut out, CpeMsg::SetLocal { index: 0, params, reply });
        assert!(answered.blocking_recv().unwrap().is_ok());
        assert_eq!(l.agenda.periodic().1, 120_000);
        // Disabled: no Periodic! at all, and none is sent when its time would have come.
        assert!(!l.on_record(&mut out, &set_record(&l, "Device.LocalAgent.Controller.1.Enable", "false"), None));
        assert_eq!(l.agenda.periodic(), (crate::cpe::agenda::NEVER, 0));
        clock.advance(Duration::from_secs(7200));
        l.on_timers(&mut out);
        assert_eq!(notifies(&out, "Periodic!"), 0, "no Periodic! to a disabled Controller");
    }

    /// How many of the Records sent are Notifies of kind `what` (as `notify_name` names them).
    fn notifies(out: &Sent, what: &str) -> usize {
        use rusp_lib::usp::mod_Body::OneOfmsg_body;
        use rusp_lib::usp::mod_Request::OneOfreq_type;
        out.0
            .iter()
            .filter_map(|r| crate::usp::record::open(r, CTL).ok()?.msg.body)
            .filter(|b| match &b.msg_body {
                OneOfmsg_body::request(rusp_lib::usp::Request { req_type: OneOfreq_type::notify(n) }) => notify_name(n) == what,
                _ => false,
            })
            .count()
    }

    // A Controller's Set of its PeriodicNotifInterval takes effect at once: the next Periodic!
    // comes one new period after the Set, not after the next one at the old period.
    #[test]
    fn a_controllers_periodic_notif_interval_applies_from_its_set() {
        let (mut l, clock) = life_with(Some(Duration::from_secs(3600)), None);
        let mut out = Sent::default();
        l.on_connected(&mut out, Duration::ZERO);
        assert_eq!(l.agenda.periodic().1, 3_600_000);
        clock.advance(Duration::from_secs(5));
        let set = set_record(&l, "Device.LocalAgent.Controller.1.PeriodicNotifInterval", "60");
        assert!(!l.on_record(&mut out, &set, None));
        let now = l.now().0;
        assert_eq!(l.agenda.periodic(), (now + 60_000, 60_000), "the new period from the Set on");
    }

    // A resumed Agent powers on with this run's --inform-interval (a run with another interval
    // is not stuck on the last run's factory value).
    #[test]
    fn a_resumed_agent_takes_this_runs_inform_interval() {
        let (old, _clock) = life_with(Some(Duration::from_secs(60)), None);
        let saved = old.agent.cpe.clone();
        let (resumed, _clock) = life_with(Some(Duration::from_secs(2)), Some(saved));
        assert_eq!(resumed.agenda.periodic().1, 2_000);
        let (resumed, _clock) = life_with(Some(Duration::from_millis(2_500)), Some(old.agent.cpe.clone()));
        assert_eq!(resumed.agenda.periodic().1, 2_500, "to the millisecond");
    }

    // An Agent waiting to connect (its boot offset, a back-off) still answers the device state
    // API, at once, and keeps waiting.
    #[test]
    fn the_state_api_is_answered_while_waiting_to_connect() {
        let (l, _clock) = life();
        let mut waiting = Life::new(l.shared.clone(), 0, Duration::from_secs(3600), None);
        let (tx, rx) = mpsc::unbounded_channel();
        let (reply, answer) = tokio::sync::oneshot::channel();
        tx.send(CpeMsg::Inspect { index: 0, reply }).unwrap();
        let mut inbox = Some(rx);
        let (stop_tx, mut stop) = watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (connect, answered) = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                tokio::join!(waiting.wait_to_connect(&mut stop, &mut inbox), async {
                    let a = answer.await;
                    let _ = stop_tx.send(true);
                    a
                })
            })
            .await
            .expect("answered and stopped in time")
        });
        assert!(!connect, "still waiting (stopped), not connected early");
        assert!(answered.unwrap().is_ok(), "the state API got the Agent's state");
    }

    #[test]
    fn names() {
        use crate::usp::notify;
        assert_eq!(notify_name(&notify::periodic("Device", "s".into(), true)), "Periodic!");
        assert_eq!(notify_name(&notify::object_deletion("s".into(), false, "Device.X.1.".into())), "ObjectDeletion");
    }
}
