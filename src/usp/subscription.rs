//! `Device.LocalAgent.Subscription.{i}` (TR-181, TR-369 §"Notifications and Subscription
//! Mechanism"): which Notifies an event causes. Every Notify an Agent sends comes from here: one
//! per enabled subscription whose NotifType and ReferenceList match the event, addressed to the
//! subscription's Recipient Controller, carrying the subscription's ID, with `send_resp` = its
//! NotifRetry and, when retried, the NotifExpiration that ends the retries. Subscriptions are
//! ordinary table instances (a Controller Adds them; the factory defaults in [`super::defaults`]
//! add the run Controller's Boot! and Periodic!), so they live in the CPE's delta like any value.
//!
//! Sans-IO: the caller sends what [`notifies`] returns and keeps the retry state.

use std::collections::HashMap;
use std::time::Duration;

use rusp_lib::usp::Notify;

use super::notify::{self, BootCause};
use super::operate::Accepted;
use super::path::{is_search, resolve};
use crate::model::device::Target;
use crate::model::Device;

/// The subscription table, relative to the root object.
pub const TABLE: &str = "LocalAgent.Subscription.";
/// The Controller table, relative to the root object (a Recipient points at one of its rows).
pub const CONTROLLERS: &str = "LocalAgent.Controller.";

