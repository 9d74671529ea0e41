//! The scenario file's YAML schema (serde, every section `deny_unknown_fields`). Each value is
//! checked while it is read (durations, shares, multipliers, URLs, addresses, OUIs, templates,
//! thresholds), so serde_norway reports the key path and the line of a bad value; rules across
//! sections are `super::resolve`'s.
//!
//! Durations and counts use the command line's own parsers (`cli::parse_duration`,
//! `cli::parse_count`), so `10m` or `100k` mean the same in a file as in a flag.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::engine::phase::PhaseKind;
use crate::engine::route::{expand_cidr, Mapping};
use crate::plan::MAX_MULTIPLIER;

/// Most source addresses a scenario may list (after CIDR expansion).
pub const MAX_SOURCES: usize = 1024;

/// Most ACS endpoints a scenario may list.
pub const MAX_ENDPOINTS: usize = 64;

/// The top level of a scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The populations, in rank order; none: the run's `--profile` for every CPE.
    #[serde(default)]
    pub fleets: Vec<FleetYaml>,
    /// Where CPEs inform; absent: the embedded ACS.
    pub acs: Option<AcsYaml>,
    /// Local addresses bound per CPE (rank mod n): addresses and CIDR blocks.
    #[serde(default, deserialize_with = "sources")]
    pub sources: Vec<IpAddr>,
    /// The embedded ACS (only without `acs:`; both is refused by `super::prepare`).
    pub embedded_acs: Option<EmbeddedAcsYaml>,
    /// TR-369: the fleet runs as USP Agents (`--protocol usp`) with these MTP settings.
    pub usp: Option<UspYaml>,
    /// Run settings by their flag names (a flag on the command line wins).
    #[serde(default)]
    pub run: RunYaml,
    /// The timeline, back to back from the start.
    #[serde(default)]
    pub phases: Vec<PhaseYaml>,
    /// Pass/fail rules, as `--threshold` (ignored when `--threshold` is given; checked by
    /// `super::prepare`, which knows their lines).
    #[serde(default)]
    pub thresholds: Vec<String>,
}

/// One fleet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetYaml {
    pub name: String,
    /// A profile file or directory, relative to the scenario file; absent: the built-in
    /// example-tr181-gateway.
    pub profile: Option<PathBuf>,
    /// How many CPEs (give `count` for every fleet, or `share` for every fleet).
    #[serde(default, deserialize_with = "count")]
    pub count: Option<u32>,
    /// Its share of `run.cpes` (or `--cpes`), 0 < share ≤ 1.
    #[serde(default, deserialize_with = "share")]
    pub share: Option<f64>,
    /// Six hex digits, overriding the profile's `identity.oui`.
    #[serde(default, deserialize_with = "oui")]
    pub oui: Option<String>,
    /// A serial number template with `{index…}`, overriding the profile's `identity.serial`.
    #[serde(default, deserialize_with = "serial")]
    pub serial: Option<String>,
    /// Parameters reported with active notification from the start (as if the ACS had set it
    /// with SetParameterAttributes): targets of value-change waves.
    #[serde(default)]
    pub notify_active: Vec<String>,
}

/// `acs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsYaml {
    /// One or more ACS URLs (http:// or https://).
    #[serde(deserialize_with = "endpoints")]
    pub endpoints: Vec<String>,
    /// round-robin (by rank) or serial-hash; sticky across sessions either way.
    #[serde(default)]
    pub mapping: MappingYaml,
}

/// `usp:`: the run's Agents and where they connect, by their flag names without the `usp-` or
/// leading `--` (`url` is `--usp-url`, `endpoint-id` `--usp-endpoint-id`); every key optional
/// (no `url`: the embedded Controller over WebSocket, as without `--usp-url`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UspYaml {
    pub url: Option<String>,
    pub controller_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub mqtt_version: Option<MqttVersionYaml>,
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub mqtt_keep_alive: Option<Duration>,
}

