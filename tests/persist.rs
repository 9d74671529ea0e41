//! `--state-dir`: what a restarted simulator resumes (1 BOOT, values the ACS set, pending
//! M-events), torn last batches, another profile's store, a writer killed mid-batch, compaction
//! while running, the directory's lock, the format version, damage in the middle of the log, and
//! closing with a sink still held.

use std::time::Duration;

use cpe_sim::cpe::CpeState;
use cpe_sim::model::DeviceId;
use cpe_sim::persist::{Damage, Store, StoreError, StoreOptions};
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

const LOG: &str = "cpe-sim-state.log";

/// The log's records as (offset, length with the 8-byte prefix), after the header line.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut at = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, 8 + len));
        at += 8 + len;
    }
    out
}

fn ssid(model: &cpe_sim::model::Model, cpe: &CpeState) -> Option<String> {
    model.device(cpe.id, &cpe.delta, cpe.boot_at, cpe.boot_at).get("Device.WiFi.SSID.1.SSID")
}

/// A steady fleet saving the same CPEs over and over: the writer compacts the log while running,
/// so its size stays within a few times the live records (it grew 200× before). A compaction that
/// fails (here the temporary file cannot be created) leaves the old log whole, and a temporary
/// file left by a crash mid-compaction is ignored.
#[test]
fn a_steady_fleet_keeps_a_bounded_log_and_a_failed_compaction_loses_nothing() {
    let dir = temp_dir("compact");
    let model = profile(TR181);
    let now = UnixMillis::now();
    let opts = StoreOptions { flush_every: Duration::from_secs(3600), compact_factor: 3, compact_min_bytes: 0 };
    let store = Store::open_with(&dir, &model, opts).unwrap();
    let file = dir.join(LOG);
    let mut cpes: Vec<CpeState> = (0..20).map(|i| CpeState::new(DeviceId(i), now)).collect();
    let round = |store: &Store, cpes: &mut [CpeState], r: u32| {
        for cpe in cpes.iter_mut() {
            cpe.device_mut(&model, now).set_local("Device.WiFi.SSID.1.SSID", &format!("round-{r:04}")).unwrap();
            store.sink.save(cpe);
        }
        assert!(store.sink.flush());
        std::fs::metadata(&file).unwrap().len()
    };
    let live = round(&store, &mut cpes, 0);
    let largest = (1..200).map(|r| round(&store, &mut cpes, r)).max().unwrap();
    assert!(largest <= 4 * live + 64, "the log grew to {largest} bytes for {live} live bytes");

    // Compactions now fail: the old log keeps growing, whole.
    std::fs::create_dir(dir.join(format!("{LOG}.tmp"))).unwrap();
    let grown = (200..240).map(|r| round(&store, &mut cpes, r)).max().unwrap();
    assert!(grown > 4 * live, "compaction could not have run: {grown}");
    let stats = store.close().unwrap();
    assert!(stats.compactions > 10, "{stats:?}");
    std::fs::remove_dir(dir.join(format!("{LOG}.tmp"))).unwrap();
    // A crash mid-compaction leaves a partial temporary file: ignored, the log is whole.
    std::fs::write(dir.join(format!("{LOG}.tmp")), b"cpe-sim-state/1 partial").unwrap();
    let store = Store::open(&dir, &model).unwrap();
    assert_eq!((store.torn_bytes, store.damaged.len(), store.loaded.len()), (0, 0, 20));
    assert!(store.loaded.values().all(|c| ssid(&model, c).as_deref() == Some("round-0239")));
    store.close().unwrap();
    let reopened = std::fs::metadata(&file).unwrap().len();
    assert!(reopened <= live + live / 10, "opening compacted to the live records: {reopened} vs {live}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second store on the same directory, in this process or another, is refused with the holder's
/// pid; the second `cpe-sim` exits 2 saying so.
#[test]
fn a_second_simulator_on_the_same_state_dir_is_refused() {
    use std::process::{Command, Stdio};
    let dir = temp_dir("lock");
    let model = profile(TR181);
    let store = Store::open(&dir, &model).unwrap();
    match Store::open(&dir, &model) {
        Err(e @ StoreError::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("is in use by another cpe-sim (pid {})", std::process::id())), "{msg}");
        }
        other => panic!("a second store opened: {:?}", other.map(|s| s.loaded.len())),
    }
    store.close().unwrap();
    Store::open(&dir, &model).expect("closing released the lock").close().unwrap();

    let bin = env!("CARGO_BIN_EXE_cpe-sim");
    let dir = dir.join("run");
    let mut first = Command::new(bin)
        .args(["--cpes", "2", "--duration", "60s", "--progress-interval", "1h", "--state-dir"])
        .arg(&dir)
        .current_dir(repo("."))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first one holds the directory once it has written its log (the lock comes first).
    let log = dir.join(LOG);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read(&log).is_ok_and(|b| b.contains(&b'\n')) {
        if std::time::Instant::now() > deadline || first.try_wait().unwrap().is_some() {
            let _ = first.kill();
            panic!("the first cpe-sim never opened {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let second =
        Command::new(bin).args(["--cpes", "2", "--duration", "3s", "--state-dir"]).arg(&dir).current_dir(repo(".")).output().unwrap();
    let pid = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("is in use by another cpe-sim (pid {pid})")), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("cpe-sim-state.lock")).unwrap().trim(), pid.to_string());
    // The killed holder's lock went with it.
    Store::open(&dir, &model).expect("a killed holder leaves no lock").close().unwrap();
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// A log of another format version is refused as such, and left as it is.
#[test]
fn a_store_of_another_format_version_is_refused_not_misread() {
    let dir = temp_dir("version");
    let model = profile(TR181);
    let store = Store::open(&dir, &model).unwrap();
    store.sink.save(&CpeState::new(DeviceId(0), UnixMillis::now()));
    store.close().unwrap();
    let file = dir.join(LOG);
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"cpe-sim-state/1 "), "the header names the version");
    let mut newer = b"cpe-sim-state/2".to_vec();
    newer.extend_from_slice(&bytes[b"cpe-sim-state/1".len()..]);
    std::fs::write(&file, &newer).unwrap();
    match Store::open(&dir, &model) {
        Err(e @ StoreError::Version { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("version 2") && msg.contains("reads only version 1"), "{msg}");
        }
        other => panic!("a newer store was opened: {:?}", other.map(|s| s.loaded.len())),
    }
    assert_eq!(std::fs::read(&file).unwrap(), newer, "a refused store is not rewritten");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Damage in the middle of the log (a bad checksum, bad JSON under a good checksum, a bad length)
