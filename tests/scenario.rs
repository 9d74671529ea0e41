//! Scenario files (issue 12 items 1 and 7): parsing and every error class, two profiles against
//! two ACS URLs, source addresses 127.0.0.2–127.0.0.9, an outage's `1 BOOT` storm and the waves'
//! shares in virtual time, the shipped examples against the embedded ACS, and the embedded ACS's
//! push mode, backlog and report line.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use cpe_sim::acs::server::{AcsServer, ServerConfig, SessionRecord};
use cpe_sim::acs::AcsScript;
use cpe_sim::cli::{Args, Command as Sub, RunArgs};
use cpe_sim::cpe::periodic::PeriodicPlan;
use cpe_sim::engine::{self, Boot, Fleet};
use cpe_sim::scenario::{self, Scenario, ScenarioError};

use crate::engine::{manual, plan_for, start, Acs, GRACE};
use crate::support::raw::simple_acs;
use crate::support::{profile, repo, TR181};

const BIN: &str = env!("CARGO_BIN_EXE_cpe-sim");

/// Fleets run by the binary take this in turn: one child fleet at a time from this module, so
/// the suite's other timing tests keep their share of a 2-core machine.
static FLEET_CHILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_child_fleet() -> std::sync::MutexGuard<'static, ()> {
    FLEET_CHILD.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-scenario-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `yaml` written to `<scratch>/scenario.yaml`, with `{repo}` replaced by the repository's path.
fn write(name: &str, yaml: &str) -> PathBuf {
    let path = scratch(name).join("scenario.yaml");
    std::fs::write(&path, yaml.replace("{repo}", &repo(".").display().to_string())).unwrap();
    path
}

fn run_args(flags: &[&str]) -> RunArgs {
    let mut argv = vec!["cpe-sim"];
    argv.extend_from_slice(flags);
    Args::try_parse_from(argv).unwrap().run
}

/// `scenario::prepare` on `yaml` with no flags given.
fn prepare(name: &str, yaml: &str) -> (Result<Scenario, ScenarioError>, RunArgs, PathBuf) {
    let path = write(name, yaml);
    let mut args = run_args(&[]);
    let r = scenario::prepare(&path, 1.0, &mut args, &|_| false);
    (r, args, path)
}

