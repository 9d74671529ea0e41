//! The engine end to end, one test per fault class of issue 9: stopping with sessions open,
//! deferred work at its own time, retry timers, durations from outside, a panicking shard, an
//! ACS URL change followed by a failure, one-shot runs that end by themselves, and a single CPE's
//! outputs through the binary. Every test drives the real engine over real sockets on 127.0.0.1
//! against a scripted ACS; timing is on the engine's manual clock (the schedule is virtual, the
//! I/O real), so nothing here sleeps to wait for a schedule and a busy machine only slows it down.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use cpe_sim::cpe::periodic::PeriodicPlan;
use cpe_sim::cpe::CpeState;
use cpe_sim::engine::clock::{Clock, ManualClock};
use cpe_sim::engine::{self, FleetOutcome, Mode, Outputs, Plan};
use cpe_sim::model::hooks::{CpeHooks, HookFault};
use cpe_sim::model::{Device, DeviceId, Model};
use cpe_sim::owners::{CpeMsg, Owners};
use cpe_sim::stats::Recorder;
use cpe_sim::time::UnixMillis;

use crate::support::raw::{http, RawAcs, RawReply, RawRequest};
use crate::support::{acs_envelope, inform_response, profile, test_transport, texts, OneCpe, T0, TR181};

// ---------------------------------------------------------------------------------------------
// A scripted ACS on its own runtime, and the engine on its own thread.

/// What the ACS saw in one Inform.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) serial: String,
    /// The Host header (to serve files from the same server).
    pub(crate) host: String,
    /// How many Informs this CPE sent before this one.
    pub(crate) n: usize,
    /// The Inform's event codes.
    pub(crate) events: Vec<String>,
    /// The whole Inform.
    pub(crate) body: String,
}

/// How the ACS answers one session: the reply to the Inform, then one reply per later POST of
/// the session (then 204).
pub(crate) struct Answer {
    inform: RawReply,
    then: Vec<Vec<u8>>,
}

/// The CPE's serial rides in a cookie, so the ACS knows whose session a later POST belongs to.
pub(crate) fn inform_ok(s: &Seen) -> Vec<u8> {
    let cookie = format!("cpe={}; Path=/", s.serial);
    http("200 OK", &[("Content-Type", "text/xml"), ("Set-Cookie", &cookie)], &inform_response("1"))
}

/// Answers the Inform, then sends `then` one by one.
pub(crate) fn ok(s: &Seen, then: Vec<Vec<u8>>) -> Answer {
    Answer { inform: RawReply::Send(inform_ok(s)), then }
}

/// An ACS request in an HTTP 200.
pub(crate) fn rpc(id: &str, body: &str) -> Vec<u8> {
    http("200 OK", &[("Content-Type", "text/xml")], &acs_envelope(id, body))
}

pub(crate) fn status(line: &str) -> Vec<u8> {
    http(line, &[], b"")
}

pub(crate) fn spv(name: &str, value: &str) -> Vec<u8> {
    rpc("spv", &format!("<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[1]\"><ParameterValueStruct><Name>{name}</Name><Value xsi:type=\"xsd:string\">{value}</Value></ParameterValueStruct></ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>"))
}

const FILE: &[u8] = b"firmware";

fn cookie_serial(req: &RawRequest) -> Option<String> {
    let c = req.header("cookie")?;
    c.split(';').find_map(|kv| kv.trim().strip_prefix("cpe=")).map(str::to_string)
}

/// An ACS whose `script` decides each session from its Inform; GETs are served [`FILE`].
pub(crate) fn scripted(
    script: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
) -> impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static {
    let queues: Mutex<HashMap<String, VecDeque<Vec<u8>>>> = Mutex::default();
    let counts: Mutex<HashMap<String, usize>> = Mutex::default();
    move |req, _| {
        if req.method == "GET" {
            return RawReply::Send(http("200 OK", &[("Content-Type", "application/octet-stream")], FILE));
        }
        let body = req.body_str();
        if body.contains("<cwmp:Inform>") {
            let serial = texts(&body, "SerialNumber").pop().unwrap_or_default();
            let n = {
                let mut c = counts.lock().unwrap();
                let e = c.entry(serial.clone()).or_default();
                *e += 1;
                *e - 1
            };
            let seen = Seen {
                serial,
                host: req.header("host").unwrap_or_default().to_string(),
                n,
                events: texts(&body, "EventCode"),
                body: body.to_string(),
            };
            let a = script(&seen);
            queues.lock().unwrap().insert(seen.serial.clone(), a.then.into());
            return a.inform;
        }
        if body.contains("<cwmp:TransferComplete>") {
            return RawReply::Send(rpc("tc", "<cwmp:TransferCompleteResponse></cwmp:TransferCompleteResponse>"));
        }
        let next = cookie_serial(req).and_then(|s| queues.lock().unwrap().get_mut(&s).and_then(VecDeque::pop_front));
        RawReply::Send(next.unwrap_or_else(|| status("204 No Content")))
    }
}

/// A RawAcs on a runtime of its own (the engine runs on plain threads).
pub(crate) struct Acs {
    pub(crate) raw: RawAcs,
    _rt: tokio::runtime::Runtime,
}

impl Acs {
    pub(crate) fn start(handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static) -> Acs {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let raw = rt.block_on(RawAcs::start(handler));
        Acs { raw, _rt: rt }
    }

    pub(crate) fn url(&self) -> String {
        self.raw.url("/acs")
    }

    /// (serial, event codes) of every Inform, in arrival order.
    pub(crate) fn informs(&self) -> Vec<(String, Vec<String>)> {
        informs(&self.raw)
    }

    /// The event codes of each Inform of `serial`.
    pub(crate) fn informs_of(&self, serial: &str) -> Vec<Vec<String>> {
        self.informs().into_iter().filter(|(s, _)| s == serial).map(|(_, e)| e).collect()
    }

    pub(crate) fn gets(&self) -> usize {
        self.raw.requests().iter().filter(|r| r.method == "GET").count()
    }
}

/// (serial, event codes) of every Inform `raw` saw, in arrival order.
pub(crate) fn informs(raw: &RawAcs) -> Vec<(String, Vec<String>)> {
    raw.requests()
        .iter()
        .map(|r| r.body_str())
        .filter(|b| b.contains("<cwmp:Inform>"))
        .map(|b| (texts(&b, "SerialNumber").pop().unwrap_or_default(), texts(&b, "EventCode")))
        .collect()
}

pub(crate) fn serial(index: u32) -> String {
    format!("FEFEFE{index:06X}")
}

