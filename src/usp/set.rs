//! Set (TR-369 §"The Set Message"): parameter writes per object, `allow_partial` and `required`
//! semantics, per-parameter errors.
//!
//! Each parameter is checked and written through the same `model::DeviceMut::spv` the CWMP side
//! uses (type, range, writability); the all-or-nothing rules of USP are kept by restoring the
//! CPE's delta when an object (or, without `allow_partial`, the whole Set) fails.

use rusp_lib::usp::mod_SetResp::mod_UpdatedObjectResult::mod_OperationStatus::{OneOfoper_status, OperationFailure, OperationSuccess};
use rusp_lib::usp::mod_SetResp::mod_UpdatedObjectResult::OperationStatus;
use rusp_lib::usp::mod_SetResp::{ParameterError, UpdatedInstanceFailure, UpdatedInstanceResult, UpdatedObjectResult};
use rusp_lib::usp::{Set, SetResp};

use super::path::resolve;
use super::rollback::Rollback;
use super::UspErr;
use crate::cpe::CpeState;
use crate::model::device::{ReadFor, SpvEntry, Target};
use crate::model::tree::Loc;
use crate::model::Model;
use crate::time::UnixMillis;

/// A Set that failed as a whole (no `allow_partial`): the Error message's code and its
/// per-parameter errors (`param_path`, code, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFailure {
    pub err: UspErr,
    pub param_errs: Vec<(String, UspErr)>,
}

/// Applies a Set to `cpe`.
///
/// # Errors
/// [`SetFailure`] when `allow_partial` is false and an object failed (an unknown object path, or a
/// required parameter refused): nothing was changed.
pub fn set(model: &Model, cpe: &mut CpeState, req: &Set, now: UnixMillis) -> Result<SetResp, SetFailure> {
    let mut rollback = Rollback::new(cpe, req.allow_partial);
    let mut results = Vec::with_capacity(req.update_objs.len());
    for obj in &req.update_objs {
        rollback.before_object(cpe);
        match set_object(model, cpe, obj, now) {
            Ok(success) => results.push(UpdatedObjectResult {
                requested_path: obj.obj_path.clone(),
                oper_status: Some(OperationStatus { oper_status: OneOfoper_status::oper_success(success) }),
            }),
            Err((err, failures)) => {
                rollback.undo(cpe);
                if !req.allow_partial {
                    let param_errs = failures
                        .iter()
                        .flat_map(|f| f.param_errs.iter().map(|p| (format!("{}{}", f.affected_path, p.param), UspErr(p.err_code))))
                        .collect();
                    return Err(SetFailure { err, param_errs });
                }
                results.push(UpdatedObjectResult {
                    requested_path: obj.obj_path.clone(),
                    oper_status: Some(OperationStatus {
                        oper_status: OneOfoper_status::oper_failure(OperationFailure {
                            err_code: err.0,
                            err_msg: err.message().to_string(),
                            updated_inst_failures: failures,
                        }),
                    }),
                });
            }
        }
    }
    Ok(SetResp { updated_obj_results: results })
}

type ObjectFailure = (UspErr, Vec<UpdatedInstanceFailure>);

fn set_object(
    model: &Model,
    cpe: &mut CpeState,
    obj: &rusp_lib::usp::mod_Set::UpdateObject,
    now: UnixMillis,
) -> Result<OperationSuccess, ObjectFailure> {
    let tree = &model.tree;
    let instances: Vec<Loc> = {
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        match resolve(&dev, &obj.obj_path) {
            Ok(t) => t
                .into_iter()
                .filter_map(|t| match t {
                    Target::Object(loc) => Some(loc),
                    Target::Param(_) => None,
                })
                .collect(),
            Err(e) => return Err((e, Vec::new())),
        }
    };
    if instances.is_empty() && !super::path::is_search(&obj.obj_path) {
        return Err((UspErr::OBJECT_DOES_NOT_EXIST, Vec::new()));
    }
    // TR-69-style ParameterKey is a CWMP notion: a USP Set keeps the current one.
    let key = model
        .well_known
        .parameter_key
        .map(|n| model.device(cpe.id, &cpe.delta, cpe.boot_at, now).value_string(&Loc::plain(n), ReadFor::Local))
        .unwrap_or_default();
    let mut results = Vec::with_capacity(instances.len());
    for inst in instances {
        let affected_path = tree.path_string(&inst);
        let mut updated_params = std::collections::HashMap::new();
        let mut param_errs = Vec::new();
        let mut required_failed: Option<UspErr> = None;
        for p in &obj.param_settings {
            let full = format!("{affected_path}{}", p.param);
            let entry = SpvEntry { name: &full, value: &p.value, xsi_type: None };
            let outcome = cpe.device_mut(model, now).spv(std::slice::from_ref(&entry), &key);
            match outcome {
                Ok(_) => {
                    let v = model.device(cpe.id, &cpe.delta, cpe.boot_at, now).get(&full).unwrap_or_default();
                    updated_params.insert(p.param.clone(), v);
                }
                Err(fault) => {
                    let code = fault.params.first().map_or(fault.code, |(_, c)| *c);
                    let mut err = UspErr::from_fault(code);
                    if err == UspErr::INVALID_PATH {
                        // A parameter the object does not have (TR-369: 7010 Unsupported Parameter).
                        err = UspErr::UNSUPPORTED_PARAMETER;
                    }
                    if p.required && required_failed.is_none() {
                        required_failed = Some(err);
                    }
                    param_errs.push(ParameterError { param: p.param.clone(), err_code: err.0, err_msg: err.message().to_string() });
                }
            }
        }
        // TR-369 7025: a Set that gives a unique key another instance's value fails the object.
        if required_failed.is_none() && !updated_params.is_empty() {
            if let Some(key) = super::keys::clash(model, cpe.id, &cpe.delta, cpe.boot_at, &affected_path)
                .filter(|key| key.iter().any(|k| updated_params.contains_key(*k)))
            {
                let err = UspErr::DUPLICATE_KEY;
                let param_errs = key
                    .iter()
                    .filter(|k| updated_params.contains_key(**k))
                    .map(|k| ParameterError { param: k.to_string(), err_code: err.0, err_msg: err.message().to_string() })
                    .collect();
                return Err((err, vec![UpdatedInstanceFailure { affected_path, param_errs }]));
            }
        }
        if let Some(err) = required_failed {
            let failure = UpdatedInstanceFailure { affected_path, param_errs };
            // The first required parameter's error names the failure when it is the only one.
            let code = if failure.param_errs.len() == 1 { err } else { UspErr::REQUIRED_PARAMETER_FAILED };
            return Err((code, vec![failure]));
        }
        results.push(UpdatedInstanceResult { affected_path, param_errs, updated_params });
    }
    Ok(OperationSuccess { updated_inst_results: results })
}
