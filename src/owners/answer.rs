//! One CPE's state as the API shows it (the horde's state dump), and local changes to it.
//! Pure functions over the model and a `CpeState`: the CPE's owner (its shard) calls them.

use serde_json::{json, Map, Value};

use crate::cpe::CpeState;
use crate::model::{Loc, Model, NodeKind, Notification, ParamTree, ReadFor};
use crate::time::{format_datetime, UnixMillis};

/// Why the API refused a request: an HTTP status and a reason for the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    pub fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal { status, reason: reason.into() }
    }
}

fn datetime(t: UnixMillis) -> String {
    String::from_utf8_lossy(&format_datetime(t)).into_owned()
}

fn notification_name(n: Notification) -> &'static str {
    match n {
        Notification::Off => "off",
        Notification::Passive => "passive",
        Notification::Active => "active",
    }
}

/// The whole state of one CPE: every parameter with its value, type, source and attributes;
/// object instances; pending events; retry count; boot time.
pub fn inspect(model: &Model, cpe: &CpeState, now: UnixMillis) -> Value {
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
    let tree = &model.tree;
    let mut params = Map::new();
    let mut objects = Vec::new();
    dev.walk_below(&Loc::plain(ParamTree::ROOT), &mut |loc, node| match &node.kind {
        NodeKind::Param(spec) => {
            let mut p = json!({
                "value": dev.value_string(loc, ReadFor::Local),
                "type": spec.ty.xsi_type(),
                "writable": spec.writable,
                "source": dev.source(loc).as_str(),
                "notification": notification_name(dev.notification(loc)),
            });
            if dev.subscriber_access(loc) {
                p["access_list"] = json!(["Subscriber"]);
            }
            params.insert(tree.path_string(loc), p);
        }
        NodeKind::Instance => objects.push(tree.path_string(loc)),
        _ => {}
    });
    let pending: Vec<String> = cpe.delta.changed().iter().map(|l| tree.path_string(l)).collect();
    json!({
        "id": cpe.id.to_string(),
        "serial": model.identity.serial.to_string_for(&model.identity, cpe.id),
        "bootstrapped": cpe.bootstrapped,
        "retry_count": cpe.retry_count,
        "boot_time": datetime(cpe.boot_at),
        "pending_events": cpe.events.describe(cpe.delta.changed().len()),
        "pending_value_changes": pending,
        "instances": objects,
        "parameters": params,
    })
}

/// What a local change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// No parameter with notification changed.
    None,
    /// Passive only: the changes ride along with the next Inform.
    Passive,
    /// At least one active: a `4 VALUE CHANGE` session is due now.
    Active,
}

/// Sets `params` (`name → value`) locally, all or nothing: an unknown name or a value that does
/// not fit the type changes nothing.
///
/// # Errors
/// 400 with the parameter and the reason.
pub fn set_local(model: &Model, cpe: &mut CpeState, params: &[(String, String)], now: UnixMillis) -> Result<Notify, Refusal> {
    if params.is_empty() {
        return Err(Refusal::new(400, "no parameters given"));
    }
    // Try on a copy first, so a bad entry leaves the CPE as it was.
    let mut trial = cpe.clone();
    let mut notify = Notify::None;
    for (name, value) in params {
        let n = trial.device_mut(model, now).set_local(name, value).map_err(|f| {
            let why = match f.code() {
                9005 => "no such parameter",
                9006 => "value does not fit the parameter's type",
                _ => "invalid value",
            };
            Refusal::new(400, format!("{name}: {why} (CWMP fault {})", f.code()))
        })?;
        notify = match (notify, n) {
            (_, Notification::Active) | (Notify::Active, _) => Notify::Active,
            (_, Notification::Passive) | (Notify::Passive, _) => Notify::Passive,
            _ => Notify::None,
        };
    }
    *cpe = trial;
    Ok(notify)
}
