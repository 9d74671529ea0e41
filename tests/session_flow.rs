//! Whole CWMP sessions driven through the sans-IO session machine with scripted ACS messages and
//! an explicit clock, for both example profiles.

use std::time::Duration;

use cpe_sim::acs::{AcsRpc, AcsScript};
use cpe_sim::cpe::DeferredAction;
use cpe_sim::run::run_session;
use cpe_sim::session::{SessionError, Step};
use cpe_sim::time::UnixMillis;

use crate::support::{acs_envelope, case_download, held, inform_response, texts, value_of, Cpe, TR098, TR181};

const PROFILES: [&str; 2] = [TR181, TR098];

fn events(inform: &str) -> Vec<String> {
    texts(inform, "EventCode")
}

#[test]
fn bootstrap_session_then_quiet_second_session() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        let inform = cpe.inform();
        assert_eq!(events(&inform), ["0 BOOTSTRAP", "1 BOOT"], "{p}");
        assert_eq!(texts(&inform, "SerialNumber"), ["FEFEFE000000"]);
        assert_eq!(texts(&inform, "OUI"), ["FEFEFE"]);
        assert!(inform.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\""));
        assert!(inform.contains("<RetryCount>0</RetryCount>"));
        assert!(inform.contains("<CurrentTime>2025-01-15T10:20:30Z</CurrentTime>"));
        let ps = value_of(&inform, &format!("{}.ManagementServer.ParameterKey", cpe.root()));
        assert_eq!(ps.as_deref(), Some(""), "forced ParameterKey is in the Inform");
        let count: usize = inform.split("ParameterValueStruct[").nth(1).unwrap().split(']').next().unwrap().parse().unwrap();
        assert_eq!(count, texts(&inform, "Name").len(), "arrayType count matches");
        let (step, _) = cpe.reply(Some(&inform_response("1")));
        assert_eq!(step, Step::SendEmpty);
        let gpn =
            cpe.rpc("acs-1", "<cwmp:GetParameterNames><ParameterPath></ParameterPath><NextLevel>1</NextLevel></cwmp:GetParameterNames>");
        assert_eq!(texts(&gpn, "Name"), [format!("{}.", cpe.root())]);
        assert!(gpn.contains("<cwmp:ID SOAP-ENV:mustUnderstand=\"1\">acs-1</cwmp:ID>"));
        let s = cpe.close();
        assert_eq!(s.result, Ok(()));
        assert!(cpe.state.bootstrapped);
        assert!(cpe.state.events.is_empty());
        cpe.state.periodic_due();
        let second = cpe.inform();
        assert_eq!(events(&second), ["2 PERIODIC"]);
    }
}

#[test]
fn serials_follow_the_cpe_index() {
    for (i, want) in [(0, "FEFEFE000000"), (1, "FEFEFE000001"), (4095, "FEFEFE000FFF")] {
        let mut cpe = Cpe::new(TR181, i);
        assert_eq!(texts(&cpe.inform(), "SerialNumber"), [want]);
    }
}

#[test]
fn gpv_partial_path_full_name_and_secrets() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 3);
        cpe.open();
        let r = cpe.root().to_string();
        let out = cpe.rpc("acs-7f3a0102", &format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[2]\"><string>{r}.ManagementServer.</string><string>{r}.DeviceInfo.UpTime</string></ParameterNames></cwmp:GetParameterValues>"));
        let names = texts(&out, "Name");
        assert!(names.contains(&format!("{r}.ManagementServer.PeriodicInformInterval")), "{p}");
        assert_eq!(names.last().unwrap(), &format!("{r}.DeviceInfo.UpTime"));
        assert!(!names.iter().any(|n| n.ends_with('.')), "GPV returns parameters only");
        assert_eq!(
            value_of(&out, &format!("{r}.ManagementServer.ConnectionRequestPassword")).as_deref(),
            Some(""),
            "secret reads back empty"
        );
        assert_eq!(value_of(&out, &format!("{r}.DeviceInfo.UpTime")).as_deref(), Some("0"));
        assert!(out.contains("<Value xsi:type=\"xsd:unsignedInt\">3600</Value>"));
        // Uptime moves with the clock.
        cpe.now = cpe.now.plus(Duration::from_secs(42));
        let out = cpe.rpc("acs-2", &format!("<cwmp:GetParameterValues><ParameterNames><string>{r}.DeviceInfo.UpTime</string></ParameterNames></cwmp:GetParameterValues>"));
        assert_eq!(value_of(&out, &format!("{r}.DeviceInfo.UpTime")).as_deref(), Some("42"));
        assert_eq!(cpe.close().result, Ok(()));
    }
}

#[test]
fn gpv_unknown_name_is_fault_9005_with_the_id() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let r = cpe.root().to_string();
        let out = cpe.rpc("acs-7f3a0106", &format!("<cwmp:GetParameterValues><ParameterNames><string>{r}.DeviceInfo.SoftwareVersion</string><string>{r}.DeviceInfo.NoSuchParameter</string></ParameterNames></cwmp:GetParameterValues>"));
        assert_eq!(texts(&out, "FaultCode"), ["9005"]);
        assert_eq!(texts(&out, "faultcode"), ["Client"]);
        assert!(out.contains("NoSuchParameter"));
        assert!(out.contains(">acs-7f3a0106</cwmp:ID>"));
        let s = cpe.close();
        assert_eq!((s.result, s.requests, s.faults), (Ok(()), 1, 1));
    }
}