/// is counted with its offset and skipped; the records after it are kept; only a record cut short
/// at the end is a torn tail. The damaged log is copied aside before opening compacts it.
#[test]
fn damage_in_the_middle_is_skipped_and_reported_not_taken_for_a_torn_tail() {
    let dir = temp_dir("damage");
    let model = profile(TR181);
    let now = UnixMillis::now();
    let store = Store::open(&dir, &model).unwrap();
    for i in 0..5u32 {
        let mut cpe = CpeState::new(DeviceId(i), now);
        cpe.device_mut(&model, now).set_local("Device.WiFi.SSID.1.SSID", &format!("kept-{i}")).unwrap();
        store.sink.save(&cpe);
        assert!(store.sink.flush(), "one record per batch, in order");
    }
    store.close().unwrap();
    let file = dir.join(LOG);
    let clean = std::fs::read(&file).unwrap();
    let recs = records(&clean);
    assert_eq!(recs.len(), 5);

    // Record 1: a flipped payload byte (bad CRC). Record 3: not JSON, under a good CRC. Then a
    // torn tail.
    let mut bytes = clean.clone();
    bytes[recs[1].0 + 20] ^= 0x55;
    let (at3, len3) = recs[3];
    let garbage: Vec<u8> = std::iter::once(b'{').chain(std::iter::repeat_n(b'x', len3 - 8 - 1)).collect();
    bytes[at3 + 4..at3 + 8].copy_from_slice(&crc32fast::hash(&garbage).to_le_bytes());
    bytes[at3 + 8..at3 + len3].copy_from_slice(&garbage);
    bytes.extend_from_slice(&300u32.to_le_bytes());
    bytes.extend_from_slice(&7u32.to_le_bytes());
    bytes.extend_from_slice(b"{\"id\":");
    std::fs::write(&file, &bytes).unwrap();
    let store = Store::open(&dir, &model).unwrap();
    let expected = vec![Damage { offset: recs[1].0 as u64, bytes: recs[1].1 as u64 }, Damage { offset: at3 as u64, bytes: len3 as u64 }];
    assert_eq!(store.damaged, expected);
    assert_eq!(store.torn_bytes, 14);
    let mut ids: Vec<u32> = store.loaded.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 2, 4], "the good records after the damage are kept");
    assert_eq!(ssid(&model, &store.loaded[&4]).as_deref(), Some("kept-4"));
    let copy = store.damaged_copy.clone().expect("the damaged log is kept");
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);
    store.close().unwrap();
    std::fs::remove_file(&copy).unwrap();

    // A damaged length in the middle: the next sound record is found, nothing after it is lost.
    let mut bytes = clean.clone();
    bytes[recs[2].0..recs[2].0 + 4].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    std::fs::write(&file, &bytes).unwrap();
    let store = Store::open(&dir, &model).unwrap();
    assert_eq!(store.damaged, [Damage { offset: recs[2].0 as u64, bytes: recs[2].1 as u64 }]);
    assert_eq!((store.torn_bytes, store.loaded.len()), (0, 4));
    store.close().unwrap();

    // A whole last record that does not read is damage too, not a torn tail.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = *records(&bytes).last().unwrap();
    bytes[last.0 + 20] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let store = Store::open(&dir, &model).unwrap();
    assert_eq!(store.damaged, [Damage { offset: last.0 as u64, bytes: last.1 as u64 }]);
    assert_eq!((store.torn_bytes, store.loaded.len()), (0, 3));
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shard that did not stop in time still holds a sink: closing the store writes the last batch
/// and returns anyway (it waited for every sink to go before, so the process hung at exit).
#[test]
fn closing_writes_the_last_batch_while_a_sink_is_still_held() {
    let dir = temp_dir("close");
    let model = profile(TR181);
    let store = Store::open(&dir, &model).unwrap();
    let left_behind = store.sink.clone();
    left_behind.save(&CpeState::new(DeviceId(7), UnixMillis::now()));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(store.close().map(|s| s.records).map_err(|e| e.to_string())));
    let closed = rx.recv_timeout(Duration::from_secs(20)).expect("close returned while a sink was held");
    assert_eq!(closed, Ok(1));
    left_behind.save(&CpeState::new(DeviceId(8), UnixMillis::now()));
    assert!(!left_behind.flush(), "a closed store takes nothing more");
    drop(left_behind);
    let store = Store::open(&dir, &model).unwrap();
    assert_eq!(store.loaded.keys().copied().collect::<Vec<_>>(), [7]);
    // Dropping a store closes it too.
    store.sink.save(&CpeState::new(DeviceId(9), UnixMillis::now()));
    drop(store);
    assert_eq!(Store::open(&dir, &model).unwrap().loaded.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second Ctrl-C skips the drain but not the last batch: the process writes what is queued,
/// then exits 1 (it exited at once before, losing up to a batch of completed sessions).
#[test]
fn a_second_signal_writes_the_last_batch_before_exiting() {
    use crate::engine::{serial, Acs};
    use crate::support::raw::{simple_acs, RawReply};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = temp_dir("second-signal");
    // CPE 0 bootstraps; CPE 1's session hangs, so the first signal's drain has to wait for it.
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let acs = Acs::start(move |req, _| {
        let body = req.body_str();
        if body.contains(&serial(1)) {
            return RawReply::Hang;
        }
        if req.body.is_empty() {
            d.store(true, Ordering::SeqCst);
        }
        RawReply::Send(simple_acs(req))
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--cpes", "2", "--boot-spread", "0s", "--duration", "120s", "--drain-timeout", "60s", "--progress-interval", "1h"])
        .args(["--acs-url", &acs.url(), "--state-dir"])
        .arg(&dir)
        .current_dir(repo("."))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done.load(Ordering::SeqCst) {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("CPE 0 never ended its bootstrap session");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Both signals well within one batch interval of the session's end.
    std::thread::sleep(Duration::from_millis(50));
    let pid = child.id() as i32;
    // SAFETY: signals our own child, by pid.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(100));
    unsafe { libc::kill(pid, libc::SIGINT) };
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        // SAFETY: stops our own child, by pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("the second signal did not end the process");
    }
    let out = waiter.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let store = Store::open(&dir, &profile(TR181)).unwrap();
    assert!(store.loaded.get(&0).is_some_and(|c| c.bootstrapped), "CPE 0's bootstrap was not saved: {err}");
    assert!(err.contains("a second signal: writing the last batch"), "{err}");
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sweep and a run whose report cannot be written both close the store: every CPE's bootstrap
/// is saved.
#[test]
fn a_sweep_and_a_failed_run_close_the_store() {
    use std::process::Command;
    let dir = temp_dir("modes");
    let model = profile(TR181);
    let bin = env!("CARGO_BIN_EXE_cpe-sim");
    let sweep = Command::new(bin)
        .args(["sweep", "--multipliers", "1,0.5", "--step-duration", "1s", "--cpes", "3", "--progress-interval", "1h"])
        .arg("--state-dir")
        .arg(dir.join("sweep"))
        .current_dir(repo("."))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&sweep.stderr);
    assert_eq!(sweep.status.code(), Some(0), "{err}");
    assert!(err.contains("device state saved"), "{err}");
    let store = Store::open(&dir.join("sweep"), &model).unwrap();
    assert!(store.loaded.len() == 3 && store.loaded.values().all(|c| c.bootstrapped), "{err}");
    store.close().unwrap();

    // The report cannot be written (stdout is /dev/full): the run fails after it ran.
    let failed = Command::new(bin)
        .args(["--cpes", "3", "--state-dir"])
        .arg(dir.join("failed"))
        .current_dir(repo("."))
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_ne!(failed.status.code(), Some(0), "{err}");
    let store = Store::open(&dir.join("failed"), &model).unwrap();
    assert!(store.loaded.len() == 3 && store.loaded.values().all(|c| c.bootstrapped), "{err}");
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
