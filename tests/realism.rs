//! Issue 11's realism over real sockets: firmware Downloads that change SoftwareVersion (and
//! survive `--state-dir` restarts), TR-143 diagnostics requested by an ACS and read back after
//! `8 DIAGNOSTICS COMPLETE`, and generated values with throttled active notification. Each test
//! drives the real engine on 127.0.0.1 against a scripted ACS; schedules run on the manual clock.

use std::time::Duration;

use cpe_sim::engine::Mode;
use cpe_sim::persist::Store;

use crate::engine::{ok, plan, rpc, scripted, serial, start, Acs, Seen};
use crate::support::{texts, value_of};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cpe-sim-realism-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

// ---------------------------------------------------------------------------------------------
// Firmware (issue 11 item 2).

const SW: &str = "Device.DeviceInfo.SoftwareVersion";

fn firmware_download(s: &Seen, file: &str) -> Vec<u8> {
    rpc(
        "dl",
        &format!(
            "<cwmp:Download><CommandKey>fw-{file}</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>http://{}/fw/{file}</URL><Username></Username><Password></Password><FileSize>0</FileSize><TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL></cwmp:Download>",
            s.host
        ),
    )
}

/// An ACS upgrade policy, as GenieACS presets are written: every Inform whose SoftwareVersion is
/// not `SimGW-2.0.1`'s gets a firmware Download of it.
fn upgrade_policy(s: &Seen) -> crate::engine::Answer {
    if value_of(&s.body, SW).as_deref() == Some("2.0.1") {
        ok(s, vec![])
    } else {
        ok(s, vec![firmware_download(s, "SimGW-2.0.1.bin")])
    }
}

fn firmware_upgrade_converges_and_survives_restarts(cpes: u32) {
    let dir = temp_dir(&format!("fw-{cpes}"));
    let acs = Acs::start(scripted(upgrade_policy));
    for _run in 0..2 {
        let mut p = plan(acs.url(), cpes, None);
        let mut store = Store::open(&dir, &p.model).unwrap();
        p.mode = Mode::OneShot;
        p.shards = cpes.min(2) as u16;
        p.state = Some(cpe_sim::persist::Resume {
            saved: std::sync::Mutex::new(std::mem::take(&mut store.loaded)),
            sink: Some(store.sink.clone()),
        });
        let outcome = start(p, None, vec![]).wait(Duration::from_secs(30));
        assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
        store.close().unwrap();
    }
    assert_eq!(acs.gets(), cpes as usize, "each CPE fetched the image once: the policy converged");
    let bodies: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect();
    for i in 0..cpes {
        let informs: Vec<&String> =
            bodies.iter().filter(|b| b.contains("<cwmp:Inform>") && texts(b, "SerialNumber").contains(&serial(i))).collect();
        assert_eq!(informs.len(), 3, "bootstrap, the upgrade's boot, the restart's boot: {informs:?}");
        assert_eq!(value_of(informs[0], SW).as_deref(), Some("1.0.0-sim"));
        let events = texts(informs[1], "EventCode");
        assert_eq!(events, ["1 BOOT", "7 TRANSFER COMPLETE", "M Download"], "CPE {i}");
        assert_eq!(value_of(informs[1], SW).as_deref(), Some("2.0.1"), "the new version is in the upgrade's Inform");
        assert_eq!(texts(informs[2], "EventCode"), ["1 BOOT"]);
        assert_eq!(value_of(informs[2], SW).as_deref(), Some("2.0.1"), "the version survives the restart");
    }
    let completes: Vec<&String> = bodies.iter().filter(|b| b.contains("<cwmp:TransferComplete>")).collect();
    assert_eq!(completes.len(), cpes as usize);
    assert!(completes.iter().all(|b| texts(b, "FaultCode") == ["0"]), "{completes:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_firmware_upgrade_converges_and_survives_restarts_for_one_cpe() {
    firmware_upgrade_converges_and_survives_restarts(1);
}

#[test]
fn a_firmware_upgrade_converges_and_survives_restarts_in_a_fleet() {
    firmware_upgrade_converges_and_survives_restarts(3);
}

/// A bad image (the profile's failure share at 1): TransferComplete says 9018, the CPE does not
/// reboot into it and keeps its version; a golden URL pattern wins over the file name.
#[test]
fn a_bad_image_is_reported_and_changes_nothing_and_patterns_win() {
    use cpe_sim::model::firmware::{FirmwareRule, VersionMatch};
    let acs = Acs::start(scripted(|s| match s.n {
        0 => ok(s, vec![firmware_download(s, "SimGW-3.0.0.bin")]),
        _ => ok(s, vec![]),
    }));
    let mut bad = crate::support::profile(crate::support::TR181);
    bad.firmware = FirmwareRule { failure_share: 1.0, version_from_file_name: true, ..Default::default() };
    let mut p = crate::engine::plan_for(std::sync::Arc::new(bad), acs.url(), 1, None);
    p.mode = Mode::OneShot;
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(30));
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let bodies: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect();
    let informs: Vec<&String> = bodies.iter().filter(|b| b.contains("<cwmp:Inform>")).collect();
    assert_eq!(texts(informs[1], "EventCode"), ["7 TRANSFER COMPLETE", "M Download"], "no reboot into a bad image");
    assert_eq!(value_of(informs[1], SW).as_deref(), Some("1.0.0-sim"));
    let tc = bodies.iter().find(|b| b.contains("<cwmp:TransferComplete>")).unwrap();
    assert_eq!(texts(tc, "FaultCode"), ["9018"], "{tc}");

    let acs = Acs::start(scripted(|s| match s.n {
        0 => ok(s, vec![firmware_download(s, "golden/SimGW-3.0.0.bin")]),
        _ => ok(s, vec![]),
    }));
    let mut golden = crate::support::profile(crate::support::TR181);
    golden.firmware.versions = vec![VersionMatch { pattern: "*/golden/*".into(), version: "9.9.9".into() }];
    let mut p = crate::engine::plan_for(std::sync::Arc::new(golden), acs.url(), 1, None);
    p.mode = Mode::OneShot;
    start(p, None, vec![]).wait(Duration::from_secs(30));
    let bodies: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect();
    let upgraded = bodies.iter().find(|b| b.contains("M Download")).unwrap();
    assert_eq!(value_of(upgraded, SW).as_deref(), Some("9.9.9"));
}