#[test]
fn spv_is_all_or_nothing() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let r = cpe.root().to_string();
        let before = cpe.get(&format!("{r}.ManagementServer.PeriodicInformInterval"));
        let bad = format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{r}.DeviceInfo.SoftwareVersion</Name><Value xsi:type=\"xsd:string\">9.9</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformInterval</Name><Value xsi:type=\"xsd:unsignedInt\">-5</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformEnable</Name><Value xsi:type=\"xsd:unsignedInt\">1</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.Nope</Name><Value>1</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.URL</Name><Value>http://new/</Value></ParameterValueStruct></ParameterList><ParameterKey>k1</ParameterKey></cwmp:SetParameterValues>");
        let out = cpe.rpc("acs-7f3a0104", &bad);
        assert_eq!(texts(&out, "FaultCode"), ["9003", "9008", "9007", "9006", "9005"], "{p}");
        assert_eq!(texts(&out, "ParameterName").len(), 4);
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.PeriodicInformInterval")), before, "nothing applied");
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.URL")).as_deref(), Some("http://acs.example.net:7547/"));
        let good = format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformInterval</Name><Value xsi:type=\"xsd:unsignedInt\">300</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformEnable</Name><Value xsi:type=\"xsd:boolean\">1</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformTime</Name><Value xsi:type=\"xsd:dateTime\">1970-01-01T05:23:11.123Z</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.ConnectionRequestUsername</Name><Value>cr &amp; co</Value></ParameterValueStruct></ParameterList><ParameterKey>cfg-2025-01-15-a</ParameterKey></cwmp:SetParameterValues>");
        let out = cpe.rpc("acs-7f3a0103", &good);
        assert_eq!(texts(&out, "Status"), ["0"]);
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.PeriodicInformInterval")).as_deref(), Some("300"));
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.PeriodicInformEnable")).as_deref(), Some("true"));
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.ParameterKey")).as_deref(), Some("cfg-2025-01-15-a"));
        let dup = format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{r}.Time.NTPServer1</Name><Value>a</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.Time.NTPServer1</Name><Value>b</Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>");
        assert_eq!(texts(&cpe.rpc("d", &dup), "FaultCode"), ["9003"]);
        let s = cpe.close();
        assert!(s.changes.contains(cpe_sim::model::ChangeSet::PERIODIC_INFORM));
        assert!(s.changes.contains(cpe_sim::model::ChangeSet::CONNECTION_REQUEST));
        // The escaped value comes back escaped in the next Inform's GPV.
        cpe.state.periodic_due();
        let inform = cpe.inform();
        assert_eq!(value_of(&inform, &format!("{r}.ManagementServer.ParameterKey")).as_deref(), Some("cfg-2025-01-15-a"));
    }
}

fn table(p: &str) -> &'static str {
    if p == TR181 {
        "Device.NAT.PortMapping."
    } else {
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.PortMapping."
    }
}

#[test]
fn add_and_delete_objects_never_reuse_numbers() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let t = table(p);
        let add = format!("<cwmp:AddObject><ObjectName>{t}</ObjectName><ParameterKey>add-1</ParameterKey></cwmp:AddObject>");
        let out = cpe.rpc("a1", &add);
        assert_eq!((texts(&out, "InstanceNumber"), texts(&out, "Status")), (vec!["1".to_string()], vec!["0".to_string()]), "{p}");
        assert_eq!(texts(&cpe.rpc("a2", &add), "InstanceNumber"), ["2"]);
        let out = cpe.rpc(
            "g",
            &format!("<cwmp:GetParameterValues><ParameterNames><string>{t}2.</string></ParameterNames></cwmp:GetParameterValues>"),
        );
        assert!(texts(&out, "Name").iter().all(|n| n.starts_with(&format!("{t}2."))));
        assert!(texts(&out, "Name").len() >= 8, "a fresh instance has its default children");
        let count_name = format!("{}NumberOfEntries", t.trim_end_matches('.'));
        assert_eq!(cpe.get(&count_name).as_deref(), Some("2"));
        let set = format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{t}2.ExternalPort</Name><Value xsi:type=\"xsd:unsignedInt\">8080</Value></ParameterValueStruct></ParameterList><ParameterKey>s</ParameterKey></cwmp:SetParameterValues>");
        assert_eq!(texts(&cpe.rpc("s", &set), "Status"), ["0"]);
        let del = format!("<cwmp:DeleteObject><ObjectName>{t}2.</ObjectName><ParameterKey>del-2</ParameterKey></cwmp:DeleteObject>");
        assert_eq!(texts(&cpe.rpc("d", &del), "Status"), ["0"]);
        assert_eq!(cpe.get(&format!("{t}2.ExternalPort")), None);
        assert_eq!(texts(&cpe.rpc("d2", &del), "FaultCode"), ["9005"], "deleting twice");
        assert_eq!(texts(&cpe.rpc("a3", &add), "InstanceNumber"), ["3"], "numbers are never reused");
        assert_eq!(cpe.get(&count_name).as_deref(), Some("2"));
        assert_eq!(cpe.get(&format!("{}.ManagementServer.ParameterKey", cpe.root())).as_deref(), Some("add-1"));
        let bad = format!("<cwmp:AddObject><ObjectName>{}.DeviceInfo.</ObjectName><ParameterKey/></cwmp:AddObject>", cpe.root());
        assert_eq!(texts(&cpe.rpc("x", &bad), "FaultCode"), ["9005"]);
        assert_eq!(cpe.close().result, Ok(()));
    }
}

#[test]
fn table_full_is_9004_and_fixed_tables_refuse() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let add = "<cwmp:AddObject><ObjectName>Device.NAT.PortMapping.</ObjectName><ParameterKey/></cwmp:AddObject>";
    for _ in 0..32 {
        assert_eq!(texts(&cpe.rpc("a", add), "Status"), ["0"]);
    }
    assert_eq!(texts(&cpe.rpc("a", add), "FaultCode"), ["9004"]);
    let fixed = "<cwmp:AddObject><ObjectName>Device.WiFi.SSID.</ObjectName><ParameterKey/></cwmp:AddObject>";
    assert_eq!(texts(&cpe.rpc("f", fixed), "FaultCode"), ["9001"]);
    let del = "<cwmp:DeleteObject><ObjectName>Device.WiFi.SSID.1.</ObjectName><ParameterKey/></cwmp:DeleteObject>";
    assert_eq!(texts(&cpe.rpc("f", del), "FaultCode"), ["9001"]);
}

