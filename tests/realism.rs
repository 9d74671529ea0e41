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

// ---------------------------------------------------------------------------------------------
// TR-143 diagnostics (issue 11 item 1).

const DIAG_DONE: &str = "8 DIAGNOSTICS COMPLETE";

/// A SetParameterValues of (name, xsd type, value) in an HTTP 200.
fn spv_of(params: &[(&str, &str, &str)]) -> Vec<u8> {
    let list: String = params
        .iter()
        .map(|(n, t, v)| format!("<ParameterValueStruct><Name>{n}</Name><Value xsi:type=\"xsd:{t}\">{v}</Value></ParameterValueStruct>"))
        .collect();
    rpc(
        "spv",
        &format!("<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[{}]\">{list}</ParameterList><ParameterKey>diag</ParameterKey></cwmp:SetParameterValues>", params.len()),
    )
}

fn gpv_of(path: &str) -> Vec<u8> {
    rpc("gpv", &format!("<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>{path}</string></ParameterNames></cwmp:GetParameterValues>"))
}

/// The shared case (`cases/ipping/spv-ipping.xml`, copied to `tests/fixtures/cases/`), sent as
/// the ACS sent it; for TR-098 with its paths moved to `InternetGatewayDevice.IPPingDiagnostics.`.
fn ipping_case(root: &str) -> Vec<u8> {
    let xml = std::fs::read_to_string(crate::support::repo("tests/fixtures/cases/ipping/spv-ipping.xml")).unwrap();
    let xml = if root == "Device" { xml } else { xml.replace("Device.IP.Diagnostics.IPPing.", "InternetGatewayDevice.IPPingDiagnostics.") };
    cpe_sim_http(xml.as_bytes())
}

fn cpe_sim_http(body: &[u8]) -> Vec<u8> {
    crate::support::raw::http("200 OK", &[("Content-Type", "text/xml")], body)
}

/// What one diagnostic round trip left: every Inform's events, and every body the CPE posted.
struct Trip {
    informs: Vec<Vec<String>>,
    posts: Vec<String>,
}

impl Trip {
    /// The CPE's answer to the GetParameterValues sent after `8 DIAGNOSTICS COMPLETE`.
    fn results(&self) -> &str {
        self.posts.iter().rev().find(|b| b.contains("GetParameterValuesResponse")).map(String::as_str).expect("the ACS read the results")
    }
}

/// One CPE of `profile`: the ACS sends `first` (one or more requests) in the bootstrap session
/// and reads `object` with a GPV at the end of it and in every later session (the one that
/// reports `8 DIAGNOSTICS COMPLETE`). The schedule is virtual: nothing completes until the clock
/// is advanced, then the test ends at its own due time.
fn diagnostic_trip(profile: &str, first: Vec<Vec<u8>>, object: &'static str, advance: &[Duration]) -> Trip {
    let acs = Acs::start(scripted(move |s| {
        if s.n == 0 {
            // The bootstrap session ends with a read of the object, so a test that starts nothing
            // still shows its state.
            let mut then = first.clone();
            then.push(gpv_of(object));
            ok(s, then)
        } else {
            ok(s, vec![gpv_of(object)])
        }
    }));
    let (clock, hand) = crate::engine::manual();
    let p = crate::engine::plan_for(std::sync::Arc::new(crate::support::profile(profile)), acs.url(), 1, Some(clock));
    let run = start(p, None, vec![]);
    run.wait_for("the bootstrap session", |r| r.outcomes.completed >= 1);
    std::thread::sleep(crate::engine::GRACE);
    assert_eq!(acs.informs().len(), 1, "nothing completes before the virtual clock moves");
    for step in advance {
        hand.advance(*step);
        // A session the step caused shows up as an Inform; wait until each one ended.
        std::thread::sleep(crate::engine::GRACE);
        let informs = acs.informs().len() as u64;
        run.wait_for("the sessions after the step", |r| r.outcomes.completed >= informs);
    }
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    Trip {
        informs: acs.informs().into_iter().map(|(_, e)| e).collect(),
        posts: acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect(),
    }
}

fn num(doc: &str, name: &str) -> u64 {
    value_of(doc, name).unwrap_or_else(|| panic!("{name} in {doc}")).parse().unwrap_or_else(|_| panic!("{name} is a number"))
}

