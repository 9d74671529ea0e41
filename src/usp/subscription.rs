//! `Device.LocalAgent.Subscription.{i}` (TR-181, TR-369 §"Notifications and Subscription
//! Mechanism"): which enabled subscriptions a change matches. Subscriptions are ordinary table
//! instances a Controller creates with Add, so they live in the CPE's delta like any other value.

use super::get::resolve;
use crate::model::device::Target;
use crate::model::Device;

/// The subscription table, relative to the root object.
pub const TABLE: &str = "LocalAgent.Subscription.";

/// The IDs of the enabled `notif_type` subscriptions whose ReferenceList names `path` (the path
/// itself, or an object above it; `*` allowed), in instance order.
pub fn matching(dev: &Device<'_>, notif_type: &str, path: &str) -> Vec<String> {
    let root = dev.model.tree.root_name();
    let table = format!("{root}.{TABLE}");
    let Ok(targets) = dev.resolve(&table) else { return Vec::new() };
    let Some(Target::Object(t)) = targets.first() else { return Vec::new() };
    let mut ids = Vec::new();
    for n in dev.instances(t.node, &t.inst) {
        let p = format!("{table}{n}.");
        let get = |name: &str| dev.get(&format!("{p}{name}")).unwrap_or_default();
        if get("Enable") != "true" || get("NotifType") != notif_type {
            continue;
        }
        let refs = get("ReferenceList");
        let hit = refs.split(',').map(str::trim).filter(|r| !r.is_empty()).any(|r| names(dev, r, path));
        if hit {
            let id = get("ID");
            ids.push(if id.is_empty() { p.clone() } else { id });
        }
    }
    ids
}

/// Whether reference `r` names `path`: the same parameter, or an object at or above it.
fn names(dev: &Device<'_>, r: &str, path: &str) -> bool {
    if r == path || (r.ends_with('.') && !r.contains('*') && path.starts_with(r)) {
        return true;
    }
    let Ok(targets) = resolve(dev, r) else { return false };
    targets.iter().any(|t| match t {
        Target::Param(loc) => dev.model.tree.path_string(loc) == path,
        Target::Object(loc) => path.starts_with(&dev.model.tree.path_string(loc)),
    })
}
