//! One USP Agent's MQTT connection, for the whole run: connect (client ID = endpoint ID),
//! subscribe to its topic, send Boot!, answer the Controller's Records, retransmit unanswered
//! Notifies, send Periodic! and OperationComplete when due, and reconnect with the TR-069/TR-369
//! back-off when the connection fails.
//!
//! What the Agent answers comes from `usp::Agent` (sans-IO); this task owns the socket (through
//! rumqttc's event loop), the clock and the counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::mqtt::{agent_topic, ClientSettings};
use super::report::{AgentFigures, ConnFailure};
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

/// QoS 1 publishes an Agent keeps unacknowledged at once (beyond, rumqttc queues them).
const AGENT_INFLIGHT: u16 = 16;

/// What every Agent task of a run shares.
pub struct Shared {
    pub model: Arc<Model>,
    pub client: ClientSettings,
    pub endpoints: EndpointTemplate,
    /// The Controller every Agent reports to, and its topic.
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
    fn figures(&self) -> std::sync::MutexGuard<'_, AgentFigures> {
        // A poisoned lock only means another task panicked mid-update: counters stay usable.
        self.figures.lock().unwrap_or_else(|p| p.into_inner())
    }
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
fn notify_name(n: &rusp_lib::usp::Notify) -> &'static str {
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

fn classify(e: &ConnectionError, was_connected: bool) -> ConnFailure {
    match e {
        ConnectionError::Timeout(_) => ConnFailure::Timeout,
        ConnectionError::ConnectionRefused(_) => ConnFailure::ConnackRefused,
        ConnectionError::Tls(_) => ConnFailure::Tls,
        ConnectionError::Io(io) if !was_connected && io.kind() == std::io::ErrorKind::ConnectionRefused => ConnFailure::Refused,
        ConnectionError::Io(_) if !was_connected => ConnFailure::Refused,
        ConnectionError::Io(_) => ConnFailure::Lost,
        ConnectionError::MqttState(rumqttc::v5::StateError::Io(_)) if was_connected => ConnFailure::Lost,
        _ if !was_connected => ConnFailure::Protocol,
        _ => ConnFailure::Lost,
    }
}

