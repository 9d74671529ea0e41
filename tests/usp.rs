//! TR-369 Agents, sans-IO: every Controller message against the example TR-181 profile through
//! `usp::Agent::handle` (Records in, Records out), with the refusals and drops of bad input.
//! The same Agents over a real broker are in `usp_wire`.

use std::collections::HashMap;

use cpe_sim::cpe::CpeState;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::time::UnixMillis;
use cpe_sim::usp::operate::Command;
use cpe_sim::usp::record::{self, Dropped};
use cpe_sim::usp::{Agent, EndpointTemplate};
use rusp_lib::usp::mod_Add::{CreateObject, CreateParamSetting};
use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::mod_Response::OneOfresp_type;
use rusp_lib::usp::mod_Set::{UpdateObject, UpdateParamSetting};
use rusp_lib::usp::{Add, Body, Delete, Get, GetInstances, GetSupportedDM, GetSupportedProtocol, Header, Msg, Operate, Request, Set};

use crate::support;

const CTL: &str = "self::test-controller";
const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

fn agent() -> (Model, Agent) {
    let model = support::profile("profiles/example-tr181-gateway");
    let id = EndpointTemplate::compile("os::{oui}-{serial}").unwrap().endpoint_id(&model, DeviceId(0));
    assert_eq!(id, "os::FEFEFE-FEFEFE000000", "endpoint IDs follow the identity template");
    let agent = Agent::new(id, CTL.into(), CpeState::new(DeviceId(0), NOW));
    (model, agent)
}

fn request(id: &str, req: OneOfreq_type) -> Msg {
    Msg {
        header: Some(Header { msg_id: id.into(), msg_type: MsgType::GET }),
        body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: req }) }),
    }
}

/// Sends `req` to the Agent and returns its answer: Ok(response) or Err(Error message).
fn ask(model: &Model, agent: &mut Agent, req: OneOfreq_type) -> Result<OneOfresp_type, rusp_lib::usp::Error> {
    let bytes = record::seal(&request("m-1", req), CTL, &agent.endpoint_id);
    let handled = agent.handle(model, &bytes, NOW).expect("a Record for this Agent");
    let (to, reply) = handled.reply.expect("an answer");
    assert_eq!(to, CTL);
    let opened = record::open(&reply, CTL).expect("a Record for the Controller");
    assert_eq!(opened.from_id, agent.endpoint_id);
    assert_eq!(opened.msg.header.as_ref().unwrap().msg_id, "m-1", "the answer carries the request's Message ID");
    match opened.msg.body.unwrap().msg_body {
        OneOfmsg_body::response(r) => Ok(r.resp_type),
        OneOfmsg_body::error(e) => Err(e),
        other => panic!("not an answer: {other:?}"),
    }
}

