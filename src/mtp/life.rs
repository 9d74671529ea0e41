//! One Agent's life across connections, whatever the MTP: its `usp::Agent`, the Boot! it owes,
//! the Notifies waiting for their NotifyResp (retransmitted after `--timeout`, given up after
//! [`NOTIFY_RETRIES`]), asynchronous commands, `Periodic!`, the device state API's messages and
//! `--state-dir` snapshots. The MTP loops (`agent` for MQTT, `ws` for WebSocket) own the socket
//! and hand Records in; Records go out through an [`Outbox`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::mqtt::ClientSettings;
use super::report::AgentFigures;
use crate::cpe::CpeState;
use crate::model::identity::mix64;
use crate::model::{DeviceId, Model};
use crate::owners::{answer, CpeMsg};
use crate::persist::StateSink;
use crate::time::UnixMillis;
use crate::usp::notify::{self, BootCause};
use crate::usp::operate::{Accepted, Command, SELF_TEST_TIME};
use crate::usp::{subscription, Agent, EndpointTemplate, MsgKind};

/// How many times an unanswered Notify is sent again before it counts as unanswered
/// (`Device.LocalAgent.Subscription.{i}.NotifRetry` behaviour, TR-369 §"Responses to
/// Notifications and Notification Retry").
pub const NOTIFY_RETRIES: u8 = 3;

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

/// A Notify waiting for its NotifyResp.
struct Pending {
    what: &'static str,
    record: Vec<u8>,
    first_sent_at: Instant,
    last_sent_at: Instant,
    retries: u8,
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
    pending: HashMap<String, Pending>,
    async_ops: Vec<(Instant, Accepted)>,
    periodic_at: Option<Instant>,
    /// Consecutive failed connections (the reconnect back-off's attempt).
    attempt: u32,
}

impl Life {
    /// Agent `index`, new or resumed from `--state-dir` (it powers on again).
    pub fn new(shared: Arc<Shared>, index: u32, resumed: Option<CpeState>) -> Life {
        let cpe = match resumed {
            Some(mut cpe) => {
                cpe.restart(UnixMillis::now());
                cpe
            }
            None => CpeState::new(DeviceId(index), UnixMillis::now()),
        };
        let endpoint = shared.endpoints.endpoint_id(&shared.model, DeviceId(index));
        let agent = Agent::new(endpoint, shared.controller_id.clone(), cpe);
        let periodic_at = shared.periodic.map(|p| Instant::now() + p);
        Life {
            shared,
            index,
            agent,
            boot_owed: Some((BootCause::LocalReboot, String::new())),
            first_boot: true,
            pending: HashMap::new(),
            async_ops: Vec::new(),
            periodic_at,
            attempt: 0,
        }
    }

    /// The connection is up (subscribed, or the WebSocket open): counted, then the Notifies still
    /// owed from a lost connection go again, then the Boot! if one is owed.
    pub fn on_connected(&mut self, out: &mut dyn Outbox, took: Duration) {
        self.attempt = 0;
        self.shared.figures().connected_now(took);
        let now = Instant::now();
        for p in self.pending.values_mut() {
            p.last_sent_at = now;
            if !out.send(p.record.clone(), To::Controller) {
                self.shared.figures().publish_failed += 1;
            }
        }
        if let Some((cause, key)) = self.boot_owed.take() {
            let now = UnixMillis::now();
            let cpe = &self.agent.cpe;
            let boot = notify::boot(&self.shared.model.device(cpe.id, &cpe.delta, cpe.boot_at, now), cause, &key);
            let first = std::mem::replace(&mut self.first_boot, false);
            self.send_notify(out, boot, first);
        }
    }

