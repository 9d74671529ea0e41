//! The `cpe-sim` binary: parse flags, set up logging, run, map the outcome to an exit code
//! (0 ok, 1 runtime failure, 2 usage or profile error).

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use bytes::BytesMut;
use clap::Parser;
use cpe_sim::acs::server::{AcsServer, AuthMode, ServerConfig};
use cpe_sim::acs::{AcsRpc, AcsScript};
use cpe_sim::api::{ApiServer, MetricsSources};
use cpe_sim::cli::{AcsArgs, Args, Command, ReportCommand, RunArgs};
use cpe_sim::config::{load_profile, parse_profile};
use cpe_sim::connreq::{advertise_host, CpeMsg, CrConfig, CrServer, Owners};
use cpe_sim::console;
use cpe_sim::cpe::CpeState;
use cpe_sim::cwmp::envelope::{urn_minor, URNS};
use cpe_sim::cwmp::template::InformTemplate;
use cpe_sim::fleet::{self, Outputs};
use cpe_sim::model::tree::ValueSource;
use cpe_sim::model::Template;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::persist::{Resume, StateSink, Store, StoreError};
use cpe_sim::plan::{self, SweepFlags};
use cpe_sim::runner::{run_cpe, Mode, PeriodicPlan, RunOptions};
use cpe_sim::shard::{Boot, ConnectionMode, FleetPlan};
use cpe_sim::stats::threshold::Threshold;
use cpe_sim::time::UnixMillis;
use cpe_sim::transport::tls::{client_config, TlsOptions};
use cpe_sim::transport::{Credentials, TransportConfig};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{error, info, warn, Instrument};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The example TR-181 profile, built in so the binary runs from anywhere.
const BUILTIN_PROFILE: &str = include_str!("../profiles/example-tr181-gateway/profile.yaml");

