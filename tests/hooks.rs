//! Extension hooks over the wire: extra Inform parameters, a refused and a mirrored
//! SetParameterValues, a vendor RPC, and a request refused before it is answered.

use std::sync::{Arc, Mutex};

use cpe_sim::cwmp::fault::FaultCode;
use cpe_sim::model::hooks::{CpeHooks, HookFault};
use cpe_sim::model::{Device, DeviceMut};
use cpe_sim::time::UnixMillis;

use crate::support::raw::{http, simple_acs, RawAcs, RawReply};
use crate::support::{acs_envelope, profile, texts, OneCpe, TR181};

#[derive(Debug)]
struct Vendor;

impl CpeHooks for Vendor {
    fn inform_parameters(&self) -> Vec<String> {
        vec!["Device.DeviceInfo.UpTime".into()]
    }
    fn on_request(&self, _device: &Device<'_>, method: &str) -> Option<HookFault> {
        (method == "FactoryReset").then(|| HookFault { code: FaultCode::RequestDenied, detail: "locked by the operator".into() })
    }
    fn before_set(&self, _device: &Device<'_>, params: &[(&str, &str)]) -> Result<(), HookFault> {
        match params.iter().any(|(_, v)| v.is_empty()) {
            true => Err(HookFault { code: FaultCode::InvalidParameterValue, detail: "empty values are refused".into() }),
            false => Ok(()),
        }
    }
    fn after_set(&self, device: &mut DeviceMut<'_>, params: &[(&str, &str)]) {
        if let Some((_, v)) = params.iter().find(|(n, _)| *n == "Device.WiFi.SSID.1.SSID") {
            device.set_local("Device.WiFi.SSID.2.SSID", v).unwrap();
        }
    }
    fn vendor_rpc(&self, _device: &mut DeviceMut<'_>, method: &str) -> Option<String> {
        (method == "X_ACME_Ping").then(|| "<Result>pong</Result>".into())
    }
}

fn spv(value: &str) -> String {
    format!("<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[1]\"><ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name><Value xsi:type=\"xsd:string\">{value}</Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>")
}

#[tokio::test]
async fn hooks_change_what_the_cpe_answers() {
    // The ACS's requests in order, each sent after the CPE's previous answer.
    let script = [
        "<cwmp:X_ACME_Ping></cwmp:X_ACME_Ping>".to_string(),
        "<cwmp:X_OTHER_Thing></cwmp:X_OTHER_Thing>".to_string(),
        spv("lab"),
        spv(""),
        "<cwmp:FactoryReset></cwmp:FactoryReset>".to_string(),
    ];
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let acs = RawAcs::start(move |req, _| {
        let body = req.body_str();
        let mut seen = log.lock().unwrap();
        let step = seen.len();
        seen.push(body.clone());
        if body.contains("<cwmp:Inform>") {
            return RawReply::Send(simple_acs(req));
        }
        match script.get(step - 1) {
            Some(rpc) => RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &acs_envelope(&format!("r{step}"), rpc))),
            None => RawReply::Send(http("204 No Content", &[], b"")),
        }
    })
    .await;
    let model = profile(TR181).with_hooks(Arc::new(Vendor)).unwrap();
    let model = Arc::new(model);
    let (report, cpe) = OneCpe::new(model.clone(), acs.url("/"), crate::support::test_transport()).run().await;
    assert_eq!((report.completed, report.failed), (1, 0), "{:?}", report.last_error);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 7, "Inform, empty POST, five answers");
    assert!(texts(&seen[0], "Name").iter().any(|n| n == "Device.DeviceInfo.UpTime"), "the hook's Inform parameter");
    assert!(seen[2].contains("<cwmp:X_ACME_PingResponse><Result>pong</Result></cwmp:X_ACME_PingResponse>"), "{}", seen[2]);
    assert_eq!(texts(&seen[3], "FaultCode"), ["9000"], "an RPC no hook implements");
    assert!(seen[4].contains("SetParameterValuesResponse"), "{}", seen[4]);
    assert_eq!(texts(&seen[5], "FaultCode"), ["9007"], "refused by before_set");
    assert!(seen[5].contains("empty values are refused"));
    assert_eq!(texts(&seen[6], "FaultCode"), ["9001"], "refused by on_request");
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, UnixMillis::now());
    assert_eq!(dev.get("Device.WiFi.SSID.1.SSID").as_deref(), Some("lab"), "the refused SPV changed nothing");
    assert_eq!(dev.get("Device.WiFi.SSID.2.SSID").as_deref(), Some("lab"), "after_set mirrored the SSID");
    assert!(profile(TR181).with_hooks(Arc::new(BadHooks)).unwrap_err().contains("Device.Nope"));
}

#[derive(Debug)]
struct BadHooks;

impl CpeHooks for BadHooks {
    fn inform_parameters(&self) -> Vec<String> {
        vec!["Device.Nope".into()]
    }
}
