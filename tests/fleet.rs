//! The fleet engine: shards, the wheel's schedule, pooled and per-session connections, late
//! informs, the report, thresholds, interval logs and sweeps, against in-test ACSs on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpe_sim::cpe::agenda::next_after;
use cpe_sim::cpe::periodic::{self, PeriodicPlan};
use cpe_sim::cpe::CpeState;
use cpe_sim::engine::{self as fleet, Boot, ConnectionMode, Mode, Outputs, Plan};
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::time::UnixMillis;
use cpe_sim::transport::tls::{client_config, TlsOptions};
use cpe_sim::transport::{TransportConfig, DEFAULT_MAX_BODY};

use crate::support::raw::{http, simple_acs, RawAcs, RawReply};
use crate::support::{profile, texts, TR181};

fn transport() -> TransportConfig {
    TransportConfig {
        timeout: Duration::from_secs(5),
        max_body: DEFAULT_MAX_BODY,
        tls: client_config(&TlsOptions { no_system_roots: true, ..TlsOptions::default() }).unwrap(),
        credentials: None,
    }
}

fn plan(url: String, cpes: u32, shards: u16, mode: ConnectionMode, multiplier: f64) -> Plan {
    let mut p = Plan::new(Arc::new(profile(TR181)), url, transport(), cpes);
    p.shards = shards;
    p.boot = Boot::Spread(Duration::from_millis(300));
    p.periodic = PeriodicPlan { multiplier, interval: Some(Duration::from_secs(300)) };
    p.mode = Mode::Daemon;
    p.connection_mode = mode;
    p.max_in_flight = 256;
    p.report_every = Duration::from_millis(200);
    p
}

/// Time from `now` to the CPE's next periodic Inform (PROTOCOL.md §6), `None` when off.
fn periodic_delay_at(model: &Model, cpe: &CpeState, plan: &PeriodicPlan, now: UnixMillis) -> Option<Duration> {
    periodic::plan(model, cpe, plan).map(|p| Duration::from_millis(next_after(now.0, p.period_ms, p.phase_ms) - now.0))
}

fn quiet() -> Outputs {
    Outputs { progress_every: Duration::from_millis(500), progress: false, ..Outputs::default() }
}

/// (serial, event codes, arrival) of each Inform the ACS saw.
type InformLog = Arc<Mutex<Vec<(String, Vec<String>, Instant)>>>;

/// An ACS on its own runtime thread that records every Inform.
struct RecordingAcs {
    _rt: tokio::runtime::Runtime,
    raw: RawAcs,
    informs: InformLog,
}

impl RecordingAcs {
    fn start(inform_delay: Duration) -> RecordingAcs {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let informs: InformLog = Arc::default();
        let log = informs.clone();
        let raw = rt.block_on(RawAcs::start(move |req, _| {
            let body = req.body_str();
            if body.contains("<cwmp:Inform>") {
                let serial = texts(&body, "SerialNumber").pop().unwrap_or_default();
                log.lock().unwrap().push((serial, texts(&body, "EventCode"), Instant::now()));
                if !inform_delay.is_zero() {
                    return RawReply::Delayed(inform_delay, simple_acs(req));
                }
            }
            RawReply::Send(simple_acs(req))
        }));
        RecordingAcs { _rt: rt, raw, informs }
    }
}