#[test]
fn gpn_every_next_level_case_and_wildcards() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let gpn = |cpe: &mut Cpe, path: &str, next: u8| {
        cpe.rpc(
            "n",
            &format!("<cwmp:GetParameterNames><ParameterPath>{path}</ParameterPath><NextLevel>{next}</NextLevel></cwmp:GetParameterNames>"),
        )
    };
    let out = gpn(&mut cpe, "Device.WiFi.", 1);
    let names = texts(&out, "Name");
    assert!(names.contains(&"Device.WiFi.SSID.".to_string()));
    assert!(names.contains(&"Device.WiFi.RadioNumberOfEntries".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("Device.WiFi.SSID.1")), "only the next level: {names:?}");
    let out = gpn(&mut cpe, "Device.WiFi.SSID.", 1);
    assert_eq!(texts(&out, "Name"), ["Device.WiFi.SSID.1.", "Device.WiFi.SSID.2."]);
    let out = gpn(&mut cpe, "Device.NAT.", 1);
    assert!(out.contains("<Name>Device.NAT.PortMapping.</Name><Writable>true</Writable>"));
    let out = gpn(&mut cpe, "Device.WiFi.SSID.1.", 0);
    let names = texts(&out, "Name");
    assert_eq!(names[0], "Device.WiFi.SSID.1.", "the object itself first");
    assert!(names.contains(&"Device.WiFi.SSID.1.Stats.".to_string()));
    assert!(names.contains(&"Device.WiFi.SSID.1.Stats.BytesSent".to_string()));
    let out = gpn(&mut cpe, "Device.WiFi.SSID.1.SSID", 0);
    assert_eq!(texts(&out, "Name"), ["Device.WiFi.SSID.1.SSID"]);
    assert!(out.contains("<Writable>true</Writable>"));
    assert_eq!(texts(&gpn(&mut cpe, "Device.WiFi.SSID.1.SSID", 1), "FaultCode"), ["9003"]);
    assert_eq!(texts(&gpn(&mut cpe, "Device.WiFi.SSID.9.", 0), "FaultCode"), ["9005"]);
    let all = gpn(&mut cpe, "", 0);
    assert!(texts(&all, "Name").len() > 250, "the whole tree");
    let out = cpe.rpc(
        "w",
        "<cwmp:GetParameterValues><ParameterNames><string>Device.WiFi.SSID.*.SSID</string></ParameterNames></cwmp:GetParameterValues>",
    );
    assert_eq!(texts(&out, "Name"), ["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.2.SSID"]);
    assert_eq!(value_of(&out, "Device.WiFi.SSID.2.SSID").as_deref(), Some("cpe-sim-FEFEFE000000-5G"));
    let out = cpe.rpc(
        "w",
        "<cwmp:GetParameterValues><ParameterNames><string>Device.NAT.PortMapping.*.</string></ParameterNames></cwmp:GetParameterValues>",
    );
    assert_eq!(texts(&out, "Name").len(), 0, "a wildcard over an empty table is empty, not a fault");
}

#[test]
fn attributes_round_trip_and_9009() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let spa = |name: &str, n: u8| {
        format!("<cwmp:SetParameterAttributes><ParameterList><SetParameterAttributesStruct><Name>{name}</Name><NotificationChange>1</NotificationChange><Notification>{n}</Notification><AccessListChange>1</AccessListChange><AccessList><string>Subscriber</string></AccessList></SetParameterAttributesStruct></ParameterList></cwmp:SetParameterAttributes>")
    };
    let out = cpe.rpc("s", &spa("Device.WiFi.SSID.1.", 1));
    assert!(out.contains("SetParameterAttributesResponse"));
    let out = cpe.rpc("g", "<cwmp:GetParameterAttributes><ParameterNames><string>Device.WiFi.SSID.1.SSID</string><string>Device.DeviceInfo.SoftwareVersion</string><string>Device.ManagementServer.ConnectionRequestURL</string></ParameterNames></cwmp:GetParameterAttributes>");
    assert_eq!(texts(&out, "Notification"), ["1", "2", "2"], "set passive; forced active; default active");
    assert!(out.contains("<string>Subscriber</string>"));
    assert_eq!(texts(&cpe.rpc("u", &spa("Device.DeviceInfo.UpTime", 2)), "FaultCode"), ["9009"]);
    assert_eq!(texts(&cpe.rpc("u", &spa("Device.Nope", 1)), "FaultCode"), ["9005"]);
}

#[test]
fn reboot_then_boot_and_m_reboot() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let out = cpe.rpc("r", "<cwmp:Reboot><CommandKey>reboot-7</CommandKey></cwmp:Reboot>");
        assert!(out.contains("<cwmp:RebootResponse>"));
        let s = cpe.close();
        assert_eq!(s.actions.as_slice(), [DeferredAction::Reboot { command_key: "reboot-7".into() }]);
        cpe.now = cpe.now.plus(Duration::from_secs(30));
        cpe.state.reboot("reboot-7", cpe.now);
        let inform = cpe.inform();
        assert_eq!(events(&inform), ["1 BOOT", "M Reboot"], "{p}");
        assert_eq!(texts(&inform, "CommandKey"), ["", "reboot-7"]);
        cpe.reply(Some(&inform_response("2")));
        assert_eq!(cpe.close().result, Ok(()));
        assert!(cpe.state.events.is_empty());
    }
}

#[test]
fn download_then_transfer_complete_in_a_later_session() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let out = cpe.rpc("dl", "<cwmp:Download><CommandKey>fw-upgrade-42</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>http://127.0.0.1:1/fw.bin</URL><Username/><Password/><FileSize>1024</FileSize><TargetFileName/><DelaySeconds>0</DelaySeconds><SuccessURL/><FailureURL/></cwmp:Download>");
        assert_eq!(texts(&out, "Status"), ["1"]);
        assert_eq!(texts(&out, "StartTime"), ["0001-01-01T00:00:00Z"]);
        let q = cpe.rpc("q", "<cwmp:GetQueuedTransfers/>");
        assert_eq!(texts(&q, "CommandKey"), ["fw-upgrade-42"]);
        let bad = cpe.rpc(
            "ftp",
            "<cwmp:Download><CommandKey>x</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>ftp://h/fw</URL></cwmp:Download>",
        );
        assert_eq!(texts(&bad, "FaultCode"), ["9013"]);
        let s = cpe.close();
        let [DeferredAction::Transfer(req)] = s.actions.as_slice() else { panic!("{:?}", s.actions) };
        assert!(req.is_firmware());
        let start = cpe.now.plus(Duration::from_secs(1));
        let done = cpe.now.plus(Duration::from_secs(20));
        cpe.state.transfer_finished(req, None, start, done);
        cpe.now = done;
        let inform = cpe.inform();
        assert_eq!(events(&inform), ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"], "{p}");
        let (step, tc) = cpe.reply(Some(&inform_response("3")));
        assert_eq!(step, Step::Send);
        assert!(tc.contains("<cwmp:TransferComplete>"));
        assert_eq!(texts(&tc, "CommandKey"), ["fw-upgrade-42"]);
        assert_eq!(texts(&tc, "FaultCode"), ["0"]);
        assert_eq!(texts(&tc, "CompleteTime"), ["2025-01-15T10:20:50Z"]);
        let (step, _) = cpe.reply(Some(&acs_envelope("2", "<cwmp:TransferCompleteResponse/>")));
        assert_eq!(step, Step::SendEmpty);
        assert_eq!(cpe.close().result, Ok(()));
        assert!(cpe.state.events.is_empty());
    }
}

