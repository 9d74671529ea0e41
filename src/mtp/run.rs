//! A USP run (`--protocol usp`): the fleet as TR-369 Agents on an MQTT broker or towards a
//! WebSocket Controller (the embedded one on loopback without `--usp-url`), the embedded
//! Controller unless `--controller-id` names another, progress lines and `/metrics`
//! (`--metrics-bind-addr`) each `--progress-interval`, the report and the exit code (0 every
//! Agent's Boot! answered, 1 otherwise).
//!
//! The Agents run on the engine's shard threads ([`Shards`]: `--shards` current-thread runtimes,
//! a strided slice of the Agents each), every Agent's timers on its agenda and the run's clock;
//! the embedded Controller and the device state API run on a small runtime of their own. The boot
//! spread (`--boot-spread`/`--boot-rate`) and `Periodic!` (`--inform-interval`) follow the CWMP
//! flags. A shard that panics fails the run (exit 1, the report marked incomplete).

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{error, info};

use super::agent;
use super::controller::Controller;
use super::life::{Shared, Transport, NOTIFY_RETRIES};
use super::mqtt::{controller_topic, ClientSettings, MqttVersion};
use super::report::{self, AgentFigures};
use super::shards::Shards;
use super::ws::{self, WsController, WsServe};
use super::UspTarget;
use crate::api::{ApiServer, MetricsSources};
use crate::cli::RunArgs;
use crate::commands::{load, transport_config};
use crate::console;
use crate::engine;
use crate::stats::threshold::{self, Threshold};
use crate::usp::endpoint::DEFAULT_CONTROLLER_ID;
use crate::usp::EndpointTemplate;

/// The embedded Controller of a run, on the broker or serving WebSocket.
enum Embedded {
    Mqtt(Controller),
    Ws(WsController),
}