#[test]
fn two_shards_inform_on_schedule_with_every_serial() {
    // This ran 2,000 CPEs at a 600 ms period (3,300 sessions/s in a debug build) and checked the
    // mean gap between a CPE's Informs as the ACS saw them (510–690 ms, 90 % within ±200 ms), and no
    // gap under 50 ms. On a busy machine (load 8 on two cores) the simulator cannot run 3,300
    // sessions a second, Informs fall behind their schedule, and CPEs managed 2 or 3 Informs in
    // 3.5 s: the test measured the machine's throughput, not the schedule. Now 200 CPEs (333/s)
    // and checks that a late arrival cannot upset: the schedule keeps each CPE's phase (the next
    // Inform is due one period after the last was *due*), so a delay between the CPE's timer and
    // the ACS's clock lengthens one gap and shortens the next, and the median gap stays at the
    // period; and no CPE informs more often than its schedule has slots.
    const CPES: u32 = 200;
    const RUN: Duration = Duration::from_millis(3500);
    const PERIOD_MS: f64 = 600.0;
    let acs = RecordingAcs::start(Duration::ZERO);
    // 300 s × 0.002 = a periodic Inform every 600 ms per CPE.
    let out = fleet::run(plan(acs.raw.url("/"), CPES, 2, ConnectionMode::Pooled, 0.002), Some(RUN), &quiet(), Vec::new()).unwrap();
    let informs = acs.informs.lock().unwrap().clone();
    let mut by_serial: HashMap<String, Vec<(Vec<String>, Instant)>> = HashMap::new();
    for (serial, events, at) in informs {
        by_serial.entry(serial).or_default().push((events, at));
    }
    assert_eq!(by_serial.len(), CPES as usize, "every CPE informed");
    // Gaps between a CPE's periodic Informs, as seen at the ACS (which adds its own queueing).
    let mut gaps = Vec::new();
    // Slots of a 600 ms schedule in a 3.5 s run, whatever the phase: at most 6.
    let slots = (RUN.as_secs_f64() * 1000.0 / PERIOD_MS).floor() as usize + 1;
    for i in 0..CPES {
        let serial = format!("FEFEFE{i:06X}");
        let list = by_serial.get(&serial).unwrap_or_else(|| panic!("{serial} never informed"));
        assert_eq!(list[0].0, ["0 BOOTSTRAP", "1 BOOT"], "{serial}");
        assert!(list.len() >= 4, "{serial}: {} informs in 3.5 s at a 600 ms period", list.len());
        assert!(list.len() - 1 <= slots, "{serial}: {} periodic Informs in {slots} slots", list.len() - 1);
        for w in list[1..].windows(2) {
            assert_eq!(w[1].0, ["2 PERIODIC"], "{serial}");
            gaps.push(w[1].1.duration_since(w[0].1).as_secs_f64() * 1000.0);
        }
    }
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    let near = gaps.iter().filter(|g| (400.0..=800.0).contains(*g)).count() as f64 / gaps.len() as f64;
    // An Inform queued twice comes back to back, period after period: more than a stray few.
    let short = gaps.iter().filter(|g| **g < 50.0).count() as f64 / gaps.len() as f64;
    assert!((550.0..=650.0).contains(&median), "median periodic gap {median:.1} ms for a 600 ms period");
    assert!(near >= 0.75, "only {:.1}% of gaps within ±200 ms of 600 ms", near * 100.0);
    assert!(short <= 0.02, "{:.1}% of periodic Informs less than 50 ms after the last", short * 100.0);
    let o = &out.total.outcomes;
    assert_eq!(o.failed_sessions(), 0);
    assert!(o.completed >= 4 * u64::from(CPES), "{}", o.completed);
    assert!(o.late() < o.completed / 10, "late {} of {}", o.late(), o.completed);
    assert_eq!(out.json["sessions"]["completed"].as_u64(), Some(o.completed));
    assert!(out.json["scheduler_lag"]["p99_us"].as_u64().is_some());
    // Pooled: far fewer connections than sessions.
    let conns = acs.raw.requests().iter().map(|r| r.conn).max().unwrap() + 1;
    assert!((conns as u64) < o.completed / 4, "{conns} connections for {} sessions", o.completed);
}

