//! Add and Delete (TR-369 §"The Add Message", §"The Delete Message"): table instances created
//! with their parameter settings and deleted, through the same `model::DeviceMut` AddObject and
//! DeleteObject the CWMP side uses, with `allow_partial` and `required` semantics.

use rusp_lib::usp::mod_AddResp::mod_CreatedObjectResult::mod_OperationStatus as add_status;
use rusp_lib::usp::mod_AddResp::{CreatedObjectResult, ParameterError};
use rusp_lib::usp::mod_DeleteResp::mod_DeletedObjectResult::mod_OperationStatus as del_status;
use rusp_lib::usp::mod_DeleteResp::DeletedObjectResult;
use rusp_lib::usp::{Add, AddResp, Delete, DeleteResp};

use super::path::resolve;
use super::rollback::Rollback;
use super::UspErr;
use crate::cpe::CpeState;
use crate::model::device::{SpvEntry, Target};
use crate::model::tree::NodeKind;
use crate::model::Model;
use crate::time::UnixMillis;

/// What an Add or Delete changed, for ObjectCreation/ObjectDeletion notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// Paths of instances created (`Device.NAT.PortMapping.3.`).
    pub created: Vec<String>,
    /// Paths of instances deleted.
    pub deleted: Vec<String>,
}

/// Applies an Add.
///
/// # Errors
/// Without `allow_partial`, the first failure (7026 unknown path, 7018 not a table, 7019 not
/// creatable, 7005 table full, 7025 a unique key another instance has, or a required parameter's
/// error); nothing was created.
/// `originator` is the requesting Controller's endpoint ID (a new subscription's Recipient).
pub fn add(
    model: &Model,
    cpe: &mut CpeState,
    req: &Add,
    originator: &str,
    now: UnixMillis,
    changed: &mut Changed,
) -> Result<AddResp, UspErr> {
    let mut rollback = Rollback::new(cpe, req.allow_partial);
    let mut results = Vec::with_capacity(req.create_objs.len());
    let mut created = Vec::new();
    for obj in &req.create_objs {
        rollback.before_object(cpe);
        let status = match add_one(model, cpe, obj, originator, now) {
            Ok(success) => {
                created.push(success.instantiated_path.clone());
                add_status::OneOfoper_status::oper_success(success)
            }
            Err(err) if !req.allow_partial => {
                rollback.undo(cpe);
                return Err(err);
            }
            Err(err) => {
                rollback.undo(cpe);
                add_status::OneOfoper_status::oper_failure(add_status::OperationFailure {
                    err_code: err.0,
                    err_msg: err.message().to_string(),
                })
            }
        };
        results.push(CreatedObjectResult {
            requested_path: obj.obj_path.clone(),
            oper_status: Some(rusp_lib::usp::mod_AddResp::mod_CreatedObjectResult::OperationStatus { oper_status: status }),
        });
    }
    changed.created.extend(created);
    Ok(AddResp { created_obj_results: results })
}