/// `usp.mqtt-version`: `5` or `3.1.1` (a number or a string in the file).
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum MqttVersionYaml {
    #[serde(rename = "5", alias = "5.0")]
    V5,
    #[serde(rename = "3.1.1")]
    V311,
}

impl MqttVersionYaml {
    /// The `--mqtt-version` value.
    pub fn flag_value(self) -> &'static str {
        match self {
            MqttVersionYaml::V5 => "5",
            MqttVersionYaml::V311 => "3.1.1",
        }
    }
}

/// `acs.mapping`.
#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum MappingYaml {
    #[default]
    RoundRobin,
    SerialHash,
}

impl From<MappingYaml> for Mapping {
    fn from(m: MappingYaml) -> Mapping {
        match m {
            MappingYaml::RoundRobin => Mapping::RoundRobin,
            MappingYaml::SerialHash => Mapping::SerialHash,
        }
    }
}

/// `embedded_acs:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedAcsYaml {
    /// The listen backlog (pending connections the kernel queues, capped by
    /// `net.core.somaxconn`).
    #[serde(default, deserialize_with = "backlog")]
    pub backlog: Option<u32>,
    /// RPCs to push, in `--push` form ("Reboot r1", "GPV Device.DeviceInfo.").
    #[serde(default)]
    pub push: Vec<String>,
    /// once (per CPE) or every-session.
    #[serde(default)]
    pub push_mode: PushModeYaml,
}

/// `embedded_acs.push_mode`.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PushModeYaml {
    #[default]
    Once,
    EverySession,
}

/// `run:`: run settings by their flag names.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunYaml {
    #[serde(default, deserialize_with = "count")]
    pub cpes: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub connection_mode: Option<ConnectionModeYaml>,
    #[serde(default, deserialize_with = "duration")]
    pub inform_interval: Option<Duration>,
    #[serde(default, deserialize_with = "multiplier")]
    pub interval_multiplier: Option<f64>,
    pub shards: Option<u16>,
    #[serde(default, deserialize_with = "duration")]
    pub drain_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub progress_interval: Option<Duration>,
    pub first_index: Option<u32>,
    pub acs_username: Option<String>,
    pub acs_password: Option<String>,
}

/// `run.connection-mode`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionModeYaml {
    Pooled,
    PerSession,
}

/// One phase: a name and exactly one of the kinds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, try_from = "PhaseFields")]
pub struct PhaseYaml {
    pub name: Option<String>,
    pub kind: PhaseYamlKind,
}

/// A phase's kind, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseYamlKind {
    /// The fleet's first contacts: spread over `spread`, or `rate` per second.
    Boot { spread: Option<Duration>, rate: Option<f64> },
    /// Anything the engine runs as it is (with its duration).
    Engine { kind: PhaseKind, duration: Duration },
}