#[test]
fn a_connection_request_wakes_cpe_n_of_a_thousand() {
    use cpe_sim::connreq::{CrConfig, CrServer};
    use cpe_sim::model::{ConnRequestAuth, Delta};
    use cpe_sim::owners::Owners;

    // This gave 1,000 bootstraps 2 s inside a 3 s run; on a busy machine (load 8 on two cores)
    // they took longer ("every CPE bootstrapped" failed). The run cannot be stopped early from a
    // test (the stop flag is process-wide), so the run is longer (6 s), the wait for the bootstraps
    // is a condition with a deadline 4 s in, and the Connection Requests still have 2 s to land.
    let acs = RecordingAcs::start(Duration::ZERO);
    // Periodic Informs every 300 s (a few of them fall in the run: their phases spread over 300 s).
    let plan = plan(acs.raw.url("/"), 1000, 2, ConnectionMode::Pooled, 1.0);
    let model = plan.model.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (owners, receivers) = Owners::channels(0, 1000, 2);
    let cfg = CrConfig::new("127.0.0.1:0".parse().unwrap(), ConnRequestAuth::Digest, false, 1000);
    let server = rt.block_on(CrServer::start(cfg, owners)).unwrap();
    let addr = server.addr;
    let started = Instant::now();
    let fleet = std::thread::spawn(move || fleet::run(plan, Some(Duration::from_millis(6000)), &quiet(), receivers).unwrap());

    let informs_of = |serial: &str| {
        acs.informs
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, e, _)| s == serial && e[..] != ["2 PERIODIC"])
            .map(|(_, e, at)| (e.clone(), *at))
            .collect::<Vec<_>>()
    };
    let deadline = started + Duration::from_secs(4);
    while acs.informs.lock().unwrap().len() < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(acs.informs.lock().unwrap().len() >= 1000, "every CPE bootstrapped");
    let mut sent = Vec::new();
    for index in [500u32, 999, 1] {
        let (user, pass) = model.connection_request_credentials(DeviceId(index), &Delta::default());
        let path = format!("/cr/cpe-{index}");
        assert_eq!(rt.block_on(crate::connreq::connection_request(addr, &path, &user, &pass)), 200, "{path}");
        sent.push((index, Instant::now()));
    }
    // CPE 2's credentials do not open CPE 3; there is no CPE 1000.
    let (user, pass) = model.connection_request_credentials(DeviceId(2), &Delta::default());
    assert_eq!(rt.block_on(crate::connreq::connection_request(addr, "/cr/cpe-3", &user, &pass)), 401);
    assert_eq!(rt.block_on(crate::connreq::request(addr, "GET", "/cr/cpe-1000", None)).0, 404);

    let out = fleet.join().unwrap();
    rt.block_on(server.stop());
    for (index, at) in sent {
        let serial = format!("FEFEFE{index:06X}");
        let list = informs_of(&serial);
        assert_eq!(list.len(), 2, "{serial}: {list:?}");
        assert_eq!(list[1].0, ["6 CONNECTION REQUEST"], "{serial}");
        let delay = list[1].1.saturating_duration_since(at);
        assert!(delay < Duration::from_millis(1500), "{serial} informed {delay:?} after its Connection Request");
    }
    assert_eq!(informs_of("FEFEFE000003").len(), 1, "a refused request wakes nothing");
    let woken = acs.informs.lock().unwrap().iter().filter(|(_, e, _)| e.iter().any(|c| c == "6 CONNECTION REQUEST")).count();
    assert_eq!(woken, 3);
    // The report measures each woken session's Inform from the wake-up.
    let cr = &out.json["rpc"]["ConnectionRequest"];
    assert_eq!(cr["count"].as_u64(), Some(3), "{cr}");
    assert!(cr["from_scheduled"]["max_us"].as_u64().unwrap() < 1_500_000, "{cr}");
    assert_eq!(out.total.outcomes.failed_sessions(), 0);
}

