//! `--state-dir`: what a restarted simulator resumes (1 BOOT, values the ACS set, pending
//! M-events), torn last batches, another profile's store, and a writer killed mid-batch.

use std::time::Duration;

use cpe_sim::cpe::CpeState;
use cpe_sim::model::DeviceId;
use cpe_sim::persist::{Store, StoreError};
use cpe_sim::time::UnixMillis;

use crate::support::{profile, repo, TR098, TR181};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cpe-sim-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_store_resumes_cpes_and_survives_a_torn_tail() {
    let dir = temp_dir("resume");
    let model = profile(TR181);
    let now = UnixMillis::now();
    let store = Store::open(&dir, &model).unwrap();
    assert!(store.loaded.is_empty());
    for i in 0..3u32 {
        let mut cpe = CpeState::new(DeviceId(i), now);
        cpe.bootstrapped = i != 2;
        if i != 2 {
            cpe.events = Default::default();
        }
        cpe.device_mut(&model, now).set_local("Device.WiFi.SSID.1.SSID", &format!("kept-{i}")).unwrap();
        if i == 1 {
            cpe.reboot("reboot-key", now);
        }
        store.sink.save(&cpe);
    }
    store.close().unwrap();
    // A torn record after the last good batch: a length and a checksum but half a payload.
    let file = dir.join("cpe-sim-state.log");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&300u32.to_le_bytes());
    bytes.extend_from_slice(&7u32.to_le_bytes());
    bytes.extend_from_slice(b"{\"id\":");
    std::fs::write(&file, &bytes).unwrap();

    let mut store = Store::open(&dir, &model).unwrap();
    assert_eq!(store.torn_bytes, 14);
    assert_eq!(store.loaded.len(), 3);
    let later = UnixMillis(now.0 + 60_000);
    let c0 = store.resume(0, later).unwrap();
    assert_eq!(c0.events.describe(0), "[1 BOOT]", "a bootstrapped CPE boots, it does not bootstrap");
    assert_eq!(c0.boot_at, later);
    assert_eq!(model.device(c0.id, &c0.delta, c0.boot_at, later).get("Device.WiFi.SSID.1.SSID").as_deref(), Some("kept-0"));
    assert_eq!(store.resume(1, later).unwrap().events.describe(0), "[1 BOOT, M Reboot]", "a pending M Reboot is still delivered");
    assert_eq!(store.resume(2, later).unwrap().events.describe(0), "[0 BOOTSTRAP, 1 BOOT]", "never bootstrapped: still owes it");
    assert!(store.resume(3, later).is_none());
    store.close().unwrap();
    // Compaction rewrote the file without the torn tail.
    assert!(std::fs::read(&file).unwrap().len() < bytes.len());

    // Another profile's store is refused, naming both.
    match Store::open(&dir, &profile(TR098)) {
        Err(e @ StoreError::Mismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("example-tr181-gateway") && msg.contains("example-tr098-gateway"), "{msg}");
        }
        other => panic!("{:?}", other.map(|s| s.loaded.len())),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fleet_killed_mid_batch_reloads_and_resumes() {
    use std::process::{Command, Stdio};
    let dir = temp_dir("kill");
    let bin = env!("CARGO_BIN_EXE_cpe-sim");
    let args = ["--cpes", "600", "--boot-spread", "1s", "--shards", "2", "--state-dir"];
    let mut child = Command::new(bin)
        .args(args)
        .arg(&dir)
        .args(["--duration", "60s", "--progress-interval", "1h"])
        .current_dir(repo("."))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once batches are being written, while CPEs are still bootstrapping.
    //
    // This waited at most 500 × 10 ms for the first batch. On a busy machine (load 8 on two cores)
    // the debug binary's first bootstrap completes only ~9 s after the start, so the kill came
    // before any batch and the test found "0 CPEs saved". It now waits for the first batch itself,
    // with a deadline only a hung child reaches; at that point the other CPEs are still
    // bootstrapping however slow the machine is (they progress together).
    let file = dir.join("cpe-sim-state.log");
    let header = 200;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::metadata(&file).is_ok_and(|m| m.len() > header) {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no batch written to {} within 60 s", file.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    child.kill().unwrap();
    child.wait().unwrap();

    let model = profile(TR181);
    let store = Store::open(&dir, &model).expect("a killed writer never corrupts the store");
    let saved = store.loaded.len();
    assert!(saved > 0 && saved < 600, "{saved} CPEs saved before the kill");
    assert!(store.loaded.values().all(|c| c.bootstrapped), "only completed bootstraps are saved as bootstrapped");
    store.close().unwrap();

    // The restart: the saved CPEs boot, the rest bootstrap; all of them finish. One-shot (no
    // --duration): the run ends when every CPE has done so, however slow the machine is (a fixed
    // 4 s cut sessions off under load).
    let out = Command::new(bin)
        .args(args)
        .arg(&dir)
        .args(["--report-json"])
        .arg(dir.join("report.json"))
        .current_dir(repo("."))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("saved_cpes={saved}")), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["sessions"]["failed"].as_u64(), Some(0), "{report}");
    let store = Store::open(&dir, &model).unwrap();
    assert_eq!(store.loaded.len(), 600, "every CPE is saved after the second run: {}", report["sessions"]);
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ACS moves its CPEs to another ACS; after a restart with the same `--acs-url`, each resumed
/// CPE informs the URL its ACS set (with `1 BOOT`), not the run's.
fn a_resumed_cpe_informs_the_url_its_acs_set(cpes: u32) {
    use crate::engine::{ok, plan, scripted, serial, spv, start, Acs, URL};
    use cpe_sim::engine::Mode;
    let dir = temp_dir(&format!("moved-{cpes}"));
    let acs2 = Acs::start(scripted(|s| ok(s, vec![])));
    let new_url = acs2.url();
    let acs1 = Acs::start(scripted(move |s| match s.n {
        0 => ok(s, vec![spv(URL, &new_url)]),
        _ => ok(s, vec![]),
    }));
    for _run in 0..2 {
        let mut p = plan(acs1.url(), cpes, None);
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
    for i in 0..cpes {
        assert_eq!(acs1.informs_of(&serial(i)).len(), 1, "CPE {i} never came back to the old ACS");
        let at_new = acs2.informs_of(&serial(i));
        assert_eq!(at_new.len(), 2, "CPE {i}: {at_new:?}");
        assert!(at_new[0].contains(&"0 BOOTSTRAP".to_string()), "{at_new:?}");
        assert_eq!(at_new[1], ["1 BOOT"], "CPE {i}: the restart is a boot at the new ACS");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_cpe_informs_the_url_its_acs_set_for_one_cpe() {
    a_resumed_cpe_informs_the_url_its_acs_set(1);
}

#[test]
fn a_resumed_cpe_informs_the_url_its_acs_set_in_a_fleet() {
    a_resumed_cpe_informs_the_url_its_acs_set(3);
}