/// A daemon plan for `cpes` CPEs of the TR-181 example (no periodic informs: the profile has
/// them off), on `clock` when given.
pub(crate) fn plan(url: String, cpes: u32, clock: Option<Clock>) -> Plan {
    plan_for(Arc::new(profile(TR181)), url, cpes, clock)
}

pub(crate) fn plan_for(model: Arc<Model>, url: String, cpes: u32, clock: Option<Clock>) -> Plan {
    let mut p = Plan::new(model, url, test_transport(), cpes);
    p.mode = Mode::Daemon;
    p.report_every = Duration::from_millis(50);
    p.drain_timeout = Duration::from_secs(2);
    p.verbose = cpes == 1;
    if let Some(c) = clock {
        p.clock = c;
    }
    p
}

pub(crate) fn manual() -> (Clock, Arc<ManualClock>) {
    Clock::manual(T0)
}

/// The engine running on a thread of its own.
pub(crate) struct Running {
    done: mpsc::Receiver<anyhow::Result<FleetOutcome>>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Recorder>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test leaves no engine behind.
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub(crate) fn start(plan: Plan, duration: Option<Duration>, owners: Vec<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(Recorder::new()));
    let out =
        Outputs { progress_every: Duration::from_millis(50), live: Some(live.clone()), stop: Some(stop.clone()), ..Outputs::default() };
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(engine::run(plan, duration, &out, owners));
    });
    Running { done, stop, live }
}