fn get(model: &Model, agent: &mut Agent, paths: &[&str], max_depth: u32) -> rusp_lib::usp::GetResp {
    match ask(model, agent, OneOfreq_type::get(Get { param_paths: paths.iter().map(|s| s.to_string()).collect(), max_depth })) {
        Ok(OneOfresp_type::get_resp(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn value(model: &Model, agent: &mut Agent, path: &str) -> String {
    let r = get(model, agent, &[path], 0);
    let res = &r.req_path_results[0];
    assert_eq!(res.err_code, 0, "{path}: {}", res.err_msg);
    let (obj, name) = path.rsplit_once('.').unwrap();
    let rp = res.resolved_path_results.iter().find(|r| r.resolved_path == format!("{obj}.")).unwrap();
    rp.result_params[name].clone()
}

#[test]
fn get_full_partial_wildcard_and_depth() {
    let (model, mut a) = agent();
    assert_eq!(value(&model, &mut a, "Device.DeviceInfo.SerialNumber"), "FEFEFE000000");
    // A partial path: every object below, one result per object, names relative to it.
    let all = get(&model, &mut a, &["Device.DeviceInfo."], 0);
    let objs: Vec<&str> = all.req_path_results[0].resolved_path_results.iter().map(|r| r.resolved_path.as_str()).collect();
    assert!(objs.contains(&"Device.DeviceInfo.") && objs.contains(&"Device.DeviceInfo.MemoryStatus."), "{objs:?}");
    // max_depth 1: only the object's own parameters.
    let one = get(&model, &mut a, &["Device.DeviceInfo."], 1);
    let objs: Vec<&str> = one.req_path_results[0].resolved_path_results.iter().map(|r| r.resolved_path.as_str()).collect();
    assert_eq!(objs, ["Device.DeviceInfo."]);
    // A wildcard over both SSIDs; a secret reads back empty.
    let w = get(&model, &mut a, &["Device.WiFi.SSID.*.Alias", "Device.ManagementServer.Password"], 0);
    let aliases: Vec<&String> = w.req_path_results[0].resolved_path_results.iter().map(|r| &r.result_params["Alias"]).collect();
    assert_eq!(aliases, ["cpe-ssid1", "cpe-ssid2"]);
    assert_eq!(w.req_path_results[1].resolved_path_results[0].result_params["Password"], "");
    // An unknown path fails alone with 7026; a malformed one with 7008.
    let bad = get(&model, &mut a, &["Device.Nope.", "Device.DeviceInfo.ModelName", "Device..X", "Device.WiFi.SSID.9.Alias"], 0);
    let codes: Vec<u32> = bad.req_path_results.iter().map(|r| r.err_code).collect();
    assert_eq!(codes, [7026, 0, 7008, 7026]);
}

/// (parameter, value, required)
type Setting<'a> = (&'a str, &'a str, bool);

fn set(objs: &[(&str, &[Setting<'_>])], allow_partial: bool) -> OneOfreq_type {
    OneOfreq_type::set(Set {
        allow_partial,
        update_objs: objs
            .iter()
            .map(|(path, params)| UpdateObject {
                obj_path: path.to_string(),
                param_settings: params
                    .iter()
                    .map(|(p, v, r)| UpdateParamSetting { param: p.to_string(), value: v.to_string(), required: *r })
                    .collect(),
            })
            .collect(),
    })
}

#[test]
fn set_allow_partial_required_and_per_parameter_errors() {
    let (model, mut a) = agent();
    // Without allow_partial a required failure fails the whole Set: nothing changes.
    let err = ask(
        &model,
        &mut a,
        set(&[("Device.WiFi.SSID.1.", &[("SSID", "new", true)]), ("Device.Time.", &[("Enable", "maybe", true)])], false),
    )
    .unwrap_err();
    // The model reads a non-boolean for a boolean as a bad value (CWMP 9007): 7012.
    assert_eq!(err.err_code, 7012, "{err:?}");
    assert_eq!(err.param_errs[0].param_path, "Device.Time.Enable");
    assert_eq!(value(&model, &mut a, "Device.WiFi.SSID.1.SSID"), "cpe-sim-FEFEFE000000");
    // With allow_partial the good object is written and the bad one reported.
    let Ok(OneOfresp_type::set_resp(r)) = ask(
        &model,
        &mut a,
        set(&[("Device.WiFi.SSID.1.", &[("SSID", "new", true)]), ("Device.DeviceInfo.", &[("ModelName", "x", true)])], true),
    ) else {
        panic!()
    };
    use rusp_lib::usp::mod_SetResp::mod_UpdatedObjectResult::mod_OperationStatus::OneOfoper_status as S;
    let statuses: Vec<&S> = r.updated_obj_results.iter().map(|o| &o.oper_status.as_ref().unwrap().oper_status).collect();
    assert!(matches!(statuses[0], S::oper_success(s) if s.updated_inst_results[0].updated_params["SSID"] == "new"));
    assert!(matches!(statuses[1], S::oper_failure(f) if f.err_code == 7013));
    assert_eq!(value(&model, &mut a, "Device.WiFi.SSID.1.SSID"), "new");
    // A non-required failure is a per-parameter error of a successful object.
    let Ok(OneOfresp_type::set_resp(r)) =
        ask(&model, &mut a, set(&[("Device.WiFi.SSID.*.", &[("Enable", "false", true), ("Bogus", "1", false)])], false))
    else {
        panic!()
    };
    let S::oper_success(s) = &r.updated_obj_results[0].oper_status.as_ref().unwrap().oper_status else { panic!() };
    assert_eq!(s.updated_inst_results.len(), 2, "the wildcard updated both SSIDs");
    assert_eq!(s.updated_inst_results[0].param_errs[0].err_code, 7010);
    // An unknown object: 7026.
    assert_eq!(ask(&model, &mut a, set(&[("Device.Nope.", &[("X", "1", true)])], false)).unwrap_err().err_code, 7026);
    // An out-of-range value: 7012.
    assert_eq!(
        ask(&model, &mut a, set(&[("Device.ManagementServer.", &[("PeriodicInformInterval", "0", true)])], false)).unwrap_err().err_code,
        7012
    );
}

fn add(path: &str, params: &[(&str, &str, bool)], allow_partial: bool) -> OneOfreq_type {
    OneOfreq_type::add(Add {
        allow_partial,
        create_objs: vec![CreateObject {
            obj_path: path.into(),
            param_settings: params
                .iter()
                .map(|(p, v, r)| CreateParamSetting { param: p.to_string(), value: v.to_string(), required: *r })
                .collect(),
        }],
    })
}

#[test]
fn add_and_delete_instances() {
    let (model, mut a) = agent();
    let bytes = record::seal(
        &request("m-1", add("Device.NAT.PortMapping.", &[("ExternalPort", "8080", true), ("Alias", "web", true)], false)),
        CTL,
        &a.endpoint_id,
    );
    let h = a.handle(&model, &bytes, NOW).unwrap();
    assert_eq!(h.changed.created, ["Device.NAT.PortMapping.1."], "an ObjectCreation is owed");
    let opened = record::open(&h.reply.unwrap().1, CTL).unwrap();
    let OneOfmsg_body::response(r) = opened.msg.body.unwrap().msg_body else { panic!() };
    let OneOfresp_type::add_resp(r) = r.resp_type else { panic!() };
    use rusp_lib::usp::mod_AddResp::mod_CreatedObjectResult::mod_OperationStatus::OneOfoper_status as A;
    let A::oper_success(s) = &r.created_obj_results[0].oper_status.as_ref().unwrap().oper_status else { panic!() };
    assert_eq!(s.instantiated_path, "Device.NAT.PortMapping.1.");
    assert_eq!(s.unique_keys["Alias"], "web");
    assert_eq!(value(&model, &mut a, "Device.NAT.PortMapping.1.ExternalPort"), "8080");
    // A required parameter that fails undoes the creation.
    assert_eq!(ask(&model, &mut a, add("Device.NAT.PortMapping.", &[("ExternalPort", "70000", true)], false)).unwrap_err().err_code, 7012);
    let inst = ask(
        &model,
        &mut a,
        OneOfreq_type::get_instances(GetInstances { obj_paths: vec!["Device.NAT.PortMapping.".into()], first_level_only: true }),
    );
    let Ok(OneOfresp_type::get_instances_resp(inst)) = inst else { panic!() };
    assert_eq!(inst.req_path_results[0].curr_insts.len(), 1);
    // Refusals: not a table, not creatable, unknown.
    assert_eq!(ask(&model, &mut a, add("Device.DeviceInfo.", &[], false)).unwrap_err().err_code, 7018);
    assert_eq!(ask(&model, &mut a, add("Device.WiFi.SSID.", &[], false)).unwrap_err().err_code, 7019);
    assert_eq!(ask(&model, &mut a, add("Device.Nope.", &[], false)).unwrap_err().err_code, 7026);
    // Delete: the instance goes; deleting it again succeeds with nothing affected.
    let del =
        |paths: &[&str]| OneOfreq_type::delete(Delete { allow_partial: false, obj_paths: paths.iter().map(|s| s.to_string()).collect() });
    let bytes = record::seal(&request("m-1", del(&["Device.NAT.PortMapping.1."])), CTL, &a.endpoint_id);
    let h = a.handle(&model, &bytes, NOW).unwrap();
    assert_eq!(h.changed.deleted, ["Device.NAT.PortMapping.1."]);
    let Ok(OneOfresp_type::delete_resp(r)) = ask(&model, &mut a, del(&["Device.NAT.PortMapping.1."])) else { panic!() };
    use rusp_lib::usp::mod_DeleteResp::mod_DeletedObjectResult::mod_OperationStatus::OneOfoper_status as D;
    assert!(
        matches!(&r.deleted_obj_results[0].oper_status.as_ref().unwrap().oper_status, D::oper_success(s) if s.affected_paths.is_empty())
    );
    assert_eq!(ask(&model, &mut a, del(&["Device.Nope.1."])).unwrap_err().err_code, 7026);
    assert_eq!(ask(&model, &mut a, del(&["Device.WiFi.SSID.1."])).unwrap_err().err_code, 7024);
}

#[test]
fn operate_discovery_and_protocol() {
    let (model, mut a) = agent();
    let op = |cmd: &str| {
        OneOfreq_type::operate(Operate { command: cmd.into(), command_key: "ck".into(), send_resp: true, input_args: HashMap::new() })
    };
    let bytes = record::seal(&request("m-1", op("Device.Reboot()")), CTL, &a.endpoint_id);
    let h = a.handle(&model, &bytes, NOW).unwrap();
    assert_eq!(h.accepted.as_ref().map(|x| x.command), Some(Command::Reboot));
    assert!(h.reply.is_some());
    let Ok(OneOfresp_type::operate_resp(r)) = ask(&model, &mut a, op("Device.SelfTestDiagnostics()")) else { panic!() };
    use rusp_lib::usp::mod_OperateResp::mod_OperationResult::OneOfoperation_resp as O;
    assert!(matches!(&r.operation_results[0].operation_resp, O::req_obj_path(p) if p.starts_with("Device.LocalAgent.Request.")));
    assert_eq!(ask(&model, &mut a, op("Device.Explode()")).unwrap_err().err_code, 7026);
    // Operate without send_resp: carried out, not answered.
    let quiet = OneOfreq_type::operate(Operate {
        command: "Device.FactoryReset()".into(),
        command_key: String::new(),
        send_resp: false,
        input_args: HashMap::new(),
    });
    let h = a.handle(&model, &record::seal(&request("m-2", quiet), CTL, &a.endpoint_id), NOW).unwrap();
    assert!(h.reply.is_none());
    assert_eq!(h.accepted.map(|x| x.command), Some(Command::FactoryReset));

    let gsdm = OneOfreq_type::get_supported_dm(GetSupportedDM {
        obj_paths: vec!["Device.".into(), "Device.NAT.".into(), "Device.Nope.".into()],
        first_level_only: false,
        return_commands: true,
        return_events: true,
        return_params: true,
        return_unique_key_sets: false,
    });
    let Ok(OneOfresp_type::get_supported_dm_resp(r)) = ask(&model, &mut a, gsdm) else { panic!() };
    let root = &r.req_obj_results[0].supported_objs[0];
    assert_eq!(root.supported_obj_path, "Device.");
    assert!(root.supported_commands.iter().any(|c| c.command_name == "Reboot()"));
    assert!(root.supported_events.iter().any(|e| e.event_name == "Boot!"));
    let pm = r.req_obj_results[1].supported_objs.iter().find(|o| o.supported_obj_path == "Device.NAT.PortMapping.{i}.").unwrap();
    assert!(pm.is_multi_instance);
    assert!(pm.supported_params.iter().any(|p| p.param_name == "ExternalPort"));
    assert_eq!(r.req_obj_results[2].err_code, 7026);

    let Ok(OneOfresp_type::get_supported_protocol_resp(p)) = ask(
        &model,
        &mut a,
        OneOfreq_type::get_supported_protocol(GetSupportedProtocol { controller_supported_protocol_versions: "1.3".into() }),
    ) else {
        panic!()
    };
    assert!(p.agent_supported_protocol_versions.contains("1.3"));
}

#[test]
fn bad_input_is_refused_or_dropped_never_a_panic() {
    let (model, mut a) = agent();
    let get = || OneOfreq_type::get(Get { param_paths: vec!["Device.".into()], max_depth: 0 });
    // Another endpoint's Record, garbage, an empty Msg: dropped and named.
    let other = record::seal(&request("m", get()), CTL, "os::FEFEFE-OTHER");
    assert_eq!(a.handle(&model, &other, NOW).unwrap_err(), Dropped::WrongEndpoint);
    assert_eq!(a.handle(&model, b"\x0a\xff\xff", NOW).unwrap_err(), Dropped::MalformedRecord);
    assert_eq!(a.handle(&model, &record::seal_payload(vec![0x12, 0x00], CTL, &a.endpoint_id), NOW).unwrap_err(), Dropped::MalformedMsg);
    // Messages an Agent is not asked: 7001.
    let notify = OneOfreq_type::notify(cpe_sim::usp::notify::periodic("Device", "s".into(), true));
    assert_eq!(ask(&model, &mut a, notify).unwrap_err().err_code, 7001);
    // Every prefix and a spread of mutations of a real Record: never a panic.
    let good = record::seal(&request("m", get()), CTL, &a.endpoint_id);
    for n in 0..good.len() {
        let _ = a.handle(&model, &good[..n], NOW);
        let mut m = good.clone();
        m[n] ^= 0xa5;
        let _ = a.handle(&model, &m, NOW);
    }
    // A NotifyResp from the Controller answers the Agent's own Notify.
    let (id, _) = a.notify(cpe_sim::usp::notify::periodic("Device", "s".into(), true));
    let resp = Msg {
        header: Some(Header { msg_id: id.clone(), msg_type: MsgType::NOTIFY_RESP }),
        body: Some(Body {
            msg_body: OneOfmsg_body::response(rusp_lib::usp::Response {
                resp_type: OneOfresp_type::notify_resp(rusp_lib::usp::NotifyResp { subscription_id: "cpe-sim".into() }),
            }),
        }),
    };
    // The same NotifyResp or an Error from anyone else on the broker settles nothing: dropped.
    let forged = record::seal(&resp, "self::someone-else", &a.endpoint_id);
    assert_eq!(a.handle(&model, &forged, NOW).unwrap_err(), Dropped::BadSender);
    let err = Msg {
        header: Some(Header { msg_id: id.clone(), msg_type: MsgType::ERROR }),
        body: Some(Body { msg_body: OneOfmsg_body::error(rusp_lib::usp::Error { err_code: 7000, ..Default::default() }) }),
    };
    assert_eq!(a.handle(&model, &record::seal(&err, "self::someone-else", &a.endpoint_id), NOW).unwrap_err(), Dropped::BadSender);
    let h = a.handle(&model, &record::seal(&resp, CTL, &a.endpoint_id), NOW).unwrap();
    assert_eq!(h.answered, Some((id, None)));
    // A sender ID no topic can be built from (empty, longer than an MQTT topic, wildcards):
    // dropped before anything is answered.
    for bad in [String::new(), "x".repeat(70_000), "self::#".into(), "self::a/b".into()] {
        let r = record::seal(&request("m", get()), &bad, &a.endpoint_id);
        assert_eq!(a.handle(&model, &r, NOW).unwrap_err(), Dropped::BadSender, "{}", &bad[..bad.len().min(20)]);
    }
}

/// The data model of Agent `a` as the decision functions read it.
fn dev<'a>(model: &'a Model, a: &'a Agent) -> cpe_sim::model::Device<'a> {
    model.device(a.cpe.id, &a.cpe.delta, a.cpe.boot_at, NOW)
}

/// An Agent with its factory defaults (the run's Controller, Periodic! every 300 s).
fn factory_agent() -> (Model, Agent) {
    let (model, mut a) = agent();
    a.factory.periodic = Some(std::time::Duration::from_secs(300));
    a.factory_defaults(&model, NOW);
    (model, a)
}

/// Sends `req` and returns what the Agent changed (instances created and deleted).
fn handle(model: &Model, a: &mut Agent, req: OneOfreq_type) -> cpe_sim::usp::objects::Changed {
    let bytes = record::seal(&request("m-1", req), CTL, &a.endpoint_id);
    let h = a.handle(model, &bytes, NOW).unwrap();
    assert!(h.refused.is_none(), "refused: {:?}", h.refused);
    h.changed
}

fn subscribe(model: &Model, a: &mut Agent, id: &str, notif_type: &str, refs: &str, retry: bool) -> String {
    let retry = if retry { "true" } else { "false" };
    let changed = handle(
        model,
        a,
        add(
            "Device.LocalAgent.Subscription.",
            &[
                ("Enable", "true", true),
                ("ID", id, true),
                ("NotifType", notif_type, true),
                ("ReferenceList", refs, true),
                ("NotifRetry", retry, true),
            ],
            false,
        ),
    );
    changed.created[0].clone()
}

// Every Notify comes from an enabled subscription matching its NotifType and ReferenceList, to its
// Recipient, with its ID, send_resp = NotifRetry and NotifExpiration; the factory defaults give
// Boot! and Periodic! to the run's Controller, and FactoryReset() restores them.
#[test]
fn notifies_come_from_subscriptions() {
    use cpe_sim::usp::notify::BootCause;
    use cpe_sim::usp::subscription::{notifies, Event};
    use rusp_lib::usp::mod_Notify::OneOfnotification as N;
    let (model, mut a) = factory_agent();
    let boot = Event::Boot { cause: BootCause::LocalReboot, command_key: "" };
    let d = dev(&model, &a);
    assert_eq!(d.get("Device.LocalAgent.Controller.1.EndpointID").unwrap(), CTL);
    assert_eq!(d.get("Device.LocalAgent.Controller.1.PeriodicNotifInterval").unwrap(), "300", "from --inform-interval");
    let out = notifies(&d, &boot, CTL);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].to.as_str(), out[0].notify.subscription_id.as_str(), out[0].retry, out[0].notify.send_resp),
        (CTL, "cpe-sim-boot", true, true)
    );
    assert!(matches!(&out[0].notify.notification, N::event(e) if e.event_name == "Boot!" && e.params["Cause"] == "LocalReboot"));
    let periodic = notifies(&d, &Event::Periodic { controller: CTL }, CTL);
    assert_eq!(periodic.len(), 1);
    assert_eq!(periodic[0].notify.subscription_id, "cpe-sim-periodic");
    assert!(notifies(&d, &Event::Periodic { controller: "self::another" }, CTL).is_empty(), "Periodic! is per Controller");
    let every = cpe_sim::usp::subscription::periodic_interval;
    assert_eq!(every(&d, CTL), Some(std::time::Duration::from_secs(300)));
    assert_eq!(every(&d, "self::another"), None);
    // Nothing else is subscribed: an Add, a value change, a command's end notify no one.
    assert!(notifies(&d, &Event::ObjectCreation { path: "Device.NAT.PortMapping.1." }, CTL).is_empty());
    assert!(notifies(&d, &Event::ValueChange { path: "Device.DeviceInfo.ProvisioningCode" }, CTL).is_empty());

    // A Controller subscribes to ObjectCreation without NotifRetry: its Add is reported once,
    // with the subscription's ID, no NotifyResp asked; the Recipient is the Controller's row.
    let sub = subscribe(&model, &mut a, "oc", "ObjectCreation", "Device.NAT.PortMapping.", false);
    assert_eq!(dev(&model, &a).get(&format!("{sub}Recipient")).unwrap(), "Device.LocalAgent.Controller.1");
    let created = handle(&model, &mut a, add("Device.NAT.PortMapping.", &[("Alias", "web", true)], false)).created;
    let out = notifies(&dev(&model, &a), &Event::ObjectCreation { path: &created[0] }, CTL);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].notify.subscription_id.as_str(), out[0].retry, out[0].notify.send_resp), ("oc", false, false));
    assert!(matches!(&out[0].notify.notification, N::obj_creation(c) if c.obj_path == created[0] && c.unique_keys["Alias"] == "web"));
    // NotifRetry and NotifExpiration are the delivery settings.
    handle(&model, &mut a, set(&[(&sub, &[("NotifRetry", "true", true), ("NotifExpiration", "30", true)])], false));
    let out = notifies(&dev(&model, &a), &Event::ObjectCreation { path: &created[0] }, CTL);
    assert_eq!((out[0].retry, out[0].notify.send_resp, out[0].expires_after), (true, true, Some(std::time::Duration::from_secs(30))));
    // Disabled: silent. A table below the reference or another NotifType: no match.
    handle(&model, &mut a, set(&[(&sub, &[("Enable", "false", true)])], false));
    assert!(notifies(&dev(&model, &a), &Event::ObjectCreation { path: &created[0] }, CTL).is_empty());
    assert!(notifies(&dev(&model, &a), &Event::ObjectDeletion { path: &created[0] }, CTL).is_empty());

    // ObjectDeletion, OperationComplete (command path) and ValueChange (search expression) each
    // need their own subscription.
    subscribe(&model, &mut a, "od", "ObjectDeletion", "Device.NAT.PortMapping.", true);
    subscribe(&model, &mut a, "op", "OperationComplete", "Device.SelfTestDiagnostics()", true);
    subscribe(&model, &mut a, "vc", "ValueChange", "Device.NAT.PortMapping.[Alias==\"web\"].Description", true);
    assert_eq!(notifies(&dev(&model, &a), &Event::ObjectDeletion { path: &created[0] }, CTL)[0].notify.subscription_id, "od");
    let accepted = cpe_sim::usp::operate::Accepted {
        command: Command::SelfTest,
        path: "Device.SelfTestDiagnostics()".into(),
        command_key: "k".into(),
        request_path: None,
        send_resp: true,
    };
    let output = HashMap::new();
    let out = notifies(&dev(&model, &a), &Event::OperationComplete { accepted: &accepted, output: &output }, CTL);
    assert!(matches!(&out[..], [o] if o.notify.subscription_id == "op"));
    let reboot = cpe_sim::usp::operate::Accepted { command: Command::Reboot, path: "Device.Reboot()".into(), ..accepted.clone() };
    assert!(notifies(&dev(&model, &a), &Event::OperationComplete { accepted: &reboot, output: &output }, CTL).is_empty());
    let desc = format!("{}Description", created[0]);
    assert_eq!(notifies(&dev(&model, &a), &Event::ValueChange { path: &desc }, CTL).len(), 1);
    handle(&model, &mut a, set(&[(&created[0], &[("Alias", "other", true)])], false));
    assert!(notifies(&dev(&model, &a), &Event::ValueChange { path: &desc }, CTL).is_empty(), "the search no longer matches");

    // The Controller sets its own period.
    handle(
        &model,
        &mut a,
        set(&[("Device.LocalAgent.Controller.[EndpointID==\"self::test-controller\"].", &[("PeriodicNotifInterval", "60", true)])], false),
    );
    assert_eq!(every(&dev(&model, &a), CTL), Some(std::time::Duration::from_secs(60)));
    // A subscription whose Recipient is another Controller row notifies that Controller, once
    // the row is enabled (TR-181: a disabled Controller is not talked to; Enable is false when
    // an Add does not set it).
    let ctl2 = handle(&model, &mut a, add("Device.LocalAgent.Controller.", &[("EndpointID", "self::other", true)], false)).created;
    let vc2 = subscribe(&model, &mut a, "vc2", "ValueChange", "Device.DeviceInfo.ProvisioningCode", false);
    handle(&model, &mut a, set(&[(&vc2, &[("Recipient", ctl2[0].trim_end_matches('.'), true)])], false));
    let out = notifies(&dev(&model, &a), &Event::ValueChange { path: "Device.DeviceInfo.ProvisioningCode" }, CTL);
    assert!(out.is_empty(), "a disabled Controller gets nothing");
    handle(&model, &mut a, set(&[(&ctl2[0], &[("Enable", "true", true)])], false));
    let out = notifies(&dev(&model, &a), &Event::ValueChange { path: "Device.DeviceInfo.ProvisioningCode" }, CTL);
    assert_eq!(out.iter().map(|o| o.to.as_str()).collect::<Vec<_>>(), ["self::other"]);

    // The Controller deletes the Boot! subscription (by unique key): no Boot! any more.
    handle(
        &model,
        &mut a,
        OneOfreq_type::delete(Delete {
            allow_partial: false,
            obj_paths: vec!["Device.LocalAgent.Subscription.[ID==\"cpe-sim-boot\"].".into()],
        }),
    );
    assert!(notifies(&dev(&model, &a), &boot, CTL).is_empty());
    // FactoryReset() brings the defaults back and forgets the Controller's subscriptions.
    assert_eq!(a.carry_out(&model, Command::FactoryReset, NOW), Some(BootCause::RemoteFactoryReset));
    let d = dev(&model, &a);
    assert_eq!(notifies(&d, &boot, CTL).len(), 1);
    assert!(notifies(&d, &Event::ObjectDeletion { path: "Device.NAT.PortMapping.1." }, CTL).is_empty());
    assert_eq!(d.get("Device.LocalAgent.SubscriptionNumberOfEntries").unwrap(), "2");
}

/// The values a Get of `path` returns, as `path → value` over every resolved object.
fn got(model: &Model, a: &mut Agent, path: &str) -> Result<Vec<(String, String)>, u32> {
    let r = get(model, a, &[path], 0);
    let res = &r.req_path_results[0];
    if res.err_code != 0 {
        return Err(res.err_code);
    }
    let mut out: Vec<(String, String)> = res
        .resolved_path_results
        .iter()
        .flat_map(|o| o.result_params.iter().map(move |(k, v)| (format!("{}{k}", o.resolved_path), v.clone())))
        .collect();
    out.sort();
    Ok(out)
}

// Search paths (TR-369 §"Searching with Expressions") in Get, Set, Delete, GetInstances and
// Operate: every operator, `&&`, nested tables, `*`, typed constants; malformed is 7008.
#[test]
fn search_paths_in_every_message() {
    let (model, mut a) = agent();
    for (alias, port, enable) in [("web", "8080", "true"), ("ssh", "22", "false"), ("dns", "53", "true")] {
        handle(
            &model,
            &mut a,
            add("Device.NAT.PortMapping.", &[("Alias", alias, true), ("ExternalPort", port, true), ("Enable", enable, true)], false),
        );
    }
    let ports = |a: &mut Agent, expr: &str| -> Result<Vec<String>, u32> {
        got(&model, a, &format!("Device.NAT.PortMapping.[{expr}].ExternalPort")).map(|v| v.into_iter().map(|(_, p)| p).collect())
    };
    assert_eq!(ports(&mut a, "Alias==\"web\"").unwrap(), ["8080"]);
    assert_eq!(ports(&mut a, "Alias!=\"web\"").unwrap(), ["22", "53"]);
    assert_eq!(ports(&mut a, "ExternalPort>53").unwrap(), ["8080"]);
    assert_eq!(ports(&mut a, "ExternalPort>=53").unwrap(), ["8080", "53"], "instance order");
    assert_eq!(ports(&mut a, "ExternalPort<53").unwrap(), ["22"]);
    assert_eq!(ports(&mut a, "ExternalPort<=+053").unwrap(), ["22", "53"], "integers compare as numbers");
    assert_eq!(ports(&mut a, "Enable==true&&ExternalPort<1024").unwrap(), ["53"]);
    assert_eq!(ports(&mut a, "Enable==1 && Alias == \"web\"").unwrap(), ["8080"], "1 is true; blanks around operators");
    assert_eq!(ports(&mut a, "Alias==\"nope\"").unwrap(), Vec::<String>::new(), "a search matching nothing is not an error");
    assert_eq!(ports(&mut a, "Description~=\"x\"").unwrap(), Vec::<String>::new());
    // Nested tables, each with its own expression, and `*` beside one; a relative path into a
    // child object.
    let wan =
        got(&model, &mut a, "Device.IP.Interface.[Name==\"wan\"].IPv4Address.[Enable==true&&AddressingType==\"DHCP\"].IPAddress").unwrap();
    assert_eq!(wan, [("Device.IP.Interface.1.IPv4Address.1.IPAddress".to_string(), "198.51.100.10".to_string())]);
    assert_eq!(got(&model, &mut a, "Device.IP.Interface.*.IPv4Address.[AddressingType==\"DHCP\"].IPAddress").unwrap().len(), 1);
    assert_eq!(got(&model, &mut a, "Device.IP.Interface.[Type==\"Normal\"&&Stats.BytesSent>=0].Name").unwrap().len(), 2);
    // Malformed or ill-typed: 7008; an unknown parameter in an expression: 7026.
    for bad in [
        "Device.NAT.PortMapping.[].",
        "Device.NAT.PortMapping.[Alias=\"web\"].",
        "Device.NAT.PortMapping.[Alias==web].",
        "Device.NAT.PortMapping.[Enable==\"true\"].",
        "Device.NAT.PortMapping.[ExternalPort==\"80\"].",
        "Device.NAT.PortMapping.[ExternalPort>eighty].",
        "Device.NAT.PortMapping.[Alias>\"a\"].",
        "Device.NAT.PortMapping.[Enable<true].",
        "Device.NAT.PortMapping.[Alias==\"web\"",
        "Device.NAT.PortMapping.[Alias==\"web\"]x.",
        "Device.IP.Interface.[IPv4Address.1.Enable==true].",
        "Device.IP.Interface.{Type==\"Normal\"}.",
    ] {
        assert_eq!(got(&model, &mut a, bad), Err(7008), "{bad}");
    }
    assert_eq!(got(&model, &mut a, "Device.NAT.PortMapping.[Nope==1]."), Err(7026));
    assert_eq!(got(&model, &mut a, "Device.DeviceInfo.[Alias==\"x\"]."), Err(7026), "not a table");
    // GetInstances through a search.
    let Ok(OneOfresp_type::get_instances_resp(gi)) = ask(
        &model,
        &mut a,
        OneOfreq_type::get_instances(GetInstances {
            obj_paths: vec!["Device.NAT.PortMapping.[Enable==true].".into()],
            first_level_only: true,
        }),
    ) else {
        panic!()
    };
    let mut insts: Vec<&str> = gi.req_path_results[0].curr_insts.iter().map(|i| i.instantiated_obj_path.as_str()).collect();
    insts.sort();
    assert_eq!(insts, ["Device.NAT.PortMapping.1.", "Device.NAT.PortMapping.3."]);
    // Set through a search writes every match and only them; a search matching nothing is fine.
    handle(&model, &mut a, set(&[("Device.NAT.PortMapping.[Enable==true].", &[("Description", "on", true)])], false));
    let on = got(&model, &mut a, "Device.NAT.PortMapping.[Description==\"on\"].Alias").unwrap();
    assert_eq!(on.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), ["web", "dns"]);
    handle(&model, &mut a, set(&[("Device.NAT.PortMapping.[Alias==\"none\"].", &[("Description", "x", true)])], false));
    // Delete through a search.
    let gone = handle(
        &model,
        &mut a,
        OneOfreq_type::delete(Delete { allow_partial: false, obj_paths: vec!["Device.NAT.PortMapping.[ExternalPort<100].".into()] }),
    );
    assert_eq!(gone.deleted, ["Device.NAT.PortMapping.2.", "Device.NAT.PortMapping.3."]);
    assert_eq!(ports(&mut a, "ExternalPort>=0").unwrap(), ["8080"]);
    // Operate: commands are on the root, so a search names none (7026), a malformed one 7008.
    let op = |cmd: &str| {
        OneOfreq_type::operate(Operate { command: cmd.into(), command_key: String::new(), send_resp: true, input_args: HashMap::new() })
    };
    assert_eq!(ask(&model, &mut a, op("Device.NAT.PortMapping.[Enable==true].Reset()")).unwrap_err().err_code, 7026);
    assert_eq!(ask(&model, &mut a, op("Device.NAT.PortMapping.[Enable=true].Reset()")).unwrap_err().err_code, 7008);
}