#[test]
fn the_state_api_reaches_cpe_n_of_a_fleet() {
    use cpe_sim::api::ApiServer;
    use cpe_sim::owners::Owners;

    let acs = RecordingAcs::start(Duration::ZERO);
    let plan = plan(acs.raw.url("/"), 100, 2, ConnectionMode::Pooled, 1.0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (owners, receivers) = Owners::channels(0, 100, 2);
    let live = Arc::new(Mutex::new(cpe_sim::stats::Recorder::new()));
    let sources = cpe_sim::api::MetricsSources { sessions: Some(live.clone()), ..Default::default() };
    let api = rt
        .block_on(ApiServer::start("127.0.0.1:0".parse().unwrap(), cpe_sim::api::Speaks::Cwmp, plan.model.clone(), owners, sources))
        .unwrap();
    let addr = api.addr;
    let out = Outputs { live: Some(live), ..quiet() };
    let fleet = std::thread::spawn(move || fleet::run(plan, Some(Duration::from_millis(2000)), &out, receivers).unwrap());
    std::thread::sleep(Duration::from_millis(700));
    // 409 while the CPE is in a session: retry, as a user would.
    let call = |method: &str, path: &str, body: &str| {
        for _ in 0..100 {
            let (status, v) = rt.block_on(crate::api::call(addr, method, path, body));
            if status != 409 {
                return (status, v);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{method} {path}: busy for a second");
    };
    let (status, v) = call("GET", "/cpes/FEFEFE000039", "");
    assert_eq!((status, v["id"].as_str()), (200, Some("cpe-57")), "{v}");
    let (status, list) = call("GET", "/cpes?offset=90&limit=50", "");
    assert_eq!((status, list["cpes"].as_array().map(Vec::len)), (200, Some(10)), "{list}");
    // ProvisioningCode has active notification in the example profile.
    let body = r#"{"Device.DeviceInfo.ProvisioningCode": "from-the-api"}"#;
    let (status, v) = call("PUT", "/cpes/cpe-57/parameters", body);
    assert_eq!(status, 200, "{v}");
    // /metrics: the fleet's running totals, refreshed at each progress tick (500 ms here).
    std::thread::sleep(Duration::from_millis(600));
    let (status, metrics) = call("GET", "/metrics", "");
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert_eq!(status, 200);
    let completed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cpesim_sessions_total{outcome=\"completed\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(completed >= 100, "{text}");
    assert!(text.contains("cpesim_rpc_seconds{rpc=\"Inform\",quantile=\"0.99\"}"), "{text}");
    let out = fleet.join().unwrap();
    rt.block_on(api.stop());
    let informs = acs.informs.lock().unwrap().clone();
    let changed: Vec<_> = informs.iter().filter(|(_, e, _)| e.iter().any(|c| c == "4 VALUE CHANGE")).map(|(s, ..)| s.clone()).collect();
    assert_eq!(changed, ["FEFEFE000039"]);
    assert_eq!(out.total.outcomes.failed_sessions(), 0);
}

#[test]
fn per_session_mode_opens_a_connection_per_session() {
    let acs = RecordingAcs::start(Duration::ZERO);
    let out = fleet::run(
        plan(acs.raw.url("/"), 50, 1, ConnectionMode::PerSession, 0.001),
        Some(Duration::from_millis(1200)),
        &quiet(),
        Vec::new(),
    )
    .unwrap();
    let conns = acs.raw.requests().iter().map(|r| r.conn).max().unwrap() as u64 + 1;
    assert_eq!(conns, out.total.outcomes.completed + out.total.outcomes.failed_sessions());
    assert!(out.json["rpc"]["Connect"]["count"].as_u64().unwrap() >= out.total.outcomes.completed);
}

#[test]
fn informs_due_during_a_slow_session_are_counted_late() {
    // The ACS takes 450 ms per Inform; the period is 300 ms.
    let acs = RecordingAcs::start(Duration::from_millis(450));
    let out =
        fleet::run(plan(acs.raw.url("/"), 20, 1, ConnectionMode::Pooled, 0.001), Some(Duration::from_millis(2000)), &quiet(), Vec::new())
            .unwrap();
    assert!(out.total.outcomes.late() >= 20, "late: {}", out.total.outcomes.late());
    assert_eq!(out.json["sessions"]["late"].as_u64(), Some(out.total.outcomes.late()));
    // Latency from the scheduled start includes the wait; service time does not lie about it.
    assert!(out.json["rpc"]["Inform"]["p50_us"].as_u64().unwrap() >= 440_000);
}

#[test]
fn informs_due_while_waiting_for_a_slot_are_late_not_queued_twice() {
    // One slot, 50 ms per session (20/s) for 20 CPEs due every 300 ms (~67/s): most Informs
    // come due while their CPE still waits for the slot.
    let acs = RecordingAcs::start(Duration::from_millis(50));
    let mut p = plan(acs.raw.url("/"), 20, 1, ConnectionMode::Pooled, 0.001);
    p.max_in_flight = 1;
    let out = fleet::run(p, Some(Duration::from_millis(2500)), &quiet(), Vec::new()).unwrap();
    let o = &out.total.outcomes;
    assert!(o.late() > o.completed, "late {} of {} sessions", o.late(), o.completed);
    // A CPE waits in the queue once: between two of its sessions, the others get their turn.
    let serials: Vec<String> = acs.informs.lock().unwrap().iter().map(|(s, _, _)| s.clone()).collect();
    for (i, s) in serials.iter().enumerate() {
        if let Some(gap) = serials[i + 1..].iter().position(|t| t == s) {
            assert!(gap >= 10, "{s} informed again after {gap} others: {serials:?}");
        }
    }
}

#[test]
fn failing_acs_sessions_are_counted_by_cause_and_retried() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let raw = rt.block_on(RawAcs::start(|_, _| RawReply::Send(http("503 Service Unavailable", &[], b""))));
    let mut p = plan(raw.url("/"), 30, 1, ConnectionMode::Pooled, 0.001);
    p.boot = Boot::Spread(Duration::ZERO);
    let out = fleet::run(p, Some(Duration::from_millis(1500)), &quiet(), Vec::new()).unwrap();
    assert_eq!(out.total.outcomes.completed, 0);
    assert_eq!(out.json["failures"]["http_status_codes"]["503"].as_u64(), Some(out.total.outcomes.failed_sessions()));
    // TR-069 back-off: the first retry comes 5–10 s later, so within 1.5 s each CPE tried once.
    assert_eq!(out.total.outcomes.failed_sessions(), 30);
}

#[test]
fn periodic_schedule_follows_the_time_the_interval_and_the_multiplier() {
    let model = profile(TR181);
    let mut cpe = CpeState::new(DeviceId(3), UnixMillis(0));
    let now = UnixMillis(15_000);
    let mut dev = cpe.device_mut(&model, now);
    dev.set_local("Device.ManagementServer.PeriodicInformEnable", "true").unwrap();
    dev.set_local("Device.ManagementServer.PeriodicInformInterval", "60").unwrap();
    dev.set_local("Device.ManagementServer.PeriodicInformTime", "1970-01-01T00:00:10Z").unwrap();
    let plan = |multiplier| PeriodicPlan { multiplier, interval: None };
    assert_eq!(periodic_delay_at(&model, &cpe, &plan(1.0), now), Some(Duration::from_secs(55)));
    assert_eq!(periodic_delay_at(&model, &cpe, &plan(0.5), now), Some(Duration::from_secs(25)));
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.PeriodicInformTime", "0001-01-01T00:00:00Z").unwrap();
    let a = periodic_delay_at(&model, &cpe, &plan(1.0), now).unwrap();
    assert_eq!(a, periodic_delay_at(&model, &cpe, &plan(1.0), now).unwrap(), "a CPE's own phase is stable");
    assert!(a <= Duration::from_secs(60));
    let other = CpeState { id: DeviceId(4), ..cpe.clone() };
    assert_ne!(a, periodic_delay_at(&model, &other, &plan(1.0), now).unwrap(), "CPEs pick different phases");
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.PeriodicInformEnable", "false").unwrap();
    assert_eq!(
        periodic_delay_at(&model, &cpe, &PeriodicPlan { multiplier: 1.0, interval: Some(Duration::from_secs(5)) }, now),
        None,
        "the CPE's own setting wins"
    );
}

fn cpe_sim(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpe-sim")).args(args).current_dir(crate::support::repo(".")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_binary_reports_json_thresholds_logs_and_sweeps() {
    let dir = std::env::temp_dir().join(format!("cpe-sim-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("r.json");
    let hlog = dir.join("r.hlog");
    let base = [
        "--cpes",
        "300",
        "--shards",
        "2",
        "--duration",
        "2s",
        "--inform-interval",
        "300s",
        "--interval-multiplier",
        "0.002",
        "--progress-interval",
        "1s",
        // The sessions open at the stop finish however busy the machine is (this checks the
        // outputs, not the speed).
        "--drain-timeout",
        "120s",
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.extend([
        "--report-json",
        json.to_str().unwrap(),
        "--hdr-log",
        hlog.to_str().unwrap(),
        "--threshold",
        "Inform.p99<10s",
        "--threshold",
        "sessions.failed_ratio<0.01",
    ]);
    let (code, out, err) = cpe_sim(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cpe-sim report: 300 CPEs on 2 shard(s)") && out.contains("Inform"), "{out}");
    // Passed thresholds are listed too, with the actual value in the rule's unit.
    assert!(out.contains("thresholds: 2 of 2 passed\n  passed   Inform.p99<10s (actual "), "{out}");
    assert!(err.contains("] run | booted ") && err.contains(" of 300 | "), "progress line: {err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in [
        "/sessions/completed",
        "/sessions/failed",
        "/sessions/per_second",
        "/rpc/Inform/p99_us",
        "/rpc/Inform/p999_us",
        "/scheduler_lag/p99_us",
        "/process/peak_rss_bytes",
        "/process/cpu_seconds",
    ] {
        assert!(report.pointer(key).is_some(), "{key} missing from {report}");
    }
    assert_eq!(report["thresholds"][0]["passed"], true);
    // A breached threshold exits 99 and says which.
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--threshold", "Inform.p50<1us"]);
    let (code, _, err) = cpe_sim(&args);
    assert_eq!(code, 99, "{err}");
    assert!(err.contains("threshold breached: Inform.p50<1us (actual ") && err.contains("µs)"), "the breach has units: {err}");
    let (code, _, err) = cpe_sim(&["--cpes", "10", "--threshold", "Inform.p99"]);
    assert_eq!(code, 2, "bad rule is a usage error: {err}");
    // See: #12 — a time without a unit is refused rather than read as microseconds.
    let (code, _, err) = cpe_sim(&["--cpes", "10", "--threshold", "Inform.p99<500"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--threshold Inform.p99<500: a time needs a unit: us, ms or s (e.g. Inform.p99<500ms)"), "{err}");
    // The interval log merges back into the same counts; given twice, it is refused.
    let (code, _, err) = cpe_sim(&["report", "merge", hlog.to_str().unwrap(), hlog.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the same run twice: run "), "{err}");
    let (code, merged, err) = cpe_sim(&["report", "merge", hlog.to_str().unwrap(), json.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let inform_count = report["rpc"]["Inform"]["count"].as_u64().unwrap();
    assert!(merged.lines().any(|l| l.starts_with("Inform ") && l.split_whitespace().nth(1) == Some(&inform_count.to_string())), "{merged}");
    assert!(merged.contains("covers 300 CPEs on 2 shard(s) in all"), "{merged}");
    // A small sweep: two steps, offered rates from the period, a knee, against an ACS that
    // counts the Informs it answers.
    //
    // This swept 200 CPEs (333 Informs/s offered) against the embedded ACS and wanted more than
    // 200/s achieved. On a busy machine (load 8 on two cores) the 200 bootstraps of a debug build
    // outlast both 1.5 s steps, so no session completed in either (achieved 0.0/s): the test
    // measured the machine, not the sweep. Now 40 CPEs (33 and 67 Informs/s offered) inform an ACS
    // that answers at once and counts, and the steps' achieved rates must account for what that
    // ACS saw, however many sessions the machine managed.
    let acs = RecordingAcs::start(Duration::ZERO);
    let acs_url = acs.raw.url("/");
    let sweep_json = dir.join("s.json");
    let (code, table, err) = cpe_sim(&[
        "sweep",
        "--multipliers",
        "0.004,0.002",
        "--step-duration",
        "1500ms",
        "--acs-url",
        &acs_url,
        "--cpes",
        "40",
        "--shards",
        "1",
        "--inform-interval",
        "300s",
        "--boot-spread",
        "200ms",
        "--progress-interval",
        "1s",
        "--sweep-json",
        sweep_json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("multiplier") && table.contains("offered/s"), "{table}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&sweep_json).unwrap()).unwrap();
    assert_eq!(s["steps"].as_array().unwrap().len(), 2);
    assert_eq!(s["cpes"].as_u64(), Some(40), "{s}");
    let offered = s["steps"][1]["offered_per_second"].as_f64().unwrap();
    // Offered is measured: the periodic Informs that came due in the step (40 CPEs every 0.6 s is
    // 66.7/s; a step boundary cuts a period, and the step may run a little long on a busy machine).
    assert!((offered - 66.7).abs() < 66.7 * 0.25, "40 CPEs every 300 s × 0.002: {s}");
    // Achieved is completed sessions over the step's length (1.5 s, a little more on a busy
    // machine). Each completed session informed the ACS once, so the steps cannot claim more than
    // it saw; and every Inform it saw completed in a step unless the CPE was still in that session
    // when the sweep ended (at most one per CPE).
    let step = 1.5;
    let claimed: f64 = s["steps"].as_array().unwrap().iter().map(|st| st["achieved_per_second"].as_f64().unwrap()).sum();
    let seen = acs.informs.lock().unwrap().len() as f64;
    assert!(claimed * step <= seen + 1.0, "the steps claim {:.0} sessions, the ACS saw {seen}: {s}", claimed * step);
    assert!(seen <= claimed * step * 1.5 + 40.0, "the ACS saw {seen} Informs, the steps claim {:.0}: {s}", claimed * step);
    // The knee is a step that kept up, if any did.
    if let Some(k) = s["knee"]["step"].as_u64() {
        let st = &s["steps"][k as usize];
        assert!(st["achieved_per_second"].as_f64().unwrap() >= 0.99 * st["offered_per_second"].as_f64().unwrap() - 0.1, "{s}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
