//! The simulated CPE answers the shared protocol examples' ACS requests with exactly the shared
//! examples' CPE messages (leaf by leaf), and its Informs have their shape.

use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::support::{fixture, inform_response, Cpe, TR181};

/// Every element as `path=text` (leaves) or `path` (others), with `xsi:type` when present;
/// namespace prefixes dropped, indentation ignored.
fn leaves(xml: &[u8]) -> Vec<String> {
    let mut r = Reader::from_reader(xml);
    let (mut path, mut out): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    // The element just opened, not yet known to be a leaf.
    let mut pending: Option<String> = None;
    let mut in_text = false;
    let entry = |path: &[String], e: &quick_xml::events::BytesStart<'_>| {
        let ty = e.attributes().flatten().find(|a| a.key.as_ref().ends_with(":type")).map(|a| a.value.to_string());
        let mut entry = path.join("/");
        if let Some(t) = ty {
            entry.push_str(&format!("[{}]", t.rsplit(':').next().unwrap()));
        }
        entry
    };
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) => {
                path.push(e.local_name().as_ref().to_string());
                out.extend(pending.replace(entry(&path, &e)));
                in_text = false;
            }
            Event::Empty(e) => {
                path.push(e.local_name().as_ref().to_string());
                out.extend(pending.take());
                out.push(format!("{}=", entry(&path, &e)));
                path.pop();
                in_text = false;
            }
            Event::Text(t) => {
                let text = t.xml10_content().to_string();
                if text.trim().is_empty() && !in_text {
                    // Indentation between elements.
                    continue;
                }
                match pending.take() {
                    Some(p) => {
                        out.push(format!("{p}={text}"));
                        in_text = true;
                    }
                    None if in_text => out.last_mut().unwrap().push_str(&text),
                    None => {}
                }
            }
            Event::GeneralRef(g) => {
                if let Some(p) = pending.take() {
                    out.push(format!("{p}="));
                    in_text = true;
                }
                if in_text {
                    out.last_mut().unwrap().push_str(&format!("&{};", &*g));
                }
            }
            Event::End(_) => {
                if let Some(p) = pending.take() {
                    out.push(format!("{p}="));
                }
                in_text = false;
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// Our answer to an ACS fixture request, in an open session of a fresh TR-181 CPE.
fn answer(cpe: &mut Cpe, request: &str) -> Vec<u8> {
    let (_, out) = cpe.reply(Some(&fixture(request)));
    out.into_bytes()
}

#[test]
fn leaves_sees_what_matters() {
    let l = leaves(&fixture("fault-9005.xml"));
    assert!(l.contains(&"Envelope/Header/ID=acs-7f3a0106".to_string()), "{l:?}");
    assert!(
        l.contains(&"Envelope/Body/Fault/detail/Fault/FaultString=Invalid parameter name: Device.DeviceInfo.NoSuchParameter".to_string())
    );
    let spv = leaves(&fixture("spv-request.xml"));
    assert!(
        spv.contains(
            &"Envelope/Body/SetParameterValues/ParameterList/ParameterValueStruct/Value[string]=cr-SIM0000001 &amp; co".to_string()
        ),
        "{spv:?}"
    );
    assert_ne!(leaves(&fixture("spv-response.xml")), leaves(&fixture("addobject-response.xml")));
}

#[test]
fn answers_equal_the_shared_examples() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    assert_eq!(leaves(&answer(&mut cpe, "gpn-request-root.xml")), leaves(&fixture("gpn-response-root.xml")));
    assert_eq!(leaves(&answer(&mut cpe, "gpv-request-invalid.xml")), leaves(&fixture("fault-9005.xml")));
    assert_eq!(leaves(&answer(&mut cpe, "spv-request.xml")), leaves(&fixture("spv-response.xml")));
    let add = "<cwmp:AddObject><ObjectName>Device.NAT.PortMapping.</ObjectName><ParameterKey/></cwmp:AddObject>";
    cpe.rpc("a1", add);
    cpe.rpc("a2", add);
    assert_eq!(leaves(&answer(&mut cpe, "addobject-request.xml")), leaves(&fixture("addobject-response.xml")));
}

