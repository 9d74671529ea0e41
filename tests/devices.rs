//! Real devices as data models (issue 11 item 5): the GenieACS exports and genieacs-sim files in
//! `tests/fixtures/devices/` (see its README for where each came from) import as they are, a
//! fleet of one of them bootstraps against the embedded ACS, and the README's sample profile
//! passes `cpe-sim check` as printed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cpe_sim::acs::server::{AcsServer, ServerConfig};
use cpe_sim::config::{load_profile, parse_profile};
use cpe_sim::engine::{self as fleet, Boot, Mode, Outputs, Plan};
use cpe_sim::model::device::SpvEntry;
use cpe_sim::model::{Delta, DeviceId, DeviceMut, Model, NodeKind, Notification, ReadFor, Target};
use cpe_sim::time::UnixMillis;

use crate::support::{repo, test_transport};

/// Every fixture: (file, root, parameters per CPE at least, Manufacturer, ProductClass).
pub const DEVICES: &[(&str, &str, usize, &str, &str)] = &[
    ("genieacs-sim-BM632w.csv", "InternetGatewayDevice", 700, "Huawei Technologies Co., Ltd.", "BM632w"),
    ("genieacs-sim-BM632w.json", "InternetGatewayDevice", 700, "Huawei Technologies Co., Ltd.", "BM632w"),
    ("genieacs-export-EC220-G5-tr181.csv", "Device", 700, "TP-Link", "EC220-G5"),
    ("genieacs-export-W5-2100G-tr098.csv", "InternetGatewayDevice", 600, "INTELBRAS", "W5-2100G"),
    ("genieacs-export-EG8145X6-tr098.csv", "InternetGatewayDevice", 700, "Huawei Technologies Co., Ltd", "EG8145X6"),
];

/// A profile directory (under the system temp dir) importing `file` with identity OUI 0A1B2C.
fn profile_dir(tag: &str, file: &Path, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-devices-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("profile.yaml"),
        format!("identity: {{oui: 0A1B2C, serial: \"SIM{{index:08}}\"}}\ndata_model: {}\n{extra}", file.display()),
    )
    .unwrap();
    dir
}

