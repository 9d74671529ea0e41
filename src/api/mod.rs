//! The device state API (`--api-bind-addr`, off unless given): look inside CPEs and change them
//! from the CPE side, over HTTP with JSON.
//!
//! - `GET /cpes?offset=&limit=`: the CPEs of this process.
//! - `GET /cpes/{cpe-N or serial}`: one CPE's state ([`crate::owners::answer::inspect`]).
//! - `PUT /cpes/{id}/parameters` with `{"name": value, …}`: local changes (source `cpe`). The
//!   answer's `notification` says what follows, by the protocol the CPEs speak ([`Speaks`]): for
//!   CWMP an active notification starts a `4 VALUE CHANGE` session at once, a passive one rides
//!   along with the next Inform; a USP Agent sends a ValueChange Notify to each enabled
//!   subscription naming the parameter (TR-369 §"Notifications and Subscription Mechanism").
//! - `POST /cpes/{id}/connection-request`: wake a CPE, no credentials (the local side).
//! - `GET /metrics`: Prometheus text: sessions by outcome and RPC latencies (a fleet's running
//!   totals), the listeners' counters.
//!
//! Like the Connection Request listener it holds no CPE state: it asks the CPE's owner through
//! [`CpeMsg`]. Every refusal is a JSON `{"error": reason}` with the right status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::connreq::{serve_http, CrStats};
use crate::model::{DeviceId, Model};
use crate::owners::Refusal;
use crate::owners::{CpeMsg, Owners};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;
/// Most CPEs in one `GET /cpes` page.
const MAX_PAGE: u64 = 10_000;

/// Counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub ok: AtomicU64,
    pub refused: AtomicU64,
}

struct Shared {
    speaks: Speaks,
    model: Arc<Model>,
    owners: Owners,
    stats: ApiStats,
    sources: MetricsSources,
}

/// What `/metrics` reports besides the API's own counters.
#[derive(Default, Clone)]
pub struct MetricsSources {
    /// The Connection Request listener's counters.
    pub connection_requests: Option<Arc<CrStats>>,
    /// The UDP Connection Request listener's counters (TR-069 Annex G).
    pub udp_connection_requests: Option<Arc<crate::connreq::udp::UdpCrStats>>,
    /// A fleet's running totals (sessions by outcome, RPC latencies), refreshed each progress tick.
    pub sessions: Option<Arc<std::sync::Mutex<crate::stats::Recorder>>>,
}

/// The protocol the CPEs behind the API speak: what a local change makes them do differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Speaks {
    /// TR-069 CPEs: notification attributes decide (an Inform now, later, or never).
    #[default]
    Cwmp,
    /// TR-369 Agents: subscriptions decide (a ValueChange Notify to each that names the parameter).
    Usp,
}

impl Speaks {
    /// The answer's `notification` for a local change that `notify` summed up.
    fn after_local_change(self, notify: crate::owners::Notify) -> &'static str {
        use crate::owners::Notify;
        match (self, notify) {
            // A USP Agent's subscriptions decide, not the CWMP notification attribute.
            (Speaks::Usp, _) => "value change: a ValueChange Notify goes to each enabled subscription naming the parameter",
            (Speaks::Cwmp, Notify::Active) => "active: a 4 VALUE CHANGE session starts now",
            (Speaks::Cwmp, Notify::Passive) => "passive: the change rides along with the next Inform",
            (Speaks::Cwmp, Notify::None) => "off: the ACS is not told",
        }
    }
}

/// The running API server.
pub struct ApiServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Binds and starts serving CPEs that speak `speaks`; `sources` adds to what `/metrics`
    /// reports.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(
        bind: SocketAddr,
        speaks: Speaks,
        model: Arc<Model>,
        owners: Owners,
        sources: MetricsSources,
    ) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { speaks, model, owners, stats: ApiStats::default(), sources });
        let (stop, stopped) = watch::channel(false);
        let limit = crate::connreq::ConnectionLimit { max: crate::connreq::MAX_CONNECTIONS, refused: Arc::new(|| {}) };
        let task = serve_http(listener, stopped, 64 * 1024, limit, move |_, req| handle(shared.clone(), req));
        Ok(ApiServer { addr, stop, task })
    }

    /// Stops accepting.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: u16, body: &Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec_pretty(body).unwrap_or_default())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

