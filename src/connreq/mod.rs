//! The Connection Request listener (PROTOCOL.md §10.1): one HTTP server for the whole process
//! (`--cr-bind-addr`), `/cr` for a single CPE and `/cr/cpe-N` in a fleet.
//!
//! A GET with valid credentials (Digest by default: nonces expire, replays are refused; Basic or
//! none if the profile says so) gets `200 OK` with an empty body at once, and the CPE starts a
//! session with `6 CONNECTION REQUEST` (after its current one, if any; a burst coalesces into
//! one session). Wrong credentials get 401 and nothing else; an unknown CPE 404; anything but GET
//! 405; a flood beyond the rate limit 503.
//!
//! The listener owns no CPE state: it asks the CPE's owner (the single-CPE runner, or the shard
//! holding it) for the credentials and tells it to wake up, through [`CpeMsg`] channels. Owners
//! answer at once, even while the CPE is in a session.
//!
//! - [`digest`]: server-side Digest (nonces, replays).
//! - [`udp`]: the UDP Connection Request listener (TR-069 Annex G), on the same owner path.

pub mod digest;
pub mod udp;

use std::collections::HashMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::model::ConnRequestAuth;
use crate::owners::{CpeMsg, Owners};

/// Listener settings.
#[derive(Debug, Clone)]
pub struct CrConfig {
    pub bind: SocketAddr,
    pub auth: ConnRequestAuth,
    /// `/cr` addresses the only CPE (single-CPE runs); otherwise `/cr/cpe-N`.
    pub single: bool,
    /// Accepted requests per second, across all CPEs (beyond: 503). One source that fails to
    /// authenticate gets at most a quarter of it, so a flood from one address cannot starve the
    /// ACS's real requests.
    pub rate_per_second: u32,
    /// Connections open at once (beyond: closed at accept).
    pub max_connections: usize,
}

impl CrConfig {
    /// A listener on `bind` answering with `auth` (`single`: `/cr` for the one CPE), at most
    /// `rate_per_second` requests a second and [`MAX_CONNECTIONS`] connections.
    pub fn new(bind: SocketAddr, auth: ConnRequestAuth, single: bool, rate_per_second: u32) -> CrConfig {
        CrConfig { bind, auth, single, rate_per_second, max_connections: MAX_CONNECTIONS }
    }
}

/// Most connections the listeners hold open at once by default.
pub const MAX_CONNECTIONS: usize = 1024;
/// Sources whose failed attempts are tracked (a flood from many addresses cannot grow memory).
const MAX_SOURCES: usize = 4096;

/// Counters.
#[derive(Debug, Default)]
pub struct CrStats {
    pub accepted: AtomicU64,
    pub unauthorized: AtomicU64,
    pub not_found: AtomicU64,
    pub rate_limited: AtomicU64,
    pub bad_requests: AtomicU64,
    /// The CPE's owner did not answer in time (503).
    pub busy: AtomicU64,
    /// Connections closed at accept because `max_connections` were open.
    pub refused_connections: AtomicU64,
}

impl std::fmt::Display for CrStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "connection requests: {} accepted, {} unauthorized (401), {} unknown CPE (404), {} rate-limited (503), {} owner busy (503), {} not GET (405), {} connections refused",
            n(&self.accepted),
            n(&self.unauthorized),
            n(&self.not_found),
            n(&self.rate_limited),
            n(&self.busy),
            n(&self.bad_requests),
            n(&self.refused_connections)
        )
    }
}

struct Shared {
    cfg: CrConfig,
    owners: Owners,
    nonces: Mutex<digest::NonceStore>,
    bucket: Mutex<(f64, Instant)>,
    /// Per-source buckets, charged by requests that do not authenticate.
    sources: Mutex<HashMap<IpAddr, (f64, Instant)>>,

    stats: Arc<CrStats>,
}

/// What counts as one source: an IPv4 address, or an IPv6 /64 (one host's usual share, so that
/// rotating addresses within it is no way around the limits).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)),
        v4 => v4,
    }
}

/// Takes a token from `b` (refilled at `rate`/s up to `rate`), if it has one.
fn take_token(b: &mut (f64, Instant), rate: f64, now: Instant) -> bool {
    b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(rate);
    b.1 = now;
    if b.0 < 1.0 {
        return false;
    }
    b.0 -= 1.0;
    true
}

/// The running listener.
pub struct CrServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The realm in challenges.
const REALM: &str = "cpe-sim connection request";