fn assert_completed_once(trip: &Trip) {
    let done: Vec<&Vec<String>> = trip.informs.iter().filter(|e| e.contains(&DIAG_DONE.to_string())).collect();
    assert_eq!(done.len(), 1, "{:?}", trip.informs);
    assert_eq!(*done[0], [DIAG_DONE], "the test's own session");
}

fn ipping_from_the_shared_case(profile: &str, root: &str) {
    let obj = if root == "Device" { "Device.IP.Diagnostics.IPPing." } else { "InternetGatewayDevice.IPPingDiagnostics." };
    let trip = diagnostic_trip(
        profile,
        vec![ipping_case(root)],
        if root == "Device" { "Device.IP.Diagnostics.IPPing." } else { "InternetGatewayDevice.IPPingDiagnostics." },
        &[Duration::from_secs(600)],
    );
    let spv = trip.posts.iter().find(|b| b.contains("SetParameterValuesResponse")).expect("the SPV was answered");
    assert_eq!(texts(spv, "Status"), ["0"]);
    assert_completed_once(&trip);
    let r = trip.results();
    assert_eq!(value_of(r, &format!("{obj}DiagnosticsState")).as_deref(), Some("Complete"), "{r}");
    assert_eq!(value_of(r, &format!("{obj}Host")).as_deref(), Some("127.0.0.1"));
    let (ok, failed) = (num(r, &format!("{obj}SuccessCount")), num(r, &format!("{obj}FailureCount")));
    assert_eq!(ok + failed, 2, "NumberOfRepetitions was 2");
    let (min, avg, max) = (
        num(r, &format!("{obj}MinimumResponseTime")),
        num(r, &format!("{obj}AverageResponseTime")),
        num(r, &format!("{obj}MaximumResponseTime")),
    );
    if ok > 0 {
        assert!(0 < min && min <= avg && avg <= max && max < 1000, "RTTs near the profile's 18 ms median: {min}/{avg}/{max}");
    }
    if root == "Device" {
        let detailed = num(r, &format!("{obj}AverageResponseTimeDetailed"));
        assert!(detailed.div_ceil(1000) == avg, "µs and ms agree: {detailed} µs vs {avg} ms");
    }
}

#[test]
fn the_shared_ipping_case_completes_and_is_read_back_tr181() {
    ipping_from_the_shared_case(crate::support::TR181, "Device");
}

#[test]
fn the_shared_ipping_case_completes_and_is_read_back_tr098() {
    ipping_from_the_shared_case(crate::support::TR098, "InternetGatewayDevice");
}

fn traceroute(profile: &str, obj: &'static str, host_col: &str, rt_col: &str) {
    let trip = diagnostic_trip(
        profile,
        vec![spv_of(&[(&format!("{obj}Host"), "string", "acs.example.net"), (&format!("{obj}DiagnosticsState"), "string", "Requested")])],
        obj,
        &[Duration::from_secs(3600)],
    );
    assert_completed_once(&trip);
    let r = trip.results();
    assert_eq!(value_of(r, &format!("{obj}DiagnosticsState")).as_deref(), Some("Complete"), "{r}");
    let hops = num(r, &format!("{obj}RouteHopsNumberOfEntries"));
    assert!((5..=11).contains(&hops), "the profile's 5–11 hops: {hops}");
    assert_eq!(value_of(r, &format!("{obj}RouteHops.{hops}.{host_col}")).as_deref(), Some("acs.example.net"), "the last hop is the host");
    assert!(value_of(r, &format!("{obj}RouteHops.{}.{host_col}", hops + 1)).is_none());
    let rtts = value_of(r, &format!("{obj}RouteHops.1.{rt_col}")).unwrap();
    assert_eq!(rtts.split(',').count(), 3, "NumberOfTries RTTs: {rtts}");
    assert!(num(r, &format!("{obj}ResponseTime")) > 0);
}

#[test]
fn a_traceroute_fills_route_hops_tr181() {
    traceroute(crate::support::TR181, "Device.IP.Diagnostics.TraceRoute.", "Host", "RTTimes");
}

#[test]
fn a_traceroute_fills_route_hops_tr098() {
    traceroute(crate::support::TR098, "InternetGatewayDevice.TraceRouteDiagnostics.", "HopHost", "HopRTTimes");
}

