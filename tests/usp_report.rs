//! USP runs get the CWMP runs' reports (issue 14, "same engine, same reports"): slices of a USP
//! fleet (`--slice K/N`, each against its own embedded Controller over WebSocket on 127.0.0.1)
//! merged by `report merge` into one USP report whose histograms are the exact union of the
//! slices', and a mix of USP and CWMP reports refused; `/metrics` of a USP run scraped over a
//! socket during the run; the progress lines, the last agreeing with the report; the HTML report
//! opened in headless Chromium.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hdrhistogram::Histogram;
use serde_json::Value;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-uspreport-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process, killed by its id however the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs cpe-sim with `args` to its end (bounded): (exit code, stdout, stderr).
fn cpe_sim(args: &[&str], within: Duration) -> (i32, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_cpe-sim")).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut p = Proc(child);
    let end = Instant::now() + within;
    while p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "cpe-sim {args:?} did not finish within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    let mut err = String::new();
    p.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (p.0.wait().unwrap().code().unwrap_or(-1), out, err)
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn hdr(latency: &Value) -> Histogram<u64> {
    let raw = base64::engine::general_purpose::STANDARD.decode(latency["hdr"].as_str().expect("an hdr histogram")).unwrap();
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut std::io::Cursor::new(raw)).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn usp_slices_merge_into_one_usp_report_and_a_mix_is_refused() {
    let dir = scratch("merge");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    for (slice, out) in [("0/2", &a), ("1/2", &b)] {
        let (code, text, err) = cpe_sim(
            &["--protocol", "usp", "--cpes", "30", "--slice", slice, "--timeout", "20s", "--report-json", p(out)],
            Duration::from_secs(120),
        );
        assert_eq!(code, 0, "{text}\n{err}");
    }
    let (ra, rb) = (report(&a), report(&b));
    assert_eq!(ra["run"]["cpes"], 15, "{ra}");
    assert_eq!(rb["run"]["first_index"], 15, "{rb}");
    assert_ne!(ra["run"]["id"], rb["run"]["id"]);

    let merged = dir.join("merged.json");
    let (code, text, err) = cpe_sim(&["report", "merge", p(&a), p(&b), "--report-json", p(&merged)], Duration::from_secs(30));
    assert_eq!(code, 0, "{text}\n{err}");
    assert!(text.starts_with("merged 2 USP run(s):\n"), "{text}");
    assert!(text.contains("covers 30 agents on "), "{text}");
    assert!(text.contains("agents booted (Boot! answered): 30 of 30"), "{text}");
    let m = report(&merged);
    assert_eq!(m["schema"], "cpe-sim/usp-report/v1", "{m}");
    assert_eq!((m["agents"].as_u64(), m["booted"].as_u64()), (Some(30), Some(30)), "{m}");
    assert_eq!(m["run"]["cpes"], 30);
    assert_eq!(m["controller"]["booted_agents"], 30, "{m}");
    assert_eq!(m["merged_from"].as_array().map(Vec::len), Some(2));
    // Counts add up and the histograms are the exact union of the slices'.
    let sum = |f: &dyn Fn(&Value) -> &Value| f(&ra).as_u64().unwrap() + f(&rb).as_u64().unwrap();
    assert_eq!(m["connections"]["connects"].as_u64().unwrap(), sum(&|r| &r["connections"]["connects"]));
    assert_eq!(m["notify"]["Boot!"]["sent"].as_u64().unwrap(), sum(&|r| &r["notify"]["Boot!"]["sent"]));
    for path in [&["connections", "connect_time"][..], &["notify", "Boot!", "round_trip"][..]] {
        let at = |r: &Value| path.iter().fold(r.clone(), |v, k| v[*k].clone());
        let mut both = hdr(&at(&ra));
        both.add(hdr(&at(&rb))).unwrap();
        let got = hdr(&at(&m));
        assert_eq!(got.len(), both.len(), "{path:?}");
        for q in [0.5, 0.9, 0.99, 1.0] {
            assert_eq!(got.value_at_quantile(q), both.value_at_quantile(q), "{path:?} q{q}");
        }
        assert_eq!(at(&m)["p99_ms"].as_f64().unwrap(), both.value_at_quantile(0.99) as f64 / 1000.0, "{path:?}");
        assert!(got.len() >= 30, "{path:?}: {}", got.len());
    }

    // A directory of them (the merged report in it skipped, named) merges the same.
    let (code, text, err) = cpe_sim(&["report", "merge", p(&dir)], Duration::from_secs(30));
    assert_eq!(code, 0, "{text}\n{err}");
    assert!(err.contains("skipping") && err.contains("merged.json"), "{err}");
    assert!(text.contains("covers 30 agents on ") && text.contains("agents booted (Boot! answered): 30 of 30"), "{text}");
    // The same run twice, a CWMP report among USP ones, a merged report: exit 2, named.
    let (code, _, err) = cpe_sim(&["report", "merge", p(&a), p(&b), p(&a)], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the same run twice") && err.contains("a.json"), "{err}");
    let cwmp = dir.join("cwmp.json");
    std::fs::write(
        &cwmp,
        serde_json::json!({"schema": "cpe-sim/report/v1", "run": {"id": "00000000000000aa", "cpes": 10, "first_index": 0, "shards": 1},
            "sessions": {"completed": 10}})
        .to_string(),
    )
    .unwrap();
    for order in [[p(&a), p(&cwmp)], [p(&cwmp), p(&a)]] {
        let (code, out, err) = cpe_sim(&["report", "merge", order[0], order[1]], Duration::from_secs(30));
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(err.contains("a.json is a USP run's report") && err.contains("cwmp.json a CWMP run's"), "{err}");
    }
    let (code, _, err) = cpe_sim(&["report", "merge", p(&merged), p(&a)], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("merged report"), "{err}");
    // A tampered histogram (values past the report's range) is refused, not merged or a panic.
    let mut bad = ra.clone();
    let mut big = Histogram::<u64>::new(3).unwrap();
    big.record(u64::MAX / 4).unwrap();
    let mut raw = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(&mut hdrhistogram::serialization::V2Serializer::new(), &big, &mut raw).unwrap();
    bad["connections"]["connect_time"]["hdr"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
    bad["run"]["id"] = "00000000000000bb".into();
    let badp = dir.join("bad.json");
    std::fs::write(&badp, bad.to_string()).unwrap();
    let (code, _, err) = cpe_sim(&["report", "merge", p(&badp), p(&b)], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.json") && err.contains("connect_time"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 GET over a plain socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// The value of the sample line `name` (labels included) exactly.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn usp_metrics_are_scraped_during_the_run_and_the_last_progress_line_agrees_with_the_report() {
    let dir = scratch("metrics");
    let json = dir.join("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--protocol", "usp", "--cpes", "20", "--shards", "2", "--duration", "6s", "--inform-interval", "1s"])
        .args(["--progress-interval", "200ms", "--metrics-bind-addr", "127.0.0.1:0", "--report-json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    let (addr, reader) = crate::report::metrics_address(p.0.stderr.take().unwrap());
    // Scrape (bounded) until every Agent booted and a Periodic! was answered, during the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = get(&addr, "/metrics");
        assert!(Instant::now() < deadline, "not every Agent booted in /metrics: {status} {body}");
        // Before the first progress tick: 503 (Retry-After), never an empty 200.
        if status == "HTTP/1.1 503 Service Unavailable" {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        let periodic = sample(&body, "cpesim_usp_notifies_total{notification=\"Periodic!\",outcome=\"answered\"}").unwrap_or(0.0);
        if sample(&body, "cpesim_cpes_booted") == Some(20.0) && periodic > 0.0 {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(p.0.try_wait().unwrap().is_none(), "scraped during the run, not after");
    assert_eq!(sample(&body, "cpesim_cpes"), Some(20.0), "{body}");
    assert_eq!(sample(&body, "cpesim_usp_connections"), Some(20.0), "{body}");
    assert!(body.lines().any(|l| l.starts_with("cpesim_run_info{run_id=\"") && l.ends_with(",protocol=\"usp\"} 1")), "{body}");
    assert!(body.contains("# TYPE cpesim_usp_notify_round_trip_seconds summary"), "{body}");
    assert!(sample(&body, "cpesim_usp_notify_round_trip_seconds_count{notification=\"Boot!\"}").is_some_and(|n| n >= 20.0), "{body}");
    assert!(sample(&body, "cpesim_usp_notifies_total{notification=\"Boot!\",outcome=\"sent\"}").is_some_and(|n| n >= 20.0), "{body}");
    assert_eq!(sample(&body, "cpesim_usp_connection_failures_total{cause=\"timeout\"}"), Some(0.0), "{body}");
    assert_eq!(sample(&body, "cpesim_usp_records_dropped_total{cause=\"malformed_record\"}"), Some(0.0), "{body}");
    // The embedded Controller's Get after each Boot!: handled by the Agents, timed at both ends.
    assert!(sample(&body, "cpesim_usp_message_seconds_count{msg_type=\"Get\"}").is_some_and(|n| n >= 1.0), "{body}");
    assert!(body.contains("cpesim_usp_controller_round_trip_seconds{msg_type=\"Get\",quantile=\"0.99\"}"), "{body}");
    assert!(!body.contains("os::"), "no per-Agent label: {body}");
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(l.rsplit(' ').next().unwrap().parse::<f64>().is_ok(), "{l}");
    }
    let (status, _) = get(&addr, "/cpes");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    let end = Instant::now() + Duration::from_secs(60);
    while p.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "the run did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = reader.join().unwrap();
    let r = report(&json);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[') && l.contains("s] ")).collect();
    assert!(lines.len() >= 5, "a progress line per 200 ms tick: {err}");
    assert!(lines[..lines.len() - 1].iter().all(|l| l.contains("s] run | booted ")), "{err}");
    let last = lines.last().unwrap();
    let want = format!(
        "s] whole run | booted {} of 20 | connected {} (peak {}) | ",
        r["booted"], r["connections"]["held"], r["connections"]["peak"]
    );
    assert!(last.contains(&want), "the last line agrees with the report: {last} vs {want}");
    let sent: u64 = r["notify"].as_object().unwrap().values().map(|n| n["sent"].as_u64().unwrap()).sum();
    let rate = sent as f64 / r["elapsed_s"].as_f64().unwrap();
    assert!(last.contains(&format!("| {rate:.1} notifies/s |")), "{last} vs {rate:.1}");
    assert!(last.contains("| failed 0 | unanswered 0 | Notify p50 "), "{last}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_usp_html_report_renders_in_chromium() {
    let dir = scratch("html");
    let (html, json) = (dir.join("report.html"), dir.join("r.json"));
    let (code, out, err) = cpe_sim(
        &[
            "--protocol",
            "usp",
            "--cpes",
            "20",
            "--duration",
            "3s",
            "--inform-interval",
            "1s",
            "--progress-interval",
            "200ms",
            "--threshold",
            "booted>=20",
            "--report-json",
            p(&json),
            "--report-html",
            p(&html),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let r = report(&json);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"), "nothing from the network");
    assert!(page.contains(&format!("run <code>{}</code>", r["run"]["id"].as_str().unwrap())), "the run id");
    for section in [
        "cpe-sim report (USP)",
        "Connections held and Agents booted",
        "Notify round trips",
        "<td>Boot!</td><td>20</td><td>20</td>",
        "<td>Periodic!</td>",
        "Messages handled by the Agents",
        "<td>Get</td>",
        "Embedded Controller",
        "<code>booted&gt;=20</code>",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    let (dom, log) = crate::report::chromium(&dir.join("profile-dom"), &["--dump-dom"], &html);
    assert!(dom.contains("data-charts=\"3\""), "every chart drawn: {}", &dom[dom.len().saturating_sub(2000)..]);
    assert!(dom.contains("<pre id=\"console-errors\"></pre>"), "script errors: {}", dom.split("console-errors").nth(1).unwrap_or(""));
    assert!(dom.contains("class=\"uplot"), "uPlot drew its charts");
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("usp-report-html.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = crate::report::chromium(&dir.join("profile-shot"), &[&format!("--screenshot={}", shot.display())], &html);
    assert!(!log.contains("CONSOLE"), "console messages: {log}");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a screenshot ({} bytes) at {}", png.len(), shot.display());
    let _ = std::fs::remove_dir_all(&dir);
}
