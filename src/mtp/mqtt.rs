//! The TR-369 MQTT binding (TR-369 §"MQTT Binding") as these Agents use it: the broker URL, the
//! protocol version (MQTT 5, or 3.1.1 with the reply-to Topic in the Topic Name, R-MQTT.24/25),
//! the topics, and the client options (client ID = endpoint ID, keep-alive, credentials, TLS with
//! the same rustls settings as the CWMP side).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::MqttOptions;
use rumqttc::{TlsConfiguration, Transport};

/// Largest MQTT packet an Agent or the embedded Controller accepts (a GetResp of a whole
/// TR-181 tree is tens of KiB; rumqttc's default is 10 KiB).
pub const MAX_PACKET: u32 = 1 << 20;

/// The MQTT version a run speaks (`--mqtt-version`). TR-369 R-MQTT.1/2: 5.0 is required, 3.1.1
/// optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 5.0: the reply-to Topic in the PUBLISH Response Topic property (R-MQTT.23/26).
    #[default]
    V5,
    /// MQTT 3.1.1: the reply-to Topic at the end of the PUBLISH Topic Name (R-MQTT.24/25).
    V311,
}

impl MqttVersion {
    /// Parses `--mqtt-version`: `5` or `3.1.1`.
    ///
    /// # Errors
    /// Any other value, worded for a usage error.
    pub fn parse(s: &str) -> Result<MqttVersion, String> {
        match s {
            "5" | "5.0" => Ok(MqttVersion::V5),
            "3.1.1" => Ok(MqttVersion::V311),
            _ => Err("must be 5 or 3.1.1".into()),
        }
    }

    /// As the report and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            MqttVersion::V5 => "MQTT 5",
            MqttVersion::V311 => "MQTT 3.1.1",
        }
    }
}

/// The Content Type of a PUBLISH carrying a USP Record over MQTT 5 (R-MQTT.27).
pub const CONTENT_TYPE: &str = "application/vnd.bbf.usp.msg";

/// What an MQTT 3.1.1 Topic Name carries before the reply-to Topic (R-MQTT.24).
const REPLY_TO: &str = "/reply-to=";

/// The MQTT 3.1.1 Topic Name for a Record to `topic` whose answer goes to `reply_to`
/// (R-MQTT.24): `topic/reply-to=` and `reply_to` with every `/` as `%2F`.
pub fn topic_with_reply_to(topic: &str, reply_to: &str) -> String {
    format!("{topic}{REPLY_TO}{}", reply_to.replace('/', "%2F"))
}

/// The reply-to Topic an MQTT 3.1.1 Topic Name carries (R-MQTT.25: what follows the last
/// `/reply-to=`, `%2F` read as `/`), if any.
pub fn reply_to_in_topic(topic: &str) -> Option<String> {
    topic.rfind(REPLY_TO).map(|at| topic[at + REPLY_TO.len()..].replace("%2F", "/"))
}

/// The Topic Filter an endpoint subscribes to for `topic`: the topic itself over MQTT 5; over
/// 3.1.1 `topic/#`, which matches the topic and every `topic/reply-to=…` Topic Name.
pub fn subscription(topic: &str, version: MqttVersion) -> String {
    match version {
        MqttVersion::V5 => topic.to_string(),
        MqttVersion::V311 => format!("{topic}/#"),
    }
}

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
    pub version: MqttVersion,
    pub keep_alive: Duration,
    pub credentials: Option<(String, String)>,
    /// The rustls configuration for `mqtts` (the CWMP side's: CA file, skip-verify, mTLS).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Time allowed for the TCP/TLS connect and CONNACK.
    pub connect_timeout: Duration,
}

impl ClientSettings {
    /// MQTT 3.1.1 options for a client whose ID is `client_id` (R-MQTT.8: the endpoint ID), with
    /// at most `inflight` unacknowledged QoS 1 publishes; the same keep-alive, credentials and TLS
    /// as [`ClientSettings::options`]. The connect timeout is the event loop's
    /// (`EventLoop::network_options`).
    pub fn options_v311(&self, client_id: &str, inflight: u16) -> rumqttc::MqttOptions {
        let mut o = rumqttc::MqttOptions::new(client_id, self.target.host.clone(), self.target.port);
        o.set_inflight(inflight);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(true);
        o.set_max_packet_size(MAX_PACKET as usize, MAX_PACKET as usize);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(cfg) = &self.tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(cfg.clone())));
        }
        o
    }

    /// MQTT 5 options for a client whose ID is `client_id` (an endpoint ID: TR-369 recommends
    /// the Client Identifier be the endpoint ID) on behalf of USP endpoint `endpoint_id` (sent as
    /// the CONNECT User Property `usp-endpoint-id`, R-MQTT.13), with at most `inflight`
    /// unacknowledged QoS 1 publishes.
    pub fn options(&self, client_id: &str, endpoint_id: &str, inflight: u16) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.target.host.clone(), self.target.port);
        o.set_user_properties(vec![("usp-endpoint-id".to_string(), endpoint_id.to_string())]);
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
    fn reply_to_in_the_topic_name() {
        // TR-369's example (R-MQTT.24).
        let name = topic_with_reply_to("usp/agents/cid:3AA3F8:my-unique-usp-id-42", "usp/controllers/oui:00256D:my-unique-bbf-id-42");
        assert_eq!(name, "usp/agents/cid:3AA3F8:my-unique-usp-id-42/reply-to=usp%2Fcontrollers%2Foui:00256D:my-unique-bbf-id-42");
        assert_eq!(reply_to_in_topic(&name).as_deref(), Some("usp/controllers/oui:00256D:my-unique-bbf-id-42"));
        // The last `/reply-to=` counts; none, none.
        assert_eq!(reply_to_in_topic("a/reply-to=b/reply-to=c%2Fd").as_deref(), Some("c/d"));
        assert_eq!(reply_to_in_topic("usp/agent/os::x"), None);
        assert_eq!(subscription("usp/agent/os::x", MqttVersion::V311), "usp/agent/os::x/#");
        assert_eq!(subscription("usp/agent/os::x", MqttVersion::V5), "usp/agent/os::x");
        assert_eq!(MqttVersion::parse("3.1.1"), Ok(MqttVersion::V311));
        assert!(MqttVersion::parse("4").is_err());
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
        assert_eq!(super::super::UspTarget::parse("wss://x/").unwrap(), super::super::UspTarget::WebSocket("wss://x/".into()));
        assert!(super::super::UspTarget::parse("wss://u:p@x/").is_err());
    }
}