fn throughput(profile: &str, obj: &'static str, download: bool) {
    let (url_name, url) =
        if download { ("DownloadURL", "http://speed.example.net/10MB.bin") } else { ("UploadURL", "http://speed.example.net/up") };
    let mut params = vec![(format!("{obj}{url_name}"), "string", url.to_string())];
    if !download {
        params.push((format!("{obj}TestFileLength"), "unsignedInt", "2000000".into()));
    }
    params.push((format!("{obj}DiagnosticsState"), "string", "Requested".into()));
    let refs: Vec<(&str, &str, &str)> = params.iter().map(|(n, t, v)| (n.as_str(), *t, v.as_str())).collect();
    let trip = diagnostic_trip(profile, vec![spv_of(&refs)], obj, &[Duration::from_secs(600)]);
    assert_completed_once(&trip);
    let r = trip.results();
    assert_eq!(value_of(r, &format!("{obj}DiagnosticsState")).as_deref(), Some("Complete"), "{r}");
    let t = |n: &str| cpe_sim::time::parse_datetime_ms(&value_of(r, &format!("{obj}{n}")).unwrap()).unwrap_or_else(|| panic!("{n}: {r}"));
    let (rom, bom, eom) = (t("ROMTime"), t("BOMTime"), t("EOMTime"));
    assert!(t("TCPOpenRequestTime") <= t("TCPOpenResponseTime") && t("TCPOpenResponseTime") <= rom && rom <= bom && bom < eom, "{r}");
    let bytes = if download { 10_000_000 } else { 2_000_000 };
    let test_bytes = if download { num(r, &format!("{obj}TestBytesReceived")) } else { bytes };
    assert_eq!(test_bytes, bytes);
    let moved = if download { num(r, &format!("{obj}TotalBytesReceived")) } else { num(r, &format!("{obj}TotalBytesSent")) };
    assert!(moved > bytes, "protocol overhead on top of the test bytes");
    // The rate the timestamps imply is near the profile's median (95 or 21 Mbit/s, spread 0.25).
    let kbps = bytes as f64 * 8.0 / (eom - bom) as f64;
    let median = if download { 95_000.0 } else { 21_000.0 };
    assert!(kbps > median / 4.0 && kbps < median * 4.0, "{kbps} kbit/s");
}

#[test]
fn download_and_upload_diagnostics_report_times_and_bytes_tr181() {
    throughput(crate::support::TR181, "Device.IP.Diagnostics.DownloadDiagnostics.", true);
    throughput(crate::support::TR181, "Device.IP.Diagnostics.UploadDiagnostics.", false);
}

#[test]
fn download_and_upload_diagnostics_report_times_and_bytes_tr098() {
    throughput(crate::support::TR098, "InternetGatewayDevice.DownloadDiagnostics.", true);
    throughput(crate::support::TR098, "InternetGatewayDevice.UploadDiagnostics.", false);
}

#[test]
fn server_selection_finds_the_fastest_host_tr181() {
    let obj = "Device.IP.Diagnostics.ServerSelectionDiagnostics.";
    let trip = diagnostic_trip(
        crate::support::TR181,
        vec![spv_of(&[
            (&format!("{obj}HostList"), "string", "a.example.net,b.example.net,127.0.0.1"),
            (&format!("{obj}DiagnosticsState"), "string", "Requested"),
        ])],
        obj,
        &[Duration::from_secs(600)],
    );
    assert_completed_once(&trip);
    let r = trip.results();
    assert_eq!(value_of(r, &format!("{obj}DiagnosticsState")).as_deref(), Some("Complete"), "{r}");
    let fastest = value_of(r, &format!("{obj}FastestHost")).unwrap();
    assert!(["a.example.net", "b.example.net", "127.0.0.1"].contains(&fastest.as_str()), "{fastest}");
    let (min, avg) = (num(r, &format!("{obj}MinimumResponseTime")), num(r, &format!("{obj}AverageResponseTime")));
    assert!(0 < min && min <= avg, "{min} {avg}");
}

