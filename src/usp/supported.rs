//! The discovery messages (TR-369 §"Supported Data Model", §"GetInstances",
//! §"GetSupportedProtocol"): what the schema supports, which instances exist, which USP
//! versions the Agent speaks.

use rusp_lib::usp::mod_GetInstancesResp::{CurrInstance, RequestedPathResult};
use rusp_lib::usp::mod_GetSupportedDMResp::{
    CmdType, ObjAccessType, ParamAccessType, ParamValueType, RequestedObjectResult, SupportedCommandResult, SupportedEventResult,
    SupportedObjectResult, SupportedParamResult, ValueChangeType,
};
use rusp_lib::usp::{GetInstances, GetInstancesResp, GetSupportedDM, GetSupportedDMResp, GetSupportedProtocolResp};

use super::operate::Command;
use super::path::resolve;
use quick_protobuf::MessageWrite;

use super::{Budget, UspErr};
use crate::model::device::Target;
use crate::model::tree::{NodeId, NodeKind, ParamTree};
use crate::model::types::ParamType;
use crate::model::Device;

/// The USP versions these Agents accept (comma-separated, TR-369 GetSupportedProtocolResp).
pub const SUPPORTED_VERSIONS: &str = "1.0,1.1,1.2,1.3";

/// The data model these Agents implement (TR-181 Issue 2, as the profile's parameters are).
pub const DATA_MODEL_URI: &str = "urn:broadband-forum-org:tr-181-2-16-0";

/// Answers GetSupportedProtocol.
pub fn get_supported_protocol() -> GetSupportedProtocolResp {
    GetSupportedProtocolResp { agent_supported_protocol_versions: SUPPORTED_VERSIONS.into() }
}

/// Answers GetInstances: the instances of the tables at or below each path (only the first
/// level with `first_level_only`), with their Alias as unique key when they have one.
///
/// # Errors
/// 7000 when the answer outgrows `budget` (checked after each requested path).
pub fn get_instances(dev: &Device<'_>, req: &GetInstances, mut budget: Budget) -> Result<GetInstancesResp, UspErr> {
    let tree = &dev.model.tree;
    let mut results = Vec::with_capacity(req.obj_paths.len());
    for path in &req.obj_paths {
        let targets = match resolve(dev, path) {
            Ok(t) => t,
            Err(e) => {
                let r = RequestedPathResult {
                    requested_path: path.clone(),
                    err_code: e.0,
                    err_msg: e.message().into(),
                    curr_insts: Vec::new(),
                };
                budget.take(r.get_size())?;
                results.push(r);
                continue;
            }
        };
        let mut curr_insts = Vec::new();
        let mut error = None;
        for t in targets {
            let Target::Object(obj) = t else {
                error = Some(UspErr::INVALID_PATH);
                break;
            };
            let depth = obj.inst.len();
            let mut push = |p: String| {
                let unique_keys = super::keys::values(dev, &p);
                curr_insts.push(CurrInstance { instantiated_obj_path: p, unique_keys });
            };
            // A search or instance path names instances themselves (TR-369 §"GetInstances"):
            // they are in the answer, with what is below them unless first_level_only.
            let own = matches!(tree.node(obj.node).kind, NodeKind::Instance);
            if own {
                push(tree.path_string(&obj));
                if req.first_level_only {
                    continue;
                }
            }
            dev.walk_below(&obj, &mut |loc, node| {
                if !matches!(node.kind, NodeKind::Instance) || (req.first_level_only && loc.inst.len() != depth + 1) {
                    return;
                }
                push(tree.path_string(loc));
            });
        }
        let r = match error {
            Some(e) => {
                RequestedPathResult { requested_path: path.clone(), err_code: e.0, err_msg: e.message().into(), curr_insts: Vec::new() }
            }
            None => RequestedPathResult { requested_path: path.clone(), err_code: 0, err_msg: String::new(), curr_insts },
        };
        budget.take(r.get_size())?;
        results.push(r);
    }
    Ok(GetInstancesResp { req_path_results: results })
}

/// Answers GetSupportedDM from the schema: objects (multi-instance ones as `….{i}.`), their
/// parameters with access and type, and at the root the commands and the Boot! event.
///
/// # Errors
/// 7000 when the answer outgrows `budget` (checked after each requested path).
pub fn get_supported_dm(tree: &ParamTree, req: &GetSupportedDM, mut budget: Budget) -> Result<GetSupportedDMResp, UspErr> {
    let mut results = Vec::with_capacity(req.obj_paths.len());
    for path in &req.obj_paths {
        // Supported paths name instances `{i}`; a concrete number is read the same way.
        let generic: Vec<&str> =
            path.split('.').map(|s| if s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) { "{i}" } else { s }).collect();
        let Some(node) = tree.by_schema_path(&generic.join(".")).filter(|&n| tree.node(n).is_object() && path.ends_with('.')) else {
            let e = UspErr::INVALID_PATH;
            let r = RequestedObjectResult {
                req_obj_path: path.clone(),
                err_code: e.0,
                err_msg: e.message().into(),
                data_model_inst_uri: String::new(),
                supported_objs: Vec::new(),
            };
            budget.take(r.get_size())?;
            results.push(r);
            continue;
        };
        let mut objs = Vec::new();
        collect(tree, node, req, true, &mut objs);
        let r = RequestedObjectResult {
            req_obj_path: path.clone(),
            err_code: 0,
            err_msg: String::new(),
            data_model_inst_uri: DATA_MODEL_URI.into(),
            supported_objs: objs,
        };
        budget.take(r.get_size())?;
        results.push(r);
    }
    Ok(GetSupportedDMResp { req_obj_results: results })
}

