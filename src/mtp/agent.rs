//! One USP Agent's MQTT connection, for the whole run: connect (client ID = endpoint ID, MQTT 5 or
//! 3.1.1), subscribe to `usp/agent/<endpoint-id>`, then hand every Record to the Agent's [`Life`]
//! and publish what it sends (to the Controller's topic, or to a request's reply-to Topic, always
//! naming its own topic as its reply-to Topic); reconnect with the back-off when the connection
//! fails.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::life::{next_msg, stopped, Life, Outbox, Shared, To, Transport};
use super::mqtt::{agent_topic, controller_topic, reply_topic_ok};
use super::mqtt_conn::{Conn, Incoming, Publisher};
use super::report::ConnFailure;
use crate::cpe::CpeState;
use crate::owners::CpeMsg;

/// QoS 1 publishes an Agent keeps unacknowledged at once (beyond, rumqttc queues them).
const AGENT_INFLIGHT: u16 = 16;

/// Publishes through the connection's client.
struct MqttOut<'a> {
    client: &'a Publisher,
    own_topic: &'a str,
    controller_topic: &'a str,
}

impl Outbox for MqttOut<'_> {
    fn send(&mut self, record: Vec<u8>, to: To<'_>) -> bool {
        // The reply-to Topic the Controller gave if it gave one, else its configured topic.
        let topic = match to {
            To::Controller => self.controller_topic.to_string(),
            // Unless it is one no broker takes (empty, too long, wildcards): the sender's own.
            To::Reply { reply_topic: Some(t), .. } if reply_topic_ok(t) => t.to_string(),
            To::Reply { to_id, .. } => controller_topic(to_id),
        };
        // TR-369 MQTT binding: an Agent names its own topic as the reply-to Topic of what it
        // publishes (R-MQTT.22).
        self.client.publish(&topic, record, self.own_topic)
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
    if !life.wait_to_connect(&mut stop, &mut inbox).await {
        return;
    }
    let endpoint = life.agent.endpoint_id.clone();
    let topic = agent_topic(&endpoint);
    loop {
        let mut conn = Conn::new(&settings, &endpoint, &endpoint, AGENT_INFLIGHT, 64);
        let client = conn.publisher.clone();
        let mut out = MqttOut { client: &client, own_topic: &topic, controller_topic: &shared.controller_topic };
        let started = Instant::now();
        let mut connected = false;
        // Why this connection ended: None when the Agent restarts itself (Reboot, FactoryReset).
        let ended: Option<ConnFailure> = loop {
            tokio::select! {
                _ = stopped(&mut stop) => {
                    conn.disconnect().await;
                    if connected {
                        shared.figures().disconnected();
                    }
                    return;
                }
                ev = conn.poll() => match ev {
                    Ok(Incoming::Connected) => {
                        if !client.subscribe(&topic) {
                            shared.figures().publish_failed += 1;
                        }
                    }
                    Ok(Incoming::Subscribed) => {
                        connected = true;
                        life.on_connected(&mut out, started.elapsed());
                    }
                    Ok(Incoming::Publish { payload, reply_to }) => {
                        if life.on_record(&mut out, &payload, reply_to.as_deref()) {
                            // A Reboot/FactoryReset: the answer goes out, then the Agent goes
                            // down and comes back with Boot!.
                            conn.disconnect().await;
                            break None;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break Some(e.cause(connected)),
                },
                Some(msg) = next_msg(&mut inbox) => life.on_api(&mut out, msg),
                _ = life.sleep_until_due() => life.on_timers(&mut out),
            }
        };
        if connected {
            shared.figures().disconnected();
        }
        if !life.reconnect(ended, &mut stop, &mut inbox).await {
            return;
        }
    }
}
