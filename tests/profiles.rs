//! Profile loading: both examples, genieacs-sim CSV import, and errors naming file and key.

use std::path::Path;

use cpe_sim::config::{load_profile, parse_profile};
use cpe_sim::model::DeviceId;
use cpe_sim::time::UnixMillis;

use crate::support::{profile, repo, TR098, TR181};

#[test]
fn examples_are_realistic() {
    for (p, root, min) in [(TR181, "Device", 250), (TR098, "InternetGatewayDevice", 200)] {
        let m = profile(p);
        assert_eq!(m.tree.root_name(), root);
        let d0 = cpe_sim::model::Delta::default();
        let params = m.device(DeviceId(0), &d0, UnixMillis(0), UnixMillis(0)).gpv_targets(&[""]).unwrap().len();
        assert!(params >= min, "{p}: {params} parameters");
        assert!(m.well_known.connection_request_username.is_some());
        assert!(m.well_known.periodic_inform_interval.is_some());
        assert_eq!(&*m.cwmp_urn, "urn:dslforum-org:cwmp-1-0");
        let d = cpe_sim::model::Delta::default();
        let dev = m.device(DeviceId(1), &d, UnixMillis(0), UnixMillis(0));
        let user = dev.get(&format!("{root}.ManagementServer.ConnectionRequestUsername")).unwrap();
        assert_eq!(user.len(), 12);
        let other = m
            .device(DeviceId(2), &d, UnixMillis(0), UnixMillis(0))
            .get(&format!("{root}.ManagementServer.ConnectionRequestUsername"))
            .unwrap();
        assert_ne!(user, other, "per-CPE credentials");
    }
    // TR-098's forced ExternalIPAddress is in every Inform.
    let m = profile(TR098);
    assert!(m.forced.iter().any(|l| m.tree.path_string(l).ends_with("WANIPConnection.1.ExternalIPAddress")));
}

#[test]
fn file_and_directory_forms_load_the_same() {
    let a = load_profile(&repo(TR181)).unwrap();
    let b = load_profile(&repo(&format!("{TR181}/profile.yaml"))).unwrap();
    assert_eq!(a.tree.len(), b.tree.len());
}

#[test]
fn genieacs_sim_csv_is_imported() {
    let dir = std::env::temp_dir().join(format!("cpe-sim-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("model.csv"),
        "Parameter,Object,Writable,Value,Value type\n\
         Device.,true,false,,\n\
         Device.DeviceInfo.,true,false,,\n\
         Device.DeviceInfo.Manufacturer,false,false,Acme {Labs},xsd:string\n\
         Device.DeviceInfo.ManufacturerOUI,false,false,0A1B2C,xsd:string\n\
         Device.DeviceInfo.ProductClass,false,false,SimGW-100,xsd:string\n\
         Device.DeviceInfo.SerialNumber,false,false,SIM0000001,xsd:string\n\
         Device.ManagementServer.PeriodicInformInterval,false,true,86400,xsd:unsignedInt\n\
         Device.Hosts.Host.,true,true,,\n\
         Device.Hosts.Host.1.,true,true,,\n\
         Device.Hosts.Host.1.HostName,false,true,laptop,xsd:string\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("profile.yaml"),
        "identity: {oui: 0A1B2C}\ncsv: model.csv\nparameters:\n  Device.DeviceInfo.SerialNumber: \"{serial}\"\n",
    )
    .unwrap();
    let m = load_profile(&dir).unwrap();
    let d = cpe_sim::model::Delta::default();
    let dev = m.device(DeviceId(5), &d, UnixMillis(0), UnixMillis(0));
    assert_eq!(dev.get("Device.DeviceInfo.Manufacturer").as_deref(), Some("Acme {Labs}"), "CSV values are literal");
    assert_eq!(dev.get("Device.DeviceInfo.SerialNumber").as_deref(), Some("0A1B2C000005"), "YAML overrides CSV");
    assert_eq!(dev.get("Device.ManagementServer.PeriodicInformInterval").as_deref(), Some("86400"));
    assert_eq!(dev.get("Device.Hosts.Host.1.HostName").as_deref(), Some("laptop"));
    std::fs::remove_dir_all(&dir).ok();
}

fn error_of(yaml: &str) -> String {
    match parse_profile(yaml, Path::new("bad.yaml"), "bad") {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_profiles_name_file_key_and_reason() {
    let base = "identity: {oui: FEFEFE}\nparameters:\n  Device.DeviceInfo.Manufacturer: a\n  Device.DeviceInfo.ManufacturerOUI: b\n  Device.DeviceInfo.ProductClass: c\n  Device.DeviceInfo.SerialNumber: \"{serial}\"\n";
    assert!(parse_profile(base, Path::new("ok.yaml"), "ok").is_ok());
    let e = error_of(&format!("{base}  Device.X: {{type: unsignedInt, value: abc}}\n"));
    assert!(e.contains("bad.yaml") && e.contains("parameters.Device.X") && e.contains("not a valid xsd:unsignedInt"), "{e}");
    let e = error_of(&format!("{base}  Device.Y: {{type: float}}\n"));
    assert!(e.contains("parameters.Device.Y") && e.contains("unknown type `float`"), "{e}");
    let e = error_of(&format!("{base}  Device.Z: {{valu: 1}}\n"));
    assert!(e.contains("parameters.Device.Z") && e.contains("unknown field"), "{e}");
    let e = error_of(&format!("{base}  Device.W: \"{{nope}}\"\n"));
    assert!(e.contains("unknown placeholder"), "{e}");
    let e = error_of(&format!("{base}  InternetGatewayDevice.A: x\n"));
    assert!(e.contains("does not start with the profile's root"), "{e}");
    let e = error_of(&base.replace("FEFEFE", "XYZ"));
    assert!(e.contains("six hex digits"), "{e}");
    let e = error_of(&base.replace("  Device.DeviceInfo.SerialNumber: \"{serial}\"\n", ""));
    assert!(e.contains("DeviceInfo.SerialNumber"), "{e}");
    let e = error_of("identity: {oui: FEFEFE}\ncwmp_version: cwmp-2-0\nparameters:\n  Device.A: x\n");
    assert!(e.contains("cwmp_version"), "{e}");
    let e = error_of("identity: {oui: FEFEFE\n");
    assert!(e.contains("line"), "{e}");
    let e = error_of(&format!("{base}  Device.T.{{i}}.F: {{forced_inform: true}}\nobjects:\n  Device.T.: {{writable: true}}\n"));
    assert!(e.contains("forced into every Inform"), "{e}");
}
