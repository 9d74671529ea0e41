//! `cpe-sim [flags]` and `cpe-sim sweep`: one CPE or a fleet on the engine. Starts what the run
//! needs around it (the embedded ACS without `--acs-url`, the Connection Request listener, the
//! device state API, the `--state-dir` store), builds the engine's plan, runs it, prints the
//! report and maps the outcome to the exit code.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::{error, info, warn};

use super::{load, transport_config};
use crate::acs::server::{AcsServer, AuthMode, ServerConfig};
use crate::acs::AcsScript;
use crate::api::{ApiServer, MetricsSources};
use crate::cli::RunArgs;
use crate::connreq::udp::UdpCrServer;
use crate::connreq::{advertise_host, CrConfig, CrServer};
use crate::console;
use crate::cpe::periodic::PeriodicPlan;
use crate::cwmp::envelope::{urn_minor, URNS};
use crate::engine::{self, Boot, ConnectionMode, Mode, Outputs, Plan};
use crate::model::tree::ValueSource;
use crate::model::Template;
use crate::model::{DeviceId, Model};
use crate::owners::{CpeMsg, Owners};
use crate::persist::{Resume, Store, StoreError};
use crate::time::UnixMillis;
use crate::transport::TransportConfig;

/// The embedded ACS a run starts when no --acs-url is given: GenieACS-like, speaking the
/// profile's cwmp version, asking for the run's credentials if any.
pub fn embedded_acs(model: &Model, transport: &TransportConfig) -> ServerConfig {
    let script = AcsScript { urn: URNS[urn_minor(&model.cwmp_urn).unwrap_or(0) as usize], ..AcsScript::default() };
    ServerConfig {
        script,
        credentials: transport.credentials.clone(),
        auth_mode: AuthMode::Digest,
        tls: None,
        keep_alive: false,
        backlog: None,
    }
}

/// A scenario to run (`cpe-sim run scenario.yaml`), checked, and the run's `--acs-backlog`.
pub struct Story {
    pub scenario: crate::scenario::Scenario,
    pub acs_backlog: Option<u32>,
}

/// The embedded ACS as a story asks for it: its backlog and pushes.
fn story_acs(mut cfg: ServerConfig, story: &Story) -> anyhow::Result<ServerConfig> {
    let e = &story.scenario.embedded_acs;
    cfg.backlog = story.acs_backlog.or(e.backlog);
    for spec in &e.push {
        let rpc = crate::acs::AcsRpc::from_spec(spec)
            .map_err(|m| anyhow::anyhow!("scenario {}: key `embedded_acs.push`: {m}", story.scenario.file.display()))?;
        cfg.script.every_session.push(rpc);
    }
    if e.push_once {
        cfg.script.push_once = Some(crate::acs::PushedTo::default());
    }
    Ok(cfg)
}

/// The listeners that reach into CPEs from outside, and the owners' ends of their channels.
struct Listeners {
    cr: Option<CrServer>,
    udp: Option<UdpCrServer>,
    api: Option<ApiServer>,
    receivers: Vec<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
}

impl Listeners {
    async fn stop(self) {
        if let Some(s) = self.cr {
            info!("{}", s.stats());
            s.stop().await;
        }
        if let Some(s) = self.udp {
            info!("{}", s.stats());
            s.stop().await;
        }
        if let Some(s) = self.api {
            s.stop().await;
        }
    }
}

/// Starts the Connection Request listener (`--cr-bind-addr`, publishing its URL into the model:
/// a per-CPE template in a fleet) and the device state API (`--api-bind-addr`), with one channel
/// per owner (`owners`: 1 for a single CPE, else the shard count). Returns the model, shared.
async fn start_listeners(
    args: &RunArgs,
    mut model: Model,
    owners: u16,
    single: bool,
    sessions: Option<Arc<std::sync::Mutex<crate::stats::Recorder>>>,
) -> anyhow::Result<(Arc<Model>, Listeners)> {
    // Owners' channels only when a listener needs them (a shard then also snapshots credentials).
    let (owners, receivers) = if args.cr_bind_addr.is_some() || args.udp_cr_bind_addr.is_some() || args.api_bind_addr.is_some() {
        Owners::channels(args.first_index, args.cpes, owners as usize)
    } else {
        (Owners { first: args.first_index, count: args.cpes, senders: Vec::new() }, Vec::new())
    };
    let cr = match args.cr_bind_addr {
        Some(bind) => Some(start_connection_requests(args, &mut model, bind, owners.clone(), single).await?),
        None => None,
    };
    let udp = match args.udp_cr_bind_addr {
        Some(bind) => Some(start_udp_connection_requests(args, &mut model, bind, owners.clone()).await?),
        None => None,
    };
    let model = Arc::new(model);
    let api = match args.api_bind_addr {
        Some(bind) => {
            let sources = MetricsSources {
                connection_requests: cr.as_ref().map(|c| c.stats_handle()),
                udp_connection_requests: udp.as_ref().map(|u| u.stats_handle()),
                sessions,
            };
            let server = ApiServer::start(bind, crate::api::Speaks::Cwmp, model.clone(), owners, sources)
                .await
                .with_context(|| format!("--api-bind-addr {bind}: cannot listen"))?;
            info!("device state API at http://{}/cpes", server.addr);
            Some(server)
        }
        None => None,
    };
    Ok((model, Listeners { cr, udp, api, receivers }))
}