/// Runs `args` as USP Agents, checking `thresholds` (`Threshold::parse_usp`) against the report:
/// exit 1 when a shard panicked, an output could not be written or an Agent's Boot! went
/// unanswered, 99 when a threshold was breached (the CWMP run's codes), else 0.
///
/// # Errors
/// A profile that is not TR-181 (`Device.`), unusable TLS files, or an embedded Controller that
/// cannot reach the broker.
pub fn run(args: &RunArgs, thresholds: &[Threshold], slice: crate::slice::Slice) -> anyhow::Result<ExitCode> {
    let model = load(args.profile.as_deref(), args.cwmp_version.as_deref())?;
    if model.tree.root_name() != "Device" {
        anyhow::bail!("--protocol usp needs a TR-181 profile (root object Device.), not `{}.`", model.tree.root_name());
    }
    // Every Notify comes from a subscription (the factory defaults add Boot! and Periodic!): a
    // profile without the table gives Agents that answer but never notify.
    if model.tree.by_schema_path(&format!("Device.{}", crate::usp::subscription::TABLE)).is_none() {
        tracing::warn!(
            "this profile has no Device.LocalAgent.Subscription. table: the Agents will send no Notify (no Boot!, no Periodic!)"
        );
    }
    let target = match args.usp_url.as_deref() {
        Some(url) => {
            Some(UspTarget::parse(url).map_err(|why| anyhow::anyhow!("--usp-url {}: {why}", crate::transport::without_userinfo(url)))?)
        }
        None => None,
    };
    let endpoints = EndpointTemplate::compile(&args.usp_endpoint_id).map_err(|e| anyhow::anyhow!("--usp-endpoint-id: {e}"))?;
    // Every Agent's ID must be an endpoint ID (it names MQTT topics): the first and the last
    // Agent's show what the template makes of this profile's identity.
    for index in [args.first_index, args.first_index.saturating_add(args.cpes.saturating_sub(1))] {
        let id = endpoints.endpoint_id(&model, crate::model::DeviceId(index));
        anyhow::ensure!(
            crate::usp::endpoint::is_valid(&id),
            "--usp-endpoint-id {}: makes `{id}`, not a TR-369 endpoint ID (authority:…:id, at most 256 printable characters without `/`, `+` or `#`)",
            args.usp_endpoint_id
        );
    }
    let client = match &target {
        Some(UspTarget::Mqtt(t)) => Some(ClientSettings {
            target: t.clone(),
            // Checked by plan::validate; the default is MQTT 5.
            version: MqttVersion::parse(&args.mqtt_version).unwrap_or_default(),
            keep_alive: args.mqtt_keep_alive,
            credentials: args.mqtt_username.clone().map(|u| (u, args.mqtt_password.clone().unwrap_or_default())),
            tls: if t.tls { Some(transport_config(args)?.tls) } else { None },
            connect_timeout: args.timeout,
        }),
        _ => None,
    };
    // --state-dir: Agents resume their delta (subscriptions, what Controllers set).
    let mut store = match &args.state_dir {
        Some(dir) => Some(crate::persist::Store::open(dir, &model).with_context(|| format!("--state-dir {}", dir.display()))?),
        None => None,
    };
    let mut saved = store.as_mut().map(|s| std::mem::take(&mut s.loaded)).unwrap_or_default();
    let nofile = engine::raise_nofile_limit();
    engine::install_signal_handlers();
    let workers = args.shards.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |s| s as usize).max(1);
    // The Controller's and the API's runtime; the Agents are on the shards.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let embedded = args.controller_id.is_none();
    let controller_id = args.controller_id.clone().unwrap_or_else(|| embedded_controller_id(slice));
    // Without --usp-url the embedded Controller serves WebSocket on loopback (no broker needed);
    // with an MQTT broker it joins the broker, unless --controller-id names another Controller.
    let (controller, transport, mtp) = match (&target, &client) {
        (Some(UspTarget::Mqtt(_)), Some(c)) => {
            let ctl = match embedded {
                true => {
                    // The run has started: a broker that cannot be reached, or a stop signal
                    // while connecting, is a runtime failure (exit 1), not a usage error.
                    let ctl =
                        rt.block_on(Controller::start(c, &controller_id, args.timeout)).map_err(crate::commands::RuntimeFailure::wrap)?;
                    // Boot! counts only from the run's Agents; anyone else's is dropped.
                    ctl.expect_agents(
                        (0..args.cpes).map(|k| endpoints.endpoint_id(&model, crate::model::DeviceId(args.first_index.saturating_add(k)))),
                    );
                    Some(Embedded::Mqtt(ctl))
                }
                false => None,
            };
            (ctl, Transport::Mqtt(c.clone()), c.version.name())
        }
        (Some(UspTarget::WebSocket(url)), _) => {
            // wss://: the CWMP side's TLS settings (--ca-cert-file, --tls-skip-verify, client cert).
            let secure = url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("wss://"));
            let tls = if secure { Some(transport_config(args)?.tls) } else { None };
            (
                None,
                Transport::WebSocket { url: url.clone(), connect_timeout: args.timeout, tls },
                if secure { "WebSocket over TLS" } else { "WebSocket" },
            )
        }
        _ => {
            let how = WsServe { ask_ttl: Some(args.timeout), tls: None };
            let ws = rt.block_on(WsController::start(&controller_id, how)).context("starting the embedded USP Controller on 127.0.0.1")?;
            // Boot! counts only from the run's Agents; anyone else's is dropped.
            ws.expect_agents(
                (0..args.cpes).map(|k| endpoints.endpoint_id(&model, crate::model::DeviceId(args.first_index.saturating_add(k)))),
            );
            info!("no --usp-url given: started the embedded USP Controller at {} (WebSocket, v1.usp)", ws.url);
            let url = ws.url.clone();
            (Some(Embedded::Ws(ws)), Transport::WebSocket { url, connect_timeout: args.timeout, tls: None }, "WebSocket")
        }
    };
    // For logs and the report: never a URL's userinfo.
    let where_to = match &transport {
        Transport::Mqtt(c) => crate::transport::without_userinfo(&c.target.to_string()).into_owned(),
        Transport::WebSocket { url, .. } => crate::transport::without_userinfo(url).into_owned(),
    };
    let shared = Arc::new(Shared {
        model: Arc::new(model),
        transport,
        endpoints,
        controller_topic: controller_topic(&controller_id),
        controller_id: controller_id.clone(),
        notify_timeout: args.timeout,
        periodic: args.inform_interval,
        figures: Mutex::new(AgentFigures { agents: args.cpes, ..AgentFigures::default() }),
        sink: store.as_ref().map(|s| s.sink.clone()),
        clock: engine::clock::Clock::system(),
    });
    info!(
        agents = args.cpes,
        first = %format!("cpe-{}", args.first_index),
        to = %where_to,
        controller = %controller_id,
        embedded_controller = embedded,
        shards = workers,
        open_files_limit = nofile.unwrap_or(0),
        "USP agents starting ({mtp})"
    );
    // The device state API (--api-bind-addr): one channel per Agent, so each task owns its CPE.
    let (owners, inboxes) = crate::owners::Owners::channels(args.first_index, args.cpes, args.cpes as usize);
    let api = match args.api_bind_addr {
        Some(bind) => {
            let server = rt
                .block_on(ApiServer::start(bind, crate::api::Speaks::Usp, shared.model.clone(), owners, MetricsSources::default()))
                .with_context(|| format!("--api-bind-addr {bind}: cannot listen"))?;
            info!("device state API at http://{}/cpes", server.addr);
            Some(server)
        }
        None => None,
    };
    // --metrics-bind-addr: the figures as Prometheus text, 503 until the first progress tick.
    let (metrics_text, metrics) = crate::metrics::MetricsServer::for_flag(args.metrics_bind_addr, &rt)?;
    let mut inboxes: Vec<Option<_>> = inboxes.into_iter().map(|r| api.as_ref().map(|_| r)).collect();
    let started = std::time::Instant::now();
    let run_id = crate::stats::run_id::RunId::fresh();
    // The engine's boot rule (spread or rate), so both protocols boot alike and saturate alike.
    let boot = match args.boot_rate {
        Some(r) => crate::engine::Boot::Rate(r),
        None => crate::engine::Boot::Spread(args.boot_spread),
    };
    let boot_window = Duration::from_millis(crate::engine::shard::boot_offset_ms(boot, args.cpes.saturating_sub(1), args.cpes));
    let agents: Vec<_> = (0..args.cpes)
        .map(|k| {
            let start_after = Duration::from_millis(crate::engine::shard::boot_offset_ms(boot, k, args.cpes));
            let inbox = inboxes.get_mut(k as usize).and_then(Option::take);
            let index = args.first_index.saturating_add(k);
            AgentStart { index, start_after, inbox, resumed: saved.remove(&index) }
        })
        .collect();
    let mut shards = Shards::start(u16::try_from(workers).unwrap_or(u16::MAX), agents, args.drain_timeout, {
        let shared = shared.clone();
        move |a, stop| run_agent(shared.clone(), a, stop)
    })?;
    // One-shot (no --duration): ends once every Boot! is answered, or when the last one could
    // not have been answered any more (boot window + every retry's timeout + a reconnect).
    let deadline = match args.duration {
        Some(d) => started + d,
        None => started + boot_window + args.timeout * (NOTIFY_RETRIES as u32 + 1) + Duration::from_secs(10),
    };
    // Progress ticks: the line on stderr and the `/metrics` text, from the same figures.
    let ctl_figures = controller.as_ref().map(|c| match c {
        Embedded::Mqtt(c) => c.figures.clone(),
        Embedded::Ws(c) => c.figures.clone(),
    });
    let exposition = |a: &AgentFigures| {
        let c = ctl_figures.as_ref().map(|f| f.lock().unwrap_or_else(|p| p.into_inner()));
        report::to_exposition(&run_id.to_string(), a, c.as_deref())
    };
    let (mut last_tick, mut last_sent) = (started, 0u64);
    let mut ticks = report::Ticks::default();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = std::time::Instant::now();
        let (booted, tick) = {
            let f = shared.figures.lock().unwrap_or_else(|p| p.into_inner());
            let tick = (now >= last_tick + args.progress_interval).then(|| {
                let sent = f.notifies_sent();
                let rate = sent.saturating_sub(last_sent) as f64 / now.duration_since(last_tick).as_secs_f64().max(1e-3);
                last_sent = sent;
                ticks.record(&f, now.duration_since(started));
                (report::progress_line(now.duration_since(started), "run", &f, rate), metrics_text.as_ref().map(|_| exposition(&f)))
            });
            (f.booted, tick)
        };
        if let Some((line, text)) = tick {
            console::err_line(&line);
            if let (Some(m), Some(text)) = (&metrics_text, text) {
                *m.lock().unwrap_or_else(|p| p.into_inner()) = text;
            }
            last_tick = now;
        }
        if shards.poll() || now >= deadline || engine::stop_requested() || (args.duration.is_none() && booted >= args.cpes as u64) {
            break;
        }
    }
    let elapsed = started.elapsed();
    // The report's "held" figure is taken before the Agents disconnect.
    let held = shared.figures.lock().unwrap_or_else(|p| p.into_inner()).connected;
    shards.stop();
    if let Some(api) = api {
        rt.block_on(api.stop());
    }
    let controller_figures = controller.map(|c| match c {
        Embedded::Mqtt(c) => {
            let figures = c.figures.clone();
            rt.block_on(c.stop());
            figures
        }
        Embedded::Ws(c) => {
            let figures = c.figures.clone();
            rt.block_on(c.stop());
            figures
        }
    });
    let mut figures = std::mem::take(&mut *shared.figures.lock().unwrap_or_else(|p| p.into_inner()));
    figures.connected = held;
    let cf = controller_figures.as_ref().map(|f| f.lock().unwrap_or_else(|p| p.into_inner()));
    // The last tick: over the whole run, the report's own figures (so the two agree).
    console::err_line(&report::progress_line(
        elapsed,
        "whole run",
        &figures,
        figures.notifies_sent() as f64 / elapsed.as_secs_f64().max(1e-3),
    ));
    ticks.record_last(&figures, elapsed, args.progress_interval / 2);
    if let (Some(m), Some(server)) = (&metrics_text, metrics) {
        *m.lock().unwrap_or_else(|p| p.into_inner()) = report::to_exposition(&run_id.to_string(), &figures, cf.as_deref());
        rt.block_on(server.stop());
    }
    let peer = format!("{where_to} ({mtp}), controller {controller_id}{}", if embedded { " (embedded)" } else { "" });
    let header = format!("USP run {run_id}: {} agents (cpe-{} …) on {peer}", args.cpes, args.first_index);
    let mut json = report::to_json(&figures, cf.as_deref(), elapsed);
    json["run"] = report::run_json(&run_id.to_string(), u64::from(args.cpes), args.first_index, u32::try_from(workers).unwrap_or(u32::MAX));
    json["complete"] = serde_json::json!(shards.complete());
    if !shards.complete() {
        json["panics"] = serde_json::json!(shards.panics);
    }
    let verdicts: Vec<_> = thresholds.iter().map(|t| t.evaluate(&json)).collect();
    json["thresholds"] = serde_json::json!(verdicts.iter().map(crate::stats::threshold::Verdict::to_json).collect::<Vec<_>>());
    let mut text = report::to_text(&header, &figures, cf.as_deref(), elapsed);
    text.push_str(&threshold::to_text(&verdicts));
    for line in &shards.panics {
        text.push_str(&format!("incomplete: {line}\n"));
    }
    let mut failed_output = console::out(&text).is_err();
    if let Some(p) = &args.report_json {
        if let Err(e) = std::fs::write(p, serde_json::to_vec_pretty(&json).unwrap_or_default()) {
            error!("--report-json {}: {e}", p.display());
            failed_output = true;
        }
    }
    if let Some(p) = &args.report_html {
        if let Err(e) = std::fs::write(p, crate::stats::html::render_usp(&peer, &json, &ticks.to_json())) {
            error!("--report-html {}: {e}", p.display());
            failed_output = true;
        }
    }
    drop(cf);
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(shared);
    if let Some(s) = store {
        if let Err(e) = s.close() {
            error!("--state-dir: the last batch was not saved: {e}");
            failed_output = true;
        }
    }
    if !shards.complete() || failed_output {
        return Ok(ExitCode::from(1));
    }
    let breaches: Vec<_> = verdicts.iter().filter(|v| !v.passed).collect();
    for b in &breaches {
        error!("{b}");
    }
    if !breaches.is_empty() {
        return Ok(ExitCode::from(99));
    }
    if figures.booted < args.cpes as u64 {
        let causes: Vec<String> = figures.failures.iter().map(|(k, n)| format!("{} {n}", k.name())).collect();
        error!(
            booted = figures.booted,
            agents = args.cpes,
            "not every Agent's Boot! was answered{}",
            if causes.is_empty() { String::new() } else { format!(" (connection failures: {})", causes.join(", ")) }
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// What one Agent of the run starts with.
struct AgentStart {
    index: u32,
    start_after: Duration,
    inbox: Option<tokio::sync::mpsc::UnboundedReceiver<crate::owners::CpeMsg>>,
    resumed: Option<crate::cpe::CpeState>,
}

/// One Agent's whole life on its shard, over the run's MTP.
async fn run_agent(shared: Arc<Shared>, a: AgentStart, stop: watch::Receiver<bool>) {
    match shared.transport {
        Transport::Mqtt(_) => agent::run(shared.clone(), a.index, a.start_after, stop, a.inbox, a.resumed).await,
        Transport::WebSocket { .. } => ws::run(shared.clone(), a.index, a.start_after, stop, a.inbox, a.resumed).await,
    }
}

/// The embedded Controller's endpoint ID: [`DEFAULT_CONTROLLER_ID`], with the slice's index
/// appended when the fleet is cut into slices (`…-K`), so slices side by side on one broker each
/// have a Controller of their own (one endpoint ID and MQTT client ID each: a broker closes a
/// client whose ID another takes).
pub fn embedded_controller_id(slice: crate::slice::Slice) -> String {
    if slice.count > 1 {
        format!("{DEFAULT_CONTROLLER_ID}-{}", slice.index)
    } else {
        DEFAULT_CONTROLLER_ID.to_string()
    }
}