impl PhaseYamlKind {
    /// The kind's key in the file (`boot`, `periodic`, …).
    pub fn name(&self) -> &'static str {
        match self {
            PhaseYamlKind::Boot { .. } => "boot",
            PhaseYamlKind::Engine { kind, .. } => match kind {
                PhaseKind::Boot => "boot",
                PhaseKind::Periodic { .. } => "periodic",
                PhaseKind::Ramp { .. } => "ramp",
                PhaseKind::Outage { .. } => "outage",
                PhaseKind::RebootWave { .. } => "reboot_wave",
                PhaseKind::ValueChangeWave { .. } => "value_change_wave",
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFields {
    name: Option<String>,
    boot: Option<BootYaml>,
    periodic: Option<PeriodicYaml>,
    ramp: Option<RampYaml>,
    outage: Option<OutageYaml>,
    reboot_wave: Option<WaveYaml>,
    value_change_wave: Option<ValueWaveYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BootYaml {
    #[serde(default, deserialize_with = "duration")]
    spread: Option<Duration>,
    #[serde(default, deserialize_with = "rate")]
    rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodicYaml {
    #[serde(deserialize_with = "multiplier_req")]
    multiplier: f64,
    #[serde(deserialize_with = "phase_duration")]
    duration: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RampYaml {
    #[serde(deserialize_with = "multiplier_req")]
    from: f64,
    #[serde(deserialize_with = "multiplier_req")]
    to: f64,
    #[serde(deserialize_with = "phase_duration")]
    duration: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutageYaml {
    #[serde(deserialize_with = "phase_duration")]
    duration: Duration,
    /// The power-on storm's spread (default 0s: every CPE at once).
    #[serde(default, deserialize_with = "duration")]
    storm_spread: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveYaml {
    #[serde(deserialize_with = "share_req")]
    share: f64,
    #[serde(deserialize_with = "duration_req")]
    over: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueWaveYaml {
    #[serde(deserialize_with = "share_req")]
    share: f64,
    #[serde(deserialize_with = "duration_req")]
    over: Duration,
    parameter: String,
    #[serde(deserialize_with = "scalar")]
    value: String,
}

/// The phase kinds, for messages.
pub const PHASE_KINDS: &str = "boot, periodic, ramp, outage, reboot_wave, value_change_wave";

impl TryFrom<PhaseFields> for PhaseYaml {
    type Error = String;

    fn try_from(f: PhaseFields) -> Result<PhaseYaml, String> {
        let given = [
            f.boot.is_some(),
            f.periodic.is_some(),
            f.ramp.is_some(),
            f.outage.is_some(),
            f.reboot_wave.is_some(),
            f.value_change_wave.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err(format!("a phase has exactly one of {PHASE_KINDS} (this one has {given})"));
        }
        let engine = |kind, duration| PhaseYamlKind::Engine { kind, duration };
        let kind = if let Some(b) = f.boot {
            if b.spread.is_some() == b.rate.is_some() {
                return Err("boot: give exactly one of spread (e.g. 60s) or rate (CPEs per second)".into());
            }
            PhaseYamlKind::Boot { spread: b.spread, rate: b.rate }
        } else if let Some(p) = f.periodic {
            engine(PhaseKind::Periodic { multiplier: p.multiplier }, p.duration)
        } else if let Some(r) = f.ramp {
            engine(PhaseKind::Ramp { from: r.from, to: r.to }, r.duration)
        } else if let Some(o) = f.outage {
            engine(PhaseKind::Outage { storm_spread: o.storm_spread.unwrap_or_default() }, o.duration)
        } else if let Some(w) = f.reboot_wave {
            engine(PhaseKind::RebootWave { share: w.share }, w.over)
        } else if let Some(w) = f.value_change_wave {
            if w.parameter.is_empty() {
                return Err("value_change_wave.parameter must name a parameter".into());
            }
            engine(PhaseKind::ValueChangeWave { share: w.share, parameter: w.parameter, value: w.value }, w.over)
        } else {
            unreachable!("exactly one kind was given")
        };
        Ok(PhaseYaml { name: f.name, kind })
    }
}

// === value parsers: each error names the value and the allowed range ===

/// A number or a string, as text.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_norway::Value::deserialize(d)? {
        serde_norway::Value::String(s) => Ok(s),
        serde_norway::Value::Number(n) => Ok(n.to_string()),
        serde_norway::Value::Bool(b) => Ok(b.to_string()),
        other => Err(de::Error::custom(format!("expected a scalar, found {other:?}"))),
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text(d)
}

fn duration_req<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = text(d)?;
    let v = crate::cli::parse_duration(&t).map_err(de::Error::custom)?;
    if v > crate::plan::MAX_DURATION {
        return Err(de::Error::custom(format!("`{t}` is longer than 8760h")));
    }
    Ok(v)
}

/// A phase's `duration`: a phase of no time would end before it began.
fn phase_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = text(d)?;
    let v = crate::cli::parse_duration(&t).map_err(de::Error::custom)?;
    if v.is_zero() || v > crate::plan::MAX_DURATION {
        return Err(de::Error::custom(format!("duration `{t}` must be greater than 0 and at most 8760h")));
    }
    Ok(v)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration_req(d).map(Some)
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    crate::cli::parse_count(&text(d)?).map(Some).map_err(de::Error::custom)
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<(String, f64), D::Error> {
    let t = text(d)?;
    let v: f64 = t.trim().parse().map_err(|_| de::Error::custom(format!("`{t}` is not a number")))?;
    Ok((t, v))
}

fn share_req<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let (t, v) = number(d)?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(de::Error::custom(format!("share `{t}` must be greater than 0 and at most 1 (0.25 is 25 %)")));
    }
    Ok(v)
}

fn share<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    share_req(d).map(Some)
}

fn multiplier_req<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let (t, v) = number(d)?;
    if !(v.is_finite() && v > 0.0 && v <= MAX_MULTIPLIER) {
        return Err(de::Error::custom(format!("multiplier `{t}` must be greater than 0 and at most {MAX_MULTIPLIER}")));
    }
    Ok(v)
}

fn multiplier<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    multiplier_req(d).map(Some)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let (t, v) = number(d)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(de::Error::custom(format!("rate `{t}` must be a finite number of CPEs per second greater than 0")));
    }
    Ok(Some(v))
}

fn backlog<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let (t, v) = number(d)?;
    if !((1.0..=65_535.0).contains(&v) && v.fract() == 0.0) {
        return Err(de::Error::custom(format!("backlog `{t}` must be a whole number 1 … 65535")));
    }
    Ok(Some(v as u32))
}