/// Malformed inputs: Fault 9003 with a 9007 entry per bad parameter, nothing applied and nothing
/// started (no `8 DIAGNOSTICS COMPLETE` however long the clock runs).
#[test]
fn malformed_diagnostics_inputs_are_refused_and_start_nothing() {
    let obj = "Device.IP.Diagnostics.IPPing.";
    let host = format!("{obj}Host");
    let state = format!("{obj}DiagnosticsState");
    let reps = format!("{obj}NumberOfRepetitions");
    let trip = diagnostic_trip(
        crate::support::TR181,
        vec![
            spv_of(&[(&host, "string", "not a host!"), (&state, "string", "Requested")]),
            spv_of(&[(&state, "string", "Requested")]),
            spv_of(&[(&host, "string", "127.0.0.1"), (&reps, "unsignedInt", "0"), (&state, "string", "Requested")]),
            spv_of(&[(&host, "string", "127.0.0.1"), (&state, "string", "Complete")]),
            spv_of(&[(&format!("{}DownloadURL", "Device.IP.Diagnostics.DownloadDiagnostics."), "string", "file:///etc/passwd")]),
        ],
        obj,
        &[Duration::from_secs(3600)],
    );
    let faults: Vec<&String> = trip.posts.iter().filter(|b| b.contains("<detail>")).collect();
    assert_eq!(faults.len(), 5, "{:?}", trip.posts);
    for f in &faults {
        assert_eq!(texts(f, "FaultCode")[0], "9003", "{f}");
        assert!(texts(f, "FaultCode")[1..].iter().all(|c| c == "9007"), "{f}");
    }
    assert_eq!(texts(faults[0], "ParameterName"), [host.as_str()], "the bad Host is named");
    assert_eq!(texts(faults[1], "ParameterName"), [state.as_str()], "Requested with no Host");
    assert!(!trip.informs.iter().any(|e| e.contains(&DIAG_DONE.to_string())), "{:?}", trip.informs);
    let r = trip.results();
    assert_eq!(value_of(r, &state).as_deref(), Some("None"));
    assert_eq!(value_of(r, &host).as_deref(), Some(""), "nothing was applied");
}

/// TR-181 DiagnosticsState: changing an input while a test is requested or running cancels it
/// (state None, no `8 DIAGNOSTICS COMPLETE`); a new request replaces the running test, which
/// then completes once with the new inputs.
#[test]
fn an_input_change_cancels_and_a_new_request_replaces_a_running_test() {
    let obj = "Device.IP.Diagnostics.IPPing.";
    let host = format!("{obj}Host");
    let state = format!("{obj}DiagnosticsState");
    let reps = format!("{obj}NumberOfRepetitions");
    let schedule = |key: &str| {
        rpc("si", &format!("<cwmp:ScheduleInform><DelaySeconds>10</DelaySeconds><CommandKey>{key}</CommandKey></cwmp:ScheduleInform>"))
    };
    // In one session: requested, then an input changed: canceled at once.
    let same_session = diagnostic_trip(
        crate::support::TR181,
        vec![spv_of(&[(&host, "string", "127.0.0.1"), (&state, "string", "Requested")]), spv_of(&[(&reps, "unsignedInt", "5")])],
        obj,
        &[Duration::from_secs(3600)],
    );
    assert!(!same_session.informs.iter().any(|e| e.contains(&DIAG_DONE.to_string())), "{:?}", same_session.informs);
    assert_eq!(value_of(same_session.results(), &state).as_deref(), Some("None"));

    // Across sessions: 100 echoes (~100 s) requested; 10 s later (3 SCHEDULED) the Host changes.
    let acs = Acs::start(scripted({
        let (host, state, reps) = (host.clone(), state.clone(), reps.clone());
        move |s| match s.n {
            0 => ok(
                s,
                vec![
                    spv_of(&[(&host, "string", "127.0.0.1"), (&reps, "unsignedInt", "100"), (&state, "string", "Requested")]),
                    schedule("a"),
                ],
            ),
            1 => ok(s, vec![spv_of(&[(&host, "string", "192.0.2.7")]), gpv_of(obj), schedule("b")]),
            // A new request while one runs (requested here, then again 10 s later): replaced.
            2 => ok(s, vec![spv_of(&[(&reps, "unsignedInt", "100"), (&state, "string", "Requested")]), schedule("c")]),
            3 => ok(s, vec![spv_of(&[(&reps, "unsignedInt", "1"), (&state, "string", "Requested")])]),
            _ => ok(s, vec![gpv_of(obj)]),
        }
    }));
    let (clock, hand) = crate::engine::manual();
    let p = crate::engine::plan_for(std::sync::Arc::new(crate::support::profile(crate::support::TR181)), acs.url(), 1, Some(clock));
    let run = start(p, None, vec![]);
    for n in 1..=4u64 {
        run.wait_for("the session", |r| r.outcomes.completed >= n);
        hand.advance(Duration::from_secs(10));
    }
    run.wait_for("the session", |r| r.outcomes.completed >= 4);
    hand.advance(Duration::from_secs(3600));
    crate::engine::eventually("the diagnostics session", || acs.informs().iter().any(|(_, e)| e.contains(&DIAG_DONE.to_string())));
    run.wait_for("the diagnostics session", |r| r.outcomes.completed >= 5);
    hand.advance(Duration::from_secs(3600));
    std::thread::sleep(crate::engine::GRACE);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let informs: Vec<Vec<String>> = acs.informs().into_iter().map(|(_, e)| e).collect();
    assert_eq!(informs.iter().filter(|e| e.contains(&DIAG_DONE.to_string())).count(), 1, "{informs:?}");
    let posts: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect();
    let reads: Vec<&String> = posts.iter().filter(|b| b.contains("GetParameterValuesResponse")).collect();
    assert_eq!(value_of(reads[0], &state).as_deref(), Some("None"), "the Host change canceled the running test");
    let last = reads.last().unwrap();
    assert_eq!(value_of(last, &state).as_deref(), Some("Complete"));
    assert_eq!(num(last, &format!("{obj}SuccessCount")) + num(last, &format!("{obj}FailureCount")), 1, "the replacing request's one echo");
}

