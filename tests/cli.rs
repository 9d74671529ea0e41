//! The binary: exit codes and the first lines a user reads.

use std::process::Command;

use crate::support::repo;

fn cpe_sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cpe-sim")).args(args).current_dir(repo(".")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn default_run_completes_a_bootstrap_session() {
    let (code, _, err) = cpe_sim(&[]);
    assert_eq!(code, 0, "{err}");
    let first = err.lines().next().unwrap();
    assert!(first.contains("started the embedded ACS at http://127.0.0.1:"), "{first}");
    assert!(err.contains("event_codes=[0 BOOTSTRAP, 1 BOOT]"));
    assert!(err.contains("serial=FEFEFE000000"));
    assert!(err.contains("session completed"));
    for p in ["profiles/example-tr098-gateway/", "profiles/example-tr181-gateway/profile.yaml"] {
        let (code, _, err) = cpe_sim(&["--profile", p, "--cpe-index", "10"]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("serial=FEFEFE00000A"), "{err}");
    }
}

#[test]
fn debug_logs_every_soap_body_but_no_passwords_at_info() {
    let (code, _, err) = cpe_sim(&["--log-level", "debug"]);
    assert_eq!(code, 0);
    assert!(err.contains("<cwmp:Inform>") && err.contains("GetParameterValuesResponse"));
    let (_, _, info) = cpe_sim(&[]);
    assert!(!info.contains("pw-FEFEFE"), "the provisioned password is not logged at info");
}