#[test]
fn spv_fault_equals_the_shared_example() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let request = "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value xsi:type=\"xsd:string\">9</Value></ParameterValueStruct><ParameterValueStruct><Name>Device.ManagementServer.PeriodicInformInterval</Name><Value xsi:type=\"xsd:unsignedInt\">0</Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>";
    let ours = cpe.rpc("acs-7f3a0104", request);
    assert_eq!(leaves(ours.as_bytes()), leaves(&fixture("spv-fault-9003.xml")));
}

#[test]
fn gpv_response_has_the_shared_example_shape() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let ours = leaves(&answer(&mut cpe, "gpv-request-partial.xml"));
    let theirs = leaves(&fixture("gpv-response.xml"));
    // The fixture's model is a subset: every (name, type) it reports, we report too, in order.
    let names = |l: &[String]| -> Vec<String> {
        l.iter().filter(|e| e.contains("/Name=")).map(|e| e.rsplit('=').next().unwrap().to_string()).collect()
    };
    let types = |l: &[String]| -> Vec<String> {
        l.iter().filter(|e| e.contains("/Value[")).map(|e| e.split('=').next().unwrap().to_string()).collect()
    };
    let (our_names, their_names) = (names(&ours), names(&theirs));
    let mut last = 0;
    for (i, n) in their_names.iter().enumerate() {
        let at = our_names.iter().position(|o| o == n).unwrap_or_else(|| panic!("{n} missing"));
        assert!(at >= last, "{n} out of order");
        last = at;
        assert_eq!(types(&ours)[at], types(&theirs)[i], "{n}");
    }
    assert!(
        ours.contains(&"Envelope/Body/GetParameterValuesResponse/ParameterList/ParameterValueStruct/Value[string]=".to_string()),
        "password reads back empty"
    );
}

#[test]
fn informs_have_the_shared_example_shape() {
    let mut cpe = Cpe::new(TR181, 0);
    let shape = |l: Vec<String>| -> Vec<String> {
        // Values differ (serial, times, URLs); names, types, events and structure must not.
        l.into_iter()
            .map(|e| match e.split_once('=') {
                Some((p, v))
                    if p.ends_with("/Name") || p.ends_with("/EventCode") || p.ends_with("/CommandKey") || p.ends_with("MaxEnvelopes") =>
                {
                    format!("{p}={v}")
                }
                Some((p, _)) => p.to_string(),
                None => e,
            })
            .collect()
    };
    let ours = shape(leaves(cpe.inform().as_bytes()));
    assert_eq!(ours, shape(leaves(&fixture("inform-bootstrap.xml"))));
    // After a firmware download: 1 BOOT + 7 TRANSFER COMPLETE + M Download, then TransferComplete.
    cpe.reply(Some(&inform_response("1001")));
    cpe.close();
    cpe.open();
    let dl = cpe.rpc("d", "<cwmp:Download><CommandKey>fw-upgrade-42</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>http://127.0.0.1:1/fw</URL></cwmp:Download>");
    assert!(dl.contains("<Status>1</Status>"));
    let s = cpe.close();
    let [cpe_sim::cpe::DeferredAction::Transfer(req)] = s.actions.as_slice() else { panic!() };
    let start = crate::support::T0.plus(Duration::from_secs(32));
    let done = crate::support::T0.plus(Duration::from_secs(137));
    cpe.state.transfer_finished(req, None, start, done);
    let inform = leaves(cpe.inform().as_bytes());
    let events: Vec<&String> = inform.iter().filter(|e| e.contains("/EventCode=") || e.contains("/CommandKey=")).collect();
    let theirs = leaves(&fixture("inform-transfer-complete.xml"));
    let their_events: Vec<&String> = theirs.iter().filter(|e| e.contains("/EventCode=") || e.contains("/CommandKey=")).collect();
    assert_eq!(events, their_events);
    let (_, tc) = cpe.reply(Some(&inform_response("1")));
    let skip_id = |l: Vec<String>| -> Vec<String> { l.into_iter().filter(|e| !e.contains("Header/ID")).collect() };
    assert_eq!(skip_id(leaves(tc.as_bytes())), skip_id(leaves(&fixture("transfer-complete.xml"))));
}