// ---------------------------------------------------------------------------------------------
// Generated values and throttled active notification (issue 11 item 6).

const TEMP: &str = "Device.DeviceInfo.X_FEFEFE_Temperature";

/// The TR-181 example plus a generated temperature with active notification, and a
/// DefaultActiveNotificationThrottle of `throttle_s`.
fn with_generated_temperature(throttle_s: u32) -> cpe_sim::model::Model {
    let file = crate::support::repo("profiles/example-tr181-gateway/profile.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let throttle = "Device.ManagementServer.DefaultActiveNotificationThrottle: {type: unsignedInt, value: 0";
    assert!(text.contains(throttle));
    let text = text
        .replace(throttle, &format!("Device.ManagementServer.DefaultActiveNotificationThrottle: {{type: unsignedInt, value: {throttle_s}"))
        + &format!("  {TEMP}: {{type: int, dynamic: {{walk: {{min: 30, max: 80, step: 60}}}}, notify: active}}\n");
    cpe_sim::config::parse_profile(&text, &file, "generated").unwrap()
}

/// A fleet whose generated temperature has active notification informs `4 VALUE CHANGE` with the
/// new value, never sooner than the throttle after the session before; values stay in bounds.
#[test]
fn generated_values_with_active_notification_inform_value_change_throttled() {
    const CPES: u32 = 3;
    const THROTTLE_MS: i64 = 300_000;
    let acs = Acs::start(scripted(|s| ok(s, vec![])));
    let (clock, hand) = crate::engine::manual();
    let p = crate::engine::plan_for(std::sync::Arc::new(with_generated_temperature(300)), acs.url(), CPES, Some(clock));
    let run = start(p, None, vec![]);
    run.wait_for("the bootstraps", |r| r.outcomes.completed >= CPES as u64);
    hand.advance(Duration::from_secs(299));
    std::thread::sleep(crate::engine::GRACE);
    assert_eq!(acs.informs().len(), CPES as usize, "nothing before the throttle ran out");
    // 40 virtual minutes in steps of one walk step; each step's sessions end before the next.
    for _ in 0..40 {
        hand.advance(Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
        let seen = acs.informs().len() as u64;
        run.wait_for("the value-change sessions", |r| r.outcomes.completed >= seen);
    }
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let bodies: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    for i in 0..CPES {
        let mine: Vec<&String> = bodies.iter().filter(|b| texts(b, "SerialNumber").contains(&serial(i))).collect();
        let changes: Vec<&&String> = mine.iter().filter(|b| texts(b, "EventCode") == ["4 VALUE CHANGE"]).collect();
        assert!((3..=8).contains(&changes.len()), "CPE {i}: {} value changes in 40 min at a 5 min throttle", changes.len());
        let mut last_at = cpe_sim::time::parse_datetime_ms(&texts(mine[0], "CurrentTime")[0]).unwrap();
        for c in &changes {
            let at = cpe_sim::time::parse_datetime_ms(&texts(c, "CurrentTime")[0]).unwrap();
            assert!(at - last_at >= THROTTLE_MS, "CPE {i}: {} ms after the session before", at - last_at);
            last_at = at;
            let v: i64 = value_of(c, TEMP).expect("the changed value rides in the Inform").parse().unwrap();
            assert!((30..=80).contains(&v), "{v}");
        }
    }
    // Different CPEs draw different walks.
    let walk = |i: u32| -> Vec<String> {
        bodies.iter().filter(|b| texts(b, "SerialNumber").contains(&serial(i))).filter_map(|b| value_of(b, TEMP)).collect()
    };
    assert!(walk(0) != walk(1) || walk(1) != walk(2), "{:?} {:?} {:?}", walk(0), walk(1), walk(2));
}

/// Generated values without active notification (the example profile's) start no session.
#[test]
fn generated_values_without_active_notification_start_nothing() {
    let acs = Acs::start(scripted(|s| ok(s, vec![])));
    let (clock, hand) = crate::engine::manual();
    let p = crate::engine::plan_for(std::sync::Arc::new(crate::support::profile(crate::support::TR181)), acs.url(), 1, Some(clock));
    let run = start(p, None, vec![]);
    run.wait_for("the bootstrap", |r| r.outcomes.completed >= 1);
    for _ in 0..6 {
        hand.advance(Duration::from_secs(600));
    }
    std::thread::sleep(crate::engine::GRACE);
    run.finish();
    assert_eq!(acs.informs().len(), 1, "{:?}", acs.informs());
}

/// The same generated value read by GPV at the same virtual time is the same on every read (a
/// function of seed and time), and a bursty counter never goes backwards across reads.
#[test]
fn generated_values_are_functions_of_seed_and_time() {
    let model = with_generated_temperature(0);
    let delta = cpe_sim::model::Delta::default();
    let boot = crate::support::T0;
    let read = |path: &str, id: u32, at: u64| {
        model.device(cpe_sim::model::DeviceId(id), &delta, boot, cpe_sim::time::UnixMillis(at)).get(path).unwrap()
    };
    assert_eq!(read(TEMP, 1, boot.0 + 90_000), read(TEMP, 1, boot.0 + 90_000));
    let bytes = "Device.Ethernet.Interface.1.Stats.BytesReceived";
    let mut last = 0u64;
    for s in 0..600 {
        let v: u64 = read(bytes, 2, boot.0 + s * 1000).parse().unwrap();
        assert!(v >= last);
        last = v;
    }
    assert!(last > 0);
    let cpu: u64 = read("Device.DeviceInfo.ProcessStatus.CPUUsage", 0, boot.0).parse().unwrap();
    assert!((3..=65).contains(&cpu));
}

// ---------------------------------------------------------------------------------------------
// Profile errors of the new sections name the key and the reason.

#[test]
fn bad_realism_settings_are_refused_naming_the_key() {
    let file = crate::support::repo("profiles/example-tr181-gateway/profile.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let cases = [
        ("  failure_share: 0.0\n", "  failure_share: 1.5\n", "firmware.failure_share", "between 0 and 1"),
        ("  loss: 0.01\n", "  loss: -1\n", "diagnostics.loss", "between 0 and 1"),
        ("  hops: {min: 5, max: 11}\n", "  hops: {min: 12, max: 11}\n", "diagnostics.hops", "min ≤ max"),
        (
            "{walk: {min: 180000, max: 330000, step: 60}}",
            "{walk: {min: 5, max: 1, step: 60}}",
            "parameters.Device.DeviceInfo.MemoryStatus.Free",
            "min ≤ max",
        ),
        ("peak_hour: 20, noise: 0.15", "peak_hour: 24, noise: 0.15", "parameters.Device.DeviceInfo.ProcessStatus.CPUUsage", "peak_hour"),
        ("{bursty: {per_second: 250000, burst: 0.8}}", "{bursty: {per_second: 250000, burst: 2}}", "BytesReceived", "burst"),
    ];
    for (from, to, key, why) in cases {
        assert!(text.contains(from), "{from}");
        let err = cpe_sim::config::parse_profile(&text.replacen(from, to, 1), &file, "bad").expect_err("refused").to_string();
        assert!(err.contains(key) && err.contains(why), "{err}");
    }
}

/// A CPE saved (`--state-dir`) while its IPPing was requested or running runs it again after it
/// powers on: `1 BOOT`, then `8 DIAGNOSTICS COMPLETE` with the results.
#[test]
fn a_resumed_cpe_runs_its_requested_test_again() {
    let model = crate::support::profile(crate::support::TR181);
    let now = cpe_sim::time::UnixMillis::now();
    let mut saved = cpe_sim::cpe::CpeState::new(cpe_sim::model::DeviceId(0), now);
    saved.bootstrapped = true;
    saved.events = Default::default();
    {
        let mut dev = saved.device_mut(&model, now);
        dev.set_local("Device.IP.Diagnostics.IPPing.Host", "127.0.0.1").unwrap();
        dev.set_local("Device.IP.Diagnostics.IPPing.NumberOfRepetitions", "1").unwrap();
        dev.set_local("Device.IP.Diagnostics.IPPing.DiagnosticsState", "Requested").unwrap();
    }
    let acs = Acs::start(scripted(|s| ok(s, vec![gpv_of("Device.IP.Diagnostics.IPPing.")])));
    let mut p = crate::engine::plan_for(std::sync::Arc::new(model), acs.url(), 1, None);
    p.mode = Mode::OneShot;
    p.state = Some(cpe_sim::persist::Resume { saved: std::sync::Mutex::new([(0, saved)].into()), sink: None });
    let outcome = start(p, None, vec![]).wait(Duration::from_secs(30));
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let informs: Vec<Vec<String>> = acs.informs().into_iter().map(|(_, e)| e).collect();
    assert_eq!(informs, [vec!["1 BOOT".to_string()], vec![DIAG_DONE.to_string()]]);
    let posts: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).collect();
    let last = posts.iter().rev().find(|b| b.contains("GetParameterValuesResponse")).unwrap();
    assert_eq!(value_of(last, "Device.IP.Diagnostics.IPPing.DiagnosticsState").as_deref(), Some("Complete"));
    assert_eq!(num(last, "Device.IP.Diagnostics.IPPing.SuccessCount") + num(last, "Device.IP.Diagnostics.IPPing.FailureCount"), 1);
}

/// A session another reason starts (here a ScheduleInform) while the throttle still holds a
/// value change carries the changed value at once, with `4 VALUE CHANGE` (PROTOCOL.md §9).
#[test]
fn a_session_for_another_reason_carries_a_throttled_value_change() {
    let acs = Acs::start(scripted(|s| match s.n {
        0 => {
            ok(s, vec![rpc("si", "<cwmp:ScheduleInform><DelaySeconds>600</DelaySeconds><CommandKey>si</CommandKey></cwmp:ScheduleInform>")])
        }
        _ => ok(s, vec![]),
    }));
    let (clock, hand) = crate::engine::manual();
    let p = crate::engine::plan_for(std::sync::Arc::new(with_generated_temperature(3600)), acs.url(), 1, Some(clock));
    let run = start(p, None, vec![]);
    run.wait_for("the bootstrap", |r| r.outcomes.completed >= 1);
    hand.advance(Duration::from_secs(600));
    run.wait_for("the scheduled session", |r| r.outcomes.completed >= 2);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    let bodies: Vec<String> = acs.raw.requests().iter().map(|r| r.body_str().to_string()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    assert_eq!(bodies.len(), 2, "the value change alone waits for its 3600 s throttle");
    assert_eq!(texts(&bodies[1], "EventCode"), ["3 SCHEDULED", "4 VALUE CHANGE", "M ScheduleInform"]);
    let v: i64 = value_of(&bodies[1], TEMP).expect("the changed value rides along").parse().unwrap();
    assert!((30..=80).contains(&v));
}
