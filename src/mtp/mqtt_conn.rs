//! One MQTT client connection, MQTT 5 or 3.1.1 (rumqttc's `v5` client and its 3.1.1 one), behind
//! one face for the Agents and the embedded Controller: what arrives ([`Incoming`], with the
//! reply-to Topic read the way the version carries it), what goes out ([`Publisher::publish`],
//! naming the sender's reply-to Topic the same way), the subscription, a clean DISCONNECT, and why
//! a connection failed ([`Failed::cause`]). The topics and options are `mqtt`'s.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};

use super::mqtt::{reply_to_in_topic, subscription, topic_with_reply_to, ClientSettings, MqttVersion, CONTENT_TYPE};
use super::report::ConnFailure;

/// What a poll of the connection gave.
#[derive(Debug)]
pub enum Incoming {
    /// CONNACK accepted.
    Connected,
    /// SUBACK.
    Subscribed,
    /// A PUBLISH: its payload and the reply-to Topic it named (MQTT 5: the Response Topic
    /// property; 3.1.1: the end of the Topic Name, R-MQTT.25), unchecked.
    Publish { payload: Bytes, reply_to: Option<String> },
    /// Our DISCONNECT went out.
    DisconnectSent,
    /// Anything else (acks, pings, outgoing packets).
    Other,
}

/// The send side of a connection; cheap to clone (rumqttc's request channel).
#[derive(Clone)]
pub enum Publisher {
    V5(rumqttc::v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

impl Publisher {
    /// Queues `record` for `topic` at QoS 1, naming `reply_to` as the Topic answers go to
    /// (R-MQTT.22-24). False when the client's request queue is full.
    pub fn publish(&self, topic: &str, record: Vec<u8>, reply_to: &str) -> bool {
        match self {
            Publisher::V5(c) => {
                let props = PublishProperties {
                    response_topic: Some(reply_to.to_string()),
                    content_type: Some(CONTENT_TYPE.into()),
                    ..Default::default()
                };
                c.try_publish_with_properties(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, record, props).is_ok()
            }
            Publisher::V311(c) => c.try_publish(topic_with_reply_to(topic, reply_to), rumqttc::QoS::AtLeastOnce, false, record).is_ok(),
        }
    }

    /// Subscribes (QoS 1) to what reaches `topic` (with 3.1.1, `topic/#`: the reply-to Topic is
    /// part of the Topic Name). False when the request queue is full.
    pub fn subscribe(&self, topic: &str) -> bool {
        match self {
            Publisher::V5(c) => c.try_subscribe(subscription(topic, MqttVersion::V5), rumqttc::v5::mqttbytes::QoS::AtLeastOnce).is_ok(),
            Publisher::V311(c) => c.try_subscribe(subscription(topic, MqttVersion::V311), rumqttc::QoS::AtLeastOnce).is_ok(),
        }
    }

    fn disconnect(&self) {
        // A full request queue: the caller's bounded wait ends it anyway.
        match self {
            Publisher::V5(c) => drop(c.try_disconnect()),
            Publisher::V311(c) => drop(c.try_disconnect()),
        }
    }
}

// One per connection, never moved in a hot path: the size difference costs 450 bytes per 3.1.1
// connection, a Box would cost an allocation per connection.
#[allow(clippy::large_enum_variant)]
enum Events {
    V5(rumqttc::v5::EventLoop),
    V311(rumqttc::EventLoop),
}

/// Why a connection failed, as rumqttc said it.
#[derive(Debug)]
pub enum Failed {
    V5(rumqttc::v5::ConnectionError),
    V311(rumqttc::ConnectionError),
}

impl Failed {
    /// The report's cause: `was_connected` tells a lost connection from one that never came up.
    pub fn cause(&self, was_connected: bool) -> ConnFailure {
        use rumqttc::v5::ConnectionError as E5;
        use rumqttc::ConnectionError as E4;
        match self {
            Failed::V5(E5::Timeout(_)) | Failed::V311(E4::NetworkTimeout | E4::FlushTimeout) => ConnFailure::Timeout,
            Failed::V5(E5::ConnectionRefused(_)) | Failed::V311(E4::ConnectionRefused(_)) => ConnFailure::ConnackRefused,
            Failed::V5(E5::Tls(_)) | Failed::V311(E4::Tls(_)) => ConnFailure::Tls,
            Failed::V5(E5::Io(_)) | Failed::V311(E4::Io(_)) if !was_connected => ConnFailure::Refused,
            _ if !was_connected => ConnFailure::Protocol,
            _ => ConnFailure::Lost,
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::V5(e) => e.fmt(f),
            Failed::V311(e) => e.fmt(f),
        }
    }
}

/// How long the driver waits after a failed connection before rumqttc's next attempt (the
/// Agents drop the connection on a failure and wait out their own back-off instead).
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Events the driver may run ahead of the connection's owner.
const AHEAD: usize = 16;

/// One client connection. rumqttc's `EventLoop::poll` is not cancel-safe: dropped while it
/// connects, it drops the half-open connection, and the next poll starts another. The Agents'
/// loops race poll against their timers, so under a connection storm (connects slower than the
/// 250 ms tick) every attempt was abandoned and redone: 10,000 Agents at once made 120,966 TCP
/// connections in 25 s, 101,018 closed before CONNECT (mosquitto's log), and 137 booted in
/// 250 s. So the event loop runs in a task of its own (the driver), never cancelled until the
/// connection is dropped, and [`Conn::poll`] reads its events from a channel, which is
/// cancel-safe.
pub struct Conn {
    pub publisher: Publisher,
    events: tokio::sync::mpsc::Receiver<Result<Incoming, Failed>>,
    driver: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The connection is given up: its driver (and socket) go with it.
        self.driver.abort();
    }
}

impl Events {
    async fn next(&mut self) -> Result<Incoming, Failed> {
        match self {
            Events::V5(e) => Ok(match e.poll().await.map_err(Failed::V5)? {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(_)) => Incoming::Connected,
                rumqttc::v5::Event::Incoming(Packet5::SubAck(_)) => Incoming::Subscribed,
                rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => {
                    Incoming::Publish { reply_to: p.properties.and_then(|pr| pr.response_topic), payload: p.payload }
                }
                rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Disconnect) => Incoming::DisconnectSent,
                _ => Incoming::Other,
            }),
            Events::V311(e) => Ok(match e.poll().await.map_err(Failed::V311)? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => Incoming::Connected,
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => Incoming::Subscribed,
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                    Incoming::Publish { reply_to: reply_to_in_topic(&p.topic), payload: p.payload }
                }
                rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect) => Incoming::DisconnectSent,
                _ => Incoming::Other,
            }),
        }
    }
}