#[test]
fn transfer_complete_is_resent_after_a_failed_session() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    cpe.rpc("dl", "<cwmp:Download><CommandKey>cfg</CommandKey><FileType>3 Vendor Configuration File</FileType><URL>http://127.0.0.1:1/c</URL></cwmp:Download>");
    let s = cpe.close();
    let [DeferredAction::Transfer(req)] = s.actions.as_slice() else { panic!() };
    cpe.state.transfer_finished(req, Some((cpe_sim::cwmp::FaultCode::FileServerUnreachable, "connection refused")), cpe.now, cpe.now);
    cpe.inform();
    let (_, tc) = cpe.reply(Some(&inform_response("1")));
    assert_eq!(texts(&tc, "FaultCode"), ["9015"]);
    // The ACS drops the session before acknowledging.
    let summary = cpe.session.as_mut().unwrap().abort(&mut cpe.state);
    assert_eq!(summary.result, Err(SessionError::Aborted));
    let inform = cpe.inform();
    assert_eq!(events(&inform), ["7 TRANSFER COMPLETE", "M Download"]);
    assert!(inform.contains("<RetryCount>1</RetryCount>"));
}

#[test]
fn factory_reset_bootstraps_again_with_defaults() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        cpe.open();
        let r = cpe.root().to_string();
        cpe.rpc("s", &format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformInterval</Name><Value>60</Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>"));
        cpe.rpc("f", "<cwmp:FactoryReset/>");
        let s = cpe.close();
        assert_eq!(s.actions.as_slice(), [DeferredAction::FactoryReset]);
        cpe.state.factory_reset(cpe.now);
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.PeriodicInformInterval")).as_deref(), Some("3600"));
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.ParameterKey")).as_deref(), Some(""));
        assert_eq!(events(&cpe.inform()), ["0 BOOTSTRAP", "1 BOOT"], "{p}");
    }
}

#[test]
fn schedule_inform_and_unknown_methods() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    assert_eq!(
        texts(
            &cpe.rpc("s0", "<cwmp:ScheduleInform><DelaySeconds>0</DelaySeconds><CommandKey>k</CommandKey></cwmp:ScheduleInform>"),
            "FaultCode"
        ),
        ["9003"]
    );
    assert!(cpe
        .rpc("s", "<cwmp:ScheduleInform><DelaySeconds>60</DelaySeconds><CommandKey>sched-1</CommandKey></cwmp:ScheduleInform>")
        .contains("ScheduleInformResponse"));
    let out = cpe.rpc("u", "<cwmp:X_VENDOR_Magic/>");
    assert_eq!(texts(&out, "FaultCode"), ["9000"]);
    let out = cpe
        .rpc("b", "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>perhaps</NextLevel></cwmp:GetParameterNames>");
    assert_eq!(texts(&out, "FaultCode"), ["9003"]);
    let methods = cpe.rpc("m", "<cwmp:GetRPCMethods/>");
    assert!(texts(&methods, "string").contains(&"AddObject".to_string()));
    let s = cpe.close();
    assert_eq!(s.actions.as_slice(), [DeferredAction::ScheduleInform { delay: Duration::from_secs(60), command_key: "sched-1".into() }]);
    cpe.state.scheduled_inform_due("sched-1");
    assert_eq!(events(&cpe.inform()), ["3 SCHEDULED", "M ScheduleInform"]);
}

#[test]
fn acs_fault_to_inform_fails_and_drops_connection_request() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.state.connection_requested();
    assert_eq!(events(&cpe.inform()), ["0 BOOTSTRAP", "1 BOOT", "6 CONNECTION REQUEST"]);
    let fault = acs_envelope("1", "<soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>8005</FaultCode><FaultString>Retry request</FaultString></cwmp:Fault></detail></soap-env:Fault>");
    let (step, _) = cpe.reply(Some(&fault));
    let Step::Finished(s) = step else { panic!() };
    assert_eq!(s.result, Err(SessionError::AcsFault(Some(cpe_sim::cwmp::AcsFaultCode(8005)))));
    assert!(!s.informed);
    let retry = cpe.inform();
    assert_eq!(events(&retry), ["0 BOOTSTRAP", "1 BOOT"], "6 CONNECTION REQUEST is not retried");
    assert!(retry.contains("<RetryCount>1</RetryCount>"));
    for bad in [b"<html>502 Bad Gateway</html>".as_slice(), b"<soap-env:Envelope".as_slice()] {
        cpe.inform();
        let (step, _) = cpe.reply(Some(bad));
        assert!(matches!(step, Step::Finished(ref s) if matches!(s.result, Err(SessionError::Parse(_)))), "{step:?}");
    }
    cpe.inform();
    let (step, _) = cpe.reply(None);
    assert!(matches!(step, Step::Finished(ref s) if s.result == Err(SessionError::NoInformResponse)));
    assert_eq!(cpe.state.retry_count, 4);
    cpe.inform();
    cpe.reply(Some(&inform_response("ok")));
    assert_eq!(cpe.close().result, Ok(()));
    assert_eq!(cpe.state.retry_count, 0);
}

#[test]
fn cwmp_version_follows_the_acs_down() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.model.cwmp_urn = "urn:dslforum-org:cwmp-1-2".into();
    cpe.template = cpe_sim::session::template::InformTemplate::new(&cpe.model);
    assert!(cpe.inform().contains("cwmp-1-2"));
    cpe.reply(Some(&inform_response("1")));
    let out = cpe.rpc("x", "<cwmp:GetRPCMethods/>");
    assert!(out.contains("xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\""), "answers in the ACS's lower version");
}

#[test]
fn local_value_change_rides_along_in_the_next_inform() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.inform();
    cpe.reply(Some(&inform_response("1")));
    cpe.close();
    let now = cpe.now;
    let model = &cpe.model;
    let n = cpe.state.device_mut(model, now).set_local("Device.DeviceInfo.SoftwareVersion", "1.1.0-sim").unwrap();
    assert_eq!(n, cpe_sim::model::Notification::Active);
    assert_eq!(
        cpe.state.device_mut(model, now).set_local("Device.ManagementServer.PeriodicInformInterval", "x"),
        Err(cpe_sim::cwmp::FaultCode::InvalidParameterValue)
    );
    let inform = cpe.inform();
    assert_eq!(events(&inform), ["4 VALUE CHANGE"]);
    assert_eq!(value_of(&inform, "Device.DeviceInfo.SoftwareVersion").as_deref(), Some("1.1.0-sim"));
    cpe.reply(Some(&inform_response("2")));
    cpe.close();
    assert!(cpe.state.delta.changed().is_empty());
}