#[test]
fn usage_and_profile_errors_exit_2() {
    let (code, _, err) = cpe_sim(&["--profile", "no/such/profile"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/profile"), "{err}");
    let (code, _, err) = cpe_sim(&["--acs-url", "ftp://127.0.0.1:9/"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("error: --acs-url ftp://127.0.0.1:9/: must be an http:// or https:// URL"), "{err}");
    let (code, _, _) = cpe_sim(&["--no-such-flag"]);
    assert_eq!(code, 2);
    let (code, _, err) = cpe_sim(&["--cwmp-version", "cwmp-9-9"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn check_prints_the_inform() {
    let (code, out, err) = cpe_sim(&["check", "--profile", "profiles/example-tr098-gateway", "--cpe-index", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("profile example-tr098-gateway ok: root InternetGatewayDevice."), "{out}");
    assert!(out.contains("<SerialNumber>FEFEFE000002</SerialNumber>"));
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["check", "--profile", "profiles/example-tr181-gateway"])
        .current_dir(repo("."))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn a_daemon_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut cpe = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--duration", "10m"])
        .current_dir(repo("."))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cpe.stderr.take().unwrap()).lines();
    // Wait for the bootstrap session to complete, then ask the daemon to stop.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("session completed");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains("mode=Daemon")), "{seen:?}");
    let _ = Command::new("kill").args(["-TERM", &cpe.id().to_string()]).status();
    let started = std::time::Instant::now();
    let status = cpe.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "stops promptly");
    assert!(rest.iter().any(|l| l.contains("done") && l.contains("interrupted=true")), "{rest:?}");
}

#[test]
fn curl_digest_wakes_the_cpe_through_its_published_url() {
    use std::process::Stdio;
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed: the listener's Digest is covered by tests/connreq.rs");
        return;
    }
    let mut cpe = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--cr-bind-addr", "127.0.0.1:0", "--duration", "60s"])
        .current_dir(repo("."))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = LogLines::follow(cpe.stderr.take().unwrap());
    let listening = log.wait_for("listening for Connection Requests at");
    let url = listening.split("url=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/cr"), "{listening}");
    // The embedded ACS provisions ConnectionRequestUsername = the serial, Password = pw-<serial>.
    log.wait_for("session completed");
    let curl = |user: &str| {
        let out = Command::new("curl")
            .args(["--silent", "--max-time", "5", "--digest", "-u", user, "-o", "/dev/null", "-w", "%{http_code}", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("FEFEFE000000:wrong"), "401");
    assert_eq!(curl("FEFEFE000000:pw-FEFEFE000000"), "200");
    let woken = log.wait_for("session started");
    assert!(woken.contains("event_codes=[6 CONNECTION REQUEST]"), "{woken}");
    log.wait_for("session completed");
    let _ = Command::new("kill").args(["-TERM", &cpe.id().to_string()]).status();
    assert_eq!(cpe.wait().unwrap().code(), Some(0));
    assert!(!log.seen.iter().any(|l| l.contains("pw-FEFEFE")), "the password is not logged");
}

#[test]
fn a_udp_connection_request_wakes_the_cpe_through_its_published_address() {
    use std::process::Stdio;
    let mut cpe = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--udp-cr-bind-addr", "127.0.0.1:0", "--api-bind-addr", "127.0.0.1:0", "--duration", "60s"])
        .current_dir(repo("."))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = LogLines::follow(cpe.stderr.take().unwrap());
    let listening = log.wait_for("listening for UDP Connection Requests at");
    let address = listening.split("address=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let to: std::net::SocketAddr = address.parse().unwrap();
    // The embedded ACS provisions ConnectionRequestUsername = the serial, Password = pw-<serial>.
    log.wait_for("session completed");
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = crate::udp_cr::udp_request(to, ts, 7, "FEFEFE000000", "pw-FEFEFE000000");
    for d in [crate::udp_cr::udp_request(to, ts, 6, "FEFEFE000000", "wrong"), good.clone(), good.clone(), good] {
        sock.send_to(&d, to).unwrap();
    }
    let woken = log.wait_for("session started");
    assert!(woken.contains("event_codes=[6 CONNECTION REQUEST]"), "{woken}");
    log.wait_for("session completed");
    // The counters by cause are in /metrics while the run goes on.
    let api = log.seen.iter().find_map(|l| l.split("device state API at http://").nth(1)).expect("the API's address is logged");
    let api = api.split('/').next().unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&api).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut conn, format!("GET /metrics HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut metrics = String::new();
    std::io::Read::read_to_string(&mut conn, &mut metrics).unwrap();
    for line in [
        "cpesim_udp_connection_requests_total{outcome=\"accepted\"} 1",
        "cpesim_udp_connection_requests_total{outcome=\"bad_signature\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    let _ = Command::new("kill").args(["-TERM", &cpe.id().to_string()]).status();
    let stats = log.wait_for("UDP connection requests:");
    assert!(stats.contains("1 accepted") && stats.contains("1 bad signature") && stats.contains("2 replayed id"), "{stats}");
    assert_eq!(cpe.wait().unwrap().code(), Some(0));
    assert!(!log.seen.iter().any(|l| l.contains("pw-FEFEFE")), "the password is not logged");
}

#[test]
fn every_inform_carries_the_udp_connection_request_address() {
    // GenieACS sends a UDP Connection Request only to an address it has a value for: the Inform
    // carries it (TR-069 Annex G.2.1), and SupportedConnReqMethods lists STUN.
    let (code, _, err) = cpe_sim(&["--udp-cr-bind-addr", "127.0.0.1:0", "--duration", "1s", "--log-level", "debug"]);
    assert_eq!(code, 0, "{err}");
    let inform = err.lines().find(|l| l.contains("<cwmp:Inform>")).expect("the Inform is logged at debug");
    assert!(inform.contains("UDPConnectionRequestAddress</Name><Value xsi:type=\"xsd:string\">127.0.0.1:"), "{inform}");
    assert!(err.contains("<Name>Device.ManagementServer.SupportedConnReqMethods</Name><Value xsi:type=\"xsd:string\">HTTP,STUN<"), "{err}");
}

#[test]
fn an_unusable_state_dir_is_reported_and_the_run_goes_on() {
    // /proc refuses new directories, even to root.
    let (code, _, err) = cpe_sim(&["--state-dir", "/proc/cpe-sim-state"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--state-dir /proc/cpe-sim-state") && err.contains("the run goes on in memory"), "{err}");
    assert!(err.contains("session completed"), "{err}");
}

/// Runs `cmd` with stdout and stderr captured, killing it (by its own pid) if it overruns
/// `limit`. Returns the exit code (-1 for a signal), stdout and stderr.
fn bounded(mut cmd: Command, limit: std::time::Duration) -> (i32, String, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd.current_dir(repo(".")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, limit);
    (status.code().unwrap_or(-1), out.join().unwrap(), err.join().unwrap())
}

/// Waits for `child`, killing it if it is still running after `limit`.
fn wait_bounded(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cpe-sim (pid {}) still ran after {limit:?}", child.id());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs cpe-sim with `flags` informing a listener that must see no connection, and asserts a
/// usage error: exit 2 and one stderr line naming `flag`. Returns that line.
fn refused_before_the_first_packet(flags: &[&str], flag: &str) -> String {
    let acs = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    acs.set_nonblocking(true).unwrap();
    let url = format!("http://{}/", acs.local_addr().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpe-sim"));
    // A subcommand comes first; the run flags follow it.
    let (sub, flags) = match flags.split_first() {
        Some((&"sweep", rest)) => (Some("sweep"), rest),
        _ => (None, flags),
    };
    cmd.args(sub);
    if !flags.contains(&"--acs-url") {
        cmd.args(["--acs-url", &url]);
    }
    cmd.args(flags);
    let (code, out, err) = bounded(cmd, std::time::Duration::from_secs(20));
    assert_eq!(code, 2, "{flags:?}: {err}");
    assert!(out.is_empty(), "{flags:?}: {out}");
    assert_eq!(err.lines().count(), 1, "{flags:?}: one line: {err}");
    assert!(err.starts_with(&format!("error: {flag} ")), "{flags:?}: names {flag}: {err}");
    assert!(!err.contains("panicked"));
    match acs.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{flags:?}: the ACS saw a connection: {other:?}"),
    }
    err.trim_end().to_string()
}

// See: #9 (item 3): a bad flag is a usage error before the first packet.
#[test]
fn r9_a_garbage_threshold_is_refused_for_a_single_cpe_too() {
    let line = refused_before_the_first_packet(&["--threshold", "garbage"], "--threshold");
    assert!(line.contains("garbage") && line.contains("e.g. Inform.p99<500ms"), "{line}");
    // A misspelt cause would always pass (nothing is ever counted under it): refused, listing
    // the causes the report counts.
    let line = refused_before_the_first_packet(&["--threshold", "failures.timout<1"], "--threshold");
    assert!(line.contains("unknown cause in `failures.timout`") && line.contains("one of: dns, connect, tls, timeout"), "{line}");
    // A flag of the other protocol: its value is shown as given, a password hidden.
    let line = refused_before_the_first_packet(&["--mqtt-username", "x"], "--mqtt-username");
    assert_eq!(line, "error: --mqtt-username x: needs --protocol usp");
    let line = refused_before_the_first_packet(&["--mqtt-password", "s3cret"], "--mqtt-password");
    assert_eq!(line, "error: --mqtt-password <hidden>: needs --protocol usp");
}

// See: #9
#[test]
fn r9_an_interval_multiplier_must_be_a_positive_number() {
    for v in ["NaN", "0", "-1"] {
        let line = refused_before_the_first_packet(&["--interval-multiplier", v], "--interval-multiplier");
        assert!(line.contains(&format!("--interval-multiplier {v}: must be a number greater than 0")), "{line}");
    }
    let line = refused_before_the_first_packet(&["sweep", "--multipliers", "1,NaN", "--step-duration", "1s"], "--multipliers");
    assert!(line.contains("--multipliers NaN: must be a number greater than 0"), "{line}");
}

// See: #9
#[test]
fn r9_max_connections_0_and_boot_rate_0_are_refused() {
    let line = refused_before_the_first_packet(&["--max-connections", "0", "--cpes", "2"], "--max-connections");
    assert_eq!(line, "error: --max-connections 0: must be at least 1");
    let line = refused_before_the_first_packet(&["--boot-rate", "0", "--cpes", "2"], "--boot-rate");
    assert!(line.contains("--boot-rate 0: must be a finite number greater than 0"), "{line}");
}

// See: #9: `--progress-interval 0s` used to eat all memory in seconds.
#[test]
fn r9_a_zero_progress_interval_is_refused() {
    let line = refused_before_the_first_packet(&["--progress-interval", "0s", "--cpes", "2"], "--progress-interval");
    assert!(line.contains("--progress-interval 0s: must be 100ms"), "{line}");
}

// See: #9
#[test]
fn r9_an_acs_url_must_be_http_or_https() {
    for url in ["ftp://x", "not a url"] {
        let line = refused_before_the_first_packet(&["--acs-url", url], "--acs-url");
        assert!(line.contains("must be an http:// or https:// URL with a host"), "{line}");
    }
}

// See: #9: an unwritable --report-json used to be found after the run, losing its results.
#[test]
fn r9_output_files_that_cannot_be_created_are_refused_up_front() {
    let line = refused_before_the_first_packet(&["--cpes", "2", "--report-json", "/nonexistent-dir/x.json"], "--report-json");
    assert!(line.contains("/nonexistent-dir/x.json: cannot be created"), "{line}");
    // /proc refuses new files, even to root.
    let line = refused_before_the_first_packet(&["--cpes", "2", "--hdr-log", "/proc/cpe-sim.hlog"], "--hdr-log");
    assert!(line.contains("/proc/cpe-sim.hlog: cannot be created"), "{line}");
}

// See: #9
#[test]
fn r9_zero_cpes_is_refused() {
    let acs = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    acs.set_nonblocking(true).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpe-sim"));
    cmd.args(["--acs-url", &format!("http://{}/", acs.local_addr().unwrap()), "--cpes", "0"]);
    let (code, _, err) = bounded(cmd, std::time::Duration::from_secs(20));
    // clap's own error: the message is its first line, then a pointer to --help.
    assert_eq!(code, 2, "{err}");
    assert!(err.lines().next().unwrap().contains("'--cpes <CPES>': `0` is out of range (1 … 4294967295)"), "{err}");
    assert!(matches!(acs.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
}

/// Runs `cpe-sim <args>` through sh with `redirect` applied (e.g. `2>&-`), bounded in time.
fn through_sh(args: &[&str], redirect: &str) -> (i32, String, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(r#"exec "$0" "$@" {redirect}"#)).arg(env!("CARGO_BIN_EXE_cpe-sim")).args(args);
    bounded(cmd, std::time::Duration::from_secs(30))
}

// See: #9: a closed stderr used to exit 101.
#[test]
fn r9_a_closed_stderr_is_not_a_crash() {
    let (code, out, _) = through_sh(&["--cpes", "2", "--duration", "1s", "--progress-interval", "200ms"], "2>&-");
    assert_eq!(code, 0);
    assert!(out.starts_with("cpe-sim report: 2 CPEs"), "{out}");
    let (code, _, _) = through_sh(&["--max-connections", "0"], "2>&-");
    assert_eq!(code, 2);
    let (code, _, _) = through_sh(&[], "2>&-");
    assert_eq!(code, 0, "a single CPE with a closed stderr");
}

// See: #9: a broken stderr pipe (`2>&1 | head -c 10`) used to panic in the first log line after.
#[test]
fn r9_a_broken_stderr_pipe_is_not_a_crash() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--cpes", "2", "--duration", "1s", "--progress-interval", "200ms"])
        .current_dir(repo("."))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stderr.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's reader is gone now: every later write to stderr gets EPIPE.
    let status = wait_bounded(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status}");
}

// See: #9: the report on a stdout whose reader left (`| head -c 10`) is not a crash.
#[test]
fn r9_a_closed_or_broken_stdout_is_not_a_crash() {
    use std::io::Read;
    use std::process::Stdio;
    let (code, _, err) = through_sh(&["check", "--profile", "profiles/example-tr181-gateway"], ">&-");
    assert_eq!(code, 0, "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["check", "--profile", "profiles/example-tr181-gateway"])
        .current_dir(repo("."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"profile ex");
    assert_eq!(wait_bounded(&mut child, std::time::Duration::from_secs(30)).code(), Some(0));
    // The fleet report is written after the reader has left.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["--cpes", "2", "--duration", "1s"])
        .current_dir(repo("."))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(wait_bounded(&mut child, std::time::Duration::from_secs(30)).code(), Some(0));
}

/// The log says what happened (issue 10 item 4): the `set` lines come when the ACS sets the
/// values, before the session ends; a run resumed from `--state-dir` does not repeat them.
#[test]
fn set_lines_come_when_values_are_set_and_are_not_repeated_after_a_resume() {
    let dir = std::env::temp_dir().join(format!("cpe-sim-setlines-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.to_str().unwrap().to_string();
    let (code, _, err) = cpe_sim(&["--state-dir", &state]);
    assert_eq!(code, 0, "{err}");
    let set = err.find("set Device.ManagementServer.PeriodicInformInterval = 300").expect("the ACS's value is logged");
    let done = err.find("session completed").expect("the session completed");
    assert!(set < done, "the set line comes when the value is set, before the session ends:\n{err}");
    let (code, _, err) = cpe_sim(&["--state-dir", &state]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 BOOT") && !err.contains("0 BOOTSTRAP"), "resumed: {err}");
    assert!(!err.contains(" set Device."), "a resumed run repeats no earlier change:\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A session the ACS ends with an empty 200 (not a 204) is logged as such.
#[test]
fn a_session_ended_by_an_empty_200_is_not_logged_as_204() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        // One connection: the InformResponse, then an empty 200 to the empty POST.
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let inform_response = "<soap-env:Envelope xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body></soap-env:Envelope>";
        for reply in [
            format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{inform_response}", inform_response.len()),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string(),
        ] {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            // Read one request: the head, then Content-Length bytes of body.
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            s.write_all(reply.as_bytes()).unwrap();
        }
    });
    let (code, _, err) = cpe_sim(&["--acs-url", &url]);
    server.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the ACS ended it with an empty HTTP 200"), "{err}");
    assert!(!err.contains("204 No Content"), "{err}");
}

// Review finding 3: a CI gate must not pass on nothing.
#[test]
fn a_latency_threshold_without_a_single_inform_is_no_data_and_breached() {
    // An ACS port nothing listens on: every session fails at connect, no Inform is ever timed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cpe-sim"));
    cmd.args(["--cpes", "2", "--acs-url", &url, "--duration", "2s", "--timeout", "1s"]);
    cmd.args(["--threshold", "Inform.p99<1s", "--threshold", "failures.timeout<1"]);
    let (code, out, err) = bounded(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code, 99, "{err}");
    assert!(out.contains("  BREACHED Inform.p99<1s (actual no data)"), "{out}");
    assert!(out.contains("  passed   failures.timeout<1 (actual 0)"), "a count of nothing is a real 0: {out}");
    assert!(err.contains("threshold breached: Inform.p99<1s (actual no data)"), "{err}");
}

/// A child's log, line by line as it runs (read on a thread of its own).
struct LogLines {
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl LogLines {
    fn follow(stderr: std::process::ChildStderr) -> LogLines {
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader};
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        LogLines { lines, seen: Vec::new() }
    }

    /// The next line containing `needle` (each line waited for at most 10 s).
    fn wait_for(&mut self, needle: &str) -> String {
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            let found = line.contains(needle);
            self.seen.push(line);
            if found {
                return self.seen.last().cloned().unwrap_or_default();
            }
        }
        panic!("no line with `{needle}`: {:?}", self.seen);
    }
}
