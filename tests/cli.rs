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
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("scheme must be http or https"), "{err}");
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
    use std::io::{BufRead, BufReader};
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
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = cpe.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
            seen.push(line);
            if seen.last().unwrap().contains(needle) {
                return seen.last().unwrap().clone();
            }
        }
        panic!("no line with `{needle}`: {seen:?}");
    };
    let mut seen = Vec::new();
    let listening = wait_for("listening for Connection Requests at", &mut seen);
    let url = listening.split("url=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/cr"), "{listening}");
    // The embedded ACS provisions ConnectionRequestUsername = the serial, Password = pw-<serial>.
    wait_for("session completed", &mut seen);
    let curl = |user: &str| {
        let out = Command::new("curl")
            .args(["--silent", "--max-time", "5", "--digest", "-u", user, "-o", "/dev/null", "-w", "%{http_code}", &url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("FEFEFE000000:wrong"), "401");
    assert_eq!(curl("FEFEFE000000:pw-FEFEFE000000"), "200");
    let woken = wait_for("session started", &mut seen);
    assert!(woken.contains("event_codes=[6 CONNECTION REQUEST]"), "{woken}");
    wait_for("session completed", &mut seen);
    let _ = Command::new("kill").args(["-TERM", &cpe.id().to_string()]).status();
    assert_eq!(cpe.wait().unwrap().code(), Some(0));
    assert!(!seen.iter().any(|l| l.contains("pw-FEFEFE")), "the password is not logged");
}

#[test]
fn an_unusable_state_dir_is_reported_and_the_run_goes_on() {
    // /proc refuses new directories, even to root.
    let (code, _, err) = cpe_sim(&["--state-dir", "/proc/cpe-sim-state"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--state-dir /proc/cpe-sim-state") && err.contains("the run goes on in memory"), "{err}");
    assert!(err.contains("session completed"), "{err}");
}
