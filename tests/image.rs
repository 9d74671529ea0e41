//! The container image: `scripts/build-image.sh` builds it from scratch with buildah (no base
//! image pulled), it runs as a non-root user with `cpe-sim` as its entrypoint, and podman runs one
//! slice of a fleet from it (set by the same environment variables as the binary, as a
//! Kubernetes Indexed Job's pod is) against an ACS on the host's 127.0.0.1.
//!
//! Needs buildah, podman and runc (Debian packages; `scripts/test.sh` installs them). The image is
//! built from this test's own binary to keep the suite quick; `scripts/build-image.sh` alone builds
//! it from a release build.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::raw::{http, RawAcs, RawReply};
use crate::support::{inform_response, repo, texts};

/// Runs `cmd` to its end within `limit`, killing it (by its id) if it takes longer.
fn bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

#[test]
fn the_image_builds_from_scratch_and_runs_a_slice_as_a_non_root_user() {
    for t in ["buildah", "podman"] {
        assert!(tool(t), "{t} is not installed: scripts/test.sh installs buildah, podman and runc (Debian packages)");
    }
    let mut build = Command::new(repo("scripts/build-image.sh"));
    build.args(["--binary", env!("CARGO_BIN_EXE_cpe-sim")]).env("STORAGE_DRIVER", "vfs");
    let out = bounded(build, Duration::from_secs(300));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build-image.sh failed:\n{log}");
    let tag = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert!(tag.starts_with(&format!("cpe-sim:{version}-g")), "tag {tag:?}");

    // Non-root, cpe-sim as the entrypoint.
    let mut inspect = Command::new("buildah");
    inspect.args(["--storage-driver", "vfs", "inspect", "--format", "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}", &tag]);
    let config = String::from_utf8_lossy(&bounded(inspect, Duration::from_secs(60)).stdout).trim().to_string();
    assert_eq!(config, "65532:65532 [/usr/local/bin/cpe-sim]");

    // One slice (index 1 of 2) of 6 CPEs, configured by environment only, informs the host's ACS.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let acs = rt.block_on(RawAcs::start(|req, _| {
        if req.body_str().contains("<cwmp:Inform>") {
            return RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &inform_response("1")));
        }
        RawReply::Send(http("204 No Content", &[], b""))
    }));
    // This sandbox's limits cannot be raised and its cgroups are v1/hybrid: keep the host's
    // limits (no default ulimits) and use runc (crun refuses hybrid cgroups).
    let conf = std::env::temp_dir().join(format!("cpe-sim-containers-{}.conf", std::process::id()));
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    let name = format!("cpe-sim-test-{}", std::process::id());
    let mut run = Command::new("podman");
    run.env("CONTAINERS_CONF", &conf)
        .args(["--storage-driver", "vfs", "--runtime", "runc", "run", "--rm", "--name", &name])
        .args(["--network", "host", "--ulimit", "host"])
        .args(["-e", "JOB_COMPLETION_INDEX=1", "-e", "CPE_SIM_SLICES=2"])
        .args(["-e", &format!("CPE_SIM_ACS_URL={}", acs.url("/acs"))])
        .args([&tag, "--cpes", "6", "--log-level", "info", "--state-dir", "/data/state"]);
    let out = bounded(run, Duration::from_secs(180));
    let _ = Command::new("podman").args(["--storage-driver", "vfs", "rm", "-f", &name]).output();
    let _ = std::fs::remove_file(&conf);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "podman run failed ({:?}):\n{log}", out.status.code());
    // --state-dir in /data proves the user can write its working directory.
    assert!(log.contains("device state saved"), "{log}");
    let serials: BTreeSet<String> = acs
        .requests()
        .iter()
        .map(|r| r.body_str())
        .filter(|b| b.contains("<cwmp:Inform>"))
        .filter_map(|b| texts(&b, "SerialNumber").pop())
        .collect();
    let want: BTreeSet<String> = (3..6).map(|i| format!("FEFEFE{i:06X}")).collect();
    assert_eq!(serials, want, "slice 1/2 of 6 CPEs is cpe-3 … cpe-5");
}