async fn handle(s: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, std::convert::Infallible> {
    let reply = match route(&s, req).await {
        Ok(r) => {
            s.stats.ok.fetch_add(1, Ordering::Relaxed);
            r
        }
        Err(e) => {
            s.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(status = e.status, reason = %e.reason, "API request refused");
            json_reply(e.status, &json!({ "error": e.reason }))
        }
    };
    Ok(reply)
}

async fn route(s: &Shared, req: Request<Incoming>) -> Result<Reply, Refusal> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["metrics"]) => Ok(metrics(s)),
        (Method::GET, ["cpes"]) => Ok(list(s, req.uri().query().unwrap_or(""))),
        (Method::GET, ["cpes", id]) => {
            let index = resolve(s, id)?;
            let v = ask(s, index, |reply| CpeMsg::Inspect { index, reply }).await?;
            Ok(json_reply(200, &v))
        }
        (Method::PUT, ["cpes", id, "parameters"]) => {
            let index = resolve(s, id)?;
            let params = parameters(req).await?;
            let notify = ask(s, index, |reply| CpeMsg::SetLocal { index, params, reply }).await?;
            let notify = s.speaks.after_local_change(notify);
            Ok(json_reply(200, &json!({ "id": DeviceId(index).to_string(), "notification": notify })))
        }
        (Method::POST, ["cpes", id, "connection-request"]) => {
            let index = resolve(s, id)?;
            let sender = s.owners.owner(index).ok_or_else(|| Refusal::new(404, "no such CPE"))?;
            sender.send(CpeMsg::Wake { index }).map_err(|_| Refusal::new(503, "the CPE is not running"))?;
            Ok(json_reply(200, &json!({ "id": DeviceId(index).to_string(), "woken": true })))
        }
        (_, ["metrics"] | ["cpes"] | ["cpes", _] | ["cpes", _, "parameters" | "connection-request"]) => {
            Err(Refusal::new(405, format!("{} is not allowed on {path}", req.method())))
        }
        _ => Err(Refusal::new(404, format!("no such endpoint: {path}"))),
    }
}

/// A CPE named by `cpe-N` or by its serial number.
fn resolve(s: &Shared, id: &str) -> Result<u32, Refusal> {
    let in_range = |i: u32| i.checked_sub(s.owners.first).is_some_and(|r| r < s.owners.count);
    if let Some(n) = id.strip_prefix("cpe-") {
        return n
            .parse::<u32>()
            .ok()
            .filter(|i| n.bytes().all(|b| b.is_ascii_digit()) && in_range(*i))
            .ok_or_else(|| Refusal::new(404, format!("no CPE {id} in this process")));
    }
    // A serial: its trailing digits are the index in the profile's template (hex or decimal);
    // the candidate is confirmed by stamping the template.
    let identity = &s.model.identity;
    for radix in [16, 10] {
        let digits = id.bytes().rev().take_while(|b| (*b as char).is_digit(radix)).count();
        for take in (1..=digits.min(10)).rev() {
            if let Ok(i) = u32::from_str_radix(&id[id.len() - take..], radix) {
                if in_range(i) && identity.serial.to_string_for(identity, DeviceId(i)) == id {
                    return Ok(i);
                }
            }
        }
    }
    Err(Refusal::new(404, format!("no CPE with serial {id} in this process")))
}

/// Sends a question to a CPE's owner and waits for the answer.
async fn ask<T>(s: &Shared, index: u32, msg: impl FnOnce(oneshot::Sender<Result<T, Refusal>>) -> CpeMsg) -> Result<T, Refusal> {
    let sender = s.owners.owner(index).ok_or_else(|| Refusal::new(404, "no such CPE"))?;
    let (tx, rx) = oneshot::channel();
    sender.send(msg(tx)).map_err(|_| Refusal::new(503, "the CPE is not running"))?;
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(answer)) => answer,
        _ => Err(Refusal::new(503, "the CPE's shard did not answer")),
    }
}

