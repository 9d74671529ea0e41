//! One USP Agent's MQTT connection, for the whole run: connect (client ID = endpoint ID, MQTT 5),
//! subscribe to `usp/agent/<endpoint-id>`, then hand every Record to the Agent's [`Life`] and
//! publish what it sends (to the Controller's topic, or to a request's Response Topic, always
//! naming its own topic as Response Topic); reconnect with the back-off when the connection fails.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::life::{next_msg, stopped, Life, Outbox, Shared, To, Transport};
use super::mqtt::{agent_topic, controller_topic, reply_topic_ok};
use super::report::ConnFailure;
use crate::cpe::CpeState;
use crate::owners::CpeMsg;

/// QoS 1 publishes an Agent keeps unacknowledged at once (beyond, rumqttc queues them).
const AGENT_INFLIGHT: u16 = 16;

/// Publishes through the connection's client.
struct MqttOut<'a> {
    client: &'a AsyncClient,
    own_topic: &'a str,
    controller_topic: &'a str,
}

impl Outbox for MqttOut<'_> {
    fn send(&mut self, record: Vec<u8>, to: To<'_>) -> bool {
        // The Controller's Response Topic if it gave one (MQTT 5), else its configured topic.
        let topic = match to {
            To::Controller => self.controller_topic.to_string(),
            // Unless it is one no broker takes (empty, too long, wildcards): the sender's own.
            To::Reply { reply_topic: Some(t), .. } if reply_topic_ok(t) => t.to_string(),
            To::Reply { to_id, .. } => controller_topic(to_id),
        };
        // TR-369 MQTT binding: an Agent names its own topic as the Response Topic of what it
        // publishes.
        let props = PublishProperties {
            response_topic: Some(self.own_topic.to_string()),
            content_type: Some("usp.msg".into()),
            ..Default::default()
        };
        self.client.try_publish_with_properties(topic, QoS::AtLeastOnce, false, record, props).is_ok()
    }
}

fn classify(e: &ConnectionError, was_connected: bool) -> ConnFailure {
    match e {
        ConnectionError::Timeout(_) => ConnFailure::Timeout,
        ConnectionError::ConnectionRefused(_) => ConnFailure::ConnackRefused,
        ConnectionError::Tls(_) => ConnFailure::Tls,
        ConnectionError::Io(_) if !was_connected => ConnFailure::Refused,
        ConnectionError::Io(_) => ConnFailure::Lost,
        ConnectionError::MqttState(rumqttc::v5::StateError::Io(_)) if was_connected => ConnFailure::Lost,
        _ if !was_connected => ConnFailure::Protocol,
        _ => ConnFailure::Lost,
    }
}

/// Runs Agent `index` over MQTT until `stop` turns true: starts after `start_after` (the boot
/// spread), then keeps its connection up.
pub async fn run(
    shared: Arc<Shared>,
    index: u32,
    start_after: Duration,
    mut stop: watch::Receiver<bool>,
    mut inbox: Option<mpsc::UnboundedReceiver<CpeMsg>>,
    resumed: Option<CpeState>,
) {
    let Transport::Mqtt(settings) = &shared.transport else { return };
    let settings = settings.clone();
    let mut life = Life::new(shared.clone(), index, start_after, resumed);
    if !life.wait_to_connect(&mut stop).await {
        return;
    }
    let endpoint = life.agent.endpoint_id.clone();
    let topic = agent_topic(&endpoint);
    loop {
        let (client, mut events) = AsyncClient::new(settings.options(&endpoint, AGENT_INFLIGHT), 64);
        let mut out = MqttOut { client: &client, own_topic: &topic, controller_topic: &shared.controller_topic };
        let started = Instant::now();
        let mut connected = false;
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
                        life.on_connected(&mut out, started.elapsed());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let reply_topic = p.properties.as_ref().and_then(|pr| pr.response_topic.clone());
                        if life.on_record(&mut out, &p.payload, reply_topic.as_deref()) {
                            // A Reboot/FactoryReset: the answer goes out, then the Agent goes
                            // down and comes back with Boot!.
                            disconnect(&client, &mut events).await;
                            break None;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break Some(classify(&e, connected)),
                },
                Some(msg) = next_msg(&mut inbox) => life.on_api(&mut out, msg),
                _ = life.sleep_until_due() => life.on_timers(&mut out),
            }
        };
        if connected {
            shared.figures().disconnected();
        }
        if let Some(cause) = ended {
            *shared.figures().failures.entry(cause).or_default() += 1;
        }
        life.on_lost(ended.is_some());
        if !life.wait_to_connect(&mut stop).await {
            return;
        }
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