#[test]
fn whole_bootstrap_against_the_in_process_acs() {
    for p in PROFILES {
        let cpe = Cpe::new(p, 7);
        let mut state = cpe.state.clone();
        let script = AcsScript {
            every_session: vec![AcsRpc::AddObject { object: table(p).into(), parameter_key: "x".into() }, AcsRpc::GetRpcMethods],
            ..AcsScript::default()
        };
        let run = run_session(&cpe.model, &cpe.template, &mut state, script, UnixMillis(1_700_000_000_000));
        assert_eq!(run.summary.result, Ok(()), "{p}: {:?}", run.acs.log);
        assert_eq!(run.summary.faults, 0);
        assert_eq!(run.acs.serial.as_deref(), Some("FEFEFE000007"));
        assert!(run.summary.requests >= 5, "GPN, GPN, GPV…, SPV, AddObject, GetRPCMethods");
        let root = cpe.model.tree.root_name();
        assert_eq!(
            cpe.model
                .device(state.id, &state.delta, state.boot_at, UnixMillis(0))
                .get(&format!("{root}.ManagementServer.PeriodicInformInterval"))
                .as_deref(),
            Some("300")
        );
        let values = run.acs.values.len();
        let params = cpe.model.tree.ids().filter(|&n| cpe.model.tree.node(n).param().is_some()).count();
        assert!(values >= params, "every parameter was read: {values} values, {params} schema params");
    }
}

#[test]
fn schedule_download_cancel_transfer_and_legacy_options() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.open();
    let sd = |key: &str, start: u32, end: u32| {
        format!("<cwmp:ScheduleDownload><CommandKey>{key}</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>http://127.0.0.1:1/fw</URL><Username/><Password/><FileSize>0</FileSize><TargetFileName/><TimeWindowList soap-enc:arrayType=\"cwmp:TimeWindowStruct[1]\"><TimeWindowStruct><WindowStart>{start}</WindowStart><WindowEnd>{end}</WindowEnd><WindowMode>1 At Any Time</WindowMode><UserMessage/><MaxRetries>3</MaxRetries></TimeWindowStruct></TimeWindowList></cwmp:ScheduleDownload>")
    };
    assert!(cpe.rpc("sd1", &sd("win-1", 30, 3600)).contains("<cwmp:ScheduleDownloadResponse>"));
    assert_eq!(texts(&cpe.rpc("sd2", &sd("bad", 60, 10)), "FaultCode"), ["9003"], "a window that ends before it starts");
    let no_window = "<cwmp:ScheduleDownload><CommandKey>x</CommandKey><URL>http://h/</URL></cwmp:ScheduleDownload>";
    assert_eq!(texts(&cpe.rpc("sd3", no_window), "FaultCode"), ["9003"]);
    cpe.rpc("dl", "<cwmp:Download><CommandKey>cancel-me</CommandKey><FileType>3 Vendor Configuration File</FileType><URL>http://127.0.0.1:1/c</URL></cwmp:Download>");
    assert!(cpe
        .rpc("c1", "<cwmp:CancelTransfer><CommandKey>cancel-me</CommandKey></cwmp:CancelTransfer>")
        .contains("CancelTransferResponse"));
    assert_eq!(texts(&cpe.rpc("c2", "<cwmp:CancelTransfer><CommandKey>older</CommandKey></cwmp:CancelTransfer>"), "FaultCode"), ["9021"]);
    let du = "<cwmp:ChangeDUState><Operations><InstallOpStruct><URL>http://h/du</URL></InstallOpStruct></Operations><CommandKey>du</CommandKey></cwmp:ChangeDUState>";
    assert_eq!(texts(&cpe.rpc("du", du), "FaultCode"), ["9000"]);
    let bad_du = "<cwmp:ChangeDUState><Operations><RebootOpStruct/></Operations></cwmp:ChangeDUState>";
    assert_eq!(texts(&cpe.rpc("du2", bad_du), "FaultCode"), ["9003"]);
    assert!(cpe
        .rpc("v", "<cwmp:SetVouchers><VoucherList><base64>QUJD</base64></VoucherList></cwmp:SetVouchers>")
        .contains("SetVouchersResponse"));
    assert!(cpe.rpc("o", "<cwmp:GetOptions><OptionName></OptionName></cwmp:GetOptions>").contains("cwmp:OptionStruct[0]"));
    let s = cpe.close();
    let [DeferredAction::Transfer(req)] = s.actions.as_slice() else { panic!("{:?}", s.actions) };
    assert_eq!((req.kind, req.delay), (cpe_sim::cpe::TransferKind::ScheduleDownload, Duration::from_secs(30)));
    cpe.state.transfer_finished(req, None, cpe.now, cpe.now);
    assert_eq!(events(&cpe.inform()), ["1 BOOT", "7 TRANSFER COMPLETE", "M ScheduleDownload"]);
}

#[test]
fn cpe_asks_get_rpc_methods_after_bootstrap_when_the_profile_says_so() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.model.get_rpc_methods_on_bootstrap = true;
    cpe.inform();
    let (step, req) = cpe.reply(Some(&inform_response("1")));
    assert_eq!(step, Step::Send);
    assert!(req.contains("<cwmp:GetRPCMethods>"));
    let answer = acs_envelope("2", "<cwmp:GetRPCMethodsResponse><MethodList soap-enc:arrayType=\"xsd:string[3]\"><string>Inform</string><string>GetRPCMethods</string><string>TransferComplete</string></MethodList></cwmp:GetRPCMethodsResponse>");
    let (step, _) = cpe.reply(Some(&answer));
    assert_eq!(step, Step::SendEmpty);
    let s = cpe.close();
    assert_eq!(s.acs_methods.as_deref(), Some(&["Inform".to_string(), "GetRPCMethods".to_string(), "TransferComplete".to_string()][..]));
    // Not again in a later, non-bootstrap session.
    cpe.state.periodic_due();
    cpe.inform();
    assert_eq!(cpe.reply(Some(&inform_response("3"))).0, Step::SendEmpty);
}