/// Binds the Connection Request listener and publishes its URL into the model.
async fn start_connection_requests(
    args: &RunArgs,
    model: &mut Model,
    bind: SocketAddr,
    owners: Owners,
    single: bool,
) -> anyhow::Result<CrServer> {
    let root = model.tree.root_name().to_string();
    let path = args.cr_publish_path.clone().unwrap_or_else(|| format!("{root}.ManagementServer.ConnectionRequestURL"));
    let node = model
        .tree
        .by_schema_path(&path)
        .filter(|n| model.tree.node(*n).param().is_some())
        .with_context(|| format!("--cr-publish-path `{path}` is not a parameter of the profile"))?;
    let cfg = CrConfig::new(bind, model.connection_request_auth, single, args.cr_rate);
    let server = CrServer::start(cfg, owners).await.with_context(|| format!("--cr-bind-addr {bind}: cannot listen"))?;
    let host =
        args.cr_advertise_host.clone().unwrap_or_else(|| advertise_host(bind, args.acs_url.as_deref().unwrap_or("http://127.0.0.1/")));
    let url = if single {
        format!("http://{host}:{}/cr", server.addr.port())
    } else {
        format!("http://{host}:{}/cr/cpe-{{index}}", server.addr.port())
    };
    let template = Template::compile(&url, 0).map_err(|e| anyhow::anyhow!("--cr-advertise-host: {e}"))?;
    model.tree.set_default(node, ValueSource::Template(template));
    info!(url = %url, auth = ?model.connection_request_auth, "listening for Connection Requests at {}", server.addr);
    Ok(server)
}

/// Binds the UDP Connection Request listener (TR-069 Annex G) and publishes its `host:port` as
/// every CPE's ManagementServer.UDPConnectionRequestAddress (the same for all: a datagram names
/// its CPE by `un`, the ConnectionRequestUsername).
async fn start_udp_connection_requests(args: &RunArgs, model: &mut Model, bind: SocketAddr, owners: Owners) -> anyhow::Result<UdpCrServer> {
    let root = model.tree.root_name().to_string();
    let path = format!("{root}.ManagementServer.UDPConnectionRequestAddress");
    let node = model
        .tree
        .by_schema_path(&path)
        .filter(|n| model.tree.node(*n).param().is_some())
        .with_context(|| format!("--udp-cr-bind-addr: the profile has no `{path}` to publish the address in"))?;
    let server =
        UdpCrServer::start(bind, owners, args.cr_rate).await.with_context(|| format!("--udp-cr-bind-addr {bind}: cannot listen"))?;
    let host =
        args.cr_advertise_host.clone().unwrap_or_else(|| advertise_host(bind, args.acs_url.as_deref().unwrap_or("http://127.0.0.1/")));
    let address = format!("{host}:{}", server.addr.port());
    model.tree.set_default(node, ValueSource::fixed(&address));
    // Every Inform carries the address (TR-069 Annex G.2.1: the ACS learns it from the CPE):
    // GenieACS sends UDP requests only to an address it has a value for.
    let loc = crate::model::Loc::plain(node);
    if !model.forced.contains(&loc) {
        model.forced.push(loc);
    }
    // TR-181 ManagementServer.SupportedConnReqMethods: this CPE now takes STUN-style requests too.
    if let Some(methods) = model.tree.by_schema_path(&format!("{root}.ManagementServer.SupportedConnReqMethods")) {
        let current = model.tree.node(methods).param().and_then(|p| match &p.default {
            ValueSource::Static { raw, .. } => Some(raw.to_string()),
            _ => None,
        });
        if let Some(list) = current.filter(|l| !l.split(',').any(|m| m.trim() == "STUN")) {
            let list = if list.is_empty() { "STUN".to_string() } else { format!("{list},STUN") };
            model.tree.set_default(methods, ValueSource::fixed(&list));
        }
    }
    info!(address = %address, "listening for UDP Connection Requests at {}", server.addr);
    Ok(server)
}