// Unique keys (TR-369 7025 Object exists with duplicate key): Alias, and a subscription's
// (Recipient, ID); an Agent picks an Alias nobody has when the Controller gives none.
#[test]
fn unique_keys_on_add_and_set() {
    let (model, mut a) = factory_agent();
    handle(&model, &mut a, add("Device.NAT.PortMapping.", &[("Alias", "web", true)], false));
    assert_eq!(ask(&model, &mut a, add("Device.NAT.PortMapping.", &[("Alias", "web", true)], false)).unwrap_err().err_code, 7025);
    assert_eq!(value(&model, &mut a, "Device.NAT.PortMappingNumberOfEntries"), "1", "nothing was created");
    // With allow_partial the duplicate fails alone.
    let Ok(OneOfresp_type::add_resp(r)) = ask(&model, &mut a, add("Device.NAT.PortMapping.", &[("Alias", "web", true)], true)) else {
        panic!()
    };
    use rusp_lib::usp::mod_AddResp::mod_CreatedObjectResult::mod_OperationStatus::OneOfoper_status as A;
    assert!(matches!(&r.created_obj_results[0].oper_status.as_ref().unwrap().oper_status, A::oper_failure(f) if f.err_code == 7025));
    // No Alias given: the Agent picks one (cpe-N) no sibling has.
    let created = handle(&model, &mut a, add("Device.NAT.PortMapping.", &[], false)).created;
    let alias = value(&model, &mut a, &format!("{}Alias", created[0]));
    assert!(alias.starts_with("cpe-") && alias != "web", "{alias}");
    // Set of a unique key to another instance's value: refused, nothing changed.
    let err = ask(&model, &mut a, set(&[(&created[0], &[("Alias", "web", true)])], false)).unwrap_err();
    assert_eq!(err.err_code, 7025, "{err:?}");
    assert_eq!(err.param_errs[0].param_path, format!("{}Alias", created[0]));
    assert_eq!(value(&model, &mut a, &format!("{}Alias", created[0])), alias);
    // Setting an instance's key to its own value is no clash.
    handle(&model, &mut a, set(&[("Device.NAT.PortMapping.[Alias==\"web\"].", &[("Alias", "web", true)])], false));
    // Subscriptions: (Recipient, ID) is unique; the factory Boot! subscription has ID cpe-sim-boot.
    let dup = add("Device.LocalAgent.Subscription.", &[("ID", "cpe-sim-boot", true), ("NotifType", "Event", true)], false);
    assert_eq!(ask(&model, &mut a, dup).unwrap_err().err_code, 7025);
    subscribe(&model, &mut a, "mine", "ValueChange", "Device.DeviceInfo.", false);
    let dup = add("Device.LocalAgent.Subscription.", &[("ID", "mine", true)], false);
    assert_eq!(ask(&model, &mut a, dup).unwrap_err().err_code, 7025);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, ..Default::default() })]
    // Hostile search paths through Get, Set, Delete, GetInstances and a subscription's
    // ReferenceList: an answer (7008, 7026, 7005 or results) every time, never a panic.
    #[test]
    fn hostile_search_expressions_never_panic(
        parts in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("[".to_string()), proptest::strategy::Just("]".to_string()),
                proptest::strategy::Just("\"".to_string()), proptest::strategy::Just("==".to_string()),
                proptest::strategy::Just("&&".to_string()), proptest::strategy::Just(".".to_string()),
                proptest::strategy::Just("*".to_string()), proptest::strategy::Just("%".to_string()),
                proptest::strategy::Just("Alias".to_string()), proptest::strategy::Just("ExternalPort".to_string()),
                proptest::strategy::Just("Enable".to_string()), proptest::strategy::Just("1".to_string()),
                proptest::strategy::Just("true".to_string()), "[<>=!~ %0-9a-zA-Z.\"\\[\\]&*{}éü€]{0,4}",
            ],
            0..24,
        )
    ) {
        let (model, mut a) = agent();
        let tail = parts.concat();
        let path = format!("Device.NAT.PortMapping.{tail}");
        let r = get(&model, &mut a, &[&path], 0);
        let code = r.req_path_results[0].err_code;
        proptest::prop_assert!([0, 7008, 7026, 7005].contains(&code), "{path}: {code}");
        for req in [
            set(&[(&path, &[("Description", "x", false)])], true),
            OneOfreq_type::delete(Delete { allow_partial: true, obj_paths: vec![path.clone()] }),
            OneOfreq_type::get_instances(GetInstances { obj_paths: vec![path.clone()], first_level_only: false }),
            add("Device.LocalAgent.Subscription.", &[("Enable", "true", true), ("ReferenceList", &path, true)], true),
        ] {
            let bytes = record::seal(&request("m", req), CTL, &a.endpoint_id);
            proptest::prop_assert!(a.handle(&model, &bytes, NOW).is_ok());
        }
        let d = dev(&model, &a);
        let _ = cpe_sim::usp::subscription::notifies(&d, &cpe_sim::usp::subscription::Event::ValueChange { path: "Device.NAT.PortMapping.1.Alias" }, CTL);
    }
}