impl Running {
    /// Waits (real time, bounded) until the running totals satisfy `cond`. The totals are those
    /// the shards reported, and a shard reports a session only after handing its end to the
    /// CPE's agenda, so the CPE is idle again (or re-queued) when this returns.
    pub(crate) fn wait_for(&self, what: &str, cond: impl Fn(&Recorder) -> bool) {
        let end = Instant::now() + Duration::from_secs(15);
        while !cond(&self.live.lock().unwrap()) {
            if Instant::now() >= end {
                let r = self.live.lock().unwrap();
                let o = &r.outcomes;
                panic!(
                    "timed out waiting for {what} ({} sessions completed, {} failed, last failure {:?})",
                    o.completed,
                    o.failed_sessions(),
                    o.last_failure
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the run to end by itself, at most `bound`.
    pub(crate) fn wait(self, bound: Duration) -> FleetOutcome {
        match self.done.recv_timeout(bound) {
            Ok(r) => r.expect("the run ends without an error"),
            Err(e) => panic!("the run did not end within {bound:?} ({e:?})"),
        }
    }

    /// Stops the run and returns its outcome.
    pub(crate) fn finish(self) -> FleetOutcome {
        self.stop.store(true, Ordering::SeqCst);
        self.wait(Duration::from_secs(20))
    }
}

/// Waits (real time, bounded) until `cond`.
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Real time for something that must not happen to show up.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// 1. Stopping while sessions are open.

/// CPE 0 is told to Reboot; CPE 1's Inform is never answered; the run is stopped by the end of
/// its duration or (`by_signal`) as SIGTERM does, once CPE 0 rebooted.
fn a_stop_with_sessions_open(by_signal: bool) {
    let acs = Acs::start(scripted(|s| match (s.serial.as_str(), s.n) {
        ("FEFEFE000001", _) => Answer { inform: RawReply::Delayed(Duration::from_secs(120), inform_ok(s)), then: vec![] },
        (_, 0) => ok(s, vec![rpc("r1", "<cwmp:Reboot><CommandKey>stop-1</CommandKey></cwmp:Reboot>")]),
        _ => ok(s, vec![]),
    }));
    let mut p = plan(acs.url(), 2, None);
    p.transport.timeout = Duration::from_secs(60);
    p.drain_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let outcome = if by_signal {
        let run = start(p, None, vec![]);
        eventually("CPE 0's Inform after its reboot", || acs.informs_of(&serial(0)).len() >= 2);
        run.finish()
    } else {
        start(p, Some(Duration::from_secs(2)), vec![]).wait(Duration::from_secs(15))
    };
    assert!(started.elapsed() < Duration::from_secs(15));
    let o = &outcome.total.outcomes;
    assert_eq!(o.interrupted, 1, "CPE 1's open session was cut at the end of the drain");
    assert!(outcome.complete(), "{:?}", outcome.panics);
    assert_eq!(outcome.json["sessions"]["completed"].as_u64(), Some(o.completed), "a report: {}", outcome.json);
    let a = acs.informs_of(&serial(0));
    assert!(a[0].contains(&"0 BOOTSTRAP".to_string()), "{a:?}");
    assert!(a.iter().any(|e| e.contains(&"M Reboot".to_string())), "CPE 0 rebooted and informed: {a:?}");
}

#[test]
fn a_stop_at_the_end_of_the_duration_with_sessions_open_drains_and_reports() {
    a_stop_with_sessions_open(false);
}

#[test]
fn a_stop_request_with_sessions_open_drains_and_reports() {
    a_stop_with_sessions_open(true);
}

// ---------------------------------------------------------------------------------------------
// 2. Deferred work at its own time.

fn schedule_inform_comes_at_its_time(cpes: u32) {
    let acs = Acs::start(scripted(|s| match s.n {
        0 => ok(
            s,
            vec![rpc("si", "<cwmp:ScheduleInform><DelaySeconds>3600</DelaySeconds><CommandKey>later</CommandKey></cwmp:ScheduleInform>")],
        ),
        _ => ok(s, vec![]),
    }));
    let (clock, hand) = manual();
    let mut p = plan(acs.url(), cpes, Some(clock));
    p.periodic = PeriodicPlan { multiplier: 1.0, interval: Some(Duration::from_secs(60)) };
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    let n = cpes as u64;
    run.wait_for("the bootstraps", |r| r.outcomes.completed >= n);
    // One period on: a periodic Inform from every CPE, carrying nothing deferred.
    hand.advance(Duration::from_secs(60));
    run.wait_for("the periodic sessions", |r| r.outcomes.completed >= 2 * n);
    for i in 0..cpes {
        let informs = acs.informs_of(&serial(i));
        assert_eq!(informs.len(), 2, "{informs:?}");
        assert_eq!(informs[1], ["2 PERIODIC"], "CPE {i}: the ScheduleInform rides on no periodic Inform");
    }
    // At 3600 s: `3 SCHEDULED` + `M ScheduleInform` (with the periodic Inform due then too).
    hand.advance(Duration::from_secs(3540));
    run.wait_for("the scheduled sessions", |r| r.outcomes.completed >= 3 * n);
    for i in 0..cpes {
        let informs = acs.informs_of(&serial(i));
        assert_eq!(informs.len(), 3, "{informs:?}");
        for code in ["3 SCHEDULED", "M ScheduleInform"] {
            assert!(informs[2].contains(&code.to_string()), "CPE {i}: {code} at 3600 s: {informs:?}");
        }
    }
    // An hour later: periodic informs only, the ScheduleInform happened once.
    hand.advance(Duration::from_secs(3600));
    run.wait_for("the next periodic sessions", |r| r.outcomes.completed >= 4 * n);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    for i in 0..cpes {
        let informs = acs.informs_of(&serial(i));
        assert_eq!(informs.len(), 4, "{informs:?}");
        assert_eq!(informs[3], ["2 PERIODIC"]);
        assert_eq!(informs.iter().filter(|e| e.contains(&"3 SCHEDULED".to_string())).count(), 1, "{informs:?}");
    }
}

#[test]
fn a_schedule_inform_comes_at_its_time_for_one_cpe() {
    schedule_inform_comes_at_its_time(1);
}

#[test]
fn a_schedule_inform_comes_at_its_time_in_a_fleet() {
    schedule_inform_comes_at_its_time(3);
}

fn delayed_download_is_fetched_at_its_time(cpes: u32) {
    let acs = Acs::start(scripted(|s| {
        match s.n {
        0 => ok(
            s,
            vec![rpc(
                "dl",
                &format!(
                    "<cwmp:Download><CommandKey>dl-1</CommandKey><FileType>3 Vendor Configuration File</FileType><URL>http://{}/cfg.bin</URL><Username></Username><Password></Password><FileSize>{}</FileSize><TargetFileName></TargetFileName><DelaySeconds>120</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL></cwmp:Download>",
                    s.host,
                    FILE.len()
                ),
            )],
        ),
        _ => ok(s, vec![]),
    }
    }));
    let (clock, hand) = manual();
    let mut p = plan(acs.url(), cpes, Some(clock));
    p.periodic = PeriodicPlan { multiplier: 1.0, interval: Some(Duration::from_secs(60)) };
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    let n = cpes as u64;
    run.wait_for("the bootstraps", |r| r.outcomes.completed >= n);
    hand.advance(Duration::from_secs(60));
    run.wait_for("the periodic sessions", |r| r.outcomes.completed >= 2 * n);
    assert_eq!(acs.gets(), 0, "the file is not fetched before 120 s");
    for i in 0..cpes {
        assert_eq!(acs.informs_of(&serial(i))[1], ["2 PERIODIC"]);
    }
    // A millisecond before it is due: still nothing.
    hand.advance(Duration::from_millis(59_999));
    std::thread::sleep(GRACE);
    assert_eq!(acs.gets(), 0, "the file is not fetched before 120 s");
    // Due: fetched once per CPE, then reported.
    hand.advance(Duration::from_millis(1));
    eventually("the downloads", || acs.gets() == cpes as usize);
    eventually("the TransferComplete informs", || {
        (0..cpes).all(|i| acs.informs_of(&serial(i)).iter().any(|e| e.contains(&"7 TRANSFER COMPLETE".to_string())))
    });
    // Later periods fetch nothing again.
    hand.advance(Duration::from_secs(300));
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    assert_eq!(acs.gets(), cpes as usize, "each file fetched exactly once");
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    for i in 0..cpes {
        let informs = acs.informs_of(&serial(i));
        assert_eq!(informs.iter().filter(|e| e.contains(&"M Download".to_string())).count(), 1, "{informs:?}");
    }
}

#[test]
fn a_delayed_download_is_fetched_at_its_time_for_one_cpe() {
    delayed_download_is_fetched_at_its_time(1);
}

#[test]
fn a_delayed_download_is_fetched_at_its_time_in_a_fleet() {
    delayed_download_is_fetched_at_its_time(3);
}

// ---------------------------------------------------------------------------------------------
// 3. Retry timers.

fn no_empty_inform_after_a_failure_past_the_inform_response(cpes: u32) {
    // Every session fails after its InformResponse: the events were delivered, nothing is owed.
    let acs = Acs::start(scripted(|s| ok(s, vec![status("500 Internal Server Error")])));
    let (clock, hand) = manual();
    let run = start(plan(acs.url(), cpes, Some(clock)), Some(Duration::from_secs(60)), vec![]);
    run.wait_for("the failed bootstraps", |r| r.outcomes.failed_sessions() >= cpes as u64);
    // Past every back-off the TR-069 defaults give (5 s · 2^(n-1) .. 5 s · 2^n, n ≤ 10).
    for s in [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 5120] {
        hand.advance(Duration::from_secs(s));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    let informs = acs.informs();
    for (serial, events) in &informs {
        assert!(!events.is_empty(), "{serial} sent an Inform with an empty Event array: {informs:?}");
    }
    assert_eq!(informs.len(), cpes as usize, "nothing was owed after the failures: no retry: {informs:?}");
    assert!(outcome.complete());
}

#[test]
fn a_failure_after_the_inform_response_is_not_followed_by_an_empty_inform() {
    no_empty_inform_after_a_failure_past_the_inform_response(1);
}

#[test]
fn a_failure_after_the_inform_response_is_not_followed_by_an_empty_inform_in_a_fleet() {
    no_empty_inform_after_a_failure_past_the_inform_response(3);
}

#[test]
fn a_connection_request_during_a_back_off_starts_a_session_now() {
    // The first Inform fails (the back-off starts); later ones are answered.
    let acs = Acs::start(scripted(|s| match s.n {
        0 => Answer { inform: RawReply::Send(status("500 Internal Server Error")), then: vec![] },
        _ => ok(s, vec![]),
    }));
    let (clock, _hand) = manual();
    let (owners, receivers) = Owners::channels(0, 1, 1);
    let run = start(plan(acs.url(), 1, Some(clock)), Some(Duration::from_secs(60)), receivers);
    run.wait_for("the failed bootstrap", |r| r.outcomes.failed_sessions() >= 1);
    // The clock stands still: the back-off (5..10 s) never ends; the wake-up must not wait for it.
    owners.owner(0).unwrap().send(CpeMsg::Wake { index: 0 }).unwrap();
    eventually("an Inform with 6 CONNECTION REQUEST", || {
        acs.informs_of(&serial(0)).iter().any(|e| e.contains(&"6 CONNECTION REQUEST".to_string()))
    });
    let informs = acs.informs_of(&serial(0));
    assert_eq!(informs.len(), 2, "{informs:?}");
    assert!(informs[1].contains(&"0 BOOTSTRAP".to_string()), "the undelivered events ride along: {informs:?}");
    run.wait_for("the woken session", |r| r.outcomes.completed >= 1);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.completed, 1);
}

#[test]
fn a_connection_request_during_a_back_off_starts_a_session_now_in_a_fleet() {
    use cpe_sim::connreq::{CrConfig, CrServer};
    use cpe_sim::model::{ConnRequestAuth, Delta};

    // Every CPE's first Inform fails; CPE 2 (of 3, on 2 shards) gets a real Connection Request.
    let acs = Acs::start(scripted(|s| match s.n {
        0 => Answer { inform: RawReply::Send(status("500 Internal Server Error")), then: vec![] },
        _ => ok(s, vec![]),
    }));
    let (clock, _hand) = manual();
    let mut p = plan(acs.url(), 3, Some(clock));
    p.shards = 2;
    let model = p.model.clone();
    let (owners, receivers) = Owners::channels(0, 3, 2);
    let cfg = CrConfig::new("127.0.0.1:0".parse().unwrap(), ConnRequestAuth::Digest, false, 1000);
    let server = acs._rt.block_on(CrServer::start(cfg, owners)).unwrap();
    let run = start(p, Some(Duration::from_secs(60)), receivers);
    run.wait_for("the failed bootstraps", |r| r.outcomes.failed_sessions() >= 3);
    let (user, pass) = model.connection_request_credentials(DeviceId(2), &Delta::default());
    let status = acs._rt.block_on(crate::connreq::connection_request(server.addr, "/cr/cpe-2", &user, &pass));
    assert_eq!(status, 200);
    eventually("an Inform with 6 CONNECTION REQUEST from CPE 2", || {
        acs.informs_of(&serial(2)).iter().any(|e| e.contains(&"6 CONNECTION REQUEST".to_string()))
    });
    run.wait_for("the woken session", |r| r.outcomes.completed >= 1);
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    acs._rt.block_on(server.stop());
    assert_eq!(outcome.total.outcomes.completed, 1);
    for i in [0, 1] {
        assert_eq!(acs.informs_of(&serial(i)).len(), 1, "CPE {i} waits out its back-off");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Durations from outside saturate.

/// Answers every Inform 503 with `Retry-After: retry_after`.
fn busy(retry_after: &'static str) -> impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static {
    move |req, _| {
        if req.body_str().contains("<cwmp:Inform>") {
            RawReply::Send(http("503 Service Unavailable", &[("Retry-After", retry_after)], b""))
        } else {
            RawReply::Send(status("204 No Content"))
        }
    }
}

fn busy_acs(retry_after: &'static str) -> Acs {
    Acs::start(busy(retry_after))
}

#[tokio::test]
async fn a_huge_retry_after_neither_panics_nor_retries_one_cpe() {
    let acs = RawAcs::start(busy("99999999999999")).await;
    let one = OneCpe::new(profile(TR181), acs.url("/acs"), test_transport()).daemon(Duration::from_secs(2));
    let (report, cpe) = one.run().await;
    assert_eq!((report.completed, report.failed), (0, 1), "{:?}", report.last_error);
    assert_eq!(cpe.retry_count, 1);
    assert_eq!(informs(&acs).len(), 1);
}

/// A single CPE on the manual clock against an ACS that answers every Inform 503 with
/// `retry_after`: a year of virtual time brings no second Inform.
fn no_retry_for_a_year(retry_after: &'static str) {
    let acs = busy_acs(retry_after);
    let (clock, hand) = manual();
    let run = start(plan(acs.url(), 1, Some(clock)), Some(Duration::from_secs(60)), vec![]);
    run.wait_for("the failed bootstrap", |r| r.outcomes.failed_sessions() >= 1);
    for _ in 0..12 {
        hand.advance(Duration::from_secs(30 * 86_400));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    assert!(outcome.complete(), "{:?}", outcome.panics);
    assert_eq!(acs.informs().len(), 1, "the ACS asked for quiet: {:?}", acs.informs());
}

#[test]
fn a_huge_retry_after_in_seconds_is_honoured_in_virtual_time() {
    no_retry_for_a_year("99999999999999");
}

#[test]
fn a_retry_after_http_date_far_ahead_is_honoured() {
    no_retry_for_a_year("Fri, 31 Dec 9999 23:59:59 GMT");
}

#[test]
fn a_huge_retry_after_does_not_hammer_from_a_fleet() {
    let acs = busy_acs("99999999999999");
    let outcome = start(plan(acs.url(), 50, None), Some(Duration::from_secs(2)), vec![]).wait(Duration::from_secs(20));
    assert!(outcome.complete(), "{:?}", outcome.panics);
    assert_eq!(acs.informs().len(), 50, "one Inform per CPE, then quiet");
    assert_eq!(outcome.total.outcomes.failed_sessions(), 50);
}

#[tokio::test]
async fn a_back_off_at_its_legal_maximum_does_not_panic() {
    let acs = RawAcs::start(|_, _| RawReply::Send(status("500 Internal Server Error"))).await;
    // The example profile caps both at 65535 for the ACS; a store resumed under a profile
    // without the cap (or edited by hand) can hold any unsignedInt.
    let dir = scratch_dir("retry-max");
    let yaml = std::fs::read_to_string(crate::support::repo(TR181).join("profile.yaml")).unwrap();
    let uncapped = yaml.replace(
        "CWMPRetryMinimumWaitInterval: {type: unsignedInt, value: 5, writable: true, min: 1, max: 65535}",
        "CWMPRetryMinimumWaitInterval: {type: unsignedInt, value: 5, writable: true, min: 1}",
    );
    assert_ne!(yaml, uncapped, "the profile line changed: update this test");
    std::fs::write(dir.join("profile.yaml"), uncapped).unwrap();
    let model = cpe_sim::config::load_profile(&dir).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let now = UnixMillis::now();
    let mut cpe = CpeState::new(DeviceId(0), now);
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.CWMPRetryMinimumWaitInterval", "4294967295").unwrap();
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.CWMPRetryIntervalMultiplier", "65535").unwrap();
    cpe.retry_count = 30;
    let mut one = OneCpe::new(model, acs.url("/acs"), test_transport()).daemon(Duration::from_secs(2));
    one.initial = Some(cpe);
    let (report, cpe) = one.run().await;
    assert_eq!(report.failed, 1, "{:?}", report.last_error);
    assert_eq!(cpe.retry_count, 31);
    assert_eq!(informs(&acs).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 5. A panicking shard fails the run.

#[derive(Debug)]
struct Explodes;

impl CpeHooks for Explodes {
    fn on_request(&self, _device: &Device<'_>, method: &str) -> Option<HookFault> {
        if method == "GetParameterValues" {
            panic!("the hook exploded on {method}");
        }
        None
    }
}

#[test]
fn a_panicking_shard_fails_the_run_and_is_named() {
    // Only CPE 1 (shard 1 of 2) is asked anything.
    let acs = Acs::start(scripted(|s| {
        match s.serial.as_str() {
        "FEFEFE000001" => ok(
            s,
            vec![rpc("gpv", "<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>Device.DeviceInfo.SerialNumber</string></ParameterNames></cwmp:GetParameterValues>")],
        ),
        _ => ok(s, vec![]),
    }
    }));
    let model = Arc::new(profile(TR181).with_hooks(Arc::new(Explodes)).unwrap());
    let mut p = plan_for(model, acs.url(), 4, None);
    p.shards = 2;
    p.mode = Mode::OneShot;
    let outcome = start(p, Some(Duration::from_secs(30)), vec![]).wait(Duration::from_secs(20));
    assert!(!outcome.complete());
    assert_eq!(outcome.panics.len(), 1, "{:?}", outcome.panics);
    assert!(outcome.panics[0].contains("shard 1"), "{:?}", outcome.panics);
    assert!(outcome.panics[0].contains("the hook exploded on GetParameterValues"), "{:?}", outcome.panics);
    assert_eq!(outcome.json["complete"], serde_json::json!(false), "{}", outcome.json);
}

// ---------------------------------------------------------------------------------------------
// 6. An ACS URL change, then a failure.

fn a_moved_acs_gets_the_bootstrap_after_a_failure(cpes: u32) {
    let acs2 = Acs::start(scripted(|s| ok(s, vec![])));
    let new_url = acs2.url();
    let acs1 = Acs::start(scripted(move |s| match s.n {
        0 => ok(s, vec![spv("Device.ManagementServer.URL", &new_url), status("500 Internal Server Error")]),
        _ => ok(s, vec![]),
    }));
    let (clock, hand) = manual();
    let run = start(plan(acs1.url(), cpes, Some(clock)), Some(Duration::from_secs(60)), vec![]);
    run.wait_for("the failed bootstraps", |r| r.outcomes.failed_sessions() >= cpes as u64);
    // Past the first back-off (5..10 s).
    hand.advance(Duration::from_secs(30));
    eventually("a BOOTSTRAP Inform from every CPE at the new ACS", || {
        (0..cpes).all(|i| acs2.informs_of(&serial(i)).iter().any(|e| e.contains(&"0 BOOTSTRAP".to_string())))
    });
    let outcome = run.finish();
    assert!(outcome.complete());
    assert_eq!(acs1.informs().len(), cpes as usize, "the old ACS saw only the first sessions: {:?}", acs1.informs());
}

#[test]
fn a_moved_acs_gets_the_bootstrap_after_a_failure_for_one_cpe() {
    a_moved_acs_gets_the_bootstrap_after_a_failure(1);
}

#[test]
fn a_moved_acs_gets_the_bootstrap_after_a_failure_in_a_fleet() {
    a_moved_acs_gets_the_bootstrap_after_a_failure(3);
}

// ---------------------------------------------------------------------------------------------
// 7. One-shot runs end by themselves.

#[test]
fn a_resumed_one_shot_cpe_with_periodic_informs_ends_by_itself() {
    let acs = Acs::start(scripted(|s| ok(s, vec![])));
    let model = profile(TR181);
    let now = UnixMillis::now();
    let mut cpe = CpeState::new(DeviceId(0), now);
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.PeriodicInformEnable", "true").unwrap();
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.PeriodicInformInterval", "60").unwrap();
    let mut p = plan(acs.url(), 1, None);
    p.mode = Mode::OneShot;
    p.state = Some(cpe_sim::persist::Resume { saved: Mutex::new([(0, cpe)].into()), sink: None });
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(15));
    assert_eq!(outcome.total.outcomes.completed, 1, "{:?}", outcome.total.outcomes.last_failure);
    assert_eq!(acs.informs().len(), 1);
}

#[test]
fn a_one_shot_cpe_whose_acs_enables_periodic_informs_ends_by_itself() {
    let acs = Acs::start(scripted(|s| match s.n {
        0 => ok(
            s,
            vec![spv("Device.ManagementServer.PeriodicInformEnable", "true"), spv("Device.ManagementServer.PeriodicInformInterval", "60")],
        ),
        _ => ok(s, vec![]),
    }));
    let mut p = plan(acs.url(), 1, None);
    p.mode = Mode::OneShot;
    p.return_states = true;
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(15));
    assert_eq!(outcome.total.outcomes.completed, 1, "{:?}", outcome.total.outcomes.last_failure);
    assert_eq!(acs.informs().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 8. A single CPE through the binary honours the run's outputs.

fn cpe_sim(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cpe-sim")).args(args).current_dir(crate::support::repo(".")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-engine-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_single_cpe_writes_its_report_json() {
    let dir = scratch_dir("json");
    let json = dir.join("r.json");
    let (code, _, err) = cpe_sim(&["--report-json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("the report file")).unwrap();
    assert_eq!(report["sessions"]["completed"].as_u64(), Some(1), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_single_cpe_checks_its_thresholds() {
    let (code, _, err) = cpe_sim(&["--threshold", "sessions.completed<0"]);
    assert_eq!(code, 99, "{err}");
    let (code, _, err) = cpe_sim(&["--threshold", "garbage"]);
    assert_eq!(code, 2, "a rule that does not parse is a usage error: {err}");
}

#[test]
fn a_single_cpe_writes_its_hdr_log() {
    let dir = scratch_dir("hdr");
    let log = dir.join("r.hlog");
    let (code, _, err) = cpe_sim(&["--hdr-log", log.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&log).expect("the interval log");
    assert!(!text.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// 9. ManagementServer.URL: the URL in use reads back, writing it again changes nothing, a new
//    one is followed with a BOOTSTRAP (and survives a restart: tests/persist.rs).

pub(crate) const URL: &str = "Device.ManagementServer.URL";

/// One file of the shared case `same-url` (../shared/cwmp/cases/same-url/).
fn same_url_case(name: &str) -> String {
    std::fs::read_to_string(crate::support::repo(&format!("tests/fixtures/same-url/{name}"))).unwrap()
}

fn xml(body: String) -> Vec<u8> {
    http("200 OK", &[("Content-Type", "text/xml")], body.as_bytes())
}

/// The shared case's lab ACS: in every session after a BOOTSTRAP or BOOT it reads
/// ManagementServer.URL (`gpv-url.xml`), then writes back the URL its CPEs inform, with periodic
/// informs every 60 s (`spv-same-url.xml`).
pub(crate) fn lab_acs(s: &Seen) -> Answer {
    if s.events.iter().any(|e| e == "0 BOOTSTRAP" || e == "1 BOOT") {
        let same = same_url_case("spv-same-url.xml").replace("{SAMEURL}", &format!("http://{}/acs", s.host));
        ok(s, vec![xml(same_url_case("gpv-url.xml")), xml(same)])
    } else {
        ok(s, vec![])
    }
}

/// The URLs the CPEs read back in their GetParameterValuesResponses to `raw`.
pub(crate) fn urls_read_back(raw: &RawAcs) -> Vec<String> {
    raw.requests()
        .iter()
        .map(|r| r.body_str())
        .filter(|b| b.contains("GetParameterValuesResponse"))
        .map(|b| crate::support::value_of(&b, URL).unwrap_or_else(|| panic!("no {URL} in {b}")))
        .collect()
}

/// The Status of every SetParameterValuesResponse `raw` received.
fn spv_statuses(raw: &RawAcs) -> Vec<String> {
    raw.requests()
        .iter()
        .map(|r| r.body_str())
        .filter(|b| b.contains("SetParameterValuesResponse"))
        .flat_map(|b| texts(&b, "Status"))
        .collect()
}

/// Bootstrap, gpv-url, spv-same-url: the CPEs read back the URL they inform, and writing it
/// again owes nothing: the next session is the periodic one, without `0 BOOTSTRAP`.
fn writing_the_url_in_use_changes_nothing(cpes: u32) {
    let acs = Acs::start(scripted(lab_acs));
    let (clock, hand) = manual();
    let mut p = plan(acs.url(), cpes, Some(clock));
    p.shards = cpes.min(2) as u16;
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    let n = cpes as u64;
    run.wait_for("the bootstraps", |r| r.outcomes.completed >= n);
    std::thread::sleep(GRACE);
    for i in 0..cpes {
        assert_eq!(acs.informs_of(&serial(i)).len(), 1, "CPE {i}: no session owed after the same URL: {:?}", acs.informs_of(&serial(i)));
    }
    hand.advance(Duration::from_secs(60));
    run.wait_for("the periodic sessions", |r| r.outcomes.completed >= 2 * n);
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    assert_eq!(urls_read_back(&acs.raw), vec![acs.url(); cpes as usize], "the URL in use, not the profile's placeholder");
    assert_eq!(spv_statuses(&acs.raw), vec!["0".to_string(); cpes as usize]);
    for i in 0..cpes {
        let informs = acs.informs_of(&serial(i));
        assert_eq!(informs.len(), 2, "CPE {i}: {informs:?}");
        assert!(informs[0].contains(&"0 BOOTSTRAP".to_string()), "{informs:?}");
        assert_eq!(informs[1], ["2 PERIODIC"], "CPE {i}: the same URL owes no BOOTSTRAP");
    }
}

#[test]
fn writing_the_url_in_use_changes_nothing_in_a_fleet() {
    writing_the_url_in_use_changes_nothing(3);
}

/// The same, for one CPE on [`OneCpe`] (the binary's single-CPE path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_the_url_in_use_changes_nothing_for_one_cpe() {
    let acs = RawAcs::start(scripted(lab_acs)).await;
    let url = acs.url("/acs");
    let (clock, hand) = manual();
    let mut cpe = OneCpe::new(profile(TR181), url.clone(), test_transport()).daemon(Duration::from_secs(60));
    cpe.clock = Some(clock);
    let stop = StopOnDrop(cpe.stop.clone());
    let running = tokio::spawn(cpe.run());
    wait_async("the bootstrap session's SetParameterValues", || !spv_statuses(&acs).is_empty()).await;
    tokio::time::sleep(GRACE).await;
    assert_eq!(informs(&acs).len(), 1, "no session owed after the same URL: {:?}", informs(&acs));
    hand.advance(Duration::from_secs(60));
    wait_async("the periodic session", || informs(&acs).len() >= 2).await;
    tokio::time::sleep(GRACE).await;
    stop.0.store(true, Ordering::SeqCst);
    let (report, cpe) = running.await.unwrap();
    assert_eq!(report.failed, 0, "{:?}", report.last_error);
    assert_eq!(urls_read_back(&acs), std::slice::from_ref(&url));
    assert_eq!(spv_statuses(&acs), ["0"]);
    let seen: Vec<Vec<String>> = informs(&acs).into_iter().map(|(_, e)| e).collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1], ["2 PERIODIC"], "the same URL owes no BOOTSTRAP: {seen:?}");
    let model = profile(TR181);
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, cpe.boot_at);
    assert_eq!(model.own_acs_url(&cpe.delta), None, "the URL in use is not stored as the CPE's own");
    assert_eq!(dev.get("Device.ManagementServer.PeriodicInformInterval").as_deref(), Some("60"), "the rest of the SPV applied");
}

/// Stops a run when dropped (a failed assertion leaves no engine running).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn wait_async(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ACS moves its CPEs; each informs the new ACS once with `0 BOOTSTRAP`, reads back the new
/// URL there, and the new ACS writing its own URL again starts no more BOOTSTRAPs.
fn a_moved_cpe_bootstraps_once_at_its_new_acs(cpes: u32) {
    let acs2 = Acs::start(scripted(lab_acs));
    let new_url = acs2.url();
    let acs1 = Acs::start(scripted(move |s| match s.n {
        0 => ok(s, vec![spv(URL, &new_url)]),
        _ => ok(s, vec![]),
    }));
    let (clock, hand) = manual();
    let mut p = plan(acs1.url(), cpes, Some(clock));
    p.shards = cpes.min(2) as u16;
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    let n = cpes as u64;
    run.wait_for("the sessions at the first ACS", |r| r.outcomes.completed >= n);
    // The follow-up to the new ACS comes a moment after the session that moved the CPE.
    hand.advance(Duration::from_millis(cpe_sim::cpe::agenda::FOLLOW_UP_GAP_MS));
    run.wait_for("the sessions at both ACSes", |r| r.outcomes.completed >= 2 * n);
    std::thread::sleep(GRACE);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    assert_eq!(urls_read_back(&acs2.raw), vec![acs2.url(); cpes as usize]);
    for i in 0..cpes {
        assert_eq!(acs1.informs_of(&serial(i)).len(), 1, "CPE {i}");
        let at_new = acs2.informs_of(&serial(i));
        assert_eq!(at_new.len(), 1, "CPE {i}: one BOOTSTRAP at the new ACS, no storm: {at_new:?}");
        assert!(at_new[0].contains(&"0 BOOTSTRAP".to_string()), "{at_new:?}");
    }
}

#[test]
fn a_moved_cpe_bootstraps_once_at_its_new_acs_for_one_cpe() {
    a_moved_cpe_bootstraps_once_at_its_new_acs(1);
}

#[test]
fn a_moved_cpe_bootstraps_once_at_its_new_acs_in_a_fleet() {
    a_moved_cpe_bootstraps_once_at_its_new_acs(3);
}

/// The binary reads back its `--acs-url` (run.rs publishes it before the listeners start).
#[test]
fn the_binary_reads_back_its_acs_url() {
    let acs = Acs::start(scripted(|s| {
        ok(s, vec![rpc("gpv", &format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>{URL}</string></ParameterNames></cwmp:GetParameterValues>"))])
    }));
    let (code, _, err) = cpe_sim(&["--acs-url", &acs.url()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(urls_read_back(&acs.raw), [acs.url()]);
}

// ---------------------------------------------------------------------------------------------
// 10. ACS credentials per CPE: ManagementServer.Username/Password (profile templates), the run's
//     --acs-username/--acs-password for every CPE, an ACS's SPV of them from the next session.

/// An ACS that wants HTTP Basic on every POST (any credentials), then answers as `handler`.
fn wants_basic(
    handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static,
) -> impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static {
    move |req, n| {
        if req.method == "POST" && req.header("authorization").is_none() {
            return RawReply::Send(http("401 Unauthorized", &[("WWW-Authenticate", "Basic realm=\"acs\"")], b""));
        }
        handler(req, n)
    }
}

/// (serial, Inform event codes or empty for a later POST, `user:password`) of every POST that
/// carried credentials.
fn credentials_seen(raw: &RawAcs) -> Vec<(String, Vec<String>, String)> {
    use base64::Engine;
    raw.requests()
        .iter()
        .filter_map(|r| {
            let basic = r.header("authorization")?.strip_prefix("Basic ")?;
            let pair = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).unwrap()).unwrap();
            let body = r.body_str();
            let (serial, events) = match body.contains("<cwmp:Inform>") {
                true => (texts(&body, "SerialNumber").pop().unwrap_or_default(), texts(&body, "EventCode")),
                false => (cookie_serial(r).unwrap_or_default(), Vec::new()),
            };
            Some((serial, events, pair))
        })
        .collect()
}

/// The TR-181 example with a per-CPE Password template (its Username is `{oui}-{serial}`).
fn model_with_passwords() -> Arc<Model> {
    use cpe_sim::model::tree::ValueSource;
    let mut model = profile(TR181);
    let node = model.well_known.acs_password.unwrap();
    model.tree.set_default(node, ValueSource::Template(cpe_sim::model::Template::compile("pw-{serial}", 0).unwrap()));
    Arc::new(model)
}

/// Each CPE answers the challenge with its own profile credentials.
fn each_cpe_has_its_own_acs_credentials(cpes: u32) {
    let acs = Acs::start(wants_basic(scripted(|s| ok(s, vec![]))));
    let mut p = plan_for(model_with_passwords(), acs.url(), cpes, None);
    p.mode = Mode::OneShot;
    p.shards = cpes.min(2) as u16;
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(30));
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let seen = credentials_seen(&acs.raw);
    // The Inform (after the challenge) and the empty POST.
    assert_eq!(seen.len(), 2 * cpes as usize, "{seen:?}");
    for (serial, _, pair) in seen {
        assert_eq!(pair, format!("FEFEFE-{serial}:pw-{serial}"));
    }
}

#[test]
fn each_cpe_has_its_own_acs_credentials_for_one_cpe() {
    each_cpe_has_its_own_acs_credentials(1);
}

#[test]
fn each_cpe_has_its_own_acs_credentials_in_a_fleet() {
    each_cpe_has_its_own_acs_credentials(3);
}

const USERNAME: &str = "Device.ManagementServer.Username";

fn gpv_username() -> Vec<u8> {
    rpc("gpv", &format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>{USERNAME}</string></ParameterNames></cwmp:GetParameterValues>"))
}

/// The run's credentials (--acs-username/--acs-password) are every CPE's, and read back as its
/// Username; an ACS's SPV of a CPE's Username/Password applies from its next session: the rest
/// of the session that set them still uses the old ones.
fn run_credentials_then_the_acs_sets_new_ones(cpes: u32) {
    let acs = Acs::start(wants_basic(scripted(|s| {
        match s.n {
        0 => ok(
            s,
            vec![
                gpv_username(),
                rpc("spv", &format!("<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[2]\"><ParameterValueStruct><Name>{USERNAME}</Name><Value xsi:type=\"xsd:string\">new-{0}</Value></ParameterValueStruct><ParameterValueStruct><Name>Device.ManagementServer.Password</Name><Value xsi:type=\"xsd:string\">pw-{0}</Value></ParameterValueStruct></ParameterList><ParameterKey>creds</ParameterKey></cwmp:SetParameterValues>", s.serial)),
                gpv_username(),
            ],
        ),
        _ => ok(s, vec![gpv_username()]),
    }
    })));
    let (clock, hand) = manual();
    let mut p = plan_for(model_with_passwords(), acs.url(), cpes, Some(clock));
    p.shards = cpes.min(2) as u16;
    p.periodic = PeriodicPlan { multiplier: 1.0, interval: Some(Duration::from_secs(60)) };
    p.transport.credentials = Some(cpe_sim::transport::auth::Credentials { username: "run-user".into(), password: "run-pass".into() });
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    let n = cpes as u64;
    run.wait_for("the bootstraps", |r| r.outcomes.completed >= n);
    hand.advance(Duration::from_secs(60));
    run.wait_for("the periodic sessions", |r| r.outcomes.completed >= 2 * n);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let seen = credentials_seen(&acs.raw);
    for i in 0..cpes {
        let s = serial(i);
        let mine: Vec<_> = seen.iter().filter(|(serial, _, _)| *serial == s).collect();
        let second = mine.iter().position(|(_, e, _)| e == &["2 PERIODIC"]).unwrap_or_else(|| panic!("{mine:?}"));
        assert!(second >= 4, "the bootstrap session's Inform and three answers come first: {mine:?}");
        assert!(mine[..second].iter().all(|(_, _, p)| p == "run-user:run-pass"), "the session that set them: {mine:?}");
        assert!(mine[second..].iter().all(|(_, _, p)| *p == format!("new-{s}:pw-{s}")), "from the next session: {mine:?}");
    }
    // What the ACS read back: the run's Username, then the one it set.
    let users: Vec<String> = acs
        .raw
        .requests()
        .iter()
        .map(|r| r.body_str())
        .filter(|b| b.contains("GetParameterValuesResponse"))
        .map(|b| crate::support::value_of(&b, USERNAME).unwrap())
        .collect();
    assert_eq!(users.iter().filter(|u| *u == "run-user").count(), cpes as usize, "{users:?}");
    assert_eq!(users.iter().filter(|u| u.starts_with("new-")).count(), 2 * cpes as usize, "{users:?}");
}

#[test]
fn run_credentials_then_the_acs_sets_new_ones_for_one_cpe() {
    run_credentials_then_the_acs_sets_new_ones(1);
}

#[test]
fn run_credentials_then_the_acs_sets_new_ones_in_a_fleet() {
    run_credentials_then_the_acs_sets_new_ones(3);
}

/// The binary publishes --acs-username/--acs-password as every CPE's credentials.
#[test]
fn the_binary_answers_with_and_reads_back_its_acs_username() {
    let acs = Acs::start(wants_basic(scripted(|s| ok(s, vec![gpv_username()]))));
    let (code, _, err) = cpe_sim(&["--acs-url", &acs.url(), "--acs-username", "flag-user", "--acs-password", "flag-pass"]);
    assert_eq!(code, 0, "{err}");
    let seen = credentials_seen(&acs.raw);
    assert!(!seen.is_empty() && seen.iter().all(|(_, _, p)| p == "flag-user:flag-pass"), "{seen:?}");
    let body = acs.raw.requests().iter().map(|r| r.body_str()).find(|b| b.contains("GetParameterValuesResponse")).unwrap();
    assert_eq!(crate::support::value_of(&body, USERNAME).as_deref(), Some("flag-user"));
}

// ---------------------------------------------------------------------------------------------
// Accounting, far work in one-shot runs, outputs that fail after the start, credentials in URLs.

/// Each due timer is one lag sample and each started session one slot-wait sample: the lag is
/// the simulator's own, never the wait for a connection slot.
#[test]
fn lag_and_slot_wait_are_counted_once_each_and_the_cap_is_named() {
    let acs = Acs::start(|req, _| {
        // Each session holds its slot for 30 ms.
        RawReply::Delayed(Duration::from_millis(30), crate::support::raw::simple_acs(req))
    });
    let mut p = plan(acs.url(), 20, None);
    p.mode = Mode::OneShot;
    p.max_in_flight = 1;
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(60));
    let r = &outcome.total;
    assert_eq!(r.outcomes.completed, 20, "{:?}", r.outcomes.last_failure);
    assert_eq!(r.lag.len(), 20, "one lag sample per due timer");
    assert_eq!(r.slot_wait.len(), 20, "one slot-wait sample per session");
    assert!(r.slot_wait.value_at_quantile(0.99) > 100_000, "the 20th CPE waited for 19 sessions of the one slot");
    assert!(r.lag.value_at_quantile(0.5) < r.slot_wait.value_at_quantile(0.99), "lag does not include the slot wait");
    assert_eq!(outcome.json["limited_by"]["what"], "connections", "{}", outcome.json["limited_by"]);
}

/// A one-shot run does not wait years for work the ACS scheduled: it ends, saying so.
#[test]
fn a_one_shot_run_ends_when_the_acs_schedules_work_far_ahead() {
    for cpes in [1, 3] {
        let acs = Acs::start(scripted(|s| match s.n {
            0 => ok(
                s,
                vec![rpc(
                    "si",
                    "<cwmp:ScheduleInform><DelaySeconds>4294967295</DelaySeconds><CommandKey>far</CommandKey></cwmp:ScheduleInform>",
                )],
            ),
            _ => ok(s, vec![]),
        }));
        let mut p = plan(acs.url(), cpes, None);
        p.mode = Mode::OneShot;
        let outcome = start(p, None, vec![]).wait(Duration::from_secs(30));
        assert_eq!(outcome.total.outcomes.completed, cpes as u64, "{cpes} CPEs");
    }
}

/// An output that fails once the run has started loses that output, not the run: the report is
/// printed and the exit code is 1 (2 is for usage errors, before the first packet).
#[test]
fn an_output_file_that_fails_after_the_start_keeps_the_report_and_exits_1() {
    let acs = Acs::start(|req, _| RawReply::Send(crate::support::raw::simple_acs(req)));
    let url = acs.url();
    let (code, out, err) = cpe_sim(&["--acs-url", &url, "--cpes", "3", "--report-json", "/dev/full", "--progress-interval", "1h"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("cpe-sim report: 3 CPEs"), "the text report is still printed: {out}");
    assert!(err.contains("--report-json /dev/full"), "{err}");
}

/// Credentials in a URL's userinfo never reach a log line or an error message.
#[test]
fn credentials_in_the_acs_url_are_never_shown() {
    let (code, _, err) = cpe_sim(&["--acs-url", "http://user:s3cr3t-pw@127.0.0.1:1/acs", "--timeout", "2s", "--log-level", "debug"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("s3cr3t-pw"), "{err}");
    assert!(err.contains("<hidden>@127.0.0.1:1"), "{err}");
}

/// A sweep keeps the run's contracts: its listeners answer, `--report-json` is written, and a
/// sweep in which no session completes fails.
#[test]
fn a_sweep_step_with_nothing_timed_does_not_fall_short_on_a_latency_rule() {
    // Step 1 offers nothing (a 300 s interval at ×1 over 2 s): its Inform rule has no data, which
    // must not make that step fall short; the step at ×0.01 offers load and is timed.
    let dir = std::env::temp_dir().join(format!("cpe-sim-sweep-nodata-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = dir.join("sweep.json");
    let acs = Acs::start(|req, _| RawReply::Send(crate::support::raw::simple_acs(req)));
    let url = acs.url();
    let args = [
        "sweep",
        "--multipliers",
        "1,0.01",
        "--step-duration",
        "2s",
        "--cpes",
        "20",
        "--inform-interval",
        "300s",
        "--boot-spread",
        "200ms",
        "--progress-interval",
        "1h",
        "--threshold",
        "Inform.p99<30s",
        "--acs-url",
        &url,
        "--sweep-json",
        sweep.to_str().unwrap(),
    ];
    let (_, _, err) = cpe_sim(&args);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&sweep).unwrap()).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(json["steps"][0]["offered_per_second"], serde_json::json!(0.0), "{json}");
    assert_eq!(json["steps"][0]["thresholds_ok"], serde_json::json!(true), "no data is not a shortfall: {json}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_writes_its_report_and_fails_when_nothing_completes() {
    let dir = std::env::temp_dir().join(format!("cpe-sim-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("r.json");
    let acs = Acs::start(|req, _| RawReply::Send(crate::support::raw::simple_acs(req)));
    let url = acs.url();
    let args =
        ["sweep", "--multipliers", "0.01", "--step-duration", "1s", "--cpes", "5", "--inform-interval", "60s", "--progress-interval", "1h"];
    let (code, _, err) = cpe_sim(&[&args[..], &["--acs-url", &url, "--report-json", report.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(json["sessions"]["completed"].as_u64().unwrap() >= 5, "{json}");
    let (code, _, err) = cpe_sim(&[&args[..], &["--acs-url", "http://127.0.0.1:1/", "--timeout", "1s"]].concat());
    assert_eq!(code, 1, "no session completed: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