/// The error `yaml` must give: (line, key, message).
fn refused(name: &str, yaml: &str) -> (Option<usize>, String, String) {
    let (r, _, path) = prepare(name, yaml);
    let e = match r {
        Ok(_) => panic!("{name}: accepted"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(text.starts_with(&format!("scenario {}", path.display())), "{name}: the message names the file: {text}");
    (e.line.map(|l| l.0), e.key.clone().unwrap_or_default(), text)
}

/// Runs the binary with `args` in the repository, killed (by its pid) after `bound`.
fn cpe_sim(args: &[&str], bound: Duration) -> Output {
    let mut child = Command::new(BIN).args(args).current_dir(repo(".")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let end = Instant::now() + bound;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
            let out = child.wait_with_output().unwrap();
            panic!("cpe-sim {args:?} did not end within {bound:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const TWO_FLEETS: &str = r#"
fleets:
  - name: tr181
    profile: {repo}/profiles/example-tr181-gateway
    count: 20
    oui: A0B1C2
  - name: tr098
    profile: {repo}/profiles/example-tr098-gateway
    count: 10
    oui: D0E1F2
"#;

// ---------------------------------------------------------------------------------------------
// Parsing and errors.

#[test]
fn the_binary_names_the_file_line_and_run_key_of_a_run_setting_plan_refuses() {
    // plan::validate's rules, reported against the file when the file gave the value.
    for (key, value, rule) in [
        ("shards", "0", "`0` must be 1 … 65535"),
        ("max-connections", "0", "`0` must be at least 1"),
        ("timeout", "0s", "`0s` must be greater than 0s"),
        ("progress-interval", "1ms", "`1ms` must be 100ms"),
    ] {
        let path = write(&format!("run-{key}"), &format!("name: r\nrun:\n  cpes: 1\n  {key}: {value}\n"));
        let out = cpe_sim(&["run", path.to_str().unwrap()], Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let want = format!("error: scenario {}:4:3: key `run.{key}`: {rule}", path.display());
        assert!(err.contains(&want), "{key}: want {want}, got {err}");
        assert!(!err.contains(&format!("--{key}")), "{key}: no flag was given: {err}");
    }
    // Flow style finds the key's column; a flag given on the command line is still the flag's error.
    let path = write("run-flow", "run: {shards: 0}\n");
    let out = cpe_sim(&["run", path.to_str().unwrap()], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains(&format!("{}:1:7: key `run.shards`", path.display())), "{err}");
    let out = cpe_sim(&["run", path.to_str().unwrap(), "--shards", "0"], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && err.contains("error: --shards 0: must be 1 … 65535"), "{err}");
    assert!(!err.contains("scenario"), "the flag's value, not the file's: {err}");
}

#[test]
fn a_scenario_fills_the_flags_not_given_and_flags_win() {
    let yaml = format!(
        "{TWO_FLEETS}run:\n  max-connections: 77\n  timeout: 2s\n  connection-mode: per-session\nphases:\n  - boot: {{spread: 10s}}\n  - periodic: {{multiplier: 0.5, duration: 1m}}\n  - outage: {{duration: 30s}}\n  - name: wave\n    reboot_wave: {{share: 0.5, over: 20s}}\nthresholds: [\"Inform.p99<500ms\"]\n"
    );
    let (s, args, _) = prepare("fills", &yaml);
    let s = s.unwrap();
    assert_eq!(
        (args.cpes, args.max_connections, args.timeout, args.connection_mode.as_str()),
        (30, 77, Duration::from_secs(2), "per-session")
    );
    assert_eq!(args.boot_spread, Duration::from_secs(10));
    assert_eq!(args.thresholds, vec!["Inform.p99<500ms".to_string()]);
    // The run lasts as long as its timeline: 10 s boot + 60 + 30 + 20.
    assert_eq!(args.duration, Some(Duration::from_secs(120)));
    let names: Vec<_> = s.timeline.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["boot", "periodic", "outage", "wave"]);
    assert_eq!((s.fleets.len(), s.fleets[0].cpes, s.fleets[1].cpes), (2, 20, 10));
    assert_eq!(&*s.fleets[1].model.identity.oui, "D0E1F2");
    // The same plan rules as flags.
    assert!(cpe_sim::plan::validate(&args, None).is_ok());

    // A flag given wins over the file; a time scale shrinks the story.
    let path = write("fills-flags", &yaml);
    let mut args = run_args(&["--max-connections", "5", "--boot-spread", "1s"]);
    let given = |id: &str| id == "max_connections" || id == "boot_spread";
    let s = scenario::prepare(&path, 0.1, &mut args, &given).unwrap();
    assert_eq!((args.max_connections, args.boot_spread), (5, Duration::from_secs(1)));
    assert_eq!(args.duration, Some(Duration::from_secs(12)));
    assert!((args.interval_multiplier - 0.1).abs() < 1e-9);
    assert!(matches!(s.timeline.phases[1].kind, engine::phase::PhaseKind::Periodic { multiplier } if (multiplier - 0.05).abs() < 1e-9));
}

#[test]
fn every_error_names_file_line_key_and_what_is_allowed() {
    // Unknown keys, at the top and inside a phase: the allowed keys are listed.
    let (line, key, m) = refused("unknown-top", "name: x\nfleet: []\n");
    assert_eq!((line, key.as_str()), (Some(2), ""), "{m}");
    assert!(m.contains("unknown field `fleet`") && m.contains("`fleets`") && m.contains("`phases`"), "{m}");
    let (line, key, m) = refused("unknown-phase", "phases:\n  - boot: {spread: 1s}\n  - outage: {duration: 1s, storm: 0s}\n");
    assert_eq!((line, key.as_str()), (Some(3), "phases[1].outage"), "{m}");
    assert!(m.contains("unknown field `storm`, expected `duration` or `storm_spread`"), "{m}");
    // Values out of range, with the range.
    let (line, key, m) = refused("share", "phases:\n  - reboot_wave:\n      share: 1.5\n      over: 1m\n");
    assert_eq!((line, key.as_str()), (Some(3), "phases[0].reboot_wave.share"), "{m}");
    assert!(m.contains("share `1.5` must be greater than 0 and at most 1"), "{m}");
    let (line, key, m) = refused("unit", "run:\n  duration: 5y\n");
    assert!(line == Some(2) && key == "run" && m.contains("`5y`: unknown unit `y` (ms, s, m, h)"), "{m}");
    let (_, key, m) = refused("mapping", "acs:\n  endpoints: [http://127.0.0.1:1/]\n  mapping: rr\n");
    assert!(key == "acs.mapping" && m.contains("expected `round-robin` or `serial-hash`"), "{m}");
    let (line, key, m) = refused("url", "acs:\n  endpoints: [ftp://x/]\n");
    assert!(line == Some(2) && key == "acs" && m.contains("endpoint `ftp://x/`: must be an http:// or https:// URL"), "{m}");
    let (_, key, m) = refused("oui", &TWO_FLEETS.replace("D0E1F2", "D0E1F"));
    assert!(key == "fleets[1].oui" && m.contains("oui `D0E1F` must be six hex digits"), "{m}");
    let (line, key, m) = refused("threshold", "name: t\nthresholds:\n  - \"Inform.p99<500ms\"\n  - \"Inform.p99<<1\"\n");
    assert!(line == Some(4) && key == "thresholds[1]" && m.contains("`<1` is not a number"), "{m}");
    let (_, key, m) = refused("sources-bad", "sources: 10.0.0.0/8\n");
    assert!(key == "sources" && m.contains("more than 1024"), "{m}");
    // Settings for an embedded ACS that does not run (the file gives endpoints).
    let (line, key, m) =
        refused("embedded-and-endpoints", "name: e\nacs:\n  endpoints: [http://127.0.0.1:1/]\nembedded_acs:\n  push: [\"Reboot r1\"]\n");
    assert_eq!((line, key.as_str()), (Some(4), "embedded_acs"), "{m}");
    assert!(m.contains("does not run when acs.endpoints is given"), "{m}");
    // A phase of no time (it used to be refused as "phases need a run that lasts").
    for (kind, phase) in [
        ("periodic", "periodic: {multiplier: 0.1, duration: 0s}"),
        ("ramp", "ramp: {from: 1, to: 2, duration: 0s}"),
        ("outage", "outage: {duration: 0ms}"),
    ] {
        let (line, key, m) = refused(&format!("zero-{kind}"), &format!("name: z\nphases:\n  - {phase}\n"));
        assert_eq!((line, key.as_str()), (Some(3), format!("phases[0].{kind}.duration").as_str()), "{m}");
        assert!(m.contains("must be greater than 0") && !m.contains("run that lasts"), "{m}");
    }
    // A phase with no kind or two kinds, and a boot phase that is not first.
    let (line, key, m) = refused("two-kinds", "phases:\n  - outage: {duration: 1s}\n    reboot_wave: {share: 0.1, over: 1s}\n");
    assert_eq!((line, key.as_str()), (Some(2), "phases"), "{m}");
    assert!(m.contains("exactly one of boot, periodic, ramp, outage, reboot_wave, value_change_wave"), "{m}");
    let (line, key, m) = refused("boot-second", "run:\n  duration: 1m\nphases:\n  - outage: {duration: 1s}\n  - boot: {spread: 1s}\n");
    assert_eq!((line, key.as_str()), (Some(5), "phases[1].boot"), "{m}");
    // Fleets: count xor share, shares adding up to 1, profiles that load, serials that never collide.
    let (line, key, m) = refused("mix", &TWO_FLEETS.replace("count: 10", "share: 0.5"));
    assert!(key == "fleets" && line == Some(3) && m.contains("not a mix"), "{m}");
    let shares = TWO_FLEETS.replace("count: 20", "share: 0.5").replace("count: 10", "share: 0.3");
    let (_, _, m) = refused("shares", &shares);
    assert!(m.contains("add up to 0.8; they must add up to 1"), "{m}");
    let (line, key, m) = refused("profile", &TWO_FLEETS.replace("example-tr098-gateway", "no-such-profile"));
    assert!(key == "fleets[1].profile" && line == Some(7) && m.contains("cannot read profile"), "{m}");
    let collide = TWO_FLEETS
        .replace("oui: A0B1C2", "serial: \"SN1{index}\"\n    count: 5")
        .replace("    count: 20\n", "")
        .replace("oui: D0E1F2", "serial: \"SN{index}\"")
        .replace("count: 10", "count: 20");
    let (_, key, m) = refused("collide", &collide);
    assert!(key == "fleets" && m.contains("serial number `SN10`") && m.contains("is also another CPE's"), "{m}");
    let (_, key, m) = refused("no-index", &TWO_FLEETS.replace("oui: D0E1F2", "serial: \"FIXED\""));
    assert!(key == "fleets[1].serial" && m.contains("serial `FIXED` must contain {index}"), "{m}");
    // Sources this host cannot bind; a value-change parameter no fleet has.
    let (_, key, m) = refused("unbindable", "sources: [192.0.2.1]\n");
    assert!(key == "sources" && m.contains("192.0.2.1 is not an address of this host"), "{m}");
    let wave = format!(
        "{TWO_FLEETS}run:\n  duration: 1m\nphases:\n  - value_change_wave: {{share: 0.1, over: 1s, parameter: Device.No.Such, value: x}}\n"
    );
    let (_, key, m) = refused("wave-param", &wave);
    assert!(key == "phases[0].value_change_wave.parameter" && m.contains("`Device.No.Such` is not a parameter of fleet `tr181`"), "{m}");
    let notify = TWO_FLEETS.replace("oui: A0B1C2", "oui: A0B1C2\n    notify_active: [Device.DeviceInfo.UpTime]");
    let (_, key, m) = refused("notify", &notify);
    assert!(key == "fleets[0].notify_active" && m.contains("can_deny"), "{m}");
}

#[test]
fn the_binary_refuses_a_bad_file_with_exit_2_before_anything_starts() {
    let path = write("binary", "phases:\n  - reboot_wave: {share: 0, over: 1m}\n");
    let out = cpe_sim(&["run", path.to_str().unwrap()], Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:2:", path.display())) && err.contains("phases[0].reboot_wave.share`: share `0` must be"), "{err}");
    assert!(!err.contains("embedded ACS"), "nothing started: {err}");
    for bad in [["--time-scale", "0"], ["--acs-backlog", "0"]] {
        let out = cpe_sim(&["run", path.to_str().unwrap(), bad[0], bad[1]], Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{} 0: must be", bad[0])), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fleets, endpoints and sources over real sockets, through the binary.

/// Embedded ACSs (GenieACS-like, without the bootstrap provisioning so periodic informs keep the
/// run's interval) on a runtime of their own.
struct Acses {
    rt: tokio::runtime::Runtime,
    servers: Vec<AcsServer>,
}

impl Acses {
    fn start(n: usize) -> Acses {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let cfg = ServerConfig { script: AcsScript { bootstrap_provisioning: false, ..AcsScript::default() }, ..ServerConfig::default() };
        let servers = (0..n).map(|_| rt.block_on(AcsServer::start(([127, 0, 0, 1], 0).into(), cfg.clone())).unwrap()).collect();
        Acses { rt, servers }
    }

    fn urls(&self) -> String {
        self.servers.iter().map(|s| s.url()).collect::<Vec<_>>().join(", ")
    }

    fn sessions(&self, i: usize) -> Vec<SessionRecord> {
        self.servers[i].finished()
    }

    fn stop(self) {
        for s in self.servers {
            self.rt.block_on(s.stop());
        }
    }
}

/// Sessions by serial.
fn by_serial(records: &[SessionRecord]) -> HashMap<String, Vec<&SessionRecord>> {
    let mut m: HashMap<String, Vec<&SessionRecord>> = HashMap::new();
    for r in records {
        m.entry(r.serial.clone().unwrap_or_default()).or_default().push(r);
    }
    m
}

#[test]
fn two_profiles_against_two_acs_urls_each_see_their_share_sticky_and_distinct() {
    let _turn = one_child_fleet();
    for mapping in ["round-robin", "serial-hash"] {
        let acs = Acses::start(2);
        let yaml = format!(
            "{TWO_FLEETS}acs:\n  endpoints: [{}]\n  mapping: {mapping}\nrun:\n  inform-interval: 1s\nphases:\n  - boot: {{spread: 300ms}}\n  - periodic: {{multiplier: 0.5, duration: 3s}}\n",
            acs.urls()
        );
        let path = write(&format!("two-urls-{mapping}"), &yaml);
        let out = cpe_sim(&["run", path.to_str().unwrap(), "--progress-interval", "1s"], Duration::from_secs(60));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("fleets=tr181×20 (example-tr181-gateway), tr098×10 (example-tr098-gateway) endpoints=2"), "{err}");
        let (a, b) = (acs.sessions(0), acs.sessions(1));
        let (sa, sb) = (by_serial(&a), by_serial(&b));
        // Sticky: no serial ever reached both URLs; together they are the 30 CPEs, none twice.
        let ka: HashSet<_> = sa.keys().cloned().collect();
        let kb: HashSet<_> = sb.keys().cloned().collect();
        assert!(ka.is_disjoint(&kb), "{mapping}: a CPE informed both URLs");
        assert_eq!(ka.len() + kb.len(), 30, "{mapping}: every CPE, each with its own serial");
        let all: Vec<&String> = ka.iter().chain(kb.iter()).collect();
        assert_eq!(all.iter().filter(|s| s.starts_with("A0B1C2")).count(), 20, "{mapping}: the TR-181 fleet's OUI");
        assert_eq!(all.iter().filter(|s| s.starts_with("D0E1F2")).count(), 10, "{mapping}: the TR-098 fleet's OUI");
        match mapping {
            "round-robin" => assert_eq!((ka.len(), kb.len()), (15, 15), "round robin: half each"),
            _ => assert!(ka.len() >= 5 && kb.len() >= 5, "serial hash: both URLs get a share ({} / {})", ka.len(), kb.len()),
        }
        // Each CPE came back several times (periodic informs), always to the same URL.
        for (serial, sessions) in sa.iter().chain(sb.iter()) {
            assert!(sessions.len() >= 2, "{mapping}: {serial} informed {} times", sessions.len());
            assert_eq!(sessions[0].events, ["0 BOOTSTRAP", "1 BOOT"], "{serial}");
        }
        acs.stop();
    }
}

#[test]
fn cpes_bind_source_addresses_127_0_0_2_to_9() {
    let _turn = one_child_fleet();
    let acs = Acses::start(1);
    let yaml = format!(
        "fleets:\n  - name: gw\n    profile: {{repo}}/profiles/example-tr181-gateway\n    count: 24\nsources: [127.0.0.2/31, 127.0.0.4, 127.0.0.5, 127.0.0.6, 127.0.0.7, 127.0.0.8/31]\nacs:\n  endpoints: {}\nrun:\n  inform-interval: 1s\n  connection-mode: per-session\nphases:\n  - boot: {{spread: 200ms}}\n  - periodic: {{multiplier: 0.5, duration: 1500ms}}\n",
        acs.urls()
    );
    let path = write("sources", &yaml);
    let out = cpe_sim(&["run", path.to_str().unwrap()], Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let records = acs.sessions(0);
    let mut seen: HashSet<IpAddr> = HashSet::new();
    for (serial, sessions) in by_serial(&records) {
        let index = u32::from_str_radix(&serial[6..], 16).unwrap();
        // Rank r binds source r mod 8: 127.0.0.2 + r % 8, in every session.
        let want: IpAddr = format!("127.0.0.{}", 2 + index % 8).parse().unwrap();
        assert!(sessions.len() >= 2, "{serial}");
        for s in sessions {
            assert_eq!(s.peer.map(|p| p.ip()), Some(want), "{serial}");
        }
        seen.insert(want);
    }
    let want: HashSet<IpAddr> = (2..=9).map(|i| format!("127.0.0.{i}").parse().unwrap()).collect();
    assert_eq!(seen, want, "the ACS saw exactly 127.0.0.2–127.0.0.9");
    acs.stop();
}

// ---------------------------------------------------------------------------------------------
// Phases in virtual time: the engine on a manual clock, real sockets.

/// The engine's plan for a scenario file (as `commands::run` builds it), on a manual clock.
fn scenario_plan(name: &str, yaml: &str, url: String) -> (engine::Plan, Arc<engine::clock::ManualClock>, RunArgs) {
    let (s, args, _) = prepare(name, yaml);
    let s = s.unwrap();
    let (clock, hand) = manual();
    let mut plan = plan_for(Arc::new(profile(TR181)), url, args.cpes, Some(clock));
    plan.shards = 2;
    plan.boot = Boot::Spread(args.boot_spread);
    plan.periodic = PeriodicPlan { multiplier: args.interval_multiplier, interval: args.inform_interval };
    plan.fleets = s.fleets.into_iter().map(|f| Fleet::new(f.name, Arc::new(f.model), f.cpes)).collect();
    plan.timeline = s.timeline;
    plan.routes = s.routes;
    (plan, hand, args)
}

#[test]
fn an_outage_withholds_sessions_then_every_cpe_comes_back_with_1_boot_at_once() {
    let _turn = one_child_fleet();
    let acs = Acs::start(|req, _| cpe_sim_test_reply(req));
    let yaml = format!(
        "{}run:\n  inform-interval: 60s\nphases:\n  - boot: {{spread: 0s}}\n  - periodic: {{multiplier: 1, duration: 180s}}\n  - outage: {{duration: 300s}}\n  - periodic: {{multiplier: 1, duration: 100s}}\n",
        TWO_FLEETS.replace("count: 20", "count: 6").replace("count: 10", "count: 4")
    );
    let (plan, hand, _) = scenario_plan("outage", &yaml, acs.url());
    let run = start(plan, None, Vec::new());
    settle(&run, &acs, 10, "the boot");
    // Each CPE informs once per 60 s window, at a phase of its own.
    let mut done = 10;
    for step in [60_000, 60_000, 59_999] {
        hand.advance(Duration::from_millis(step));
        done += 10;
        settle(&run, &acs, done, "periodic informs");
    }
    // 180 s: dark for 300 s. The periodic informs due meanwhile are withheld.
    hand.advance(Duration::from_millis(1));
    for _ in 0..4 {
        hand.advance(Duration::from_secs(60));
        std::thread::sleep(GRACE / 4);
    }
    assert_eq!(acs.informs().len(), 40, "no session while dark");
    // 480 s: power is back — a storm of 1 BOOT, every CPE at once.
    hand.advance(Duration::from_secs(60));
    settle(&run, &acs, 50, "the storm");
    let informs = acs.informs();
    let storm: Vec<_> = informs[40..].iter().collect();
    assert_eq!(storm.iter().map(|(s, _)| s).collect::<HashSet<_>>().len(), 10, "every CPE once");
    assert!(storm.iter().all(|(_, e)| e == &["1 BOOT"]), "{storm:?}");
    // After the storm, periodic informs resume: one each in the next 60 s.
    hand.advance(Duration::from_secs(60));
    settle(&run, &acs, 60, "periodic informs after the storm");
    assert!(acs.informs()[50..].iter().all(|(_, e)| e == &["2 PERIODIC"]));
    run.finish();
}

/// Waits until the ACS saw `n` Informs (a generous bound: the machine may be busy) and their
/// sessions ended (each handed to its CPE's agenda, so the clock may move on), and checks after
/// a grace period that no more came.
fn settle(run: &crate::engine::Running, acs: &Acs, n: usize, what: &str) {
    // Counted under the ACS's lock without copying the requests (informs() parses every body).
    let count = || acs.raw.requests.lock().unwrap().iter().filter(|r| r.body.windows(13).any(|w| w == b"<cwmp:Inform>")).count();
    let end = Instant::now() + Duration::from_secs(60);
    while count() < n {
        assert!(Instant::now() < end, "timed out waiting for {what}: {} of {n} Informs", count());
        std::thread::sleep(Duration::from_millis(50));
    }
    run.wait_for(what, |r| r.outcomes.completed >= n as u64);
    std::thread::sleep(GRACE / 5);
    let got = acs.informs();
    assert_eq!(got.len(), n, "{what}: {:?}", &got[n.min(got.len()).saturating_sub(5)..]);
}

/// InformResponse, then 204.
fn cpe_sim_test_reply(req: &crate::support::raw::RawRequest) -> crate::support::raw::RawReply {
    crate::support::raw::RawReply::Send(simple_acs(req))
}

#[test]
fn reboot_and_value_change_waves_hit_exactly_their_share_spread_over_the_wave() {
    let _turn = one_child_fleet();
    let acs = Acs::start(|req, _| cpe_sim_test_reply(req));
    let fleets = "fleets:\n  - name: a\n    profile: {repo}/profiles/example-tr181-gateway\n    share: 0.6\n  - name: b\n    profile: {repo}/profiles/example-tr098-gateway\n    share: 0.4\n";
    let yaml = format!(
        "{fleets}run:\n  cpes: 40\n  duration: 1h\nphases:\n  - boot: {{spread: 0s}}\n  - periodic: {{multiplier: 1, duration: 10s}}\n  - reboot_wave: {{share: 0.3, over: 10s}}\n  - value_change_wave: {{share: 0.25, over: 10s, parameter: Device.DeviceInfo.ProvisioningCode, value: wave-1}}\n"
    );
    let (plan, hand, _) = scenario_plan("waves", &yaml, acs.url());
    let run = start(plan, None, Vec::new());
    settle(&run, &acs, 40, "the boot");
    // The wave starts at 10 s; half way through it: some of its CPEs, not all.
    hand.advance(Duration::from_secs(15));
    crate::engine::eventually("the wave's first reboots", || acs.raw.requests.lock().unwrap().len() > 80);
    std::thread::sleep(GRACE);
    let half = acs.informs().len() - 40;
    assert!(half < 12, "{half} of 12 reboots at the wave's middle");
    // Up to the end of the reboot wave (the value-change wave starts at 20 s).
    hand.advance(Duration::from_millis(4_999));
    settle(&run, &acs, 52, "the reboot wave");
    hand.advance(Duration::from_secs(10));
    settle(&run, &acs, 62, "the value-change wave");
    let informs = acs.informs();
    let reboots: HashSet<_> = informs[40..52].iter().filter(|(_, e)| e == &["1 BOOT"]).map(|(s, _)| s.clone()).collect();
    assert_eq!(reboots.len(), 12, "30 % of 40 CPEs rebooted, each once");
    let changes: HashSet<_> = informs[52..].iter().filter(|(_, e)| e == &["4 VALUE CHANGE"]).map(|(s, _)| s.clone()).collect();
    assert_eq!(changes.len(), 10, "25 % changed a parameter with active notification");
    // Both fleets (TR-181 and TR-098 roots) took part.
    let tr098 = |s: &String| u32::from_str_radix(&s[6..], 16).unwrap() >= 24;
    assert!(reboots.iter().any(tr098) && reboots.iter().any(|s| !tr098(s)));
    assert!(changes.iter().any(tr098) && changes.iter().any(|s| !tr098(s)));
    run.finish();
}

// ---------------------------------------------------------------------------------------------
// The shipped examples, and the embedded ACS for storms.

#[test]
fn the_shipped_scenarios_run_against_the_embedded_acs() {
    let _turn = one_child_fleet();
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // USP scenarios run Agents, not CPEs against an ACS: the_shipped_usp_scenario_runs.
        .filter(|p| !std::fs::read_to_string(p).unwrap().contains("\nusp:"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    for path in names {
        let dir = scratch(path.file_stem().unwrap().to_str().unwrap());
        let json = dir.join("report.json");
        // A flag's threshold wins over the file's (whose latency bound a busy test machine may miss).
        let args = [
            "run",
            path.to_str().unwrap(),
            "--time-scale",
            "0.005",
            "--cpes",
            "12",
            "--report-json",
            json.to_str().unwrap(),
            "--threshold",
            "sessions.failed_ratio<0.01",
        ];
        let out = cpe_sim(&args, Duration::from_secs(90));
        let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{}: {err}", path.display());
        assert!(stdout.contains("cpe-sim report: 12 CPEs") && stdout.contains("acs: embedded in this process"), "{stdout}");
        let phases = err.lines().filter(|l| l.contains(" INFO phase ")).count();
        assert!(phases >= 4, "{}: every phase announced: {err}", path.display());
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report["acs"]["embedded"], serde_json::json!(true));
        assert_eq!(report["sessions"]["failed"], serde_json::json!(0), "{}", path.display());
    }
    // A scenario's file exists for the README's example too.
    assert!(Path::new(&repo("scenarios/outage-storm.yaml")).exists());
}

#[test]
fn a_pushed_reboot_ends_once_per_cpe_and_the_acs_logs_each_session() {
    let _turn = one_child_fleet();
    let mut acs = Command::new(BIN)
        .args(["acs", "--bind", "127.0.0.1:0", "--push", "Reboot r1", "--backlog", "8192", "--log-level", "debug"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(acs.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("backlog=8192") && first.contains("push_mode=once"), "{first}");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("the ACS says where it listens").to_string();
    // The README's example: the reboot's BOOT session, and then the run ends.
    let out = cpe_sim(&["--acs-url", &url], Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("rebooting as the ACS asked").count(), 1, "{err}");
    assert!(err.contains("event_codes=[1 BOOT, M Reboot]"), "{err}");
    let _ = Command::new("kill").args(["-TERM", &acs.id().to_string()]).status();
    let log: Vec<String> = lines.map_while(Result::ok).collect();
    let ended: Vec<_> = log.iter().filter(|l| l.contains("ACS session ended")).collect();
    assert_eq!(ended.len(), 2, "{log:?}");
    assert!(ended.iter().all(|l| l.contains("serial=FEFEFE000000") && l.contains("peer=127.0.0.1:")), "{ended:?}");
    assert!(ended[1].contains("events=1 BOOT,M Reboot"), "{ended:?}");
    let _ = acs.wait();
    let out = cpe_sim(&["acs", "--bind", "127.0.0.1:0", "--backlog", "0"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_scenario_subcommand_parses_with_its_flags() {
    let a = Args::try_parse_from(["cpe-sim", "run", "s.yaml", "--time-scale", "0.5", "--cpes", "10"]).unwrap();
    let Some(Sub::Run(r)) = a.command else { panic!("not a run") };
    assert_eq!((r.scenario, r.time_scale, r.run.cpes), (PathBuf::from("s.yaml"), 0.5, 10));
}

/// Slices of a scenario (as the pods of a Kubernetes Indexed Job run it): each slice holds its
/// part of every fleet and of the source address pool; together they are the scenario's CPEs,
/// each once.
#[test]
fn slices_of_a_scenario_hold_a_part_of_every_fleet_and_of_the_sources() {
    let _turn = one_child_fleet();
    let acs = Acses::start(1);
    let yaml = format!(
        "{TWO_FLEETS}sources: [127.0.0.2/31, 127.0.0.4/31]\nacs:\n  endpoints: [{}]\nphases:\n  - boot: {{spread: 100ms}}\n",
        acs.urls()
    );
    let path = write("slices", &yaml);
    let pools: [&[u8]; 3] = [&[2], &[3], &[4, 5]];
    let mut seen: HashSet<String> = HashSet::new();
    let mut before = 0;
    for (k, pool) in pools.iter().enumerate() {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", path.to_str().unwrap(), "--slices", "3"]).env("JOB_COMPLETION_INDEX", k.to_string());
        let out = cmd.current_dir(repo(".")).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "slice {k}: {}", String::from_utf8_lossy(&out.stderr));
        let records = acs.sessions(0);
        let mine = &records[before..];
        before = records.len();
        let serials: HashSet<String> = mine.iter().filter_map(|r| r.serial.clone()).collect();
        // ⌊k·20/3⌋… of the TR-181 fleet and ⌊k·10/3⌋… of the TR-098 fleet.
        let (a, b) = ([6, 7, 7][k], [3, 3, 4][k]);
        assert_eq!(serials.iter().filter(|s| s.starts_with("A0B1C2")).count(), a, "slice {k}: {serials:?}");
        assert_eq!(serials.iter().filter(|s| s.starts_with("D0E1F2")).count(), b, "slice {k}: {serials:?}");
        for r in mine {
            let ip = r.peer.map(|p| p.ip().to_string()).unwrap_or_default();
            assert!(pool.iter().any(|o| ip == format!("127.0.0.{o}")), "slice {k} bound {ip}, not one of its sources {pool:?}");
        }
        assert!(seen.is_disjoint(&serials), "slice {k} repeats a serial of an earlier slice");
        seen.extend(serials);
    }
    assert_eq!(seen.len(), 30, "the slices together are the scenario's 30 CPEs");
    // More slices than source addresses: refused, naming why.
    let out = Command::new(BIN).args(["run", path.to_str().unwrap(), "--slice", "0/5"]).current_dir(repo(".")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("4 source addresses cannot be cut into 5 disjoint parts"), "{err}");
    acs.stop();
}

/// A power cycle (here a reboot wave right after the bootstrap session that requested an IPPing)
/// loses the running test, not the request: after its `1 BOOT` the CPE runs the test again and
/// reports `8 DIAGNOSTICS COMPLETE`, as a CPE resumed from `--state-dir` does.
#[test]
fn a_power_cycle_reruns_a_requested_diagnostic() {
    let _turn = one_child_fleet();
    let ipping = "<cwmp:SetParameterValues><ParameterList soap-enc:arrayType=\"cwmp:ParameterValueStruct[3]\">\
        <ParameterValueStruct><Name>Device.IP.Diagnostics.IPPing.Host</Name><Value xsi:type=\"xsd:string\">127.0.0.1</Value></ParameterValueStruct>\
        <ParameterValueStruct><Name>Device.IP.Diagnostics.IPPing.NumberOfRepetitions</Name><Value xsi:type=\"xsd:unsignedInt\">2</Value></ParameterValueStruct>\
        <ParameterValueStruct><Name>Device.IP.Diagnostics.IPPing.DiagnosticsState</Name><Value xsi:type=\"xsd:string\">Requested</Value></ParameterValueStruct>\
        </ParameterList><ParameterKey>diag</ParameterKey></cwmp:SetParameterValues>";
    let acs = Acs::start(crate::engine::scripted(move |s| match s.n {
        0 => crate::engine::ok(s, vec![crate::engine::rpc("spv", ipping)]),
        _ => crate::engine::ok(s, vec![]),
    }));
    let yaml = "fleets:\n  - name: a\n    profile: {repo}/profiles/example-tr181-gateway\n    count: 1\nrun:\n  duration: 1h\nphases:\n  - boot: {spread: 1ms}\n  - reboot_wave: {share: 1, over: 1ms}\n  - periodic: {multiplier: 1, duration: 1h}\n";
    let (plan, hand, _) = scenario_plan("diag-power-cycle", &yaml.replace("{repo}", &repo(".").display().to_string()), acs.url());
    let run = start(plan, None, Vec::new());
    // The bootstrap (which requests the test), then the power cycle's 1 BOOT once the wave's
    // millisecond has passed.
    settle(&run, &acs, 1, "the bootstrap");
    hand.advance(Duration::from_millis(5));
    settle(&run, &acs, 2, "the power cycle");
    assert_eq!(acs.informs()[1].1, ["1 BOOT"]);
    // The rerun test ends at its own time on the virtual clock.
    hand.advance(Duration::from_secs(120));
    settle(&run, &acs, 3, "the rerun test's report");
    assert_eq!(acs.informs()[2].1, ["8 DIAGNOSTICS COMPLETE"]);
    run.finish();
}

/// During an outage a CPE is dark: a Connection Request wakes nothing and a local change is
/// refused (503), so no `6 CONNECTION REQUEST` or `4 VALUE CHANGE` session reaches the ACS
/// before the power comes back.
#[test]
fn a_dark_cpe_is_woken_by_nothing() {
    use cpe_sim::owners::{CpeMsg, Owners};
    let _turn = one_child_fleet();
    let acs = Acs::start(|req, _| cpe_sim_test_reply(req));
    let yaml = "run:\n  cpes: 1\n  duration: 1h\nphases:\n  - boot: {spread: 1ms}\n  - outage: {duration: 10m}\n  - periodic: {multiplier: 1, duration: 1h}\n";
    let (plan, hand, _) = scenario_plan("dark", yaml, acs.url());
    let (owners, receivers) = Owners::channels(0, 1, 2);
    let run = start(plan, None, receivers);
    settle(&run, &acs, 1, "the bootstrap");
    hand.advance(Duration::from_secs(1));
    std::thread::sleep(GRACE);
    let owner = owners.owner(0).unwrap();
    owner.send(CpeMsg::Wake { index: 0 }).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let params = vec![("Device.DeviceInfo.ProvisioningCode".to_string(), "lab-7".to_string())];
    owner.send(CpeMsg::SetLocal { index: 0, params, reply: tx }).unwrap();
    let refused = rx.blocking_recv().expect("the owner answers").expect_err("a dark CPE refuses local changes");
    assert_eq!(refused.status, 503, "{}", refused.reason);
    std::thread::sleep(GRACE);
    assert_eq!(acs.informs().len(), 1, "nothing informed while dark: {:?}", acs.informs());
    // The power comes back: 1 BOOT.
    hand.advance(Duration::from_secs(600));
    settle(&run, &acs, 2, "the power coming back");
    assert!(acs.informs()[1].1.contains(&"1 BOOT".to_string()), "{:?}", acs.informs());
    run.finish();
}

#[test]
fn a_scenario_lists_at_most_max_phases_phases() {
    use cpe_sim::stats::timeline::MAX_PHASES;
    let file = |n: usize| format!("run:\n  duration: 1h\nphases:\n{}", "  - outage: {duration: 1ms}\n".repeat(n));
    let (r, _, _) = prepare("phases-max", &file(MAX_PHASES));
    assert_eq!(r.expect("the most phases a scenario may list").timeline.phases.len(), MAX_PHASES);
    // One more: refused before anything starts, at the first phase past the limit.
    let (line, key, m) = refused("phases-too-many", &file(3000));
    assert_eq!((line, key.as_str()), (Some(4 + MAX_PHASES), "phases"), "{m}");
    assert!(m.contains("at most 256 phases") && m.contains("this file lists 3000"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// TR-369: `usp:` runs the scenario's fleet as USP Agents.

#[test]
fn a_usp_section_sets_the_usp_flags_and_flags_win() {
    let yaml = "usp:\n  url: mqtt://127.0.0.1:1883\n  controller-id: self::ctl\n  mqtt-version: \"3.1.1\"\n  mqtt-keep-alive: 20s\nthresholds: [\"Boot!.p99<1s\"]\n";
    let (r, args, _) = prepare("usp-section", yaml);
    let s = r.unwrap();
    assert_eq!(args.protocol, "usp");
    assert_eq!(args.usp_url.as_deref(), Some("mqtt://127.0.0.1:1883"));
    assert_eq!(args.controller_id.as_deref(), Some("self::ctl"));
    assert_eq!((args.mqtt_version.as_str(), args.mqtt_keep_alive), ("3.1.1", Duration::from_secs(20)));
    assert_eq!(args.thresholds, vec!["Boot!.p99<1s".to_string()]);
    // A refused value is reported against the usp: key it came from.
    let e = cpe_sim::plan::UsageError { flag: "--usp-url", value: "x".into(), rule: "is bad".into() };
    let explained = s.explain(&e).unwrap();
    assert_eq!((explained.key.as_deref(), explained.line.map(|l| l.0)), (Some("usp.url"), Some(2)));
    // A flag wins over the file.
    let path = write("usp-section-flags", yaml);
    let mut args = run_args(&["--usp-url", "mqtt://127.0.0.2:1883"]);
    scenario::prepare(&path, 1.0, &mut args, &|id| id == "usp_url").unwrap();
    assert_eq!(args.usp_url.as_deref(), Some("mqtt://127.0.0.2:1883"));
}

#[test]
fn a_usp_scenario_refuses_what_only_drives_cwmp() {
    for (name, yaml, line, key, says) in [
        ("usp-fleets", format!("usp: {{}}\n{TWO_FLEETS}"), 3, "fleets", "is for CWMP runs"),
        ("usp-acs", "usp: {}\nacs:\n  endpoints: [http://127.0.0.1:1/]\n".to_string(), 2, "acs", "is for CWMP runs"),
        (
            "usp-outage",
            "usp: {}\nrun: {duration: 10s}\nphases:\n  - boot: {rate: 10}\n  - outage: {duration: 1s}\n".to_string(),
            5,
            "phases[1].outage",
            "takes only a boot phase",
        ),
        (
            "usp-cwmp-threshold",
            "usp: {}\nthresholds:\n  - sessions.failed_ratio<0.01\n".to_string(),
            3,
            "thresholds[0]",
            "sessions.failed_ratio",
        ),
        ("usp-bad-version", "usp: {mqtt-version: 4}\n".to_string(), 1, "usp.mqtt-version", "unknown variant"),
        ("usp-unknown-key", "usp: {broker: x}\n".to_string(), 1, "usp", "unknown field `broker`"),
    ] {
        let (l, k, text) = refused(name, &yaml);
        assert_eq!((l, k.as_str()), (Some(line), key), "{name}: {text}");
        assert!(text.contains(says), "{name}: {text}");
    }
    // --protocol cwmp given beside a usp: section is a contradiction, not a silent choice.
    let path = write("usp-vs-flag", "usp: {}\n");
    let mut args = run_args(&["--protocol", "cwmp"]);
    let Err(e) = scenario::prepare(&path, 1.0, &mut args, &|id| id == "protocol") else { panic!("accepted") };
    assert_eq!(e.key.as_deref(), Some("usp"), "{e}");
}

#[test]
fn the_shipped_usp_scenario_runs_its_agents_against_the_embedded_controller() {
    let _turn = one_child_fleet();
    let dir = scratch("usp-shipped");
    let json = dir.join("report.json");
    let path = repo("scenarios/usp-boot-storm.yaml");
    let args = [
        "run",
        path.to_str().unwrap(),
        "--cpes",
        "6",
        "--duration",
        "3s",
        "--inform-interval",
        "1s",
        "--report-json",
        json.to_str().unwrap(),
        "--threshold",
        "booted>=6",
    ];
    let out = cpe_sim(&args, Duration::from_secs(60));
    let (stdout, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout.contains("USP run") && stdout.contains(": 6 agents") && stdout.contains("booted (Boot! answered): 6 of 6"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!((&report["agents"], &report["booted"]), (&serde_json::json!(6), &serde_json::json!(6)), "{report}");
}

#[test]
fn a_password_in_a_scenario_file_is_never_shown_in_its_error() {
    for (name, yaml, key, rule) in [
        ("usp-password", "usp: {mqtt-password: s3cret-usp}\n", "usp.mqtt-password", "needs --mqtt-username"),
        ("acs-password", "run: {acs-password: s3cret-acs}\n", "run.acs-password", "needs --acs-username"),
    ] {
        let path = write(name, yaml);
        let out = cpe_sim(&["run", path.to_str().unwrap()], Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(key) && err.contains(&format!("`<hidden>` {rule}")), "{name}: {err}");
        assert!(!err.contains("s3cret"), "{name}: the password leaked: {err}");
    }
}

// The listeners hold one profile: beside several fleets they are refused before anything starts,
// naming the flag (a UDP Connection Request address would reach only the first fleet's CPEs).
#[test]
fn several_fleets_refuse_the_one_profile_listeners() {
    let path = write("fleets-listeners", TWO_FLEETS);
    for flag in ["--cr-bind-addr", "--udp-cr-bind-addr", "--api-bind-addr"] {
        let out = cpe_sim(&["run", path.to_str().unwrap(), flag, "127.0.0.1:0"], Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flag}: {err}");
        assert!(err.contains(&format!("{flag} cannot be combined with a scenario's fleets")), "{flag}: {err}");
    }
}
