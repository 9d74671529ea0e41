//! The YAML profile schema (serde) and its translation into tree declarations.
//!
//! ```yaml
//! name: example-tr181-gateway
//! cwmp_version: cwmp-1-0          # urn:dslforum-org:cwmp-1-N; GenieACS rejects cwmp-1-4
//! identity:
//!   oui: FEFEFE
//!   serial: "{oui}{index:06X}"    # FEFEFE000000, FEFEFE000001, …
//!   seed: 42                      # for {secret:N}
//! data_model: device.csv         # optional: a GenieACS export or genieacs-sim CSV/JSON, merged first
//! get_rpc_methods_on_bootstrap: false   # ask the ACS for its methods after BOOTSTRAP
//! connection_request_auth: digest        # or basic, or none
//! objects:
//!   Device.NAT.PortMapping.: {writable: true, max_instances: 32}
//! parameters:
//!   Device.DeviceInfo.ModelName: SimGW          # short form: a read-only string
//!   Device.ManagementServer.PeriodicInformInterval: {type: unsignedInt, value: 300, writable: true, min: 1}
//!   Device.DeviceInfo.UpTime: {type: unsignedInt, dynamic: uptime, active_notify: can_deny}
//!   Device.WiFi.Radio.1.Stats.Noise: {type: int, dynamic: {walk: {min: -95, max: -80, step: 60}}}
//!   Device.DeviceInfo.ProcessStatus.CPUUsage: {type: unsignedInt, dynamic: {diurnal: {min: 5, max: 60, peak_hour: 20, noise: 0.2}}}
//!   Device.IP.Interface.1.Stats.BytesReceived: {type: unsignedLong, dynamic: {bursty: {per_second: 250000, burst: 0.8}}}
//! ```
//!
//! Each parameter entry is decoded on its own so an error names the exact key.

use serde::Deserialize;

use crate::model::tree::{ActiveNotify, DynamicDecl, Notification, ObjectDecl, ParamDecl};
use crate::model::types::{Constraint, ParamType};

/// The top level of a profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `cwmp-1-0` … `cwmp-1-4` (or the full URN).
    pub cwmp_version: Option<String>,
    pub identity: IdentityYaml,
    /// A real device's data model, relative to the profile file: a GenieACS CSV export, a
    /// genieacs-sim CSV, or a genieacs-sim JSON file (by extension). `csv:` is the old name.
    #[serde(alias = "csv")]
    pub data_model: Option<String>,
    /// Send a GetRPCMethods request to the ACS after each BOOTSTRAP Inform (default false).
    #[serde(default)]
    pub get_rpc_methods_on_bootstrap: bool,
    /// How Connection Requests authenticate: digest (default), basic or none.
    pub connection_request_auth: Option<String>,
    #[serde(default)]
    pub objects: serde_norway::Mapping,
    #[serde(default)]
    pub parameters: serde_norway::Mapping,
    /// What a downloaded firmware image installs.
    pub firmware: Option<FirmwareYaml>,
    /// The simulated network TR-143 diagnostics measure.
    pub diagnostics: Option<crate::model::diagnostics::DiagnosticsSettings>,
}

/// The `firmware:` section: the SoftwareVersion a "1 Firmware Upgrade Image" installs.
///
/// ```yaml
/// firmware:
///   versions:                       # first match wins; `*` globs the URL or its file name
///     - {match: "*/golden/*", version: "9.0.0"}
///   version_from_file_name: true    # else gw-2.1.0.bin installs 2.1.0
///   failure_share: 0.05             # bad images: 9018 File corrupted, version kept
/// ```
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FirmwareYaml {
    #[serde(default)]
    pub versions: Vec<VersionYaml>,
    #[serde(default)]
    pub version_from_file_name: bool,
    #[serde(default)]
    pub failure_share: f64,
}

/// One `firmware.versions` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionYaml {
    #[serde(rename = "match")]
    pub pattern: String,
    pub version: String,
}

impl FirmwareYaml {
    /// The rule it declares.
    ///
    /// # Errors
    /// A share outside 0–1, an empty pattern or version (the message names the key).
    pub fn rule(&self) -> Result<crate::model::firmware::FirmwareRule, (String, String)> {
        if !(0.0..=1.0).contains(&self.failure_share) {
            return Err(("firmware.failure_share".into(), format!("{} is not a share between 0 and 1", self.failure_share)));
        }
        let mut versions = Vec::new();
        for (i, v) in self.versions.iter().enumerate() {
            if v.pattern.is_empty() || v.version.is_empty() || v.version.len() > 64 {
                return Err((format!("firmware.versions[{i}]"), "needs a non-empty `match` and a `version` of 1 to 64 characters".into()));
            }
            versions.push(crate::model::firmware::VersionMatch { pattern: v.pattern.as_str().into(), version: v.version.as_str().into() });
        }
        Ok(crate::model::firmware::FirmwareRule {
            versions,
            version_from_file_name: self.version_from_file_name,
            failure_share: self.failure_share,
        })
    }
}

