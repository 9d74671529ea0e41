//! Get (TR-369 §"The Get Message"): values of parameters named by full, partial (object) and
//! wildcard paths, limited by `max_depth`, answered per requested path.

use std::collections::BTreeMap;

use rusp_lib::usp::mod_GetResp::{RequestedPathResult, ResolvedPathResult};
use rusp_lib::usp::{Get, GetResp};

use quick_protobuf::MessageWrite;

use super::path::resolve;
use super::{Budget, UspErr};
use crate::model::device::{ReadFor, Target};
use crate::model::tree::{Loc, NodeKind};
use crate::model::Device;

/// Answers a Get: one `RequestedPathResult` per requested path, in order. A path the data model
/// does not have is 7026 for that path alone (the others are still answered).
///
/// # Errors
/// 7000 when the answer outgrows `budget` (checked after each requested path, so no more than
/// one path's result is built past it).
pub fn get(dev: &Device<'_>, req: &Get, mut budget: Budget) -> Result<GetResp, UspErr> {
    let tree = &dev.model.tree;
    let mut results = Vec::with_capacity(req.param_paths.len());
    for path in &req.param_paths {
        let targets = match resolve(dev, path) {
            Ok(t) => t,
            Err(e) => {
                let r = failed(path, e);
                budget.take(r.get_size())?;
                results.push(r);
                continue;
            }
        };
        // One ResolvedPathResult per object holding parameters, keyed by the object's path, with
        // parameter names relative to it (as obuspa and the TR-369 examples answer).
        let mut by_object: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut put = |obj: String, name: String, value: String| {
            if !by_object.contains_key(&obj) {
                order.push(obj.clone());
            }
            by_object.entry(obj).or_default().push((name, value));
        };
        for t in targets {
            match t {
                Target::Param(loc) => {
                    let full = tree.path_string(&loc);
                    let (obj, name) = split_param(&full);
                    put(obj.to_string(), name.to_string(), dev.value_string(&loc, ReadFor::Acs));
                }
                Target::Object(obj) => {
                    let base_depth = object_depth(&tree.path_string(&obj));
                    dev.walk_below(&obj, &mut |loc: &Loc, node| {
                        if !matches!(node.kind, NodeKind::Param(_)) {
                            return;
                        }
                        let full = tree.path_string(loc);
                        let (o, name) = split_param(&full);
                        // max_depth 0 is unlimited; 1 is the requested object's own parameters.
                        if req.max_depth != 0 && object_depth(o) - base_depth >= req.max_depth as usize {
                            return;
                        }
                        put(o.to_string(), name.to_string(), dev.value_string(loc, ReadFor::Acs));
                    });
                }
            }
        }
        let resolved = order
            .into_iter()
            .map(|obj| {
                let params = by_object.remove(&obj).unwrap_or_default();
                ResolvedPathResult { resolved_path: obj, result_params: params.into_iter().collect() }
            })
            .collect();
        let r = RequestedPathResult { requested_path: path.clone(), err_code: 0, err_msg: String::new(), resolved_path_results: resolved };
        budget.take(r.get_size())?;
        results.push(r);
    }
    Ok(GetResp { req_path_results: results })
}

/// `Device.DeviceInfo.SerialNumber` → (`Device.DeviceInfo.`, `SerialNumber`).
fn split_param(full: &str) -> (&str, &str) {
    match full.rfind('.') {
        Some(i) => (&full[..=i], &full[i + 1..]),
        None => ("", full),
    }
}

/// How many segments an object path has (`Device.` is 1, `Device.IP.Interface.1.` is 4).
fn object_depth(obj: &str) -> usize {
    obj.matches('.').count()
}

fn failed(path: &str, e: UspErr) -> RequestedPathResult {
    RequestedPathResult {
        requested_path: path.to_string(),
        err_code: e.0,
        err_msg: e.message().to_string(),
        resolved_path_results: Vec::new(),
    }
}