/// Something that happened on the Agent which a subscription may ask to hear about.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// TR-181 `Device.Boot!` (NotifType Event, ReferenceList `Device.Boot!`).
    Boot { cause: BootCause, command_key: &'a str },
    /// TR-181 `Device.LocalAgent.Periodic!` (NotifType Event), for the Controller `controller`
    /// (endpoint ID) whose PeriodicNotifInterval elapsed: only its own subscriptions hear it.
    Periodic { controller: &'a str },
    /// A parameter's value changed (NotifType ValueChange): its full path.
    ValueChange { path: &'a str },
    /// An instance was created (NotifType ObjectCreation): its path `Device.X.3.`.
    ObjectCreation { path: &'a str },
    /// An instance was deleted (NotifType ObjectDeletion): its path.
    ObjectDeletion { path: &'a str },
    /// An asynchronous command finished (NotifType OperationComplete), with its output.
    OperationComplete { accepted: &'a Accepted, output: &'a HashMap<String, String> },
}

impl Event<'_> {
    /// The NotifType a subscription must have to hear this event.
    pub fn notif_type(&self) -> &'static str {
        match self {
            Event::Boot { .. } | Event::Periodic { .. } => "Event",
            Event::ValueChange { .. } => "ValueChange",
            Event::ObjectCreation { .. } => "ObjectCreation",
            Event::ObjectDeletion { .. } => "ObjectDeletion",
            Event::OperationComplete { .. } => "OperationComplete",
        }
    }

    /// The path a ReferenceList entry must name (itself or an object above it).
    fn path(&self, root: &str) -> String {
        match self {
            Event::Boot { .. } => format!("{root}.Boot!"),
            Event::Periodic { .. } => format!("{root}.LocalAgent.Periodic!"),
            Event::ValueChange { path } | Event::ObjectCreation { path } | Event::ObjectDeletion { path } => path.to_string(),
            Event::OperationComplete { accepted, .. } => accepted.path.clone(),
        }
    }
}

/// One Notify to send, and how.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The Recipient Controller's endpoint ID.
    pub to: String,
    /// The Notify, with the subscription's ID and `send_resp` = NotifRetry.
    pub notify: Notify,
    /// NotifRetry: resend until a NotifyResp arrives (else fire and forget).
    pub retry: bool,
    /// NotifExpiration when set (> 0): retries end this long after the first send.
    pub expires_after: Option<Duration>,
}

/// The Notifies `event` causes on the Agent whose data model `dev` is, in subscription instance
/// order. A subscription with an empty Recipient notifies `default_controller` (the Controller
/// the Agent reports to); one whose Recipient names no Controller row with an EndpointID
/// notifies no one.
pub fn notifies(dev: &Device<'_>, event: &Event<'_>, default_controller: &str) -> Vec<Outgoing> {
    let root = dev.model.tree.root_name();
    let table = format!("{root}.{TABLE}");
    let Ok(targets) = dev.resolve(&table) else { return Vec::new() };
    let Some(Target::Object(t)) = targets.first() else { return Vec::new() };
    let notif_type = event.notif_type();
    let path = event.path(root);
    let mut out = Vec::new();
    for n in dev.instances(t.node, &t.inst) {
        let p = format!("{table}{n}.");
        let get = |name: &str| dev.get(&format!("{p}{name}")).unwrap_or_default();
        if get("Enable") != "true" || get("NotifType") != notif_type {
            continue;
        }
        let refs = get("ReferenceList");
        if !refs.split(',').map(str::trim).filter(|r| !r.is_empty()).any(|r| names(dev, r, &path)) {
            continue;
        }
        let Some(to) = recipient(dev, &get("Recipient"), default_controller) else { continue };
        if let Event::Periodic { controller } = event {
            if to != *controller {
                continue;
            }
        }
        let id = get("ID");
        let retry = get("NotifRetry") == "true";
        let expires_after = get("NotifExpiration").parse::<u64>().ok().filter(|s| *s > 0).map(Duration::from_secs);
        let subscription_id = if id.is_empty() { p } else { id };
        let notify = build(dev, event, subscription_id, retry);
        out.push(Outgoing { to, notify, retry, expires_after });
    }
    out
}

fn build(dev: &Device<'_>, event: &Event<'_>, id: String, send_resp: bool) -> Notify {
    match event {
        Event::Boot { cause, command_key } => notify::boot(dev, *cause, command_key, id, send_resp),
        Event::Periodic { .. } => notify::periodic(dev.model.tree.root_name(), id, send_resp),
        Event::ValueChange { path } => notify::value_change(id, send_resp, path.to_string(), dev.get(path).unwrap_or_default()),
        Event::ObjectCreation { path } => notify::object_creation(id, send_resp, path.to_string(), super::keys::values(dev, path)),
        Event::ObjectDeletion { path } => notify::object_deletion(id, send_resp, path.to_string()),
        Event::OperationComplete { accepted, output } => notify::operation_complete(id, send_resp, accepted, (*output).clone()),
    }
}

/// The endpoint ID a Recipient (`Device.LocalAgent.Controller.1`, with or without the trailing
/// dot) points at; an empty Recipient is the Agent's own Controller.
pub fn recipient(dev: &Device<'_>, reference: &str, default_controller: &str) -> Option<String> {
    let r = reference.trim();
    if r.is_empty() {
        return Some(default_controller.to_string());
    }
    let base = r.strip_suffix('.').unwrap_or(r);
    let root = dev.model.tree.root_name();
    // Only rows of the Controller table are Controllers.
    let number = base.strip_prefix(&format!("{root}.{CONTROLLERS}"))?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A disabled Controller is not talked to (TR-181 `Controller.{i}.Enable`).
    if dev.get(&format!("{base}.Enable")).as_deref() == Some("false") {
        return None;
    }
    dev.get(&format!("{base}.EndpointID")).filter(|e| !e.is_empty())
}

/// The Controller row (`Device.LocalAgent.Controller.1`) whose EndpointID is `endpoint_id`: what
/// an Agent writes into the Recipient of a subscription that Controller Adds.
pub fn controller_row(dev: &Device<'_>, endpoint_id: &str) -> Option<String> {
    let root = dev.model.tree.root_name();
    let table = format!("{root}.{CONTROLLERS}");
    let targets = dev.resolve(&table).ok()?;
    let Some(Target::Object(t)) = targets.first() else { return None };
    dev.instances(t.node, &t.inst)
        .into_iter()
        .map(|n| format!("{table}{n}"))
        .find(|row| dev.get(&format!("{row}.EndpointID")).as_deref() == Some(endpoint_id))
}

/// The PeriodicNotifInterval (seconds, ≥ 1) of the enabled Controller row whose EndpointID is
/// `endpoint_id`: how often that Controller's Periodic! subscriptions fire. `None` without one.
pub fn periodic_interval(dev: &Device<'_>, endpoint_id: &str) -> Option<Duration> {
    let row = controller_row(dev, endpoint_id)?;
    if dev.get(&format!("{row}.Enable")).as_deref() != Some("true") {
        return None;
    }
    row_interval(dev, &row)
}

/// The PeriodicNotifInterval (seconds, ≥ 1) of Controller row `row`, whatever its Enable.
pub fn row_interval(dev: &Device<'_>, row: &str) -> Option<Duration> {
    let secs = dev.get(&format!("{row}.PeriodicNotifInterval"))?.parse::<u64>().ok().filter(|s| *s > 0)?;
    Some(Duration::from_secs(secs))
}

/// A subscription a Controller just Added without a Recipient gets that Controller's row (TR-181:
/// the Recipient is the Controller that created it), so its Notifies go back to it.
pub fn adopt(model: &crate::model::Model, cpe: &mut crate::cpe::CpeState, inst: &str, originator: &str, now: crate::time::UnixMillis) {
    let root = model.tree.root_name();
    if !inst.starts_with(&format!("{root}.{TABLE}")) {
        return;
    }
    let path = format!("{inst}Recipient");
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
    if dev.get(&path).is_none_or(|r| !r.is_empty()) {
        return;
    }
    if let Some(row) = controller_row(&dev, originator) {
        let _ = cpe.device_mut(model, now).set_local(&path, &row);
    }
}

/// Whether reference `r` names `path`: the same path, or an object at or above it (search
/// expressions and `*` allowed).
fn names(dev: &Device<'_>, r: &str, path: &str) -> bool {
    if r == path || (r.ends_with('.') && !is_search(r) && path.starts_with(r)) {
        return true;
    }
    if !is_search(r) {
        return false;
    }
    let Ok(targets) = resolve(dev, r) else { return false };
    targets.iter().any(|t| match t {
        Target::Param(loc) => dev.model.tree.path_string(loc) == path,
        Target::Object(loc) => path.starts_with(&dev.model.tree.path_string(loc)),
    })
}