fn main() -> ExitCode {
    // Before anything opens a descriptor: a closed stderr must not become a socket's number.
    console::guard_std_fds();
    let args = Args::parse();
    // Every flag of a run or sweep is checked before any runtime, listener or ACS starts.
    if let Err(e) = validate_flags(&args) {
        console::err_line(&format!("error: {e}"));
        return ExitCode::from(2);
    }
    let level = match &args.command {
        Some(Command::Acs(a)) => &a.log_level,
        Some(Command::Sweep(s)) => &s.run.log_level,
        _ => &args.run.log_level,
    };
    let Ok(level) = level.parse::<tracing::Level>() else {
        console::err_line(&format!("error: --log-level `{level}` is not one of error, warn, info, debug, trace"));
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A failed log write is reported with eprintln!, which panics on a broken stderr pipe.
        .log_internal_errors(false)
        .init();
    let result = match args.command {
        Some(Command::Check { profile, cpe_index }) => check(&profile, cpe_index),
        Some(Command::Acs(a)) => runtime().and_then(|rt| rt.block_on(serve_acs(*a))),
        Some(Command::Sweep(s)) => fleet_main(&s.run, Some((&s.multipliers, s.step_duration, s.sweep_json.as_deref()))),
        Some(Command::Report(ReportCommand::Merge { files, report_json })) => merge_reports(&files, report_json.as_deref()),
        None if args.run.cpes > 1 => fleet_main(&args.run, None),
        None => runtime().and_then(|rt| rt.block_on(run(args.run))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// The flags of a run (`cpe-sim`) or a sweep, validated; other subcommands check their own.
fn validate_flags(args: &Args) -> Result<(), plan::UsageError> {
    match &args.command {
        None => plan::validate(&args.run, None).map(drop),
        Some(Command::Sweep(s)) => {
            let sweep = SweepFlags { multipliers: &s.multipliers, step_duration: s.step_duration, sweep_json: s.sweep_json.as_deref() };
            plan::validate(&s.run, Some(sweep)).map(drop)
        }
        Some(_) => Ok(()),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// A watch that turns true on SIGINT or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        info!("signal received: finishing the open session, then stopping");
        let _ = tx.send(true);
    });
    rx
}

fn load(path: Option<&std::path::Path>, cwmp_version: Option<&str>) -> anyhow::Result<Model> {
    let mut model = match path {
        Some(p) => load_profile(p)?,
        None => parse_profile(BUILTIN_PROFILE, std::path::Path::new("<built-in example-tr181-gateway>"), "example-tr181-gateway")?,
    };
    if let Some(v) = cwmp_version {
        let minor = urn_minor(v).with_context(|| format!("--cwmp-version `{v}` is not cwmp-1-0 … cwmp-1-4"))?;
        model.cwmp_urn = URNS[minor as usize].into();
    }
    Ok(model)
}

fn credentials(user: Option<String>, pass: Option<String>, what: &str) -> anyhow::Result<Option<Credentials>> {
    match (user, pass) {
        (None, None) => Ok(None),
        (Some(username), password) => Ok(Some(Credentials { username, password: password.unwrap_or_default() })),
        (None, Some(_)) => anyhow::bail!("{what}: --acs-password needs --acs-username"),
    }
}

/// The embedded ACS a run starts when no --acs-url is given: GenieACS-like, speaking the
/// profile's cwmp version, asking for the run's credentials if any.
fn embedded_acs(model: &Model, transport: &TransportConfig) -> ServerConfig {
    let script = AcsScript { urn: URNS[urn_minor(&model.cwmp_urn).unwrap_or(0) as usize], ..AcsScript::default() };
    ServerConfig { script, credentials: transport.credentials.clone(), auth_mode: AuthMode::Digest, tls: None, keep_alive: false }
}

fn transport_config(args: &RunArgs) -> anyhow::Result<TransportConfig> {
    if args.tls_skip_verify {
        warn!("--tls-skip-verify=true: the ACS's certificate is NOT verified; anyone on the path can impersonate it. Use only for local tests.");
    }
    let tls = client_config(&TlsOptions {
        ca_cert_file: args.ca_cert_file.clone(),
        skip_verify: args.tls_skip_verify,
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        no_system_roots: false,
    })?;
    Ok(TransportConfig {
        timeout: args.timeout,
        max_body: args.max_body,
        tls,
        credentials: credentials(args.acs_username.clone(), args.acs_password.clone(), "run")?,
    })
}

/// The listeners that reach into CPEs from outside, and the owners' ends of their channels.
struct Listeners {
    cr: Option<CrServer>,
    api: Option<ApiServer>,
    receivers: Vec<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
}

impl Listeners {
    async fn stop(self) {
        if let Some(s) = self.cr {
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
    sessions: Option<Arc<std::sync::Mutex<cpe_sim::stats::Recorder>>>,
) -> anyhow::Result<(Arc<Model>, Listeners)> {
    // Owners' channels only when a listener needs them (a shard then also snapshots credentials).
    let (owners, receivers) = if args.cr_bind_addr.is_some() || args.api_bind_addr.is_some() {
        Owners::channels(args.first_index, args.cpes, owners as usize)
    } else {
        (Owners { first: args.first_index, count: args.cpes, senders: Vec::new() }, Vec::new())
    };
    let cr = match args.cr_bind_addr {
        Some(bind) => Some(start_connection_requests(args, &mut model, bind, owners.clone(), single).await?),
        None => None,
    };
    let model = Arc::new(model);
    let api = match args.api_bind_addr {
        Some(bind) => {
            let sources = MetricsSources { connection_requests: cr.as_ref().map(|c| c.stats_handle()), sessions };
            let server = ApiServer::start(bind, model.clone(), owners, sources)
                .await
                .with_context(|| format!("--api-bind-addr {bind}: cannot listen"))?;
            info!("device state API at http://{}/cpes", server.addr);
            Some(server)
        }
        None => None,
    };
    Ok((model, Listeners { cr, api, receivers }))
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
    let cfg = CrConfig { bind, auth: model.connection_request_auth, single, rate_per_second: args.cr_rate };
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

/// Opens `--state-dir`: another profile's store is an error; an unusable directory is reported and
/// the run goes on in memory.
fn open_store(args: &RunArgs, model: &Model) -> anyhow::Result<Option<Store>> {
    let Some(dir) = &args.state_dir else { return Ok(None) };
    match Store::open(dir, model) {
        Ok(store) => {
            if store.torn_bytes > 0 {
                warn!(bytes = store.torn_bytes, "--state-dir: dropped a torn last batch (the simulator was killed while writing it)");
            }
            info!(dir = %dir.display(), saved_cpes = store.loaded.len(), "device state is kept in --state-dir");
            Ok(Some(store))
        }
        Err(e @ StoreError::Mismatch { .. }) => Err(e.into()),
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
            Ok(w) => info!(snapshots = w.records, batches = w.batches, "device state saved (one fdatasync per batch)"),
            Err(e) => error!("--state-dir: the last batch was not saved: {e}"),
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let model = load(args.profile.as_deref(), args.cwmp_version.as_deref())?;
    let transport = transport_config(&args)?;
    let (model, mut listeners) = start_listeners(&args, model, 1, true, None).await?;
    let shutdown = shutdown_signal();
    let now = UnixMillis::now();
    let id = DeviceId(args.first_index);
    let mut store = open_store(&args, &model)?;
    let resumed = store.as_mut().and_then(|s| s.resume(id.0, now));
    if let Some(c) = &resumed {
        info!(cpe_id = %id, bootstrapped = c.bootstrapped, events = %c.events.describe(0), "resumed from --state-dir");
    }
    let mut cpe = resumed.unwrap_or_else(|| CpeState::new(id, now));
    let template = InformTemplate::new(&model);
    let root = model.tree.root_name().to_string();
    let dev = model.device(id, &cpe.delta, cpe.boot_at, now);
    let serial = dev.get(&format!("{root}.DeviceInfo.SerialNumber")).unwrap_or_default();
    // Every line of the run carries the CPE's id and serial.
    let span = tracing::info_span!("cpe", cpe_id = %id, serial = %serial);
    let rx = listeners.receivers.pop();
    let sink = store.as_ref().map(|s| s.sink.clone());
    let code = inform_acs(&args, &model, transport, shutdown, &mut cpe, &template, (rx, sink)).instrument(span).await;
    listeners.stop().await;
    close_store(store);
    code
}

/// The part of a run that happens inside the CPE's span: start the embedded ACS when needed,
/// run the CPE, report.
async fn inform_acs(
    args: &RunArgs,
    model: &Model,
    transport: TransportConfig,
    shutdown: watch::Receiver<bool>,
    cpe: &mut CpeState,
    template: &InformTemplate,
    (cr, state): (Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>, Option<StateSink>),
) -> anyhow::Result<ExitCode> {
    let root = model.tree.root_name();
    let periodic = model
        .device(cpe.id, &cpe.delta, cpe.boot_at, UnixMillis::now())
        .get(&format!("{root}.ManagementServer.PeriodicInformEnable"))
        .is_some_and(|v| v == "true");
    // No --acs-url: serve the embedded ACS in this process and inform it over loopback.
    let (acs_url, embedded) = match &args.acs_url {
        Some(u) => (u.clone(), None),
        None => {
            let server = AcsServer::start(([127, 0, 0, 1], 0).into(), embedded_acs(model, &transport))
                .await
                .context("starting the embedded ACS on 127.0.0.1")?;
            info!(profile = %model.name, "no --acs-url given: started the embedded ACS at {} (GenieACS-like bootstrap script)", server.url());
            (server.url(), Some(server))
        }
    };
    // A Connection Request listener needs the CPE to stay up: daemon mode.
    let mode = if args.duration.is_some() || periodic || cr.is_some() { Mode::Daemon { duration: args.duration } } else { Mode::OneShot };
    let opts = RunOptions { acs_url: acs_url.clone(), transport, mode, state };
    info!(acs_url = %acs_url, profile = %model.name, mode = ?mode, "CPE starting");
    let report = run_cpe(model, template, cpe, &opts, shutdown, cr).await;
    // What the ACS changed on this CPE, from the CPE's own delta (secrets masked).
    for v in cpe.delta.inner().map(|d| d.values.as_slice()).unwrap_or_default() {
        let secret = model.tree.node(v.loc.node).param().is_some_and(|p| p.secret);
        let shown = if secret { "<hidden>" } else { &v.value };
        info!(source = %v.source.as_str(), "set {} = {shown}", model.tree.path_string(&v.loc));
    }
    if let Some(server) = embedded {
        server.stop().await;
    }
    let ok = match mode {
        Mode::OneShot => report.failed == 0 && report.completed > 0,
        Mode::Daemon { .. } => report.completed > 0,
    };
    info!(sessions_completed = report.completed, sessions_failed = report.failed, interrupted = report.interrupted, "done");
    if ok {
        return Ok(ExitCode::SUCCESS);
    }
    error!("{}", report.last_error.as_deref().unwrap_or("no session completed"));
    Ok(ExitCode::from(1))
}

/// A fleet run (`--cpes` > 1) or a sweep, on per-core shards.
fn fleet_main(args: &RunArgs, sweep: Option<(&Vec<f64>, std::time::Duration, Option<&std::path::Path>)>) -> anyhow::Result<ExitCode> {
    let model = load(args.profile.as_deref(), args.cwmp_version.as_deref())?;
    let transport = transport_config(args)?;
    let thresholds = args.thresholds.iter().map(|t| Threshold::parse(t).map_err(anyhow::Error::msg)).collect::<anyhow::Result<Vec<_>>>()?;
    if args.interval_multiplier <= 0.0 || sweep.is_some_and(|(m, _, _)| m.iter().any(|x| *x <= 0.0)) {
        anyhow::bail!("interval multipliers must be greater than 0");
    }
    let nofile = fleet::raise_nofile_limit();
    fleet::install_signal_handlers();
    // The embedded ACS (without --acs-url) and the Connection Request listener run on a thread of
    // their own beside the shards.
    let side_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let shards = args.shards.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u16)).max(1);
    let shards = shards.min(args.cpes.min(u16::MAX as u32) as u16).max(1);
    let live = args.api_bind_addr.map(|_| Arc::new(std::sync::Mutex::new(cpe_sim::stats::Recorder::new())));
    let (model, mut listeners) = side_rt.block_on(start_listeners(args, model, shards, false, live.clone()))?;
    let receivers = std::mem::take(&mut listeners.receivers);
    let mut store = open_store(args, &model)?;
    let state = store.as_mut().map(|s| Resume { saved: std::sync::Mutex::new(std::mem::take(&mut s.loaded)), sink: s.sink.clone() });
    let (acs_url, _server) = match &args.acs_url {
        Some(u) => (u.clone(), None),
        None => {
            let acs_rt = &side_rt;
            let server = acs_rt
                .block_on(AcsServer::start(([127, 0, 0, 1], 0).into(), embedded_acs(&model, &transport)))
                .context("starting the embedded ACS")?;
            info!("no --acs-url given: started the embedded ACS at {}", server.url());
            (server.url(), Some(server))
        }
    };
    let boot = match args.boot_rate {
        Some(r) if r > 0.0 => Boot::Rate(r),
        Some(_) => anyhow::bail!("--boot-rate must be greater than 0"),
        None => Boot::Spread(args.boot_spread),
    };
    let periodic = PeriodicPlan { multiplier: args.interval_multiplier, interval: args.inform_interval };
    let period = match args.inform_interval {
        Some(d) => d,
        None => {
            let d = cpe_sim::model::Delta::default();
            let now = UnixMillis::now();
            let root = model.tree.root_name().to_string();
            let secs = model
                .device(DeviceId(0), &d, now, now)
                .get(&format!("{root}.ManagementServer.PeriodicInformInterval"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(300);
            std::time::Duration::from_secs(secs)
        }
    };
    let plan = FleetPlan {
        template: Arc::new(InformTemplate::new(&model)),
        model: model.clone(),
        acs_url: acs_url.clone(),
        transport,
        cpes: args.cpes,
        first_index: args.first_index,
        shards,
        boot,
        periodic,
        connection_mode: if args.connection_mode == "per-session" { ConnectionMode::PerSession } else { ConnectionMode::Pooled },
        max_in_flight: (args.max_connections / shards as usize).max(1),
        report_every: args.progress_interval.min(std::time::Duration::from_secs(1)),
        epoch: std::time::Instant::now(),
        state,
    };
    info!(
        cpes = plan.cpes,
        first = %format!("cpe-{}", plan.first_index),
        shards,
        acs_url = %acs_url,
        boot = ?plan.boot,
        multiplier = plan.periodic.multiplier,
        connection_mode = %args.connection_mode,
        max_connections = args.max_connections,
        open_files_limit = nofile.unwrap_or(0),
        "fleet starting"
    );
    let out = Outputs {
        progress_every: args.progress_interval,
        report_json: args.report_json.clone(),
        hdr_log: args.hdr_log.clone(),
        thresholds,
        progress: true,
        live,
    };
    if let Some((multipliers, step, json_path)) = sweep {
        let (steps, knee, json) = fleet::sweep(plan, multipliers, step, period, &out)?;
        console::out(&fleet::sweep_text(&steps, knee)).context("writing the sweep table to stdout")?;
        if let Some(p) = json_path {
            std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--sweep-json {}", p.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = fleet::run(plan, args.duration, &out, receivers);
    close_store(store);
    let outcome = outcome?;
    let report = cpe_sim::stats::report::to_text(&outcome.total, &outcome.facts, &cpe_sim::stats::report::ProcessFigures::now());
    console::out(&report).context("writing the report to stdout")?;
    if let Some(s) = &listeners.cr {
        console::out(&format!("{}\n", s.stats())).context("writing the report to stdout")?;
    }
    side_rt.block_on(listeners.stop());
    for b in &outcome.breaches {
        error!("{b}");
    }
    if !outcome.breaches.is_empty() {
        return Ok(ExitCode::from(99));
    }
    if outcome.total.outcomes.completed == 0 {
        error!("no session completed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn merge_reports(files: &[std::path::PathBuf], json_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let (merged, span) = cpe_sim::stats::interval::merge(files).map_err(anyhow::Error::msg)?;
    let facts = cpe_sim::stats::report::RunFacts { duration: span, cpes: 0, shards: 0, multiplier: 1.0 };
    let process = cpe_sim::stats::report::ProcessFigures::default();
    console::out(&cpe_sim::stats::report::to_text(&merged, &facts, &process)).context("writing the report to stdout")?;
    if let Some(p) = json_path {
        let json = cpe_sim::stats::report::to_json(&merged, &facts, &process);
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve_acs(args: AcsArgs) -> anyhow::Result<ExitCode> {
    let mut every_session = Vec::new();
    for spec in &args.push {
        every_session.push(AcsRpc::from_spec(spec).map_err(anyhow::Error::msg).context("--push")?);
    }
    let auth_mode = match args.auth.as_str() {
        "digest" => AuthMode::Digest,
        "basic" => AuthMode::Basic,
        other => anyhow::bail!("--auth `{other}`: use digest or basic"),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(cpe_sim::transport::tls::server_config(cert, key, args.tls_client_ca.as_deref())?),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let cfg = ServerConfig {
        script: AcsScript { bootstrap_provisioning: !args.no_provisioning, every_session, ..AcsScript::default() },
        credentials: credentials(args.acs_username, args.acs_password, "acs")?,
        auth_mode,
        tls,
        keep_alive: args.keep_alive,
    };
    let server = AcsServer::start(args.bind, cfg).await.with_context(|| format!("binding {}", args.bind))?;
    info!("embedded ACS listening at {} (Ctrl-C to stop)", server.url());
    let mut shutdown = shutdown_signal();
    let _ = shutdown.changed().await;
    let stats = server.stats();
    info!(
        sessions_started = stats.sessions_started,
        sessions_completed = stats.sessions_completed,
        auth_challenges = stats.auth_challenges,
        bad_requests = stats.bad_requests,
        "embedded ACS stopped"
    );
    server.stop().await;
    Ok(ExitCode::SUCCESS)
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
    console::out(&text).context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
