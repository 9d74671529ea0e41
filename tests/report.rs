//! Issue 12's reports end to end through the binary: `/metrics` scraped over a real socket
//! during a run, a sweep's progress lines, table and `--report-html` (opened in headless Debian
//! Chromium: no console errors, every chart drawn, a screenshot), and `report merge`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cpe-sim")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits for `child` at most `within`, killing it (by its pid) past that.
fn wait_bounded(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pid {} did not end within {within:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 GET over a plain socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[test]
fn metrics_are_scraped_over_a_socket_during_a_run() {
    let dir = temp_dir("metrics");
    let json = dir.join("r.json");
    let mut child = Command::new(bin())
        .args(["--cpes", "60", "--shards", "2", "--duration", "60s", "--inform-interval", "300s", "--interval-multiplier", "0.01"])
        .args(["--progress-interval", "200ms", "--metrics-bind-addr", "127.0.0.1:0", "--report-json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, reader) = metrics_address(child.stderr.take().unwrap());
    // Scrape until sessions have completed (bounded), while the run goes on.
    let deadline = Instant::now() + Duration::from_secs(90);
    let body = loop {
        let (status, body) = get(&addr, "/metrics");
        assert!(Instant::now() < deadline, "no completed session in /metrics: {status} {body}");
        // Before the first progress tick: 503 with Retry-After, never an empty 200.
        if status == "HTTP/1.1 503 Service Unavailable" {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        let completed = body
            .lines()
            .find(|l| {
                l.starts_with("cpesim_sessions_total{phase=\"run\",endpoint=\"http://127.0.0.1:") && l.contains("outcome=\"completed\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        if completed > 0 {
            break body;
        }
        assert!(Instant::now() < deadline, "no completed session in /metrics: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(child.try_wait().unwrap().is_none(), "scraped during the run, not after");
    assert_eq!(sample(&body, "cpesim_cpes "), Some(60.0), "{body}");
    assert!(sample(&body, "cpesim_sessions_in_flight_limit ").is_some_and(|v| v >= 1.0), "{body}");
    assert!(body.contains("# TYPE cpesim_rpc_seconds summary"), "{body}");
    assert!(body.contains("cpesim_sessions_by_event_total{phase=\"run\",event=\"0 BOOTSTRAP\",outcome=\"completed\"}"), "{body}");
    assert!(!body.contains("cpe-") && !body.contains("serial"), "never a per-CPE label: {body}");
    let run_id = body
        .lines()
        .find_map(|l| l.strip_prefix("cpesim_run_info{run_id=\""))
        .map(|rest| rest[..16].to_string())
        .expect("cpesim_run_info names the run");
    // Only /metrics here: the device state API is not served on this listener.
    assert_eq!(get(&addr, "/cpes").0, "HTTP/1.1 404 Not Found");
    // SIGTERM ends the run gracefully; its report carries the same run id.
    // SAFETY: kill(2) on the pid of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["run"]["id"], run_id.as_str());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains(&format!("run {run_id}")), "the text report names the run: {out}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs headless Chromium on `page` with the flags the brief sets, fresh profile each time.
pub(crate) fn chromium(profile: &Path, extra: &[&str], page: &Path) -> (String, String) {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists()).unwrap_or_else(|| {
        panic!("headless Chromium is needed for the HTML report test: apt-get install -y --no-install-recommends chromium (scripts/test.sh does)")
    });
    let _ = std::fs::remove_dir_all(profile);
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--window-size=1280,2600"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium failed: {err}");
    (out, err)
}

#[test]
fn a_sweep_reads_as_steps_and_its_html_report_renders_in_chromium() {
    let dir = temp_dir("html");
    let html = dir.join("report.html");
    let sweep_json = dir.join("sweep.json");
    let out = Command::new(bin())
        .args(["sweep", "--multipliers", "0.01,0.005", "--step-duration", "1500ms", "--cpes", "40", "--shards", "1"])
        .args(["--inform-interval", "300s", "--boot-spread", "200ms", "--progress-interval", "500ms", "--report-html"])
        .arg(&html)
        .arg("--sweep-json")
        .arg(&sweep_json)
        .output()
        .unwrap();
    let (table, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    // The boot storm is a warm-up, not part of step 1; each step's lines carry its multiplier.
    assert!(err.contains("] warm-up | booted "), "{err}");
    assert!(err.contains("] step 1 ×0.01 | booted 40 of 40 | "), "{err}");
    assert!(err.contains("] step 2 ×0.005 | "), "{err}");
    assert!(table.contains("warm-up: 40 of 40 CPEs booted in "), "{table}");
    assert!(table.contains("failures by cause") && table.contains("lag p99") && table.contains("limited by"), "{table}");
    assert!(table.lines().any(|l| l.trim_start().starts_with("1 ") && l.contains("×0.01")), "{table}");
    assert!(table.contains("knee") || table.contains("no step kept up"), "{table}");
    // One of the verdicts, whichever this (possibly busy) machine gave.
    let verdict = ["gave out first", "every step kept up", "kept up, so the ACS was not pushed to its limit"];
    assert!(verdict.iter().any(|v| table.contains(v)), "the verdict: {table}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&sweep_json).unwrap()).unwrap();
    assert_eq!(s["warm_up"]["booted"], 40, "{s}");
    let run_id = s["run_id"].as_str().unwrap();
    assert!(table.starts_with(&format!("sweep of run {run_id}\n")), "{table}");
    for st in s["steps"].as_array().unwrap() {
        assert!(st["failures"].is_object() && st["scheduler_lag_p99_us"].is_u64() && st["limited_by"].is_string(), "{st}");
    }
    // The HTML report: self-contained, then rendered by a real browser.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "nothing from the network");
    for section in
        ["Sessions by event code", "0 BOOTSTRAP", "Sessions by ACS endpoint", "warm-up", "step 2 ×0.005", "Sweep: offered vs achieved"]
    {
        assert!(page.contains(section), "{section} missing");
    }
    let (dom, log) = chromium(&dir.join("profile-dom"), &["--dump-dom"], &html);
    assert!(dom.contains("data-charts=\"6\""), "every chart drawn (5 over time + the sweep): {}", &dom[dom.len().saturating_sub(2000)..]);
    assert!(dom.contains("<pre id=\"console-errors\"></pre>"), "script errors: {}", dom.split("console-errors").nth(1).unwrap_or(""));
    assert!(dom.contains("class=\"uplot"), "uPlot drew its charts");
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = chromium(&dir.join("profile-shot"), &[&format!("--screenshot={}", shot.display())], &html);
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a screenshot of the report ({} bytes) at {}", png.len(), shot.display());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn merge_counts_the_real_fleet_and_refuses_the_same_run_twice() {
    let dir = temp_dir("merge");
    // Two processes, disjoint slices of one fleet, as two machines would run them.
    let mut ids = Vec::new();
    for (first, name) in [("0", "a"), ("30", "b")] {
        let out = Command::new(bin())
            .args(["--cpes", "30", "--first-index", first, "--shards", "1", "--progress-interval", "1h", "--hdr-log"])
            .arg(dir.join(format!("{name}.hlog")))
            .arg("--report-json")
            .arg(dir.join(format!("{name}.json")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
        let id = j["run"]["id"].as_str().unwrap().to_string();
        let log = std::fs::read_to_string(dir.join(format!("{name}.hlog"))).unwrap();
        assert!(log.contains(&format!("#cpe-sim run id={id} cpes=30 first_index={first} shards=1")), "{log}");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    let merge = |files: &[&str]| {
        let out = Command::new(bin()).args(["report", "merge"]).args(files.iter().map(|f| dir.join(f))).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, text, err) = merge(&["a.hlog", "a.json", "b.hlog", "b.json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.starts_with("merged 2 run(s):\n"), "{text}");
    assert!(text.contains(&format!("  run {}: 30 CPEs (cpe-0 … cpe-29), 1 shard(s)", ids[0])), "{text}");
    assert!(text.contains("covers 60 CPEs on 2 shard(s) in all"), "{text}");
    // Every CPE bootstrapped once in one of the two runs: 60 sessions, 60 Informs in the logs.
    assert!(text.contains("sessions: 60 completed, 0 failed"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("Inform ") && l.split_whitespace().nth(1) == Some("60")), "{text}");
    // A run given as its JSON report only still counts its CPEs and sessions.
    let (code, text, err) = merge(&["a.json", "b.json", "b.hlog"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("covers 60 CPEs") && text.contains("sessions: 60 completed"), "{text}");
    // The same run twice, as the same kind: refused, naming both files.
    let (code, _, err) = merge(&["a.json", "b.json", "a.json"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("the same run twice: run {} is in ", ids[0])) && err.contains("a.json"), "{err}");
    let (code, _, err) = merge(&["b.hlog", "b.hlog"]);
    assert_eq!(code, Some(2), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `report merge` over `args`: (exit code, stdout, stderr).
fn merge_cmd(args: &[&Path]) -> (Option<i32>, String, String) {
    let out = Command::new(bin()).args(["report", "merge"]).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A JSON report as a run writes it, with the given `run` fields and session counts.
fn report_json(run: serde_json::Value, completed: u64) -> String {
    serde_json::json!({"schema": "cpe-sim/report/v1", "run": run,
        "sessions": {"started": completed, "completed": completed, "late": completed},
        "failures": {"timeout": completed, "http_status_codes": {"503": completed}},
        "events": {"0 BOOTSTRAP": {"completed": completed, "failed": completed}},
        "endpoints": [{"index": 0, "completed": completed, "failed": completed}]})
    .to_string()
}

#[test]
fn merge_saturates_huge_counts_and_refuses_impossible_slices_and_shards() {
    let dir = temp_dir("merge-huge");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let run = |id: &str, first: u64, cpes: u64, shards: u64| serde_json::json!({"id": id, "cpes": cpes, "first_index": first, "shards": shards, "duration_s": 1.0, "multiplier": 1.0});
    // Counts at u64::MAX in two runs, the largest slice a run can have and the most shards.
    std::fs::write(&a, report_json(run("00000000000000a1", 0, u64::from(u32::MAX), 65_535), u64::MAX)).unwrap();
    std::fs::write(&b, report_json(run("00000000000000b2", 0, u64::from(u32::MAX), 65_535), u64::MAX)).unwrap();
    let (code, text, err) = merge_cmd(&[&a, &b]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains(&format!("sessions: {} completed", u64::MAX)), "{text}");
    assert!(text.contains(&format!("covers {} CPEs", u32::MAX)), "{text}");
    // first_index + cpes past u32::MAX: refused, naming the file.
    std::fs::write(&b, report_json(run("00000000000000b2", u64::from(u32::MAX), 10, 1), 1)).unwrap();
    let (code, _, err) = merge_cmd(&[&a, &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("b.json: first_index 4294967295 + cpes 10 passes 4294967295"), "{err}");
    std::fs::write(&b, report_json(run("00000000000000b2", u64::MAX, u64::MAX, 1), 1)).unwrap();
    let (code, _, err) = merge_cmd(&[&a, &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("b.json: first_index"), "{err}");
    // Shards past u16::MAX (a u64 that would truncate as u32 too): refused.
    std::fs::write(&b, report_json(run("00000000000000b2", 0, 10, (1 << 32) + 1), 1)).unwrap();
    let (code, _, err) = merge_cmd(&[&a, &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("b.json: shards 4294967297 is more than 65535"), "{err}");
    // An interval log's header with an impossible slice: refused too.
    let log = dir.join("c.hlog");
    std::fs::write(&log, "#cpe-sim run id=00000000000000c3 cpes=18446744073709551615 first_index=5 shards=1\n#[StartTime: 1 ]\n").unwrap();
    let (code, _, err) = merge_cmd(&[&a, &log]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("c.hlog: first_index 5 + cpes 18446744073709551615"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn merging_a_directory_takes_logs_and_reports_by_content_and_keeps_multiplier_and_first_index() {
    let dir = temp_dir("merge-dir");
    let slices = dir.join("slices");
    std::fs::create_dir_all(&slices).unwrap();
    // Two slices at ×0.5, from index 30 and 60, their logs named *.hlog as the README writes them.
    for (first, name) in [("30", "a"), ("60", "b")] {
        let out = Command::new(bin())
            .args(["--cpes", "30", "--first-index", first, "--shards", "1", "--interval-multiplier", "0.5"])
            .args(["--progress-interval", "1h", "--hdr-log"])
            .arg(slices.join(format!("{name}.hlog")))
            .arg("--report-json")
            .arg(slices.join(format!("{name}.json")))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The log's header says the multiplier, for a run merged from its log alone.
    let log = std::fs::read(slices.join("b.hlog")).unwrap();
    assert!(String::from_utf8_lossy(&log).contains(" first_index=60 shards=1 multiplier=0.5\n"));
    // Run b as its log only; a sweep's JSON, a stray text file and an earlier merge alongside.
    std::fs::remove_file(slices.join("b.json")).unwrap();
    std::fs::write(slices.join("sweep.json"), r#"{"schema": "cpe-sim/sweep/v2", "steps": []}"#).unwrap();
    std::fs::write(slices.join("notes.txt"), "run on the lab ACS\n").unwrap();
    std::fs::write(slices.join("old.json"), r#"{"schema": "cpe-sim/report/v1", "run": {}, "merged_from": []}"#).unwrap();
    let out_json = dir.join("merged.json");
    let out = Command::new(bin()).args(["report", "merge"]).arg(&slices).arg("--report-json").arg(&out_json).output().unwrap();
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(text.starts_with("merged 2 run(s):\n"), "{text}");
    assert!(text.contains("covers 60 CPEs on 2 shard(s) in all"), "{text}");
    assert!(text.contains("interval multiplier 0.5,"), "{text}");
    for (file, why) in [
        ("notes.txt", "neither an interval log nor a cpe-sim JSON report"),
        ("sweep.json", "not a cpe-sim report (schema cpe-sim/sweep/v2)"),
        ("old.json", "a merged report"),
    ] {
        assert!(err.contains(&format!("report merge: skipping {}: {why}", slices.join(file).display())), "{file}: {err}");
    }
    assert!(!err.contains("a.hlog") && !err.contains("b.hlog") && !err.contains("a.json"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    assert_eq!(j["run"]["first_index"], 30, "{j}");
    assert_eq!(j["run"]["multiplier"], 0.5, "{j}");
    // A run at another multiplier: mixed, in the text and the JSON.
    std::fs::write(
        slices.join("c.json"),
        report_json(
            serde_json::json!({"id": "00000000000000c3", "cpes": 5, "first_index": 200, "shards": 1, "duration_s": 1.0, "multiplier": 1.0}),
            5,
        ),
    )
    .unwrap();
    let out = Command::new(bin()).args(["report", "merge"]).arg(&slices).arg("--report-json").arg(&out_json).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("interval multiplier mixed,") && text.contains("interval multiplier: mixed (the runs ran at 0.5, 1)"), "{text}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    assert_eq!((&j["run"]["multiplier"], &j["run"]["first_index"]), (&serde_json::json!("mixed"), &serde_json::json!(30)), "{j}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Follows a run's log for `--metrics-bind-addr 127.0.0.1:0`: the bound address once logged
/// (waiting up to a minute), and a thread that keeps reading and returns the whole log.
pub(crate) fn metrics_address(stderr: std::process::ChildStderr) -> (String, std::thread::JoinHandle<String>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("Prometheus metrics at http://").nth(1) {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the metrics address is logged");
    (addr, reader)
}
