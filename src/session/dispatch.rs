//! Answering one ACS request against the CPE's data model: calls the `model` semantics and the
//! `cwmp::rpc` renderers, collects deferred actions. Returns the fault code it answered with, if
//! any, for logs and counts.

use bytes::BytesMut;
use smallvec::SmallVec;

use crate::cpe::{DeferredAction, TransferRequest};
use crate::cwmp::fault::FaultCode;
use crate::cwmp::rpc::*;
use crate::model::device::{SpaEntry, SpvEntry};
use crate::model::{ChangeSet, DeviceMut, ReadFor};
use crate::time::UNKNOWN_TIME;

use fault::write_cpe_fault;

/// The RPC name as a `&'static str` (for logs without allocation).
pub(super) fn static_name(req: &AcsRequest<'_>) -> &'static str {
    match req {
        AcsRequest::Unknown { .. } => "Unknown",
        other => SUPPORTED_METHODS.iter().copied().find(|m| *m == other.name()).unwrap_or("Unknown"),
    }
}

pub(super) fn answer(
    req: &AcsRequest<'_>,
    id: Option<&str>,
    urn: &str,
    dev: &mut DeviceMut<'_>,
    actions: &mut SmallVec<[DeferredAction; 1]>,
    changes: &mut ChangeSet,
    out: &mut BytesMut,
) -> Option<FaultCode> {
    let fail = |out: &mut BytesMut, code: FaultCode, detail: Option<&str>| {
        write_cpe_fault::<&str>(out, urn, id, code, detail, &[]);
        Some(code)
    };
    match req {
        AcsRequest::GetRpcMethods => {
            get_rpc_methods::write_response(out, urn, id, SUPPORTED_METHODS);
            None
        }
        AcsRequest::GetParameterValues(r) => {
            let view = dev.view();
            match view.gpv_targets(&r.names) {
                Err((code, i)) => fail(out, code, Some(&r.names[i])),
                Ok(locs) => {
                    let tree = &view.model.tree;
                    get_parameter_values::write_head(out, urn, id, locs.len());
                    for loc in &locs {
                        let ty = tree.node(loc.node).param().map_or("xsd:string", |p| p.ty.xsi_type());
                        get_parameter_values::write_entry(
                            out,
                            |o| tree.write_path(loc, o),
                            ty,
                            |o| view.write_value(loc, ReadFor::Acs, true, o),
                        );
                    }
                    get_parameter_values::write_tail(out);
                    None
                }
            }
        }
        AcsRequest::GetParameterNames(r) => {
            let view = dev.view();
            match view.gpn(&r.path, r.next_level) {
                Err(code) => fail(out, code, Some(&r.path)),
                Ok(list) => {
                    let tree = &view.model.tree;
                    get_parameter_names::write_head(out, urn, id, list.len());
                    for (loc, writable) in &list {
                        get_parameter_names::write_entry(out, |o| tree.write_path(loc, o), *writable);
                    }
                    get_parameter_names::write_tail(out);
                    None
                }
            }
        }
        AcsRequest::SetParameterValues(r) => {
            let entries: Vec<SpvEntry<'_>> =
                r.params.iter().map(|p| SpvEntry { name: &p.name, value: &p.value, xsi_type: p.xsi_type }).collect();
            match dev.spv(&entries, &r.parameter_key) {
                Ok(c) => {
                    changes.insert(c);
                    set_parameter_values::write_response(out, urn, id, 0);
                    None
                }
                Err(f) => {
                    write_cpe_fault(out, urn, id, f.code, None, &f.params);
                    Some(f.code)
                }
            }
        }
        AcsRequest::GetParameterAttributes(r) => {
            let view = dev.view();
            match view.gpa_targets(&r.names) {
                Err((code, i)) => fail(out, code, Some(&r.names[i])),
                Ok(locs) => {
                    let tree = &view.model.tree;
                    get_parameter_attributes::write_head(out, urn, id, locs.len());
                    for loc in &locs {
                        get_parameter_attributes::write_entry(
                            out,
                            |o| tree.write_path(loc, o),
                            view.notification(loc) as u8,
                            view.subscriber_access(loc),
                        );
                    }
                    get_parameter_attributes::write_tail(out);
                    None
                }
            }
        }
        AcsRequest::SetParameterAttributes(r) => {
            let entries: Vec<SpaEntry<'_>> = r
                .params
                .iter()
                .map(|p| SpaEntry { name: &p.name, notification: p.notification, access_list: p.access_list.as_deref() })
                .collect();
            match dev.spa(&entries) {
                Ok(()) => {
                    changes.insert(ChangeSet::ATTRIBUTES);
                    set_parameter_attributes::write_response(out, urn, id);
                    None
                }
                Err(code) => fail(out, code, None),
            }
        }
        AcsRequest::AddObject(r) => match dev.add_object(&r.object_name, &r.parameter_key) {
            Ok(n) => {
                changes.insert(ChangeSet::INSTANCES);
                add_object::write_response(out, urn, id, n, 0);
                None
            }
            Err(code) => fail(out, code, Some(&r.object_name)),
        },
        AcsRequest::DeleteObject(r) => match dev.delete_object(&r.object_name, &r.parameter_key) {
            Ok(()) => {
                changes.insert(ChangeSet::INSTANCES);
                delete_object::write_response(out, urn, id, 0);
                None
            }
            Err(code) => fail(out, code, Some(&r.object_name)),
        },
        AcsRequest::Reboot(r) => {
            actions.push(DeferredAction::Reboot { command_key: r.command_key.as_ref().into() });
            reboot::write_response(out, urn, id);
            None
        }
        AcsRequest::FactoryReset => {
            actions.push(DeferredAction::FactoryReset);
            factory_reset::write_response(out, urn, id);
            None
        }
        AcsRequest::ScheduleInform(r) => {
            if r.delay_seconds == 0 {
                return fail(out, FaultCode::InvalidArguments, Some("DelaySeconds must be greater than 0"));
            }
            actions.push(DeferredAction::ScheduleInform {
                delay: std::time::Duration::from_secs(r.delay_seconds as u64),
                command_key: r.command_key.as_ref().into(),
            });
            schedule_inform::write_response(out, urn, id);
            None
        }
        AcsRequest::Download(r) => transfer(
            out,
            urn,
            id,
            actions,
            TransferRequest {
                is_download: true,
                command_key: r.command_key.as_ref().into(),
                file_type: r.file_type.as_ref().into(),
                url: r.url.as_ref().into(),
                username: r.username.as_ref().into(),
                password: r.password.as_ref().into(),
                file_size: r.file_size,
                target_file_name: r.target_file_name.as_ref().into(),
                delay: std::time::Duration::from_secs(r.delay_seconds as u64),
            },
        ),
        AcsRequest::Upload(r) => transfer(
            out,
            urn,
            id,
            actions,
            TransferRequest {
                is_download: false,
                command_key: r.command_key.as_ref().into(),
                file_type: r.file_type.as_ref().into(),
                url: r.url.as_ref().into(),
                username: r.username.as_ref().into(),
                password: r.password.as_ref().into(),
                file_size: 0,
                target_file_name: "".into(),
                delay: std::time::Duration::from_secs(r.delay_seconds as u64),
            },
        ),
        AcsRequest::GetQueuedTransfers | AcsRequest::GetAllQueuedTransfers => {
            let queued: Vec<get_queued_transfers::QueuedTransfer<'_>> = actions
                .iter()
                .filter_map(|a| match a {
                    DeferredAction::Transfer(t) => Some(get_queued_transfers::QueuedTransfer {
                        command_key: &t.command_key,
                        state: 1,
                        is_download: t.is_download,
                        file_type: &t.file_type,
                        file_size: t.file_size,
                        target_file_name: &t.target_file_name,
                    }),
                    _ => None,
                })
                .collect();
            let all = matches!(req, AcsRequest::GetAllQueuedTransfers);
            get_queued_transfers::write_response(out, urn, id, all, &queued);
            None
        }
        AcsRequest::Unknown { name } => {
            unknown::write_response(out, urn, id, name);
            Some(FaultCode::MethodNotSupported)
        }
    }
}

/// Accepts a Download/Upload as pending (Status 1, Unknown times; PROTOCOL.md §7.1) after checking
/// that its URL is one the CPE can fetch.
fn transfer(
    out: &mut BytesMut,
    urn: &str,
    id: Option<&str>,
    actions: &mut SmallVec<[DeferredAction; 1]>,
    req: TransferRequest,
) -> Option<FaultCode> {
    let method = if req.is_download { "Download" } else { "Upload" };
    let scheme_ok = req.url.starts_with("http://") || req.url.starts_with("https://");
    if !scheme_ok {
        write_cpe_fault::<&str>(out, urn, id, FaultCode::UnsupportedTransferProtocol, Some(&req.url), &[]);
        return Some(FaultCode::UnsupportedTransferProtocol);
    }
    actions.push(DeferredAction::Transfer(req));
    download::write_transfer_response(out, urn, id, method, 1, UNKNOWN_TIME, UNKNOWN_TIME);
    None
}