/// The `identity:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityYaml {
    pub oui: String,
    #[serde(default = "default_serial")]
    pub serial: String,
    #[serde(default)]
    pub seed: u64,
}

fn default_serial() -> String {
    "{oui}{index:06X}".to_string()
}

/// One object entry.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectYaml {
    pub writable: Option<bool>,
    pub max_instances: Option<u32>,
}

/// One parameter entry (full form).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ParamYaml {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub value: Option<serde_norway::Value>,
    pub writable: Option<bool>,
    pub notify: Option<serde_norway::Value>,
    pub active_notify: Option<String>,
    pub forced_inform: Option<bool>,
    pub secret: Option<bool>,
    pub dynamic: Option<serde_norway::Value>,
    #[serde(rename = "enum")]
    pub allowed: Option<Vec<String>>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub max_length: Option<usize>,
}

/// Text of a YAML scalar (numbers and booleans as written).
pub fn scalar_text(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        serde_norway::Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Turns one `parameters:` entry into a declaration.
///
/// # Errors
/// A message naming what is wrong with the entry (the caller adds file and key).
pub fn param_decl(path: &str, v: &serde_norway::Value) -> Result<ParamDecl, String> {
    if let Some(text) = scalar_text(v).filter(|_| !v.is_mapping()) {
        return Ok(ParamDecl { path: path.to_string(), value: Some(text), ..Default::default() });
    }
    let y: ParamYaml = serde_norway::from_value(v.clone()).map_err(|e| e.to_string())?;
    let ty = match &y.ty {
        None => None,
        Some(t) => Some(ParamType::from_name(t).ok_or_else(|| {
            format!("unknown type `{t}` (string, int, unsignedInt, long, unsignedLong, boolean, dateTime, base64, hexBinary)")
        })?),
    };
    let value = match &y.value {
        None => None,
        Some(v) => Some(scalar_text(v).ok_or("`value` must be a scalar")?),
    };
    let notification = match &y.notify {
        None => None,
        Some(n) => Some(match scalar_text(n).as_deref() {
            Some("off" | "0") => Notification::Off,
            Some("passive" | "1") => Notification::Passive,
            Some("active" | "2") => Notification::Active,
            _ => return Err("`notify` must be off, passive or active".into()),
        }),
    };
    let active_notify = match y.active_notify.as_deref() {
        None => None,
        Some("normal") => Some(ActiveNotify::Normal),
        Some("can_deny") => Some(ActiveNotify::CanDeny),
        Some("forced") => Some(ActiveNotify::Forced),
        Some(o) => return Err(format!("`active_notify: {o}` must be normal, can_deny or forced")),
    };
    let dynamic = match &y.dynamic {
        None => None,
        Some(d) => Some(dynamic_decl(d)?),
    };
    if dynamic.is_some() && value.is_some() {
        return Err("give either `value` or `dynamic`, not both".into());
    }
    let constraint = if y.allowed.is_some() || y.min.is_some() || y.max.is_some() || y.max_length.is_some() {
        Some(Constraint {
            allowed: y.allowed.unwrap_or_default().into_iter().map(Into::into).collect(),
            min: y.min.map(i128::from),
            max: y.max.map(i128::from),
            max_length: y.max_length,
        })
    } else {
        None
    };
    Ok(ParamDecl {
        path: path.to_string(),
        ty,
        writable: y.writable,
        value,
        dynamic,
        notification,
        active_notify,
        forced_inform: y.forced_inform,
        secret: y.secret,
        constraint,
        reported: false,
    })
}

/// `dynamic: {walk: …}`: a bounded random walk.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalkYaml {
    min: i64,
    max: i64,
    /// Seconds between moves.
    #[serde(default = "default_step")]
    step: u32,
}

/// `dynamic: {diurnal: …}`: a daily sine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiurnalYaml {
    min: i64,
    max: i64,
    /// Hour of the day (UTC) of the peak.
    peak_hour: u8,
    /// Share of the range that is walk noise.
    #[serde(default)]
    noise: f64,
    #[serde(default = "default_step")]
    step: u32,
}