/// Runs Agent `index` until `stop` turns true: starts after `start_after` (the boot spread),
/// then keeps its connection up.
pub async fn run(
    shared: Arc<Shared>,
    index: u32,
    start_after: Duration,
    mut stop: watch::Receiver<bool>,
    mut inbox: Option<mpsc::UnboundedReceiver<CpeMsg>>,
    resumed: Option<CpeState>,
) {
    tokio::select! {
        _ = tokio::time::sleep(start_after) => {}
        _ = stopped(&mut stop) => return,
    }
    let model = &shared.model;
    let endpoint = shared.endpoints.endpoint_id(model, DeviceId(index));
    let topic = agent_topic(&endpoint);
    // A CPE saved in --state-dir powers on again with its delta (subscriptions included).
    let cpe = match resumed {
        Some(mut cpe) => {
            cpe.restart(UnixMillis::now());
            cpe
        }
        None => CpeState::new(DeviceId(index), UnixMillis::now()),
    };
    let mut agent = Agent::new(endpoint.clone(), shared.controller_id.clone(), cpe);
    let mut boot_owed: Option<(BootCause, String)> = Some((BootCause::LocalReboot, String::new()));
    let mut first_boot = true;
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut async_ops: Vec<(Instant, Accepted)> = Vec::new();
    let mut attempt: u32 = 0;
    let mut periodic_at = shared.periodic.map(|p| Instant::now() + p);
    loop {
        let (client, mut events) = AsyncClient::new(shared.client.options(&endpoint, AGENT_INFLIGHT), 64);
        let started = Instant::now();
        let mut connected = false;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        // Why this connection ended: None when the Agent restarts itself (Reboot, FactoryReset).
        let ended: Option<ConnFailure> = loop {
            tokio::select! {
                _ = stopped(&mut stop) => {
                    disconnect(&client, &mut events).await;
                    if connected {
                        shared.figures().disconnected();
                    }
                    return;
                }
                ev = events.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if client.try_subscribe(topic.clone(), QoS::AtLeastOnce).is_err() {
                            shared.figures().publish_failed += 1;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        connected = true;
                        attempt = 0;
                        shared.figures().connected_now(started.elapsed());
                        // Notifies still owed from a lost connection go again, then the Boot!.
                        let now = Instant::now();
                        for p in pending.values_mut() {
                            p.last_sent_at = now;
                            publish(&shared, &client, &topic, p.record.clone());
                        }
                        if let Some((cause, key)) = boot_owed.take() {
                            let now = UnixMillis::now();
                            let boot = notify::boot(&model.device(agent.cpe.id, &agent.cpe.delta, agent.cpe.boot_at, now), cause, &key);
                            send_notify(&shared, &client, &topic, &mut agent, &mut pending, boot, first_boot);
                            first_boot = false;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let reply_topic = p.properties.as_ref().and_then(|pr| pr.response_topic.clone());
                        if let Some(restart) = on_record(&shared, &client, &topic, &mut agent, &mut pending, &mut async_ops, &p.payload, reply_topic) {
                            // A Reboot/FactoryReset: the Agent goes down and comes back with Boot!.
                            boot_owed = Some(restart);
                            disconnect(&client, &mut events).await;
                            break None;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break Some(classify(&e, connected)),
                },
                Some(msg) = next_msg(&mut inbox) => {
                    on_api(&shared, &client, &topic, &mut agent, &mut pending, msg);
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if connected {
                        on_tick(&shared, &client, &topic, &mut agent, &mut pending, &mut async_ops, &mut periodic_at, now);
                    }
                }
            }
        };
        if connected {
            shared.figures().disconnected();
        }
        let wait = match ended {
            None => Duration::from_millis(100),
            Some(cause) => {
                *shared.figures().failures.entry(cause).or_default() += 1;
                attempt = attempt.saturating_add(1);
                // TR-369 MQTT ConnectRetryTime 5 s × ConnectRetryIntervalMultiplier 2000 (the
                // same law as CWMP's retries), spread per Agent and attempt.
                let unit = (mix64(((index as u64) << 32) | attempt as u64) >> 11) as f64 / (1u64 << 53) as f64;
                crate::cpe::retry::retry_wait(Duration::from_secs(5), 2000, attempt, unit).min(Duration::from_secs(60))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Queues a snapshot of the Agent's CPE for `--state-dir`.
fn save(shared: &Shared, agent: &Agent) {
    if let Some(sink) = &shared.sink {
        sink.save(&agent.cpe);
    }
}

/// The next message from the device state API, or never without one.
async fn next_msg(inbox: &mut Option<mpsc::UnboundedReceiver<CpeMsg>>) -> Option<CpeMsg> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Answers the device state API (`--api-bind-addr`): the Agent's state as JSON, and local
/// changes, each followed by a ValueChange for every enabled subscription naming the parameter.
fn on_api(shared: &Shared, client: &AsyncClient, own_topic: &str, agent: &mut Agent, pending: &mut HashMap<String, Pending>, msg: CpeMsg) {
    let model = &shared.model;
    let now = UnixMillis::now();
    match msg {
        CpeMsg::Inspect { reply, .. } => {
            let _ = reply.send(Ok(answer::inspect(model, &agent.cpe, now)));
        }
        CpeMsg::SetLocal { params, reply, .. } => {
            let result = answer::set_local(model, &mut agent.cpe, &params, now);
            let ok = result.is_ok();
            let _ = reply.send(result);
            if !ok {
                return;
            }
            save(shared, agent);
            for (name, _) in &params {
                let dev = model.device(agent.cpe.id, &agent.cpe.delta, agent.cpe.boot_at, now);
                let value = dev.get(name).unwrap_or_default();
                for id in subscription::matching(&dev, "ValueChange", name) {
                    send_notify(shared, client, own_topic, agent, pending, notify::value_change(id, name.clone(), value.clone()), false);
                }
            }
        }
        // Connection Requests are CWMP's; a USP Agent has no credentials to look up.
        CpeMsg::Lookup { reply, .. } => {
            let _ = reply.send(None);
        }
        CpeMsg::Wake { .. } => {}
    }
}

/// Sends what is queued (an OperateResp before a reboot) and a DISCONNECT, driving the event
/// loop until the DISCONNECT is out, the connection fails, or a second passes.
pub async fn disconnect(client: &AsyncClient, events: &mut rumqttc::v5::EventLoop) {
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match events.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Resolves once the run asks its Agents to stop (or the run is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The borrowed value is dropped here, so the future stays Send.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

fn publish(shared: &Shared, client: &AsyncClient, own_topic: &str, record: Vec<u8>) {
    publish_to(shared, client, own_topic, &shared.controller_topic, record);
}

fn publish_to(shared: &Shared, client: &AsyncClient, own_topic: &str, to: &str, record: Vec<u8>) {
    // TR-369 R-MQTT.? : an Agent names its own topic as the Response Topic of what it publishes.
    let props =
        PublishProperties { response_topic: Some(own_topic.to_string()), content_type: Some("usp.msg".into()), ..Default::default() };
    if client.try_publish_with_properties(to, QoS::AtLeastOnce, false, record, props).is_err() {
        shared.figures().publish_failed += 1;
    }
}

#[allow(clippy::too_many_arguments)]
fn send_notify(
    shared: &Shared,
    client: &AsyncClient,
    own_topic: &str,
    agent: &mut Agent,
    pending: &mut HashMap<String, Pending>,
    n: rusp_lib::usp::Notify,
    first_boot: bool,
) {
    let what = notify_name(&n);
    let (msg_id, record) = agent.notify(n);
    let now = Instant::now();
    publish(shared, client, own_topic, record.clone());
    shared.figures().notify_sent(what);
    pending.insert(msg_id, Pending { what, record, first_sent_at: now, last_sent_at: now, retries: 0, first_boot });
}

/// Handles one Record; returns a restart to carry out (Reboot/FactoryReset accepted).
#[allow(clippy::too_many_arguments)]
fn on_record(
    shared: &Shared,
    client: &AsyncClient,
    own_topic: &str,
    agent: &mut Agent,
    pending: &mut HashMap<String, Pending>,
    async_ops: &mut Vec<(Instant, Accepted)>,
    bytes: &[u8],
    reply_topic: Option<String>,
) -> Option<(BootCause, String)> {
    let started = Instant::now();
    let handled = match agent.handle(&shared.model, bytes, UnixMillis::now()) {
        Ok(h) => h,
        Err(drop) => {
            tracing::debug!(agent = %agent.endpoint_id, cause = drop.name(), "record dropped");
            *shared.figures().dropped.entry(drop).or_default() += 1;
            return None;
        }
    };
    if let Some((msg_id, err)) = &handled.answered {
        if let Some(p) = pending.remove(msg_id) {
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
        return None;
    }
    if let Some((to_id, record)) = handled.reply {
        // The Controller's Response Topic if it gave one (MQTT 5), else its configured topic.
        let to = reply_topic.unwrap_or_else(|| super::mqtt::controller_topic(&to_id));
        publish_to(shared, client, own_topic, &to, record);
    }
    if matches!(handled.kind, MsgKind::Set | MsgKind::Add | MsgKind::Delete) && handled.refused.is_none() {
        save(shared, agent);
    }
    {
        let mut f = shared.figures();
        f.handled(handled.kind, started.elapsed());
        if let Some(e) = handled.refused {
            *f.refused.entry(e.0).or_default() += 1;
        }
    }
    for path in handled.changed.created {
        send_notify(shared, client, own_topic, agent, pending, notify::object_creation(path, HashMap::new()), false);
    }
    for path in handled.changed.deleted {
        send_notify(shared, client, own_topic, agent, pending, notify::object_deletion(path), false);
    }
    let accepted = handled.accepted?;
    match accepted.command {
        Command::SelfTest => {
            async_ops.push((Instant::now() + SELF_TEST_TIME, accepted));
            None
        }
        c => {
            let restart = agent.carry_out(c, UnixMillis::now()).map(|cause| (cause, accepted.command_key));
            save(shared, agent);
            restart
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn on_tick(
    shared: &Shared,
    client: &AsyncClient,
    own_topic: &str,
    agent: &mut Agent,
    pending: &mut HashMap<String, Pending>,
    async_ops: &mut Vec<(Instant, Accepted)>,
    periodic_at: &mut Option<Instant>,
    now: Instant,
) {
    // Unanswered Notifies: sent again (same Message ID) after the timeout, given up after the
    // retries.
    let mut gave_up = Vec::new();
    for (id, p) in pending.iter_mut() {
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
        publish(shared, client, own_topic, p.record.clone());
    }
    for id in gave_up {
        if let Some(p) = pending.remove(&id) {
            shared.figures().notify.entry(p.what).or_default().unanswered += 1;
        }
    }
    let mut i = 0;
    while i < async_ops.len() {
        if async_ops[i].0 <= now {
            let (_, accepted) = async_ops.swap_remove(i);
            let output = HashMap::from([("Status".to_string(), "Complete".to_string()), ("Results".to_string(), String::new())]);
            send_notify(shared, client, own_topic, agent, pending, notify::operation_complete(&accepted, output), false);
        } else {
            i += 1;
        }
    }
    if let (Some(at), Some(every)) = (*periodic_at, shared.periodic) {
        if at <= now {
            *periodic_at = Some(now + every);
            send_notify(shared, client, own_topic, agent, pending, notify::periodic(shared.model.tree.root_name()), false);
        }
    }
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