/// The JSON object of a PUT, as (name, value) strings.
async fn parameters(req: Request<Incoming>) -> Result<Vec<(String, String)>, Refusal> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Refusal::new(413, format!("body unreadable or over {MAX_BODY} bytes: {e}")))?
        .to_bytes();
    let v: Value = serde_json::from_slice(&body).map_err(|e| Refusal::new(400, format!("body is not JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(Refusal::new(400, "body must be a JSON object of parameter names to values"));
    };
    map.into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            Value::Number(n) => Ok((name, n.to_string())),
            Value::Bool(b) => Ok((name, b.to_string())),
            other => Err(Refusal::new(400, format!("{name}: value must be a string, number or boolean, not {other}"))),
        })
        .collect()
}

fn list(s: &Shared, query: &str) -> Reply {
    let arg = |key: &str| query.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse::<u64>().ok());
    let count = s.owners.count as u64;
    let offset = arg("offset").unwrap_or(0).min(count);
    let limit = arg("limit").unwrap_or(100).min(MAX_PAGE);
    let end = (offset + limit).min(count);
    let cpes: Vec<Value> = (offset..end)
        .map(|r| {
            let id = DeviceId(s.owners.first + r as u32);
            json!({ "id": id.to_string(), "serial": s.model.identity.serial.to_string_for(&s.model.identity, id) })
        })
        .collect();
    json_reply(200, &json!({ "count": count, "first_index": s.owners.first, "offset": offset, "limit": limit, "cpes": cpes }))
}

fn metrics(s: &Shared) -> Reply {
    // The format's rules are `stats::exposition::Families`' (heads, escaping, summaries).
    let mut f = crate::stats::exposition::Families::default();
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    f.head("cpesim_cpes", "gauge", "CPEs simulated by this process.");
    f.sample("cpesim_cpes", &[], s.owners.count);
    f.head("cpesim_api_requests_total", "counter", "Device state API requests by outcome.");
    f.sample("cpesim_api_requests_total", &[("outcome", "ok")], n(&s.stats.ok));
    f.sample("cpesim_api_requests_total", &[("outcome", "refused")], n(&s.stats.refused));
    if let Some(totals) = &s.sources.sessions {
        let r = totals.lock().expect("live totals").clone();
        let o = &r.outcomes;
        f.head("cpesim_sessions_total", "counter", "CWMP sessions by outcome.");
        for (outcome, v) in [("completed", o.completed), ("failed", o.failed_sessions()), ("late", o.late())] {
            f.sample("cpesim_sessions_total", &[("outcome", outcome)], v);
        }
        f.head("cpesim_rpc_seconds", "summary", "Service time per RPC (from sending a message to its answer).");
        for (name, h) in crate::stats::METRICS.iter().zip(&r.service) {
            f.summary("cpesim_rpc_seconds", &[("rpc", name)], h);
        }
    }
    if let Some(c) = &s.sources.connection_requests {
        f.head("cpesim_connection_requests_total", "counter", "Connection Requests by answer.");
        for (outcome, v) in [
            ("accepted", &c.accepted),
            ("unauthorized", &c.unauthorized),
            ("not_found", &c.not_found),
            ("rate_limited", &c.rate_limited),
            ("bad_request", &c.bad_requests),
        ] {
            f.sample("cpesim_connection_requests_total", &[("outcome", outcome)], n(v));
        }
    }
    if let Some(u) = &s.sources.udp_connection_requests {
        f.head("cpesim_udp_connection_requests_total", "counter", "UDP Connection Requests by outcome (dropped ones by cause).");
        for (outcome, v) in [
            ("accepted", &u.accepted),
            ("malformed", &u.malformed),
            ("stale", &u.stale),
            ("replayed", &u.replayed),
            ("unknown_user", &u.unknown_user),
            ("bad_signature", &u.bad_signature),
            ("rate_limited", &u.rate_limited),
            ("owner_busy", &u.owner_busy),
        ] {
            f.sample("cpesim_udp_connection_requests_total", &[("outcome", outcome)], n(v));
        }
    }
    let out = f.out;
    let mut r = Response::new(Full::new(Bytes::from(out)));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}