    fn send_notify(&mut self, out: &mut dyn Outbox, n: rusp_lib::usp::Notify, first_boot: bool) {
        let what = notify_name(&n);
        let (msg_id, record) = self.agent.notify(n);
        let now = Instant::now();
        if !out.send(record.clone(), To::Controller) {
            self.shared.figures().publish_failed += 1;
        }
        self.shared.figures().notify_sent(what);
        self.pending.insert(msg_id, Pending { what, record, first_sent_at: now, last_sent_at: now, retries: 0, first_boot });
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
        let handled = match self.agent.handle(&shared.model, bytes, UnixMillis::now()) {
            Ok(h) => h,
            Err(cause) => {
                tracing::debug!(agent = %self.agent.endpoint_id, cause = cause.name(), "record dropped");
                *shared.figures().dropped.entry(cause).or_default() += 1;
                return false;
            }
        };
        if let Some((msg_id, err)) = &handled.answered {
            if let Some(p) = self.pending.remove(msg_id) {
                let mut f = shared.figures();
                if err.is_none() {
                    f.notify_answered(p.what, p.first_sent_at.elapsed());
                    if p.first_boot {
                        f.booted += 1;
                    }
                } else {
                    f.notify.entry(p.what).or_default().unanswered += 1;
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
            self.save();
        }
        {
            let mut f = shared.figures();
            f.handled(handled.kind, started.elapsed());
            if let Some(e) = handled.refused {
                *f.refused.entry(e.0).or_default() += 1;
            }
        }
        for path in handled.changed.created {
            self.send_notify(out, notify::object_creation(path, HashMap::new()), false);
        }
        for path in handled.changed.deleted {
            self.send_notify(out, notify::object_deletion(path), false);
        }
        let Some(accepted) = handled.accepted else { return false };
        match accepted.command {
            Command::SelfTest => {
                self.async_ops.push((Instant::now() + SELF_TEST_TIME, accepted));
                false
            }
            c => {
                let restart = self.agent.carry_out(c, UnixMillis::now());
                self.save();
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

    /// Timers, every quarter second while connected: retransmissions, async commands that are
    /// done, `Periodic!`.
    pub fn on_tick(&mut self, out: &mut dyn Outbox, now: Instant) {
        let shared = self.shared.clone();
        // Unanswered Notifies: sent again (same Message ID) after the timeout, given up after
        // the retries.
        let mut gave_up = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            if now.duration_since(p.last_sent_at) < shared.notify_timeout {
                continue;
            }
            if p.retries >= NOTIFY_RETRIES {
                gave_up.push(id.clone());
                continue;
            }
            p.retries += 1;
            p.last_sent_at = now;
            shared.figures().notify.entry(p.what).or_default().retransmitted += 1;
            if !out.send(p.record.clone(), To::Controller) {
                shared.figures().publish_failed += 1;
            }
        }
        for id in gave_up {
            if let Some(p) = self.pending.remove(&id) {
                shared.figures().notify.entry(p.what).or_default().unanswered += 1;
            }
        }
        let mut i = 0;
        while i < self.async_ops.len() {
            if self.async_ops[i].0 <= now {
                let (_, accepted) = self.async_ops.swap_remove(i);
                let output = HashMap::from([("Status".to_string(), "Complete".to_string()), ("Results".to_string(), String::new())]);
                self.send_notify(out, notify::operation_complete(&accepted, output), false);
            } else {
                i += 1;
            }
        }
        if let (Some(at), Some(every)) = (self.periodic_at, shared.periodic) {
            if at <= now {
                self.periodic_at = Some(now + every);
                self.send_notify(out, notify::periodic(shared.model.tree.root_name()), false);
            }
        }
    }

    /// Answers the device state API (`--api-bind-addr`): the Agent's state as JSON, and local
    /// changes, each followed by a ValueChange for every enabled subscription naming the
    /// parameter.
    pub fn on_api(&mut self, out: &mut dyn Outbox, msg: CpeMsg) {
        let shared = self.shared.clone();
        let model = &shared.model;
        let now = UnixMillis::now();
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
                self.save();
                for (name, _) in &params {
                    let cpe = &self.agent.cpe;
                    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
                    let value = dev.get(name).unwrap_or_default();
                    for id in subscription::matching(&dev, "ValueChange", name) {
                        self.send_notify(out, notify::value_change(id, name.clone(), value.clone()), false);
                    }
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

    /// How long to wait before the next connection: at once after a restart the Agent chose,
    /// else TR-369's ConnectRetryTime 5 s × ConnectRetryIntervalMultiplier 2000 (the law of
    /// CWMP's retries, `cpe::retry`), spread per Agent and attempt, at most a minute.
    pub fn reconnect_wait(&mut self, failed: bool) -> Duration {
        if !failed {
            return Duration::from_millis(100);
        }
        self.attempt = self.attempt.saturating_add(1);
        let unit = (mix64(((self.index as u64) << 32) | self.attempt as u64) >> 11) as f64 / (1u64 << 53) as f64;
        crate::cpe::retry::retry_wait(Duration::from_secs(5), 2000, self.attempt, unit).min(Duration::from_secs(60))
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

    #[test]
    fn names() {
        assert_eq!(notify_name(&notify::periodic("Device")), "Periodic!");
        assert_eq!(notify_name(&notify::object_deletion("Device.X.1.".into())), "ObjectDeletion");
    }
}