/// Only a different value is a change: writing the ACS URL in use (published as the default, as
/// the engine does) sets nothing, stores nothing and owes no BOOTSTRAP; another URL does both.
#[test]
fn writing_the_acs_url_in_use_is_no_change() {
    use cpe_sim::model::ChangeSet;
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 0);
        let r = cpe.root().to_string();
        let url = "http://127.0.0.1:7547/acs";
        assert!(cpe.model.publish_acs_url(url));
        assert!(!cpe.model.publish_acs_url(url), "publishing twice changes nothing");
        cpe.open();
        let name = format!("{r}.ManagementServer.URL");
        let gpv = format!("<cwmp:GetParameterValues><ParameterNames><string>{name}</string></ParameterNames></cwmp:GetParameterValues>");
        assert_eq!(value_of(&cpe.rpc("g", &gpv), &name).as_deref(), Some(url), "{p}: the URL in use");
        let set = |v: &str| {
            format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{name}</Name><Value>{v}</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.PeriodicInformInterval</Name><Value xsi:type=\"xsd:unsignedInt\">60</Value></ParameterValueStruct></ParameterList><ParameterKey>same</ParameterKey></cwmp:SetParameterValues>")
        };
        assert_eq!(texts(&cpe.rpc("s", &set(url)), "Status"), ["0"]);
        let s = cpe.close();
        assert!(!s.changes.contains(ChangeSet::ACS_URL), "{p}");
        assert!(s.changes.contains(ChangeSet::PERIODIC_INFORM), "{p}: the rest of the SPV is applied");
        assert_eq!(cpe.model.own_acs_url(&cpe.state.delta), None, "{p}: nothing stored");
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.ParameterKey")).as_deref(), Some("same"));
        cpe.state.periodic_due();
        let inform = cpe.inform();
        assert_eq!(texts(&inform, "EventCode"), ["2 PERIODIC"], "{p}: no BOOTSTRAP owed");
        cpe.reply(Some(&inform_response("1")));
        assert_eq!(texts(&cpe.rpc("s2", &set("http://127.0.0.1:7548/acs")), "Status"), ["0"]);
        let s = cpe.close();
        assert!(s.changes.contains(ChangeSet::ACS_URL), "{p}");
        assert!(!s.changes.contains(ChangeSet::PERIODIC_INFORM), "{p}: 60 again is no change");
        assert_eq!(cpe.model.own_acs_url(&cpe.state.delta), Some("http://127.0.0.1:7548/acs"));
        assert!(texts(&cpe.inform(), "EventCode").contains(&"0 BOOTSTRAP".to_string()), "{p}: a new URL owes a BOOTSTRAP");
    }
}

/// Whose ACS credentials a CPE has: none with the example profiles' empty Password; the run's
/// when published (and read back as Username); its own once its ACS set them.
#[test]
fn acs_credentials_per_cpe() {
    for p in PROFILES {
        let mut cpe = Cpe::new(p, 3);
        let r = cpe.root().to_string();
        assert_eq!(cpe.model.acs_credentials(cpe.state.id, &cpe.state.delta), None, "{p}: an empty Password is none");
        assert!(cpe.model.publish_acs_credentials("run-user", "run-pass"));
        assert!(!cpe.model.publish_acs_credentials("run-user", "run-pass"));
        assert_eq!(cpe.model.acs_credentials(cpe.state.id, &cpe.state.delta), Some(("run-user".into(), "run-pass".into())), "{p}");
        assert_eq!(cpe.get(&format!("{r}.ManagementServer.Username")).as_deref(), Some("run-user"));
        cpe.open();
        let set = format!("<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>{r}.ManagementServer.Username</Name><Value>run-user</Value></ParameterValueStruct><ParameterValueStruct><Name>{r}.ManagementServer.Password</Name><Value>mine</Value></ParameterValueStruct></ParameterList><ParameterKey>c</ParameterKey></cwmp:SetParameterValues>");
        assert_eq!(texts(&cpe.rpc("s", &set), "Status"), ["0"]);
        let s = cpe.close();
        assert!(s.changes.contains(cpe_sim::model::ChangeSet::ACS_CREDENTIALS), "{p}: the Password is new");
        assert_eq!(cpe.model.acs_credentials(cpe.state.id, &cpe.state.delta), Some(("run-user".into(), "mine".into())), "{p}");
    }
}

// HoldRequests and requests still owed (issue 10 item 1; TR-069 §3.7.1.3/§3.7.1.4, A.4.1).

/// Session 1 of the case: BOOTSTRAP, the ACS's Download, 204; then the download succeeds, so
/// the CPE owes `7 TRANSFER COMPLETE` + `M Download` and a TransferComplete for `cfg-42`.
fn owing_transfer_complete(p: &str) -> Cpe {
    let mut cpe = Cpe::new(p, 0);
    cpe.open();
    let (step, out) = cpe.reply(Some(&case_download("http://127.0.0.1:1/cfg.bin", 14)));
    assert_eq!(step, Step::Send);
    assert_eq!(texts(&out, "Status"), ["1"]);
    let s = cpe.close();
    assert_eq!(s.result, Ok(()));
    let [DeferredAction::Transfer(req)] = s.actions.as_slice() else { panic!("{:?}", s.actions) };
    cpe.state.transfer_finished(req, None, cpe.now, cpe.now.plus(Duration::from_secs(2)));
    cpe.now = cpe.now.plus(Duration::from_secs(2));
    let inform = cpe.inform();
    assert_eq!(events(&inform), ["7 TRANSFER COMPLETE", "M Download"], "{p}");
    cpe
}

/// The CPE's TransferComplete for the case's Download, acknowledged; then its empty POST.
fn transfer_complete_acknowledged(cpe: &mut Cpe, tc: (Step, String)) {
    assert_eq!(tc.0, Step::Send, "the CPE sends what it owes");
    assert!(tc.1.contains("<cwmp:TransferComplete>"), "{}", tc.1);
    assert_eq!(texts(&tc.1, "CommandKey"), ["cfg-42"]);
    assert_eq!(texts(&tc.1, "FaultCode"), ["0"]);
    let (step, _) = cpe.reply(Some(&acs_envelope("tc-ack", "<cwmp:TransferCompleteResponse/>")));
    assert_eq!(step, Step::SendEmpty, "then the empty POST");
}