fn add_one(
    model: &Model,
    cpe: &mut CpeState,
    obj: &rusp_lib::usp::mod_Add::CreateObject,
    originator: &str,
    now: UnixMillis,
) -> Result<add_status::OperationSuccess, UspErr> {
    let table = {
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        match resolve(&dev, &obj.obj_path)?.as_slice() {
            [Target::Object(loc)] if !obj.obj_path.contains('*') => loc.clone(),
            [Target::Param(_)] => return Err(UspErr::NOT_A_TABLE),
            _ => return Err(UspErr::INVALID_PATH),
        }
    };
    match &model.tree.node(table.node).kind {
        NodeKind::Table(spec) if spec.writable => {}
        NodeKind::Table(_) => return Err(UspErr::NOT_CREATABLE),
        _ => return Err(UspErr::NOT_A_TABLE),
    }
    // The table's concrete path (the request may name it through a search expression).
    let table_path = model.tree.path_string(&table);
    let number = cpe.device_mut(model, now).add_object(&table_path, "").map_err(|f| match UspErr::from_fault(f) {
        UspErr::REQUEST_DENIED => UspErr::NOT_CREATABLE,
        e => e,
    })?;
    let instantiated_path = format!("{table_path}{number}.");
    let mut param_errs = Vec::new();
    for p in &obj.param_settings {
        let full = format!("{instantiated_path}{}", p.param);
        let entry = SpvEntry { name: &full, value: &p.value, xsi_type: None };
        if let Err(fault) = cpe.device_mut(model, now).spv(std::slice::from_ref(&entry), "") {
            let code = fault.params.first().map_or(fault.code, |(_, c)| *c);
            let err = match UspErr::from_fault(code) {
                UspErr::INVALID_PATH => UspErr::UNSUPPORTED_PARAMETER,
                e => e,
            };
            if p.required {
                return Err(err);
            }
            param_errs.push(ParameterError { param: p.param.clone(), err_code: err.0, err_msg: err.message().to_string() });
        }
    }
    // TR-369 7025: no two instances share a unique key; an Alias left empty gets one.
    super::keys::pick_alias(model, cpe, &instantiated_path, now);
    super::subscription::adopt(model, cpe, &instantiated_path, originator, now);
    if super::keys::clash(model, cpe.id, &cpe.delta, cpe.boot_at, &instantiated_path).is_some() {
        return Err(UspErr::DUPLICATE_KEY);
    }
    let unique_keys = super::keys::values(&model.device(cpe.id, &cpe.delta, cpe.boot_at, now), &instantiated_path);
    Ok(add_status::OperationSuccess { instantiated_path, param_errs, unique_keys })
}

/// Applies a Delete. Deleting an instance that does not exist succeeds with no affected path
/// (TR-369 R-DEL.2); a path the schema does not have is 7026.
///
/// # Errors
/// Without `allow_partial`, the first failure; nothing was deleted.
pub fn delete(model: &Model, cpe: &mut CpeState, req: &Delete, now: UnixMillis, changed: &mut Changed) -> Result<DeleteResp, UspErr> {
    let mut rollback = Rollback::new(cpe, req.allow_partial);
    let mut results = Vec::with_capacity(req.obj_paths.len());
    let mut deleted = Vec::new();
    for path in &req.obj_paths {
        rollback.before_object(cpe);
        let status = match delete_one(model, cpe, path, now) {
            Ok(affected) => {
                deleted.extend(affected.iter().cloned());
                del_status::OneOfoper_status::oper_success(del_status::OperationSuccess {
                    affected_paths: affected,
                    unaffected_path_errs: Vec::new(),
                })
            }
            Err(err) if !req.allow_partial => {
                rollback.undo(cpe);
                return Err(err);
            }
            Err(err) => {
                rollback.undo(cpe);
                del_status::OneOfoper_status::oper_failure(del_status::OperationFailure {
                    err_code: err.0,
                    err_msg: err.message().to_string(),
                })
            }
        };
        results.push(DeletedObjectResult {
            requested_path: path.clone(),
            oper_status: Some(rusp_lib::usp::mod_DeleteResp::mod_DeletedObjectResult::OperationStatus { oper_status: status }),
        });
    }
    changed.deleted.extend(deleted);
    Ok(DeleteResp { deleted_obj_results: results })
}

fn delete_one(model: &Model, cpe: &mut CpeState, path: &str, now: UnixMillis) -> Result<Vec<String>, UspErr> {
    if !path.ends_with('.') {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    let targets = {
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        match resolve(&dev, path) {
            Ok(t) => t,
            // A well-formed instance path of a table the schema has, whose instance is gone.
            Err(UspErr::INVALID_PATH) if super::path::schema_has(&dev, path) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    let mut affected = Vec::new();
    for t in targets {
        let Target::Object(loc) = t else { return Err(UspErr::INVALID_PATH) };
        if !matches!(model.tree.node(loc.node).kind, NodeKind::Instance) {
            return Err(UspErr::NOT_A_TABLE);
        }
        let concrete = model.tree.path_string(&loc);
        cpe.device_mut(model, now).delete_object(&concrete, "").map_err(|f| match UspErr::from_fault(f) {
            UspErr::REQUEST_DENIED => UspErr::DELETE_FAILURE,
            e => e,
        })?;
        affected.push(concrete);
    }
    Ok(affected)
}