fn collect(tree: &ParamTree, node: NodeId, req: &GetSupportedDM, top: bool, out: &mut Vec<SupportedObjectResult>) {
    let n = tree.node(node);
    // A table is described by its `{i}` child (TR-369: `Device.IP.Interface.{i}.`).
    if let NodeKind::Table(_) = n.kind {
        if let Some(i) = tree.child(node, "{i}") {
            collect(tree, i, req, top, out);
        }
        return;
    }
    let (access, multi) = match n.parent.map(|p| &tree.node(p).kind) {
        Some(NodeKind::Table(spec)) if matches!(n.kind, NodeKind::Instance) => {
            (if spec.writable { ObjAccessType::OBJ_ADD_DELETE } else { ObjAccessType::OBJ_READ_ONLY }, true)
        }
        _ => (ObjAccessType::OBJ_READ_ONLY, false),
    };
    let mut supported_params = Vec::new();
    if req.return_params {
        for &c in &n.children {
            let child = tree.node(c);
            if let Some(spec) = child.param() {
                supported_params.push(SupportedParamResult {
                    param_name: child.name.to_string(),
                    access: match (spec.writable, spec.secret) {
                        (true, true) => ParamAccessType::PARAM_WRITE_ONLY,
                        (true, false) => ParamAccessType::PARAM_READ_WRITE,
                        _ => ParamAccessType::PARAM_READ_ONLY,
                    },
                    value_type: value_type(spec.ty),
                    value_change: ValueChangeType::VALUE_CHANGE_ALLOWED,
                });
            }
        }
    }
    let root = node == ParamTree::ROOT;
    let supported_commands = if req.return_commands && root {
        Command::ALL
            .into_iter()
            .map(|c| SupportedCommandResult {
                command_name: c.name().into(),
                input_arg_names: Vec::new(),
                output_arg_names: c.output_args().iter().map(|s| s.to_string()).collect(),
                command_type: if c.is_async() { CmdType::CMD_ASYNC } else { CmdType::CMD_SYNC },
            })
            .collect()
    } else {
        Vec::new()
    };
    let supported_events = if req.return_events && root {
        vec![SupportedEventResult {
            event_name: "Boot!".into(),
            arg_names: ["CommandKey", "Cause", "FirmwareUpdated", "ParameterMap"].map(String::from).to_vec(),
        }]
    } else {
        Vec::new()
    };
    out.push(SupportedObjectResult {
        supported_obj_path: generic_path(tree, node),
        access,
        is_multi_instance: multi,
        supported_commands,
        supported_events,
        supported_params,
        divergent_paths: Vec::new(),
        unique_key_sets: Vec::new(),
    });
    if req.first_level_only && !top {
        return;
    }
    for &c in &n.children {
        let kind = &tree.node(c).kind;
        if matches!(kind, NodeKind::Object | NodeKind::Table(_)) {
            if req.first_level_only {
                // Only the direct child objects themselves, not their subtrees.
                collect(tree, c, req, false, out);
            } else {
                collect(tree, c, req, true, out);
            }
        }
    }
}

/// The schema path of an object node (`Device.IP.Interface.{i}.`).
fn generic_path(tree: &ParamTree, node: NodeId) -> String {
    let mut parts = Vec::new();
    let mut cur = Some(node);
    while let Some(n) = cur {
        parts.push(tree.node(n).name.to_string());
        cur = tree.node(n).parent;
    }
    parts.reverse();
    let mut s = parts.join(".");
    s.push('.');
    s
}

fn value_type(t: ParamType) -> ParamValueType {
    match t {
        ParamType::String => ParamValueType::PARAM_STRING,
        ParamType::Int => ParamValueType::PARAM_INT,
        ParamType::UnsignedInt => ParamValueType::PARAM_UNSIGNED_INT,
        ParamType::Long => ParamValueType::PARAM_LONG,
        ParamType::UnsignedLong => ParamValueType::PARAM_UNSIGNED_LONG,
        ParamType::Boolean => ParamValueType::PARAM_BOOLEAN,
        ParamType::DateTime => ParamValueType::PARAM_DATE_TIME,
        ParamType::Base64 => ParamValueType::PARAM_BASE_64,
        ParamType::HexBinary => ParamValueType::PARAM_HEX_BINARY,
    }
}
