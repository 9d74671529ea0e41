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

fn dynamic_decl(d: &serde_norway::Value) -> Result<DynamicDecl, String> {
    const HELP: &str = "`dynamic` must be uptime, current_time, {counter: <per second>} or {entries: <table path>}";
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