/// Opens `--state-dir`: another profile's store, another format version or a directory another
/// cpe-sim holds is an error; an unusable directory is reported and the run goes on in memory.
fn open_store(args: &RunArgs, model: &Model) -> anyhow::Result<Option<Store>> {
    let Some(dir) = &args.state_dir else { return Ok(None) };
    match Store::open(dir, model) {
        Ok(store) => {
            if store.torn_bytes > 0 {
                warn!(bytes = store.torn_bytes, "--state-dir: dropped a torn last record (the simulator was killed while writing it)");
            }
            for d in store.damaged.iter().take(20) {
                warn!(offset = d.offset, bytes = d.bytes, "--state-dir: skipped a damaged record; the records after it are kept");
            }
            if !store.damaged.is_empty() {
                let copy = store.damaged_copy.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                warn!(
                    damaged_records = store.damaged.len(),
                    bytes = store.damaged.iter().map(|d| d.bytes).sum::<u64>(),
                    copy = %copy,
                    "--state-dir: the log was damaged (not a torn tail); the CPEs whose last record was damaged resume from an earlier one or start anew"
                );
            }
            info!(dir = %dir.display(), saved_cpes = store.loaded.len(), "device state is kept in --state-dir");
            Ok(Some(store))
        }
        Err(e @ (StoreError::Mismatch { .. } | StoreError::Locked { .. } | StoreError::Version { .. })) => Err(e.into()),
        Err(e) => {
            error!("{e}; the run goes on in memory and nothing will be saved");
            Ok(None)
        }
    }
}

/// Writes the last batch of `--state-dir`.
fn close_store(store: Option<Store>) {
    if let Some(s) = store {
        match s.close() {
            Ok(w) => info!(
                snapshots = w.records,
                batches = w.batches,
                compactions = w.compactions,
                "device state saved (one fdatasync per batch)"
            ),
            Err(e) => error!("--state-dir: the last batch was not saved: {e}"),
        }
    }
}

/// The flags and fleets of slice `slice` of a scenario: its part of every fleet (by the slice
/// rule, fleet by fleet) and of the source address pool. The slices' CPE index ranges stay
/// disjoint and cover the scenario's: slice K starts after the CPEs the slices before it hold in
/// all fleets, and lays its fleets' parts out one after another from there.
///
/// # Errors
/// A source pool smaller than the number of slices (each slice needs its own addresses).
fn slice_scenario(
    whole: &RunArgs,
    slice: crate::slice::Slice,
    fleets: &mut [crate::scenario::FleetSpec],
    sources: &mut Vec<std::net::IpAddr>,
) -> anyhow::Result<RunArgs> {
    if slice.is_whole() {
        return Ok(whole.clone());
    }
    let (mut before, mut mine) = (0u32, 0u32);
    for f in fleets.iter_mut() {
        let part = slice.of(0, f.cpes);
        before += part.start;
        mine += part.end - part.start;
        f.cpes = part.end - part.start;
    }
    if !sources.is_empty() {
        anyhow::ensure!(
            sources.len() >= slice.count as usize,
            "--slice {slice}: the scenario's {} source addresses cannot be cut into {} disjoint parts",
            sources.len(),
            slice.count
        );
        *sources = slice.of_items(sources).to_vec();
    }
    anyhow::ensure!(mine > 0, "--slice {slice}: this slice holds no CPE of the scenario's fleets");
    Ok(crate::plan::narrowed(whole, whole.first_index + before, mine))
}

