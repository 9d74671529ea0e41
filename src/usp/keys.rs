//! Unique keys of tables (TR-181 `uniqueKey`, TR-369 §"Addressing by Unique Key"): which
//! parameters identify an instance, the Alias an Agent picks when the Controller gave none, and
//! the 7025 refusal of an Add or Set that would make two instances share a key.
//!
//! The profiles carry no `uniqueKey` declarations, so the rule is TR-181's for the tables these
//! Agents use: `Alias` wherever a table has it, `(Recipient, ID)` for
//! `LocalAgent.Subscription.{i}` and `EndpointID` for `LocalAgent.Controller.{i}`. A key whose
//! parameters are all empty is not yet set and clashes with nothing.

use crate::model::device::Target;
use crate::model::tree::NodeKind;
use crate::model::{DeviceId, Model};
use crate::time::UnixMillis;

/// The unique keys of the table at schema path `table` (`Device.LocalAgent.Subscription.`), each
/// a list of parameter names relative to an instance; `has_alias` says whether the table's
/// instances have an `Alias` parameter.
pub fn keys_of(table: &str, has_alias: bool) -> Vec<&'static [&'static str]> {
    let mut keys: Vec<&'static [&'static str]> = Vec::new();
    if has_alias {
        keys.push(&["Alias"]);
    }
    if table.ends_with(".LocalAgent.Subscription.") {
        keys.push(&["Recipient", "ID"]);
    }
    if table.ends_with(".LocalAgent.Controller.") {
        keys.push(&["EndpointID"]);
    }
    keys
}

/// The unique key values of instance `inst` (`Device.X.3.`), by parameter name: what AddResp,
/// ObjectCreation and GetInstances report (TR-369 `unique_keys`).
pub fn values(dev: &crate::model::Device<'_>, inst: &str) -> std::collections::HashMap<String, String> {
    let Some((table, _)) = split_instance(inst) else { return Default::default() };
    let has_alias = dev.get(&format!("{inst}Alias")).is_some();
    keys_of(&crate::model::tree::schema_of(table), has_alias)
        .into_iter()
        .flat_map(|k| k.iter())
        .filter_map(|k| dev.get(&format!("{inst}{k}")).map(|v| (k.to_string(), v)))
        .collect()
}

/// The instance path's table path and number: `Device.X.3.` → (`Device.X.`, 3).
fn split_instance(inst: &str) -> Option<(&str, &str)> {
    let body = inst.strip_suffix('.')?;
    let i = body.rfind('.')?;
    Some((&inst[..=i], &body[i + 1..]))
}

/// The first unique key of instance `inst` (`Device.X.3.`) that another instance of its table
/// shares: its parameter names.
pub fn clash(model: &Model, id: DeviceId, delta: &crate::model::Delta, boot_at: UnixMillis, inst: &str) -> Option<&'static [&'static str]> {
    let dev = model.device(id, delta, boot_at, boot_at);
    let (table_path, own) = split_instance(inst)?;
    let table = match dev.resolve(table_path).ok()?.as_slice() {
        [Target::Object(loc)] if matches!(model.tree.node(loc.node).kind, NodeKind::Table(_)) => loc.clone(),
        _ => return None,
    };
    let has_alias = dev.get(&format!("{inst}Alias")).is_some();
    let schema = crate::model::tree::schema_of(table_path);
    let numbers = dev.instances(table.node, &table.inst);
    for key in keys_of(&schema, has_alias) {
        let values = |p: &str| key.iter().map(|k| dev.get(&format!("{p}{k}")).unwrap_or_default()).collect::<Vec<_>>();
        let mine = values(inst);
        if mine.iter().all(String::is_empty) {
            continue;
        }
        let shared = numbers.iter().filter(|n| n.to_string() != own).any(|n| values(&format!("{table_path}{n}.")) == mine);
        if shared {
            return Some(key);
        }
    }
    None
}

/// Gives a new instance with an empty `Alias` one no sibling has (`cpe-N`, TR-181 §"Alias"): an
/// Agent picks the initial value when the Controller did not.
pub fn pick_alias(model: &Model, cpe: &mut crate::cpe::CpeState, inst: &str, now: UnixMillis) {
    let path = format!("{inst}Alias");
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
    if dev.get(&path).is_none_or(|a| !a.is_empty()) {
        return;
    }
    let Some((table_path, own)) = split_instance(inst) else { return };
    let taken: Vec<String> = match dev.resolve(table_path).ok().as_deref() {
        Some([Target::Object(t)]) => {
            dev.instances(t.node, &t.inst).iter().filter_map(|n| dev.get(&format!("{table_path}{n}.Alias"))).collect()
        }
        _ => Vec::new(),
    };
    let first: u64 = own.parse().unwrap_or(1);
    let alias = (first..first + 1000).map(|n| format!("cpe-{n}")).find(|a| !taken.contains(a));
    if let Some(alias) = alias {
        let _ = cpe.device_mut(model, now).set_local(&path, &alias);
    }
}