impl CrServer {
    /// Binds and starts serving.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(cfg: CrConfig, owners: Owners) -> std::io::Result<CrServer> {
        let listener = TcpListener::bind(cfg.bind).await?;
        let addr = listener.local_addr()?;
        let burst = cfg.rate_per_second.max(1) as f64;
        let shared = Arc::new(Shared {
            cfg,
            owners,
            nonces: Mutex::default(),
            bucket: Mutex::new((burst, Instant::now())),
            sources: Mutex::default(),
            stats: Arc::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let s = shared.clone();
        // Slowloris and huge headers: bounded time and buffer per request head.
        let limit = ConnectionLimit {
            max: shared.cfg.max_connections,
            refused: {
                let st = shared.stats.clone();
                Arc::new(move || {
                    st.refused_connections.fetch_add(1, Ordering::Relaxed);
                })
            },
        };
        let task = serve_http(listener, stopped, 16 * 1024, limit, move |peer, req| handle(s.clone(), peer, req));
        Ok(CrServer { addr, shared, stop, task })
    }

    pub fn stats(&self) -> &CrStats {
        &self.shared.stats
    }

    /// The counters, shared (for the API's `/metrics`).
    pub fn stats_handle(&self) -> Arc<CrStats> {
        self.shared.stats.clone()
    }

    /// Stops accepting.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

type Reply = Response<Full<Bytes>>;

/// One open connection's hold on the listener's slots.
struct SourceSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    source: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// How many connections a listener holds at once (a quarter of them per source), and what to
/// do with one beyond that.
#[derive(Clone)]
pub(crate) struct ConnectionLimit {
    pub max: usize,
    /// Called for each connection closed at accept (a counter).
    pub refused: Arc<dyn Fn() + Send + Sync>,
}

/// Serves HTTP/1.1 on `listener` until `stopped` fires, one `handler` call per request (with the
/// peer's address), with a bounded time (5 s) and buffer (`max_buf`) for each request head and at
/// most `limit.max` connections at once (beyond: closed at accept). Shared by the listeners that
/// reach into CPEs (this one and the device state API).
pub(crate) fn serve_http<F, Fut>(
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
    max_buf: usize,
    limit: ConnectionLimit,
    handler: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(SocketAddr, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Reply, std::convert::Infallible>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limit.max.max(1)));
    // One source holds at most a quarter of the connections, so it cannot take them all.
    let per_source = (limit.max / 4).max(1);
    let open: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.changed() => break,
            };
            let Ok((stream, peer)) = accepted else { continue };
            let source = source_key(peer.ip());
            let admitted = {
                let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
                let n = open.entry(source).or_insert(0);
                if *n >= per_source {
                    None
                } else {
                    permits.clone().try_acquire_owned().ok().inspect(|_| *n += 1)
                }
            };
            let Some(permit) = admitted else {
                let mut m = open.lock().unwrap_or_else(|e| e.into_inner());
                if m.get(&source) == Some(&0) {
                    m.remove(&source);
                }
                drop(m);
                (limit.refused)();
                drop(stream);
                continue;
            };
            let handler = handler.clone();
            let open = open.clone();
            tokio::spawn(async move {
                // Released (and the source's count with it) when the connection ends.
                let _slot = SourceSlot { open, source, _permit: permit };
                let svc = service_fn(move |req| handler(peer, req));
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(5)).max_buf_size(max_buf);
                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    })
}