#[test]
fn hold_on_inform_response_lifted_by_an_acs_request_without_it() {
    for p in PROFILES {
        let mut cpe = owing_transfer_complete(p);
        let (step, _) = cpe.reply(Some(&held(&inform_response("1"))));
        assert_eq!(step, Step::SendEmpty, "{p}: held: the empty POST, not the TransferComplete");
        // A held request is answered (a response is not a request).
        let r = cpe.root().to_string();
        let gpv = format!(
            "<cwmp:GetParameterValues><ParameterNames><string>{r}.DeviceInfo.UpTime</string></ParameterNames></cwmp:GetParameterValues>"
        );
        let (step, out) = cpe.reply(Some(&held(&acs_envelope("g1", &gpv))));
        assert_eq!(step, Step::Send);
        assert!(out.contains("GetParameterValuesResponse"));
        // The hold is lifted by a request without it; the CPE answers that request first (one
        // envelope per POST), and its owed request takes the next free POST.
        let out = cpe.rpc("g2", &gpv);
        assert!(out.contains("GetParameterValuesResponse") && out.contains(">g2</cwmp:ID>"));
        let tc = cpe.reply(None);
        transfer_complete_acknowledged(&mut cpe, tc);
        let s = cpe.close();
        assert_eq!((s.result, s.requests), (Ok(()), 2), "{p}");
        assert!(cpe.state.events.is_empty(), "{p}: nothing is owed any more");
    }
}

#[test]
fn hold_lifted_by_the_final_204_or_empty_200_sends_what_is_owed() {
    // The shared case `cases/holdrequests/`: InformResponse with HoldRequests → empty POST → 204.
    let empty_200: &[u8] = b" \r\n\t";
    for (p, end) in [(TR181, None), (TR098, None), (TR181, Some(empty_200))] {
        let mut cpe = owing_transfer_complete(p);
        let (step, _) = cpe.reply(Some(&held(&inform_response("1"))));
        assert_eq!(step, Step::SendEmpty, "{p}");
        let tc = cpe.reply(end);
        transfer_complete_acknowledged(&mut cpe, tc);
        // Only the ACS's next empty answer ends the session.
        let (step, _) = cpe.reply(end);
        let Step::Finished(s) = step else { panic!("{p}: expected the end, got {step:?}") };
        assert_eq!(s.result, Ok(()));
        assert!(cpe.state.events.is_empty(), "{p}: the TransferComplete was acknowledged");
        assert_eq!(cpe.state.retry_count, 0);
    }
}

#[test]
fn hold_never_lifted_leaves_the_request_owed_without_a_loop() {
    use cpe_sim::cpe::agenda::{Agenda, SessionEnd};
    use cpe_sim::cpe::retry::wait_for;
    // (a) the ACS holds every message and then drops the connection; (b) the hold is lifted but the
    // ACS ends the session instead of answering the TransferComplete.
    for case in ["dropped", "unanswered"] {
        let mut cpe = owing_transfer_complete(TR181);
        assert_eq!(cpe.reply(Some(&held(&inform_response("1")))).0, Step::SendEmpty);
        let gm = "<cwmp:GetRPCMethods/>";
        assert_eq!(cpe.reply(Some(&held(&acs_envelope("m", gm)))).0, Step::Send);
        let summary = if case == "dropped" {
            cpe.session.as_mut().unwrap().abort(&mut cpe.state)
        } else {
            let (step, tc) = cpe.reply(None);
            assert_eq!(step, Step::Send, "the hold is over: the TransferComplete goes out");
            assert!(tc.contains("<cwmp:TransferComplete>"));
            match cpe.reply(None).0 {
                Step::Finished(s) => s,
                other => panic!("{case}: {other:?}"),
            }
        };
        assert!(summary.result.is_err(), "{case}: a session that ends owing a request did not complete: {:?}", summary.result);
        assert!(summary.informed, "{case}");
        assert_eq!(cpe.state.events.next_transfer().map(|t| &*t.command_key), Some("cfg-42"), "{case}: still owed");
        assert_eq!(cpe.state.retry_count, 1, "{case}");
        // The engine's follow-up: the next attempt after the TR-069 back-off, never at once.
        let wait = wait_for(&cpe.model, &cpe.state);
        let mut agenda = Agenda::idle();
        let end = SessionEnd { ok: summary.result.is_ok(), actions: summary.actions, retry_in: Some(wait) };
        let now = cpe.now.0;
        agenda.on_session_end(&mut cpe.state, end, now);
        assert!(wait >= Duration::from_secs(5), "{case}: {wait:?}");
        assert_eq!(agenda.start(), now + wait.as_millis() as u64, "{case}: follows the retry policy");
        // The retry informs the transfer again, and can then deliver it.
        let inform = cpe.inform();
        assert_eq!(events(&inform), ["7 TRANSFER COMPLETE", "M Download"], "{case}");
        assert!(inform.contains("<RetryCount>1</RetryCount>"));
        let tc = cpe.reply(Some(&inform_response("2")));
        transfer_complete_acknowledged(&mut cpe, tc);
        assert_eq!(cpe.close().result, Ok(()));
        assert!(cpe.state.events.is_empty());
    }
}

#[test]
fn get_rpc_methods_owed_after_bootstrap_waits_for_the_hold() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.model.get_rpc_methods_on_bootstrap = true;
    cpe.inform();
    let (step, _) = cpe.reply(Some(&held(&inform_response("1"))));
    assert_eq!(step, Step::SendEmpty, "held: no GetRPCMethods yet");
    let out = cpe.rpc("acs-1", "<cwmp:GetRPCMethods/>");
    assert!(out.contains("GetRPCMethodsResponse"));
    let (step, req) = cpe.reply(None);
    assert_eq!(step, Step::Send, "the 204 lifted the hold: the CPE still owes its GetRPCMethods");
    assert!(req.contains("<cwmp:GetRPCMethods>"), "{req}");
    let answer = acs_envelope("2", "<cwmp:GetRPCMethodsResponse><MethodList soap-enc:arrayType=\"xsd:string[2]\"><string>Inform</string><string>TransferComplete</string></MethodList></cwmp:GetRPCMethodsResponse>");
    assert_eq!(cpe.reply(Some(&answer)).0, Step::SendEmpty);
    let s = cpe.close();
    assert_eq!(s.result, Ok(()));
    assert_eq!(s.acs_methods.as_deref(), Some(&["Inform".to_string(), "TransferComplete".to_string()][..]));
}

// Limits on everything the CPE sends and accepts (issue 10 item 2; the schema's maxLength).

