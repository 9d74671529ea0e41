//! USP Message Transfer Protocols: the I/O beside the engine for TR-369 Agents.
//!
//! Owns the MQTT connections (`rumqttc`, MQTT 5 or 3.1.1, one connection per Agent,
//! [`mqtt_conn`]), the TR-369 MQTT binding's topics and reply-to handling ([`mqtt`]), one Agent's
//! MQTT connection loop ([`agent`]) and WebSocket connection loop with the embedded WebSocket
//! Controller ([`ws`]), one Agent's life across connections whatever the MTP: Boot! owed, what
//! its agenda says is due, the state API, `--state-dir` ([`life`]), the embedded MQTT Controller
//! ([`controller`]), what a USP run measures ([`report`]) and merging runs' reports ([`merge`]),
//! the shard threads the Agents run on ([`shards`]) and the run itself ([`run`]). What the Agent
//! answers and when its timers are due is `usp`'s (sans-IO: `usp::agent`, `usp::agenda`); this
//! module moves bytes and sleeps on the run's clock.

pub mod agent;
pub mod controller;
pub mod life;
pub mod merge;
pub mod mqtt;
pub mod mqtt_conn;
pub mod report;
pub mod run;
pub mod shards;
pub mod ws;

pub use mqtt::MqttTarget;

/// Where `--usp-url` points: a broker, or a Controller's WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UspTarget {
    Mqtt(MqttTarget),
    /// `ws://HOST:PORT/PATH` or `wss://…` of a Controller (the Agents connect to it, `v1.usp`).
    WebSocket(String),
}

impl UspTarget {
    /// Parses `--usp-url`: `mqtt://`/`mqtts://` (a broker) or `ws://`/`wss://` (a Controller).
    ///
    /// # Errors
    /// What is wrong with the URL, worded for a usage error.
    pub fn parse(url: &str) -> Result<UspTarget, String> {
        match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
            Some(s) if s == "ws" || s == "wss" => {
                let u = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
                if u.host_str().is_none_or(str::is_empty) {
                    return Err("has no host".into());
                }
                if !u.username().is_empty() || u.password().is_some() {
                    // Never sent (the Controller is not asked to authenticate) and never shown.
                    return Err("must not carry credentials".into());
                }
                Ok(UspTarget::WebSocket(url.to_string()))
            }
            _ => MqttTarget::parse(url).map(UspTarget::Mqtt),
        }
    }
}