/// Polls the event loop to completion of every step and hands each event on; after a failure it
/// waits [`AFTER_FAILURE`] before rumqttc's next attempt. Ends when the owner is gone.
async fn drive(mut events: Events, to: tokio::sync::mpsc::Sender<Result<Incoming, Failed>>) {
    loop {
        let ev = events.next().await;
        let failed = ev.is_err();
        if to.send(ev).await.is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(AFTER_FAILURE).await;
        }
    }
}

impl Conn {
    /// A client with ID `client_id` for USP endpoint `endpoint_id` speaking `settings.version`,
    /// with at most `inflight` unacknowledged QoS 1 publishes and `cap` requests queued. Spawns
    /// its driver on the current tokio runtime; it connects at once.
    pub fn new(settings: &ClientSettings, client_id: &str, endpoint_id: &str, inflight: u16, cap: usize) -> Conn {
        let (publisher, events) = match settings.version {
            MqttVersion::V5 => {
                let (c, e) = rumqttc::v5::AsyncClient::new(settings.options(client_id, endpoint_id, inflight), cap);
                (Publisher::V5(c), Events::V5(e))
            }
            MqttVersion::V311 => {
                let (c, mut e) = rumqttc::AsyncClient::new(settings.options_v311(client_id, inflight), cap);
                e.network_options.set_connection_timeout(settings.connect_timeout.as_secs().max(1));
                // As for MQTT 5 (`ClientSettings::options`): a Record is not held back by Nagle.
                e.network_options.set_tcp_nodelay(true);
                (Publisher::V311(c), Events::V311(e))
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let driver = tokio::spawn(drive(events, tx)).abort_handle();
        Conn { publisher, events: rx, driver }
    }

    /// The next event of the connection. Cancel-safe (a channel receive): racing it against
    /// timers loses nothing.
    ///
    /// # Errors
    /// The connection failed or could not be made; the driver tries again after a second.
    pub async fn poll(&mut self) -> Result<Incoming, Failed> {
        match self.events.recv().await {
            Some(ev) => ev,
            // The driver ended (the runtime is shutting down): nothing more will come.
            None => std::future::pending().await,
        }
    }

    /// Sends what is queued (an OperateResp before a reboot) and a DISCONNECT, waiting until the
    /// DISCONNECT is out, the connection fails, or a second passes.
    pub async fn disconnect(&mut self) {
        self.publisher.disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match self.poll().await {
                    Ok(Incoming::DisconnectSent) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}