/// Every string argument beyond its schema limit gets the fault TR-069 names, and nothing is
/// carried out: no deferred action, no value set, no ParameterKey.
#[test]
fn arguments_beyond_the_schema_limits_are_refused_and_change_nothing() {
    let key33 = "k".repeat(33);
    let long_url = format!("http://127.0.0.1/{}", "f".repeat(1020));
    let long_name = format!("Device.{}", "N".repeat(260));
    let cases: Vec<(String, &str)> = vec![
        (format!("<cwmp:Reboot><CommandKey>{key33}</CommandKey></cwmp:Reboot>"), "9003"),
        (format!("<cwmp:ScheduleInform><DelaySeconds>5</DelaySeconds><CommandKey>{key33}</CommandKey></cwmp:ScheduleInform>"), "9003"),
        (download("<CommandKey>ok</CommandKey>", &long_url, "", ""), "9003"),
        (download(&format!("<CommandKey>{key33}</CommandKey>"), "http://127.0.0.1/f", "", ""), "9003"),
        (download("<CommandKey>ok</CommandKey>", "http://127.0.0.1/f", &"u".repeat(257), ""), "9003"),
        (download("<CommandKey>ok</CommandKey>", "http://127.0.0.1/f", "", &"p".repeat(257)), "9003"),
        (spv("Device.ManagementServer.PeriodicInformInterval", "77", &key33), "9003"),
        (format!("<cwmp:AddObject><ObjectName>Device.NAT.PortMapping.</ObjectName><ParameterKey>{key33}</ParameterKey></cwmp:AddObject>"), "9003"),
        (format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>{long_name}</string></ParameterNames></cwmp:GetParameterValues>"), "9005"),
        (format!("<cwmp:GetParameterNames><ParameterPath>{long_name}</ParameterPath><NextLevel>true</NextLevel></cwmp:GetParameterNames>"), "9005"),
    ];
    for (body, code) in &cases {
        let mut cpe = Cpe::new(TR181, 0);
        cpe.inform();
        cpe.reply(Some(&inform_response("1")));
        let out = cpe.rpc("x", body);
        assert_eq!(texts(&out, "FaultCode"), [*code], "{body}: {out}");
        for s in texts(&out, "FaultString") {
            assert!(s.chars().count() <= 256, "FaultString within 256: {s}");
        }
        let s = cpe.close();
        assert!(s.actions.is_empty(), "nothing deferred for {body}");
        assert_eq!(cpe.get("Device.ManagementServer.PeriodicInformInterval").as_deref(), Some("3600"), "nothing set");
        assert_ne!(cpe.get("Device.ManagementServer.ParameterKey").as_deref(), Some(key33.as_str()));
    }
    // At the limits exactly: accepted.
    let mut cpe = Cpe::new(TR181, 0);
    cpe.inform();
    cpe.reply(Some(&inform_response("1")));
    let out = cpe.rpc("r", &format!("<cwmp:Reboot><CommandKey>{}</CommandKey></cwmp:Reboot>", "k".repeat(32)));
    assert!(out.contains("RebootResponse"), "{out}");
}

fn download(command_key: &str, url: &str, user: &str, pass: &str) -> String {
    format!("<cwmp:Download>{command_key}<FileType>3 Vendor Configuration File</FileType><URL>{url}</URL><Username>{user}</Username><Password>{pass}</Password><FileSize>0</FileSize><TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL></cwmp:Download>")
}

fn spv(name: &str, value: &str, key: &str) -> String {
    format!("<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[1]\"><ParameterValueStruct><Name>{name}</Name><Value xsi:type=\"xsd:unsignedInt\">{value}</Value></ParameterValueStruct></ParameterList><ParameterKey>{key}</ParameterKey></cwmp:SetParameterValues>")
}

/// What the CPE composes itself stays within the limits whatever the input: a FaultString built
/// from a long invalid name, and a TransferComplete's FaultString from a long URL's error.
#[test]
fn strings_the_cpe_composes_are_clipped_to_their_limits() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.inform();
    cpe.reply(Some(&inform_response("1")));
    let name = format!("Device.{}", "x".repeat(240));
    let out = cpe.rpc("g", &format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>{name}</string></ParameterNames></cwmp:GetParameterValues>"));
    assert_eq!(texts(&out, "FaultCode"), ["9005"]);
    let fs = texts(&out, "FaultString").pop().unwrap();
    assert!(fs.chars().count() <= 256 && fs.starts_with("Invalid parameter name"), "{fs}");
    let mut buf = bytes::BytesMut::new();
    cpe_sim::cwmp::rpc::transfer_complete::write_request(
        &mut buf,
        "urn:dslforum-org:cwmp-1-0",
        "1",
        &"c".repeat(40),
        (9015, &"e".repeat(900)),
        "",
        "",
    );
    let tc = String::from_utf8_lossy(&buf).to_string();
    assert!(texts(&tc, "FaultString")[0].chars().count() <= 256 && texts(&tc, "CommandKey")[0].chars().count() <= 32, "{tc}");
}

/// A hostile ACS cannot grow a CPE's state without bound, nor make it repeat credentials: more
/// than 64 deferred requests in one session get 9004; a transfer URL's credentials never reach a
/// FaultString; a URL whose host parsers would disagree on is refused.
#[test]
fn hostile_transfer_and_deferred_requests_get_faults() {
    let mut cpe = Cpe::new(TR181, 0);
    cpe.inform();
    cpe.reply(Some(&inform_response("1")));
    for i in 0..64 {
        let out = cpe
            .rpc(&format!("s{i}"), "<cwmp:ScheduleInform><DelaySeconds>60</DelaySeconds><CommandKey>k</CommandKey></cwmp:ScheduleInform>");
        assert!(out.contains("ScheduleInformResponse"), "{i}: {out}");
    }
    let out = cpe.rpc("s64", "<cwmp:ScheduleInform><DelaySeconds>60</DelaySeconds><CommandKey>k</CommandKey></cwmp:ScheduleInform>");
    assert_eq!(texts(&out, "FaultCode"), ["9004"], "{out}");
    assert_eq!(cpe.close().actions.len(), 64);

    let mut cpe = Cpe::new(TR181, 0);
    cpe.inform();
    cpe.reply(Some(&inform_response("1")));
    let out = cpe.rpc("d", &download("<CommandKey>k</CommandKey>", "ftp://admin:s3cret@files.example/fw.bin", "", ""));
    assert_eq!(texts(&out, "FaultCode"), ["9013"], "{out}");
    assert!(!out.contains("s3cret") && !out.contains("admin"), "{out}");
    let out = cpe.rpc("d2", &download("<CommandKey>k</CommandKey>", "http://admin:se/cret@127.0.0.1/img", "", ""));
    assert_eq!(texts(&out, "FaultCode"), ["9003"], "{out}");
    assert!(!out.contains("cret"), "{out}");
    let out = cpe.rpc("d3", &download("<CommandKey>k</CommandKey>", "HTTP://127.0.0.1/img", "", ""));
    assert!(out.contains("DownloadResponse"), "the scheme is case-insensitive: {out}");
}