/// `dynamic: {bursty: …}`: a traffic counter since boot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstyYaml {
    per_second: u64,
    /// 0 smooth … 1 very bursty.
    #[serde(default = "default_burst")]
    burst: f64,
}

fn default_step() -> u32 {
    60
}

fn default_burst() -> f64 {
    0.8
}

fn generator(kind: &str, v: &serde_norway::Value) -> Result<crate::model::generators::Generator, String> {
    use crate::model::generators::Generator;
    let share = |x: f64, what: &str| {
        if (0.0..=1.0).contains(&x) {
            Ok((x * 1000.0).round() as u16)
        } else {
            Err(format!("`{kind}.{what}` {x} is not a share between 0 and 1"))
        }
    };
    let step = |s: u32| if (1..=86_400).contains(&s) { Ok(s) } else { Err(format!("`{kind}.step` {s} is not 1 to 86400 seconds")) };
    let range = |min: i64, max: i64| {
        if min <= max && max.checked_sub(min).is_some_and(|d| d <= 1 << 52) {
            Ok(())
        } else {
            Err(format!("`{kind}` needs min ≤ max (min {min}, max {max}) within 2^52"))
        }
    };
    let err = |e: serde_norway::Error| format!("`{kind}`: {e}");
    match kind {
        "walk" => {
            let w: WalkYaml = serde_norway::from_value(v.clone()).map_err(err)?;
            range(w.min, w.max)?;
            Ok(Generator::Walk { min: w.min, max: w.max, step_s: step(w.step)?, salt: 0 })
        }
        "diurnal" => {
            let d: DiurnalYaml = serde_norway::from_value(v.clone()).map_err(err)?;
            range(d.min, d.max)?;
            if d.peak_hour > 23 {
                return Err(format!("`diurnal.peak_hour` {} is not 0 to 23", d.peak_hour));
            }
            Ok(Generator::Diurnal {
                min: d.min,
                max: d.max,
                peak_hour: d.peak_hour,
                noise_permille: share(d.noise, "noise")?,
                step_s: step(d.step)?,
                salt: 0,
            })
        }
        _ => {
            let b: BurstyYaml = serde_norway::from_value(v.clone()).map_err(err)?;
            if b.per_second > 1 << 40 {
                return Err(format!("`bursty.per_second` {} is above 2^40", b.per_second));
            }
            Ok(Generator::Bursty { per_second: b.per_second, burst_permille: share(b.burst, "burst")?, salt: 0 })
        }
    }
}

fn dynamic_decl(d: &serde_norway::Value) -> Result<DynamicDecl, String> {
    const HELP: &str = "`dynamic` must be uptime, current_time, {counter: <per second>}, {entries: <table path>}, {walk: {min, max, step}}, {diurnal: {min, max, peak_hour, noise, step}} or {bursty: {per_second, burst}}";
    if let Some(s) = d.as_str() {
        return match s {
            "uptime" => Ok(DynamicDecl::Uptime),
            "current_time" => Ok(DynamicDecl::CurrentTime),
            _ => Err(HELP.into()),
        };
    }
    let map = d.as_mapping().ok_or(HELP)?;
    if map.len() != 1 {
        return Err(HELP.into());
    }
    let (k, v) = map.iter().next().expect("one entry");
    match k.as_str() {
        Some("counter") => Ok(DynamicDecl::Counter { per_second: v.as_u64().ok_or("`counter` takes a whole number per second")? }),
        Some("entries") => Ok(DynamicDecl::EntryCount { table: v.as_str().ok_or("`entries` takes a table path")?.to_string() }),
        Some(kind @ ("walk" | "diurnal" | "bursty")) => Ok(DynamicDecl::Generated(generator(kind, v)?)),
        _ => Err(HELP.into()),
    }
}

/// Turns one `objects:` entry into a declaration.
///
/// # Errors
/// A message naming what is wrong with the entry.
pub fn object_decl(path: &str, v: &serde_norway::Value) -> Result<ObjectDecl, String> {
    if !path.ends_with('.') {
        return Err("object paths end with `.`".into());
    }
    let y: ObjectYaml = if v.is_null() { ObjectYaml::default() } else { serde_norway::from_value(v.clone()).map_err(|e| e.to_string())? };
    Ok(ObjectDecl { path: path.to_string(), writable: y.writable, max_instances: y.max_instances })
}
