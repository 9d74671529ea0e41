//! The `cpe-sim` binary: parse flags, set up logging, run, map the outcome to an exit code
//! (0 ok, 1 runtime failure, 2 usage or profile error).

use std::process::ExitCode;

use anyhow::Context;
use bytes::BytesMut;
use clap::Parser;
use cpe_sim::acs::AcsScript;
use cpe_sim::cli::{Args, Command, RunArgs};
use cpe_sim::config::{load_profile, parse_profile};
use cpe_sim::cpe::CpeState;
use cpe_sim::cwmp::template::InformTemplate;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::run::run_session;
use cpe_sim::time::UnixMillis;
use tracing::{debug, error, info, warn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The example TR-181 profile, built in so the binary runs from anywhere.
const BUILTIN_PROFILE: &str = include_str!("../profiles/example-tr181-gateway/profile.yaml");

fn main() -> ExitCode {
    let args = Args::parse();
    let level = args.run.log_level.parse::<tracing::Level>().unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match args.command {
        Some(Command::Check { profile, cpe_index }) => check(&profile, cpe_index),
        None => run(&args.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn load(path: Option<&std::path::Path>, cwmp_version: Option<&str>) -> anyhow::Result<Model> {
    let mut model = match path {
        Some(p) => load_profile(p)?,
        None => parse_profile(BUILTIN_PROFILE, std::path::Path::new("<built-in example-tr181-gateway>"), "example-tr181-gateway")?,
    };
    if let Some(v) = cwmp_version {
        let minor = cpe_sim::cwmp::envelope::urn_minor(v).with_context(|| format!("--cwmp-version `{v}` is not cwmp-1-0 … cwmp-1-4"))?;
        model.cwmp_urn = cpe_sim::cwmp::envelope::URNS[minor as usize].into();
    }
    Ok(model)
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let model = load(args.profile.as_deref(), args.cwmp_version.as_deref())?;
    if let Some(url) = &args.acs_url {
        anyhow::bail!(
            "--acs-url {url}: informing a real ACS over HTTP(S) is not built yet (the network transport is the next milestone); omit --acs-url to run against the embedded in-process ACS"
        );
    }
    let template = InformTemplate::new(&model);
    let now = UnixMillis::now();
    let id = DeviceId(args.cpe_index);
    let mut cpe = CpeState::new(id, now);
    let serial = model
        .device(id, &cpe.delta, cpe.boot_at, now)
        .get(&format!("{}.DeviceInfo.SerialNumber", model.tree.root_name()))
        .unwrap_or_default();
    info!(profile = %model.name, "no --acs-url given: running against the embedded ACS in-process (GenieACS-like bootstrap script, no sockets)");
    let events = cpe.events.describe(0);
    let run = run_session(&model, &template, &mut cpe, AcsScript { urn: cwmp_urn_static(&model), ..AcsScript::default() }, now);
    for hop in &run.hops {
        debug!(cpe_id = %id, serial = %serial, "CPE → ACS\n{}", String::from_utf8_lossy(&hop.cpe));
        match &hop.acs {
            Some(b) => debug!(cpe_id = %id, serial = %serial, "ACS → CPE\n{}", String::from_utf8_lossy(b)),
            None => debug!(cpe_id = %id, serial = %serial, "ACS → CPE: 204 No Content"),
        }
    }
    info!(cpe_id = %id, serial = %serial, event_codes = %events, rpc = %"Inform", "Inform sent");
    // The CPE's answer to the request in hop i is the body it POSTs in hop i + 1.
    for (hop, next) in run.hops.iter().zip(run.hops.iter().skip(1)) {
        let items = cpe_sim::acs::inspect(&next.cpe).map_or(0, |m| m.params.len());
        match hop.answered {
            None => {}
            Some((rpc, None)) if items > 0 => info!(cpe_id = %id, serial = %serial, rpc = %rpc, items, "answered"),
            Some((rpc, None)) => info!(cpe_id = %id, serial = %serial, rpc = %rpc, "answered"),
            Some((rpc, Some(fault))) => {
                warn!(cpe_id = %id, serial = %serial, rpc = %rpc, fault_code = fault.code(), "answered with a fault: {}", fault.message())
            }
        }
    }
    let s = &run.summary;
    match s.result {
        Ok(()) => {
            info!(cpe_id = %id, serial = %serial, acs_requests = s.requests, faults = s.faults, "session completed: the ACS ended it with 204 No Content");
            // What the ACS changed on this CPE, from the CPE's own delta (secrets masked).
            for v in cpe.delta.inner().map(|d| d.values.as_slice()).unwrap_or_default() {
                let secret = model.tree.node(v.loc.node).param().is_some_and(|p| p.secret);
                let shown = if secret { "<hidden>" } else { &v.value };
                info!(cpe_id = %id, source = %v.source.as_str(), "set {} = {shown}", model.tree.path_string(&v.loc));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            error!(cpe_id = %id, serial = %serial, "session failed: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn cwmp_urn_static(model: &Model) -> &'static str {
    let minor = cpe_sim::cwmp::envelope::urn_minor(&model.cwmp_urn).unwrap_or(0);
    cpe_sim::cwmp::envelope::URNS[minor as usize]
}

fn check(path: &std::path::Path, cpe_index: u32) -> anyhow::Result<ExitCode> {
    let model = load(Some(path), None)?;
    let now = UnixMillis::now();
    let fresh = cpe_sim::model::Delta::default();
    let params = model.device(DeviceId(cpe_index), &fresh, now, now).gpv_targets(&[""]).map_or(0, |l| l.len());
    let mut cpe = CpeState::new(DeviceId(cpe_index), now);
    let template = InformTemplate::new(&model);
    let mut out = BytesMut::new();
    let _ = cpe_sim::session::Session::start(&model, &template, &mut cpe, now, &mut out);
    let schema_params = model.tree.ids().filter(|&n| model.tree.node(n).param().is_some()).count();
    let text = format!(
        "profile {} ok: root {}., {params} parameters per CPE ({schema_params} in the schema tree), {} forced into every Inform, {}\nInform of cpe-{cpe_index}:\n{}\n",
        model.name,
        model.tree.root_name(),
        model.forced.len(),
        model.cwmp_urn,
        String::from_utf8_lossy(&out)
    );
    // A closed stdout (`| head`) is not an error worth a panic.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing to stdout"),
    }
    Ok(ExitCode::SUCCESS)
}
