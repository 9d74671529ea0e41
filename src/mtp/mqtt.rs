//! The TR-369 MQTT binding (TR-369 §"MQTT Binding") as these Agents use it: the broker URL, the
//! topics, and the client options (MQTT 5, client ID = endpoint ID, keep-alive, credentials,
//! TLS with the same rustls settings as the CWMP side).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::MqttOptions;
use rumqttc::{TlsConfiguration, Transport};

/// Largest MQTT packet an Agent or the embedded Controller accepts (a GetResp of a whole
/// TR-181 tree is tens of KiB; rumqttc's default is 10 KiB).
pub const MAX_PACKET: u32 = 1 << 20;

/// A broker to connect to (`mqtt://HOST:PORT`, `mqtts://HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTarget {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttTarget {
    /// Parses a broker URL; the port defaults to 1883 (8883 for `mqtts`).
    ///
    /// # Errors
    /// What is wrong with the URL, worded for a usage error.
    pub fn parse(url: &str) -> Result<MqttTarget, String> {
        let u = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            s => return Err(format!("scheme `{s}` is not one of mqtt, mqtts")),
        };
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err("must not carry credentials: use --mqtt-username/--mqtt-password".into());
        }
        if !matches!(u.path(), "" | "/") || u.query().is_some() {
            return Err("must be mqtt://HOST:PORT with no path or query".into());
        }
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(MqttTarget { host: host.trim_matches(['[', ']']).to_string(), port, tls })
    }
}

impl std::fmt::Display for MqttTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The topic an Agent subscribes to and names as its Response Topic
/// (`Device.LocalAgent.MTP.{i}.MQTT.ResponseTopicConfigured`).
pub fn agent_topic(endpoint_id: &str) -> String {
    format!("usp/agent/{endpoint_id}")
}

/// The topic a Controller receives on (`Device.LocalAgent.Controller.{i}.MTP.{i}.MQTT.Topic`).
pub fn controller_topic(endpoint_id: &str) -> String {
    format!("usp/controller/{endpoint_id}")
}

/// Whether a Response Topic from the network may be published to: non-empty (an empty topic
/// is a protocol error: the broker disconnects the publisher), at most 65,535 bytes (the MQTT
/// length prefix; rumqttc would truncate it into a malformed packet) and free of the wildcards
/// `+` and `#` (MQTT 5 §4.7: not allowed in a PUBLISH topic). Otherwise the configured topic is
/// used.
pub fn reply_topic_ok(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= usize::from(u16::MAX) && !topic.contains(['+', '#']) && !topic.contains('\0')
}

/// How to reach and log in to the broker, shared by every connection of a run.
#[derive(Clone)]
pub struct ClientSettings {
    pub target: MqttTarget,
    pub keep_alive: Duration,
    pub credentials: Option<(String, String)>,
    /// The rustls configuration for `mqtts` (the CWMP side's: CA file, skip-verify, mTLS).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Time allowed for the TCP/TLS connect and CONNACK.
    pub connect_timeout: Duration,
}

impl ClientSettings {
    /// MQTT 5 options for a client whose ID is `client_id` (an endpoint ID: TR-369 recommends
    /// the Client Identifier be the endpoint ID), with at most `inflight` unacknowledged QoS 1
    /// publishes.
    pub fn options(&self, client_id: &str, inflight: u16) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.target.host.clone(), self.target.port);
        // rumqttc sizes a per-connection table by this limit (u16::MAX by default: ~6 MiB per
        // Agent, 14 GiB RSS for 1,000 Agents, measured); an Agent has a few messages in flight.
        o.set_outgoing_inflight_upper_limit(inflight);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_start(true);
        o.set_max_packet_size(Some(MAX_PACKET));
        o.set_connection_timeout(self.connect_timeout.as_secs().max(1));
        // Records are small and each waits for an answer: without TCP_NODELAY a Notify written
        // right after a PUBACK sits behind Nagle until the broker's delayed ACK (~40 ms).
        let mut net = o.network_options();
        net.set_tcp_nodelay(true);
        o.set_network_options(net);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(cfg) = &self.tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(cfg.clone())));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_topics() {
        assert!(reply_topic_ok("usp/controller/self::c"));
        assert!(!reply_topic_ok(""));
        assert!(!reply_topic_ok("usp/+/x"));
        assert!(!reply_topic_ok("usp/#"));
        assert!(!reply_topic_ok(&"a".repeat(65_536)));
        assert!(reply_topic_ok(&"a".repeat(65_535)));
    }

    #[test]
    fn urls() {
        assert_eq!(MqttTarget::parse("mqtt://127.0.0.1:1883").unwrap(), MqttTarget { host: "127.0.0.1".into(), port: 1883, tls: false });
        assert_eq!(MqttTarget::parse("mqtts://broker").unwrap().port, 8883);
        assert_eq!(MqttTarget::parse("mqtt://[::1]:1884").unwrap().to_string(), "mqtt://[::1]:1884");
        assert!(MqttTarget::parse("http://x").is_err());
        assert!(MqttTarget::parse("mqtt://u:p@x").is_err());
        assert!(MqttTarget::parse("mqtt://x/topic").is_err());
        assert!(MqttTarget::parse("ws://x").is_err());
        assert_eq!(
            super::super::UspTarget::parse("ws://127.0.0.1:9/usp").unwrap(),
            super::super::UspTarget::WebSocket("ws://127.0.0.1:9/usp".into())
        );
        assert!(super::super::UspTarget::parse("wss://x/").unwrap_err().contains("not supported yet"));
    }
}