/// Waits for `--start-at` (a stop signal ends the wait), so that slices started apart begin their
/// timeline together; a time already past is said once and not waited for.
fn wait_for_start(at: UnixMillis) {
    let now = UnixMillis::now();
    if at <= now {
        warn!(start_at = %String::from_utf8_lossy(&crate::time::format_datetime(at)), late_by = ?now.since(at), "--start-at is past: starting at once");
        return;
    }
    info!(start_at = %String::from_utf8_lossy(&crate::time::format_datetime(at)), wait = ?at.since(now), "waiting for --start-at");
    while !engine::stop_requested() {
        let left = at.since(UnixMillis::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
    }
}

/// Whether the profile itself turns periodic informs on (not what a resumed ACS set).
fn profile_periodic(model: &Model) -> bool {
    // The same rule the engine plans periodic informs by, for a CPE the ACS never touched.
    let fresh = crate::cpe::CpeState::new(DeviceId(0), UnixMillis::now());
    crate::cpe::periodic::plan(model, &fresh, &PeriodicPlan::default()).is_some()
}

/// A run of one CPE or many (`--cpes`), or a sweep: one engine, one code path. `checked` is what
/// `plan::validate` parsed (`None` only for a library caller that checked nothing: no thresholds,
/// the whole fleet, no start time). A slice narrows the fleet to its range before anything starts.
pub fn run(
    args: &RunArgs,
    checked: Option<crate::plan::Checked>,
    sweep: Option<(&Vec<f64>, std::time::Duration, Option<&std::path::Path>)>,
    story: Option<Story>,
) -> anyhow::Result<ExitCode> {
    let (thresholds, slice, start_at) = match checked {
        Some(c) => (c.thresholds, c.slice, c.start_at),
        None => (Vec::new(), crate::slice::Slice::WHOLE, None),
    };
    let mut story = story;
    let mut fleets = story.as_mut().map(|s| std::mem::take(&mut s.scenario.fleets)).unwrap_or_default();
    let whole = args;
    let mut narrowed = crate::plan::sliced(whole, slice);
    if !fleets.is_empty() {
        // The listeners and the store hold one model; several fleets are not wired to them yet.
        for (flag, set) in [
            ("--cr-bind-addr", args.cr_bind_addr.is_some()),
            ("--udp-cr-bind-addr", args.udp_cr_bind_addr.is_some()),
            ("--api-bind-addr", args.api_bind_addr.is_some()),
            ("--state-dir", args.state_dir.is_some()),
        ] {
            if set {
                anyhow::bail!("{flag} cannot be combined with a scenario's fleets (yet): run the fleets without it");
            }
        }
        // A slice of a scenario holds its part of every fleet (and of the source pool).
        if let Some(s) = story.as_mut() {
            narrowed = slice_scenario(whole, slice, &mut fleets, &mut s.scenario.routes.sources)?;
        }
    }
    let args = &narrowed;
    // TR-369 Agents run on their own MTP tasks (issue 14); everything below is CWMP. A slice
    // applies to them as to CPEs.
    if args.protocol == "usp" {
        // --start-at holds the Agents' boot as it holds the CPEs' (slices started apart begin
        // together); a stop signal ends the wait.
        if let Some(at) = start_at {
            engine::install_signal_handlers();
            wait_for_start(at);
        }
        return crate::mtp::run::run(args, &thresholds, slice);
    }
    let model = match fleets.first() {
        Some(f) => f.model.clone(),
        None => load(args.profile.as_deref(), args.cwmp_version.as_deref())?,
    };
    let transport = transport_config(args)?;
    // One CPE's run, not one slice's CPE of a fleet.
    let single = whole.cpes == 1 && sweep.is_none();
    let nofile = engine::raise_nofile_limit();
    engine::install_signal_handlers();
    // A single CPE's lines all carry its id and serial, as its sessions' lines do.
    let span = match single {
        true => {
            let now = UnixMillis::now();
            let id = DeviceId(args.first_index);
            let serial = model
                .device(id, &crate::model::Delta::default(), now, now)
                .get(&format!("{}.DeviceInfo.SerialNumber", model.tree.root_name()))
                .unwrap_or_default();
            tracing::info_span!("cpe", cpe_id = %id, serial = %serial)
        }
        false => tracing::Span::none(),
    };
    let _entered = span.enter();
    // The embedded ACS (without --acs-url) and the listeners run on a thread of their own beside
    // the shards.
    let side_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let shards = args.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u16)).max(1);
    // At most one shard per CPE and per allowed connection (each shard holds at least one).
    let shards = shards.min(args.cpes.min(u16::MAX as u32) as u16).min(args.max_connections.min(u16::MAX as usize) as u16).max(1);
    let live = args.api_bind_addr.map(|_| Arc::new(std::sync::Mutex::new(crate::stats::Recorder::new())));
    let periodic_in_profile = profile_periodic(&model);
    let (acs_url, server) = match &args.acs_url {
        Some(u) => (u.clone(), None),
        None => {
            let cfg = match &story {
                Some(s) => story_acs(embedded_acs(&model, &transport), s)?,
                None => embedded_acs(&model, &transport),
            };
            let server =
                side_rt.block_on(AcsServer::start(([127, 0, 0, 1], 0).into(), cfg)).context("starting the embedded ACS on 127.0.0.1")?;
            info!(profile = %model.name, "no --acs-url given: started the embedded ACS at {} (GenieACS-like bootstrap script)", server.url());
            (server.url(), Some(server))
        }
    };
    // ManagementServer.URL reads back the URL the run informs, and Username/Password the run's
    // credentials if given (published before the model is shared, so the engine need not copy it).
    let mut model = model;
    model.publish_acs_url(&acs_url);
    if let Some(c) = &transport.credentials {
        model.publish_acs_credentials(&c.username, &c.password);
    }
    let (model, mut listeners) = side_rt.block_on(start_listeners(args, model, shards, single, live.clone()))?;
    let receivers = std::mem::take(&mut listeners.receivers);
    let (metrics_text, metrics) = crate::metrics::MetricsServer::for_flag(args.metrics_bind_addr, &side_rt)?;
    let mut store = open_store(args, &model)?;
    // A second Ctrl-C skips the drain, not the last batch of device state.
    if let Some(sink) = store.as_ref().map(|s| s.sink.clone()) {
        engine::before_forced_exit(std::time::Duration::from_secs(5), move || {
            sink.flush();
        });
    }
    let state = store.as_mut().map(|s| Resume { saved: std::sync::Mutex::new(std::mem::take(&mut s.loaded)), sink: Some(s.sink.clone()) });
    let boot = match args.boot_rate {
        // Checked by `plan::validate`: finite, > 0, and the last CPE boots within 8760 h.
        Some(r) => Boot::Rate(r),
        None => Boot::Spread(args.boot_spread),
    };
    // Periodic informs and retries (daemon) when asked for by a duration, a sweep, a listener that
    // must stay reachable, the profile or --inform-interval; otherwise one-shot.
    let daemon = args.duration.is_some()
        || story.as_ref().is_some_and(|s| s.scenario.timeline.phases.iter().any(|p| p.kind != engine::phase::PhaseKind::Boot))
        || sweep.is_some()
        || args.cr_bind_addr.is_some()
        || args.udp_cr_bind_addr.is_some()
        || args.api_bind_addr.is_some()
        || periodic_in_profile
        || args.inform_interval.is_some();
    let mode = if daemon { Mode::Daemon } else { Mode::OneShot };
    let mut plan = Plan::new(model.clone(), acs_url.clone(), transport, args.cpes);
    plan.first_index = args.first_index;
    plan.shards = shards;
    plan.boot = boot;
    plan.periodic = PeriodicPlan { multiplier: args.interval_multiplier, interval: args.inform_interval };
    plan.mode = mode;
    plan.connection_mode = if args.connection_mode == "per-session" { ConnectionMode::PerSession } else { ConnectionMode::Pooled };
    plan.max_in_flight = (args.max_connections / shards as usize).max(1);
    plan.transfers = engine::TransferLimits::new(args.max_transfers, args.transfer_timeout);
    // Shards report four times per progress tick (at most once a second), so each line is current.
    plan.report_every = (args.progress_interval / 4).clamp(std::time::Duration::from_millis(50), std::time::Duration::from_secs(1));
    plan.drain_timeout = args.drain_timeout;
    plan.verbose = single;
    plan.state = state;
    if let Some(s) = story {
        // Each fleet reads back the run's URL and credentials, as the first model does.
        plan.fleets = fleets
            .into_iter()
            .map(|f| {
                let mut m = f.model;
                m.publish_acs_url(&acs_url);
                if let Some(c) = &plan.transport.credentials {
                    m.publish_acs_credentials(&c.username, &c.password);
                }
                engine::Fleet::new(f.name, Arc::new(m), f.cpes)
            })
            .collect();
        plan.routes = s.scenario.routes;
        plan.timeline = s.scenario.timeline;
        info!(
            scenario = %s.scenario.name,
            file = %s.scenario.file.display(),
            fleets = %plan.fleets.iter().map(|f| format!("{}×{} ({})", f.name, f.cpes, f.model.name)).collect::<Vec<_>>().join(", "),
            endpoints = plan.routes.endpoint_count(),
            sources = plan.routes.sources.len(),
            phases = %plan.timeline.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" → "),
            "scenario"
        );
    }
    if let Some(at) = start_at {
        wait_for_start(at);
    }
    info!(
        cpes = plan.cpes,
        first = %format!("cpe-{}", plan.first_index),
        slice = %slice,
        shards,
        acs_url = %crate::transport::without_userinfo(&acs_url),
        mode = ?mode,
        boot = ?plan.boot,
        multiplier = plan.periodic.multiplier,
        connection_mode = %args.connection_mode,
        max_connections = args.max_connections,
        open_files_limit = nofile.unwrap_or(0),
        "{} starting",
        if single { "CPE" } else { "fleet" }
    );
    let out = Outputs {
        progress_every: args.progress_interval,
        report_json: args.report_json.clone(),
        hdr_log: args.hdr_log.clone(),
        thresholds,
        progress: true,
        live,
        stop: None,
        report_html: args.report_html.clone(),
        metrics: metrics_text.clone(),
        run_id: None,
        embedded_acs: server.is_some(),
    };
    let result = match sweep {
        Some((multipliers, step, json_path)) => {
            engine::sweep::sweep(plan, multipliers, step, &out, receivers).map(|s| Err((Box::new(s), json_path)))
        }
        None => engine::run(plan, args.duration, &out, receivers).map(Ok),
    };
    if let Some(s) = server {
        side_rt.block_on(s.stop());
    }
    if let Some(m) = metrics {
        side_rt.block_on(m.stop());
    }
    let cr_stats = listeners.cr.as_ref().map(|s| s.stats().to_string());
    side_rt.block_on(listeners.stop());
    close_store(store);
    // Output that fails once the run has started loses the text, not the run: exit 1, not 2.
    let output_failed = std::cell::Cell::new(false);
    let print = |text: &str| {
        if let Err(e) = console::out(text) {
            error!("writing the report to stdout: {e}");
            output_failed.set(true);
        }
    };
    let (outcome, sweeping) = match result? {
        Ok(outcome) => {
            print(&crate::stats::report::to_text(&outcome.total, &outcome.facts, &crate::stats::report::ProcessFigures::now()));
            if out.embedded_acs {
                print(&format!("{}\n", engine::EMBEDDED_ACS_NOTE));
            }
            print(&crate::stats::threshold::to_text(&outcome.verdicts));
            (outcome, false)
        }
        Err((sweep, json_path)) => {
            print(&engine::sweep::sweep_text(&sweep));
            if let Some(p) = json_path {
                if let Err(e) = std::fs::write(p, serde_json::to_vec_pretty(&sweep.json).unwrap_or_default()) {
                    error!("--sweep-json {}: {e}", p.display());
                    output_failed.set(true);
                }
            }
            (sweep.outcome, true)
        }
    };
    if let Some(s) = cr_stats {
        print(&format!("{s}\n"));
    }
    for e in &outcome.output_errors {
        error!("{e}");
    }
    let o = &outcome.total.outcomes;
    info!(sessions_completed = o.completed, sessions_failed = o.failed_sessions(), interrupted = engine::stop_requested(), "done");
    if !outcome.complete() {
        for p in &outcome.panics {
            error!("{p}");
        }
        error!("the run failed: its report is incomplete");
        return Ok(ExitCode::from(1));
    }
    if output_failed.get() || !outcome.output_errors.is_empty() {
        return Ok(ExitCode::from(1));
    }
    // In a sweep the thresholds decide the knee: a step past it breaching them is the point.
    if !sweeping {
        for b in &outcome.breaches {
            error!("{b}");
        }
        if !outcome.breaches.is_empty() {
            return Ok(ExitCode::from(99));
        }
    }
    if o.completed == 0 {
        let why = match (o.last_failure.as_deref(), o.interrupted) {
            (Some(f), _) => f.to_string(),
            (None, n) if n > 0 => format!("{n} sessions were still open when the drain time ran out"),
            (None, _) => "the run ended before any session did".to_string(),
        };
        error!("no session completed: {why}");
        return Ok(ExitCode::from(1));
    }
    if mode == Mode::OneShot && o.failed_sessions() > 0 {
        error!(failed = o.failed_sessions(), "{}", o.last_failure.as_deref().unwrap_or("a session failed"));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