pub fn device_model(file: &str) -> Model {
    let dir = profile_dir(&file.replace('.', "-"), &repo(&format!("tests/fixtures/devices/{file}")), "");
    let m = load_profile(&dir).unwrap_or_else(|e| panic!("{file}: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    m
}

#[test]
fn every_fixture_imports_as_it_is() {
    for &(file, root, min, manufacturer, product_class) in DEVICES {
        let m = device_model(file);
        assert_eq!(m.tree.root_name(), root, "{file}");
        let d = Delta::default();
        let dev = m.device(DeviceId(7), &d, UnixMillis(0), UnixMillis(90_000));
        let n = dev.gpv_targets(&[""]).unwrap().len();
        assert!(n >= min, "{file}: {n} parameters");
        // The identity: serial and OUI from the profile, the rest from the device.
        assert_eq!(dev.get(&format!("{root}.DeviceInfo.SerialNumber")).as_deref(), Some("SIM00000007"), "{file}");
        assert_eq!(dev.get(&format!("{root}.DeviceInfo.ManufacturerOUI")).as_deref(), Some("0A1B2C"), "{file}");
        assert!(dev.get(&format!("{root}.DeviceInfo.Manufacturer")).unwrap().starts_with(manufacturer), "{file}");
        assert_eq!(dev.get(&format!("{root}.DeviceInfo.ProductClass")).as_deref(), Some(product_class), "{file}");
        // DeviceID rows are the Inform identity, not a data-model root; Events. is GenieACS's.
        assert!(dev.resolve("DeviceID.SerialNumber").is_err() && dev.resolve("Events.Inform").is_err(), "{file}");
        // UpTime counts from each CPE's boot.
        assert_eq!(dev.get(&format!("{root}.DeviceInfo.UpTime")).as_deref(), Some("90"), "{file}");
        assert!(!m.forced.is_empty(), "{file}: the forced Inform parameters");
    }
}

#[test]
fn object_writability_and_real_answers_as_the_files_give_them() {
    // EG8145X6 reports DeviceInfo writable: a single object all the same.
    let m = device_model("genieacs-export-EG8145X6-tr098.csv");
    let node = m.tree.by_schema_path("InternetGatewayDevice.DeviceInfo.").unwrap();
    assert!(matches!(m.tree.node(node).kind, NodeKind::Object));
    // W5-2100G: Hosts.Host is a writable table (AddObject allowed), NATDetected reads `2` (the
    // device's answer, though not a boolean), Host.3.Active is empty.
    let m = device_model("genieacs-export-W5-2100G-tr098.csv");
    let mut delta = Delta::default();
    let mut dev = DeviceMut { model: &m, id: DeviceId(0), delta: &mut delta, boot_at: UnixMillis(0), now: UnixMillis(0) };
    let host = "InternetGatewayDevice.LANDevice.1.Hosts.Host.";
    assert_eq!(dev.view().get("InternetGatewayDevice.ManagementServer.NATDetected").as_deref(), Some("2"));
    assert_eq!(dev.view().get(&format!("{host}3.Active")).as_deref(), Some(""));
    let count = "InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries";
    let before: u32 = dev.view().get(count).unwrap().parse().unwrap();
    let n = dev.add_object(host, "k").unwrap();
    assert!(n > 3);
    assert_eq!(dev.view().get(count), Some((before + 1).to_string()), "the entry count follows AddObject");
    // The writes the ACS makes are still checked against the type.
    let bad = SpvEntry { name: "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", value: "soon", xsi_type: None };
    assert!(dev.spv(&[bad], "k").is_err());
    // BM632w: a table row that is not writable refuses AddObject (9001).
    let m = device_model("genieacs-sim-BM632w.csv");
    let mut delta = Delta::default();
    let mut dev = DeviceMut { model: &m, id: DeviceId(0), delta: &mut delta, boot_at: UnixMillis(0), now: UnixMillis(0) };
    assert_eq!(dev.add_object(host, "k"), Err(cpe_sim::cwmp::fault::FaultCode::RequestDenied));
    assert!(dev.add_object("InternetGatewayDevice.LANDevice.1.LANHostConfigManagement.DHCPConditionalServingPool.", "k").is_ok());
}

#[test]
fn empty_typed_values_and_notification_columns_of_a_genieacs_export() {
    let dir = std::env::temp_dir().join(format!("cpe-sim-devices-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = "Parameter,Object,Object timestamp,Writable,Writable timestamp,Value,Value type,Value timestamp,Notification,Notification timestamp,Access list,Access list timestamp\n";
    let t = "2023-05-26T00:47:16.024Z";
    let rows = [
        format!("DeviceID.ID,false,{t},false,{t},\"0A1B2C-X-1\",xsd:string,{t},,,,"),
        format!("DeviceID.Manufacturer,false,{t},false,{t},\"Acme\",xsd:string,{t},,,,"),
        format!("DeviceID.ProductClass,false,{t},false,{t},\"X\",xsd:string,{t},,,,"),
        format!("Device,true,{t},false,{t},\"\",,,,,,"),
        format!("Device.DeviceInfo,true,{t},false,{t},\"\",,,,,,"),
        format!("Device.DeviceInfo.SoftwareVersion,false,{t},false,{t},\"1.2.3\",xsd:string,{t},2,{t},,"),
        format!("Device.DeviceInfo.FirstUseDate,false,{t},false,{t},\"\",xsd:dateTime,{t},,,,"),
        format!("Device.DeviceInfo.UpTime,false,{t},false,{t},\"17\",xsd:unsignedInt,{t},0,{t},,"),
        format!("Device.Hosts.Host.1.HostName,false,{t},false,{t},\"pc\",xsd:string,{t},1,{t},,"),
    ];
    std::fs::write(dir.join("export.csv"), format!("{header}{}\n", rows.join("\n"))).unwrap();
    std::fs::write(dir.join("profile.yaml"), "identity: {oui: 0A1B2C}\ndata_model: export.csv\n").unwrap();
    let m = load_profile(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).ok();
    let d = Delta::default();
    let dev = m.device(DeviceId(0), &d, UnixMillis(0), UnixMillis(0));
    let loc = |p: &str| match dev.resolve(p).unwrap().as_slice() {
        [Target::Param(l)] => l.clone(),
        _ => panic!("{p}"),
    };
    // An empty dateTime is the device's answer: read back empty, typed dateTime.
    let first_use = loc("Device.DeviceInfo.FirstUseDate");
    assert_eq!(dev.value_string(&first_use, ReadFor::Acs), "");
    assert_eq!(m.tree.node(first_use.node).param().unwrap().ty.xsi_type(), "xsd:dateTime");
    assert_eq!(dev.notification(&loc("Device.DeviceInfo.SoftwareVersion")), Notification::Active);
    assert_eq!(dev.notification(&loc("Device.Hosts.Host.1.HostName")), Notification::Passive);
    assert_eq!(dev.notification(&loc("Device.DeviceInfo.UpTime")), Notification::Off);
    // The model had no OUI or serial: the Inform identity is the profile's, Manufacturer DeviceID's.
    assert_eq!(dev.get("Device.DeviceInfo.Manufacturer").as_deref(), Some("Acme"));
    assert_eq!(dev.get("Device.DeviceInfo.SerialNumber").as_deref(), Some("0A1B2C000000"));
}

#[test]
fn a_fleet_of_an_imported_device_bootstraps_against_the_embedded_acs() {
    // 100 CPEs of a real TR-181 device: each bootstraps, and the embedded ACS (GenieACS-like:
    // GPN of the whole tree, GPV batches of 32, SPV of the credentials) gets no fault.
    const CPES: u32 = 100;
    let model = Arc::new(device_model("genieacs-export-EC220-G5-tr181.csv"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let acs = rt.block_on(AcsServer::start(([127, 0, 0, 1], 0).into(), ServerConfig::default())).unwrap();
    let mut plan = Plan::new(model, acs.url(), test_transport(), CPES);
    plan.shards = 2;
    plan.boot = Boot::Spread(Duration::from_millis(500));
    plan.mode = Mode::OneShot;
    plan.max_in_flight = 64;
    let out = fleet::run(
        plan,
        Some(Duration::from_secs(120)),
        &Outputs { progress: false, progress_every: Duration::from_millis(200), ..Outputs::default() },
        Vec::new(),
    )
    .unwrap();
    let sessions = acs.finished();
    rt.block_on(acs.stop());
    assert_eq!(out.total.outcomes.failed_sessions(), 0, "{:?}", out.total.outcomes.last_failure);
    let mut serials: Vec<String> = sessions.iter().filter_map(|s| s.serial.clone()).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), CPES as usize, "one bootstrap per CPE, each with its own serial");
    let faults: Vec<_> = sessions.iter().flat_map(|s| s.exchanges.iter()).filter(|x| x.fault.is_some_and(|f| f != 0)).collect();
    assert!(faults.is_empty(), "{faults:?}");
    let gpv_items: usize = sessions[0].exchanges.iter().filter(|x| x.answer == "GetParameterValuesResponse").map(|x| x.items).sum();
    assert!(gpv_items >= 700, "the ACS read the whole device: {gpv_items}");
}

/// The ```yaml block under `## Profiles` in README.md.
fn readme_sample() -> String {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let section = &readme[readme.find("\n## Profiles").expect("a Profiles section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = section[start..].find("```").unwrap();
    section[start..start + end].to_string()
}

#[test]
fn the_readme_sample_profile_passes_check_as_printed() {
    let sample = readme_sample();
    // The README says to save it in the repository's root: its data_model path is relative to it.
    let dir = std::env::temp_dir().join(format!("cpe-sim-readme-{}", std::process::id()));
    let rel = sample.lines().find_map(|l| l.trim().strip_prefix("data_model:")).map(|v| v.split('#').next().unwrap().trim().to_string());
    if let Some(rel) = &rel {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo(rel), &to).unwrap_or_else(|e| panic!("the README's data_model `{rel}`: {e}"));
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("my-gateway.yaml"), &sample).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["check", "--profile", "my-gateway.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("profile my-gateway ok"), "{stdout}");
}

#[test]
fn a_profile_error_names_the_real_cause_once() {
    let base = "identity: {oui: 0A1B2C}\nparameters:\n  Device.DeviceInfo.Manufacturer: A\n  Device.DeviceInfo.ManufacturerOUI: 0A1B2C\n  Device.DeviceInfo.ProductClass: P\n  Device.DeviceInfo.SerialNumber: \"{serial}\"\n";
    for (entry, cause) in [
        ("{type: unsignedInt, value: 0, writable: true, min: 1}", "value `0` is below the minimum 1"),
        ("{type: unsignedInt, value: 70000, max: 65535}", "value `70000` is above the maximum 65535"),
        ("{type: unsignedInt, value: abc}", "value `abc` is not a valid xsd:unsignedInt"),
        ("{value: Maybe, enum: [Yes, No]}", "value `Maybe` is not one of the allowed values (enum: Yes, No)"),
        ("{value: toolong, max_length: 3}", "value `toolong` is 7 bytes long, more than max_length 3"),
    ] {
        let yaml = format!("{base}  Device.ManagementServer.PeriodicInformInterval: {entry}\n");
        let err = match parse_profile(&yaml, Path::new("bad.yaml"), "bad") {
            Ok(_) => panic!("accepted {entry}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(err, format!("profile bad.yaml, key `parameters.Device.ManagementServer.PeriodicInformInterval`: {cause}"));
        assert_eq!(err.matches("PeriodicInformInterval").count(), 1, "the path once: {err}");
    }
    // An imported file's error names the file, the row and the cause.
    let dir = std::env::temp_dir().join(format!("cpe-sim-devices-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.csv"), "Parameter,Object,Writable,Value,Value type\nDevice.X,false,false,1.5,xsd:float\n").unwrap();
    std::fs::write(dir.join("profile.yaml"), "identity: {oui: 0A1B2C}\ndata_model: m.csv\n").unwrap();
    let err = load_profile(&dir).err().unwrap().to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.contains("m.csv, key `line 2`: `Device.X` has the unknown value type `xsd:float`"), "{err}");
}

/// A profile directory holding `data` as `file` and a profile importing it; the load's error.
fn import_error(tag: &str, file: &str, data: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("cpe-sim-devices-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), data).unwrap();
    std::fs::write(dir.join("profile.yaml"), format!("identity: {{oui: 0A1B2C}}\ndata_model: {file}\n")).unwrap();
    let started = std::time::Instant::now();
    let e = match load_profile(&dir) {
        Ok(_) => panic!("{tag}: accepted"),
        Err(e) => e.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(2), "{tag}: refused at once, not after {:?}", started.elapsed());
    std::fs::remove_dir_all(&dir).ok();
    (dir.join(file), e)
}

#[test]
fn a_path_longer_than_cwmp_allows_is_refused_as_the_row_is_read() {
    // One 20,000-segment path (40 KB): every prefix of it would be built and kept.
    let long = format!("Device{}", ".A".repeat(20_000));
    let csv = format!("Parameter,Object,Writable,Value,Value type\nDevice.X,false,false,1,xsd:string\n{long},false,false,1,xsd:string\n");
    let (file, e) = import_error("long-csv", "model.csv", &csv);
    assert!(e.contains(&file.display().to_string()) && e.contains("line 3") && e.contains("at most 256 characters"), "{e}");
    assert!(e.len() < 600, "the message does not carry the whole path: {e}");
    let json = format!("{{\"Device.X\": [false, \"1\", \"xsd:string\"], \"{long}\": [false, \"1\", \"xsd:string\"]}}");
    let (file, e) = import_error("long-json", "model.json", &json);
    assert!(e.contains(&file.display().to_string()) && e.contains("key \"Device.A.A") && e.contains("at most 256 characters"), "{e}");
    assert!(e.len() < 600, "{e}");
    // 256 characters are allowed.
    let fits = format!("Device.{}", "B".repeat(256 - 7));
    let dir = std::env::temp_dir().join(format!("cpe-sim-devices-fits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.csv"), format!(
            "Parameter,Object,Writable,Value,Value type\nDevice.DeviceInfo.Manufacturer,false,false,Acme,xsd:string\nDevice.DeviceInfo.ProductClass,false,false,X,xsd:string\n{fits},false,false,1,xsd:string\n"
        ))
        .unwrap();
    std::fs::write(dir.join("profile.yaml"), "identity: {oui: 0A1B2C}\ndata_model: model.csv\n").unwrap();
    let m = load_profile(&dir);
    std::fs::remove_dir_all(&dir).ok();
    m.unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_named_object_under_a_table_is_refused_naming_the_rule_and_both_rows() {
    for (tag, rows) in [
        ("named-after", "Device.A.1.Q,false,false,1,xsd:string\nDevice.A.B,false,false,1,xsd:string\n"),
        ("named-first", "Device.A.B,false,false,1,xsd:string\nDevice.A.1.Q,false,false,1,xsd:string\n"),
    ] {
        let (file, e) = import_error(tag, "model.csv", &format!("Parameter,Object,Writable,Value,Value type\n{rows}"));
        let (table_line, named_line) = if tag == "named-after" { (2, 3) } else { (3, 2) };
        let want = format!(
            "key `line {named_line}`: `Device.A` is a table (line {table_line} has `Device.A.1.Q`): `Device.A.B` must be under an instance"
        );
        assert!(e.contains(&file.display().to_string()) && e.contains(&want), "{tag}: {e}");
        assert!(!e.contains("no empty segments"), "{e}");
    }
}
