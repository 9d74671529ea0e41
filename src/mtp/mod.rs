//! USP Message Transfer Protocols: the I/O beside the engine for TR-369 Agents.
//!
//! Owns the MQTT connections (`rumqttc`, MQTT 5, one connection per Agent), the TR-369 MQTT
//! binding's topics and Response Topic handling ([`mqtt`]), one Agent's connection loop with
//! keep-alive, reconnect back-off and Notify retries ([`agent`]), the embedded Controller
//! ([`controller`]), what a USP run measures ([`report`]) and the run itself ([`run`]).
//! What the Agent answers is `usp`'s (sans-IO); this module moves bytes and reads clocks.

pub mod agent;
pub mod controller;
pub mod life;
pub mod mqtt;
pub mod report;
pub mod run;

pub use mqtt::MqttTarget;