fn reply(status: StatusCode, body: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// The CPE index a path names, if it is one of ours.
fn index_of(cfg: &CrConfig, owners: &Owners, path: &str) -> Option<u32> {
    if cfg.single {
        return (path == "/cr").then_some(owners.first);
    }
    let n = path.strip_prefix("/cr/cpe-")?;
    // Digits only: no signs, no encodings, no `..`.
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

async fn handle(s: Arc<Shared>, peer: SocketAddr, req: Request<Incoming>) -> Result<Reply, std::convert::Infallible> {
    let count = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
    if req.method() != Method::GET {
        count(&s.stats.bad_requests);
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "Connection Requests are GET\n");
        r.headers_mut().insert("allow", http::HeaderValue::from_static("GET"));
        return Ok(r);
    }
    let path = req.uri().path().to_string();
    let Some(owner) = index_of(&s.cfg, &s.owners, &path).and_then(|i| s.owners.owner(i).map(|o| (i, o))) else {
        count(&s.stats.not_found);
        return Ok(reply(StatusCode::NOT_FOUND, "No such CPE\n"));
    };
    let (index, sender) = owner;
    // Cheap checks first: a source that keeps failing has used up its own share of the rate,
    // then the overall rate, then the owner's lookup and the Digest check. A request is charged
    // to its source when it is admitted (a challenge half a token, an answer a whole one), so a
    // burst of requests at once cannot all pass before the first is charged; what did not fail
    // the source is paid back, and a right answer pays back more.
    let rate = s.cfg.rate_per_second.max(1) as f64;
    let source_rate = (rate / 4.0).max(2.0);
    let now = Instant::now();
    let source = source_key(peer.ip());
    // An answer may dip below zero (down to -share): the ACS's challenges, several at once, must
    // not cost it the answers that follow them. A source whose answers keep failing gets there.
    let answering = req.headers().contains_key(AUTHORIZATION);
    let cost = if answering { 1.0 } else { 0.5 };
    let charge = |amount: f64| {
        let mut sources = s.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            // Full: forget the sources in good standing first; the ones being held back stay.
            sources.retain(|_, b| b.0 < 1.0);
            if sources.len() >= MAX_SOURCES {
                return;
            }
        }
        let b = sources.entry(source).or_insert((source_rate, now));
        b.0 = (b.0 - amount).clamp(-source_rate, source_rate);
    };
    {
        let mut sources = s.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = sources.get_mut(&source) {
            b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * source_rate).min(source_rate);
            b.1 = now;
            let floor = if answering { -source_rate + 1.0 } else { 1.0 };
            if b.0 < floor {
                count(&s.stats.rate_limited);
                return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "Too many failed Connection Requests from this address\n"));
            }
        }
    }
    charge(cost);
    if !take_token(&mut s.bucket.lock().unwrap_or_else(|e| e.into_inner()), rate, now) {
        charge(-cost);
        count(&s.stats.rate_limited);
        return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "Too many Connection Requests\n"));
    }
    let (tx, rx) = oneshot::channel();
    if sender.send(CpeMsg::Lookup { index, reply: tx }).is_err() {
        charge(-cost);
        count(&s.stats.busy);
        return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "CPE not running\n"));
    }
    let (user, pass) = match tokio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok(Some(creds))) => creds,
        Ok(Ok(None)) => {
            charge(-cost);
            count(&s.stats.not_found);
            return Ok(reply(StatusCode::NOT_FOUND, "No such CPE\n"));
        }
        // The owner is busy (or stopping): try again later, the CPE exists.
        Ok(Err(_)) | Err(_) => {
            charge(-cost);
            count(&s.stats.busy);
            return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, "The CPE's owner is busy; retry\n"));
        }
    };
    let authz = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let ok = match s.cfg.auth {
        ConnRequestAuth::None => true,
        ConnRequestAuth::Basic => authz.is_some_and(|a| {
            let expected = crate::transport::auth::basic_value(&crate::transport::Credentials { username: user, password: pass });
            bool::from(subtle::ConstantTimeEq::ct_eq(a.trim().as_bytes(), expected.as_bytes()))
        }),
        ConnRequestAuth::Digest => match authz {
            Some(a) => s.nonces.lock().unwrap_or_else(|e| e.into_inner()).verify(a, &path, &user, &pass).is_ok(),
            None => false,
        },
    };
    if !ok {
        // Charged at admission: a request with no answer at all is a challenge the ACS needs
        // (half a token); a wrong answer is not (a whole one).
        count(&s.stats.unauthorized);
        let mut r = reply(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        let challenge = match s.cfg.auth {
            ConnRequestAuth::Basic => format!("Basic realm=\"{REALM}\""),
            _ => {
                let nonce = s.nonces.lock().unwrap_or_else(|e| e.into_inner()).issue();
                format!("Digest realm=\"{REALM}\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"\", algorithm=MD5")
            }
        };
        r.headers_mut().insert(WWW_AUTHENTICATE, http::HeaderValue::from_str(&challenge).expect("ascii"));
        return Ok(r);
    }
    count(&s.stats.accepted);
    // A right answer pays back its own charge, what its challenge cost, and more.
    charge(-(cost + 1.5));
    let _ = sender.send(CpeMsg::Wake { index });
    tracing::debug!(cpe_id = %crate::model::DeviceId(index), "connection request accepted");
    Ok(reply(StatusCode::OK, ""))
}

/// The host to put in the published URL: the bind address, or, when bound to all addresses, the
/// local address that routes toward the ACS.
pub fn advertise_host(bind: SocketAddr, acs_url: &str) -> String {
    if !bind.ip().is_unspecified() {
        return bind.ip().to_string();
    }
    let target = crate::transport::conn::Target::parse(acs_url).ok();
    let routed = target.and_then(|t| {
        let sock = std::net::UdpSocket::bind(if bind.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }).ok()?;
        sock.connect((t.host.as_str(), t.port)).ok()?;
        sock.local_addr().ok().map(|a| a.ip())
    });
    match routed {
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(ip) => ip.to_string(),
        None => "127.0.0.1".into(),
    }
}
