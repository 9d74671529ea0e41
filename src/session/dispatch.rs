//! Answering one ACS request against the CPE's data model: calls the `model` semantics and the
//! `cwmp::rpc` renderers, collects deferred actions. Returns the fault code it answered with, if
//! any, for logs and counts.

use std::time::Duration;

use bytes::BytesMut;
use smallvec::SmallVec;

use crate::cpe::{diagnostics, DeferredAction, TransferKind, TransferRequest};
use crate::cwmp::fault::FaultCode;
use crate::cwmp::rpc::*;
use crate::model::device::{SpaEntry, SpvEntry};
use crate::model::{ChangeSet, DeviceMut, ReadFor};
use crate::time::UNKNOWN_TIME;

use fault::write_cpe_fault;

/// Most deferred actions (transfers, ScheduleInforms, reboots) one session may queue: beyond,
/// 9004 (a hostile ACS cannot grow a CPE's state without bound).
pub const MAX_ACTIONS: usize = 64;

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
    // Every string argument within the schema's limits, or the fault TR-069 names, with nothing
    // carried out.
    if let Err((code, detail)) = crate::cwmp::limits::check_request(req) {
        return fail(out, code, Some(&detail));
    }
    // A copy of the shared reference (no Arc clone: no shared atomics on the session path).
    let model = dev.model;
    let hooks = &*model.hooks;
    if let Some(f) = hooks.on_request(&dev.view(), req.name()) {
        return fail(out, f.code, Some(&f.detail));
    }
    let queues_action = matches!(
        req,
        AcsRequest::Reboot(_)
            | AcsRequest::FactoryReset
            | AcsRequest::ScheduleInform(_)
            | AcsRequest::Download(_)
            | AcsRequest::Upload(_)
            | AcsRequest::ScheduleDownload(_)
    );
    if queues_action && actions.len() >= MAX_ACTIONS {
        return fail(out, FaultCode::ResourcesExceeded, Some("too many requests in one session"));
    }
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
            let pairs: Vec<(&str, &str)> = entries.iter().map(|e| (e.name, e.value)).collect();
            if let Err(f) = hooks.before_set(&dev.view(), &pairs) {
                return fail(out, f.code, Some(&f.detail));
            }
            // TR-143 inputs first: a malformed one starts nothing and changes nothing.
            let touched = match diagnostics::check_spv(&dev.view(), &entries) {
                Ok(t) => t,
                Err(f) => {
                    write_cpe_fault(out, urn, id, f.code, None, &f.params);
                    return Some(f.code);
                }
            };
            // Only the kinds this SPV touches can be started or canceled by it.
            let was_requested = diagnostics::requested(&dev.view(), touched);
            match dev.spv(&entries, &r.parameter_key) {
                Ok(c) => {
                    changes.insert(c);
                    let (model, id_, boot_at, now) = (dev.model, dev.id, dev.boot_at, dev.now);
                    for effect in diagnostics::after_spv(model, dev.delta, id_, boot_at, now, &entries, was_requested) {
                        // One pending action per kind, the last word: a hostile ACS cannot grow
                        // the list by requesting and canceling in a loop.
                        let kind = match &effect {
                            diagnostics::Effect::Start(run) => run.kind,
                            diagnostics::Effect::Cancel(k) => *k,
                        };
                        actions.retain(|a| match a {
                            DeferredAction::Diagnostic(r) => r.kind != kind,
                            DeferredAction::CancelDiagnostic(k) => *k != kind,
                            _ => true,
                        });
                        actions.push(match effect {
                            diagnostics::Effect::Start(run) => DeferredAction::Diagnostic(run),
                            diagnostics::Effect::Cancel(k) => DeferredAction::CancelDiagnostic(k),
                        });
                    }
                    hooks.after_set(dev, &pairs);
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
                delay: Duration::from_secs(r.delay_seconds as u64),
                command_key: r.command_key.as_ref().into(),
            });
            schedule_inform::write_response(out, urn, id);
            None
        }
        AcsRequest::Download(r) => {
            let delay = Duration::from_secs(r.delay_seconds as u64);
            transfer(out, urn, id, actions, TransferRequest::new(TransferKind::Download, &r.args, delay))
        }
        AcsRequest::Upload(r) => {
            let delay = Duration::from_secs(r.delay_seconds as u64);
            transfer(out, urn, id, actions, TransferRequest::new(TransferKind::Upload, &r.args, delay))
        }
        AcsRequest::GetQueuedTransfers | AcsRequest::GetAllQueuedTransfers => {
            let queued: Vec<get_queued_transfers::QueuedTransfer<'_>> = actions
                .iter()
                .filter_map(|a| match a {
                    DeferredAction::Transfer(t) => Some(get_queued_transfers::QueuedTransfer {
                        command_key: &t.command_key,
                        state: 1,
                        is_download: t.kind.is_download(),
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
        AcsRequest::ScheduleDownload(r) => {
            let first = &r.windows[0];
            if r.windows.iter().any(|w| w.end <= w.start) || r.windows.windows(2).any(|w| w[1].start < w[0].end) {
                return fail(out, FaultCode::InvalidArguments, Some("TimeWindowList: windows must be non-empty and in order"));
            }
            let delay = Duration::from_secs(first.start as u64);
            transfer(out, urn, id, actions, TransferRequest::new(TransferKind::ScheduleDownload, &r.args, delay))
        }
        AcsRequest::CancelTransfer(r) => {
            let queued = actions.iter().position(|a| matches!(a, DeferredAction::Transfer(t) if *t.command_key == *r.command_key));
            match queued {
                Some(i) => {
                    actions.remove(i);
                    cancel_transfer::write_response(out, urn, id);
                    None
                }
                // Transfers accepted in earlier sessions are already under way or done.
                None => fail(out, FaultCode::CancelNotPermitted, Some(&r.command_key)),
            }
        }
        AcsRequest::ChangeDuState(_) => fail(out, FaultCode::MethodNotSupported, Some("ChangeDUState: this CPE has no software modules")),
        AcsRequest::SetVouchers(_) => {
            set_vouchers::write_response(out, urn, id);
            None
        }
        AcsRequest::GetOptions(_) => {
            get_options::write_response(out, urn, id);
            None
        }
        AcsRequest::Unknown { name } => match hooks.vendor_rpc(dev, name) {
            Some(inner) => {
                unknown::write_vendor_response(out, urn, id, name, &inner);
                None
            }
            None => {
                unknown::write_response(out, urn, id, name);
                Some(FaultCode::MethodNotSupported)
            }
        },
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
    let scheme = req.url.split_once("://").map_or("", |(s, _)| s);
    // A `/` before the last `@` (`http://user:pa/ss@host/`): parsers disagree on the host, so the
    // URL is refused rather than guessed at.
    let before_query = req.url.split(['?', '#']).next().unwrap_or("");
    let authority_part = before_query.split_once("://").map_or("", |(_, rest)| rest);
    if authority_part.rfind('@').is_some_and(|at| authority_part[..at].contains('/')) {
        write_cpe_fault::<&str>(out, urn, id, FaultCode::InvalidArguments, Some("ambiguous URL: a '/' before its '@'"), &[]);
        return Some(FaultCode::InvalidArguments);
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        // The scheme only: the rest of the URL may carry credentials.
        let detail = if scheme.is_empty() { "not a URL".to_string() } else { format!("{scheme}://") };
        write_cpe_fault::<&str>(out, urn, id, FaultCode::UnsupportedTransferProtocol, Some(&detail), &[]);
        return Some(FaultCode::UnsupportedTransferProtocol);
    }
    let kind = req.kind;
    actions.push(DeferredAction::Transfer(req));
    match kind {
        TransferKind::Download => download::write_transfer_response(out, urn, id, "Download", 1, UNKNOWN_TIME, UNKNOWN_TIME),
        TransferKind::Upload => download::write_transfer_response(out, urn, id, "Upload", 1, UNKNOWN_TIME, UNKNOWN_TIME),
        TransferKind::ScheduleDownload => schedule_download::write_response(out, urn, id),
    }
    None
}
