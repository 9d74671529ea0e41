//! Slices of one fleet in separate processes, as the pods of a Kubernetes Indexed Job run them:
//! `JOB_COMPLETION_INDEX=0..N-1` with `--slices N` against one ACS on 127.0.0.1. The serials the
//! ACS sees are disjoint between processes and cover the fleet, nothing informs before
//! `--start-at`, and `report merge` of the slices' interval logs counts what the slices counted.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::raw::{http, RawAcs, RawReply};
use crate::support::{inform_response, texts};

/// A child process, killed by its id however the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit within `limit` (generous: the machine may be busy).
fn exit_code(child: &mut Proc, limit: Duration) -> i32 {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "a slice did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// (request path, serial, arrival in Unix ms) of each Inform.
type Informs = std::sync::Arc<std::sync::Mutex<Vec<(String, String, u64)>>>;

/// An ACS that accepts every Inform, ends each session with a 204, and notes (path, serial,
/// arrival time in Unix ms) of every Inform.
fn acs(rt: &tokio::runtime::Runtime) -> (RawAcs, Informs) {
    let seen = Informs::default();
    let log = seen.clone();
    let raw = rt.block_on(RawAcs::start(move |req, _| {
        let body = req.body_str();
        if body.contains("<cwmp:Inform>") {
            let serial = texts(&body, "SerialNumber").pop().unwrap_or_default();
            log.lock().unwrap().push((req.path.clone(), serial, unix_ms()));
            return RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &inform_response("1")));
        }
        RawReply::Send(http("204 No Content", &[], b""))
    }));
    (raw, seen)
}

fn report_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn job_completion_index_slices_are_disjoint_cover_the_fleet_and_merge_to_their_sum() {
    const SLICES: u32 = 3;
    const CPES: u32 = 31;
    const FIRST: u32 = 1000;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (raw, seen) = acs(&rt);
    let dir = std::env::temp_dir().join(format!("cpe-sim-slices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every slice waits for the same moment, as pods started apart do.
    let start_at_ms = unix_ms() + 1500;
    let start_at = format!("{}", start_at_ms.div_ceil(1000));
    let start_at_ms = start_at_ms.div_ceil(1000) * 1000;
    let mut procs = Vec::new();
    for k in 0..SLICES {
        let child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
            .env("JOB_COMPLETION_INDEX", k.to_string())
            .env("CPE_SIM_SLICES", SLICES.to_string())
            .env("CPE_SIM_START_AT", &start_at)
            .args(["--acs-url", &raw.url(&format!("/acs/{k}")), "--log-level", "info"])
            .args(["--cpes", &CPES.to_string(), "--first-index", &FIRST.to_string(), "--progress-interval", "1s"])
            .arg("--report-json")
            .arg(dir.join(format!("slice-{k}.json")))
            .arg("--hdr-log")
            .arg(dir.join(format!("slice-{k}.hdr")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        procs.push(Proc(child));
    }
    for p in &mut procs {
        assert_eq!(exit_code(p, Duration::from_secs(120)), 0, "a slice failed");
    }
    let seen = seen.lock().unwrap().clone();
    // Disjoint and covering: every serial of the fleet informed exactly once, from one slice.
    let mut by_slice: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (path, serial, at) in &seen {
        assert!(*at >= start_at_ms, "{serial} informed {} ms before --start-at", start_at_ms - at);
        by_slice.entry(path.clone()).or_default().insert(serial.clone());
    }
    assert_eq!(seen.len(), CPES as usize, "one bootstrap Inform per CPE: {seen:?}");
    let all: BTreeSet<String> = by_slice.values().flatten().cloned().collect();
    let want: BTreeSet<String> = (FIRST..FIRST + CPES).map(|i| format!("FEFEFE{i:06X}")).collect();
    assert_eq!(all, want);
    assert_eq!(by_slice.len(), SLICES as usize);
    let sizes: Vec<usize> = (0..SLICES).map(|k| by_slice[&format!("/acs/{k}")].len()).collect();
    assert_eq!(sizes, vec![10, 10, 11], "slices are ⌊K·31/3⌋ … ⌊(K+1)·31/3⌋");
    // Slice 0 holds the lowest indices.
    assert!(by_slice["/acs/0"].contains(&format!("FEFEFE{FIRST:06X}")));
    // The merged report counts what the slices counted.
    let completed: Vec<u64> =
        (0..SLICES).map(|k| report_json(&dir.join(format!("slice-{k}.json")))["sessions"]["completed"].as_u64().unwrap()).collect();
    assert_eq!(completed.iter().sum::<u64>(), CPES as u64);
    // A directory stands for its interval logs (a Kubernetes volume of slices, merged in a
    // container that has no shell to expand a glob).
    let merged = dir.join("merged.json");
    let out =
        Command::new(env!("CARGO_BIN_EXE_cpe-sim")).args(["report", "merge"]).arg(&dir).arg("--report-json").arg(&merged).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report_json(&merged)["sessions"]["completed"].as_u64(), Some(completed.iter().sum::<u64>()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_slices_exit_2_before_the_first_packet() {
    for (env, flags, says) in [
        (Some("5"), &["--slices", "5"][..], "--slices 5: the slice index must be 0 … 4"),
        (Some("1"), &[][..], "JOB_COMPLETION_INDEX=1 needs --slices N"),
        (None, &["--slice", "1/x"][..], "--slice 1/x: must be K/N"),
        (None, &["--slice", "0/9"][..], "--slice 0/9: cuts 4 CPEs into 9 slices"),
        (None, &["--start-at", "tomorrow"][..], "--start-at tomorrow: must be an RFC 3339 time"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpe-sim"));
        cmd.args(["--acs-url", "http://127.0.0.1:9/", "--cpes", "4"]).args(flags);
        cmd.env_remove("JOB_COMPLETION_INDEX");
        if let Some(k) = env {
            cmd.env("JOB_COMPLETION_INDEX", k);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

// --start-at holds a USP run's Agents too (the embedded Controller over WebSocket): the run waits,
// says so, and its Agents boot after the time.
#[test]
fn start_at_holds_a_usp_run() {
    let start_at_ms = (unix_ms() + 1500).div_ceil(1000) * 1000;
    let begun = unix_ms();
    let out = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--protocol", "usp", "--cpes", "2", "--start-at", &(start_at_ms / 1000).to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("waiting for --start-at"), "{err}");
    assert!(unix_ms() >= start_at_ms, "the run ended before --start-at (began {begun}, start {start_at_ms})");
    assert!(String::from_utf8_lossy(&out.stdout).contains("agents booted (Boot! answered): 2 of 2"));
}