fn oui<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let t = text(d)?;
    if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(de::Error::custom(format!("oui `{t}` must be six hex digits, e.g. A0B1C2")));
    }
    Ok(Some(t.to_ascii_uppercase()))
}

fn serial<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let t = text(d)?;
    crate::model::identity::Template::compile(&t, 0).map_err(|e| de::Error::custom(format!("serial `{t}`: {e}")))?;
    // Without the index every CPE of the fleet would have the same serial.
    if !t.contains("{index") {
        return Err(de::Error::custom(format!("serial `{t}` must contain {{index}} (or {{index:08X}} …) so serials never collide")));
    }
    Ok(Some(t))
}

fn sources<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    let items: Vec<String> = match serde_norway::Value::deserialize(d)? {
        serde_norway::Value::String(s) => vec![s],
        serde_norway::Value::Sequence(seq) => seq
            .into_iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| de::Error::custom("sources: each entry is an address or CIDR block in quotes"))
            })
            .collect::<Result<_, D::Error>>()?,
        _ => return Err(de::Error::custom("sources: an address, a CIDR block, or a list of them")),
    };
    let mut out = Vec::new();
    for item in &items {
        out.extend(expand_cidr(item, MAX_SOURCES).map_err(|e| de::Error::custom(format!("sources: {e}")))?);
        if out.len() > MAX_SOURCES {
            return Err(de::Error::custom(format!("sources: at most {MAX_SOURCES} addresses")));
        }
    }
    if out.iter().any(IpAddr::is_ipv4) && out.iter().any(IpAddr::is_ipv6) {
        return Err(de::Error::custom("sources: all IPv4 or all IPv6 (a CPE binds one address family)"));
    }
    Ok(out)
}

fn endpoints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let urls: Vec<String> = match serde_norway::Value::deserialize(d)? {
        serde_norway::Value::String(s) => vec![s],
        v => serde_norway::from_value(v).map_err(|e| de::Error::custom(format!("endpoints: a URL or a list of URLs ({e})")))?,
    };
    if urls.is_empty() || urls.len() > MAX_ENDPOINTS {
        return Err(de::Error::custom(format!("endpoints: 1 … {MAX_ENDPOINTS} URLs")));
    }
    for u in &urls {
        crate::plan::parse_acs_url(u)
            .map_err(|e| de::Error::custom(format!("endpoint `{}`: {}", crate::transport::without_userinfo(u), e.rule)))?;
    }
    Ok(urls)
}
