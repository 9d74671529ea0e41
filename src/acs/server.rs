//! The embedded ACS as an HTTP server (hyper, HTTP/1.1): [`AcsSession`]s keyed by a `session`
//! cookie, like GenieACS (PROTOCOL.md §1.4), answering POSTs until the session ends with
//! `204 No Content` + `Connection: close`.
//!
//! Optional auth mirrors GenieACS (PROTOCOL.md §1.5): Basic, or Digest with a nonce bound to the
//! TCP connection; a second failed attempt on a connection gets 401 + `Connection: close`.
//! Anything but POST gets 405; a session that does not start with an Inform gets 400.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use super::{AcsError, AcsOutput, AcsScript, AcsSession};
use crate::transport::Credentials;

/// How the embedded ACS authenticates CPEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    Digest,
    Basic,
}

/// Server settings.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub script: AcsScript,
    /// Require these credentials from CPEs.
    pub credentials: Option<Credentials>,
    pub auth_mode: AuthMode,
    /// Serve HTTPS with this configuration (which may require client certificates).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Keep the connection open after a session's final 204 (GenieACS closes it; load tests of
    /// pooled connections want it open).
    pub keep_alive: bool,
    /// Listen backlog: connections the kernel queues before they are accepted (a boot storm
    /// opens thousands at once; the kernel caps it at `net.core.somaxconn`). `None`:
    /// [`DEFAULT_BACKLOG`].
    pub backlog: Option<u32>,
}

/// The embedded ACS's default listen backlog (tokio's `TcpListener::bind` uses 1024, which a
/// boot storm of a few thousand CPEs overflows into SYN retransmits: Connect p99 1.7 s with 1024
/// vs 0.62 s with 4096 for 3,000 CPEs at once, medians of scripts/bench-backlog.sh runs).
pub const DEFAULT_BACKLOG: u32 = 4096;

/// What one finished session looked like from the ACS side.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub serial: Option<String>,
    pub events: Vec<String>,
    pub exchanges: Vec<super::Exchange>,
    /// The CPE's address and port, as the ACS saw them (a scenario's `sources`).
    pub peer: Option<SocketAddr>,
}

/// Counters the server keeps (for its log line and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    pub sessions_started: u64,
    pub sessions_completed: u64,
    pub auth_challenges: u64,
    pub bad_requests: u64,
}

struct Shared {
    cfg: ServerConfig,
    sessions: Mutex<HashMap<String, AcsSession>>,
    stats: Mutex<ServerStats>,
    next_id: Mutex<u64>,
    /// Sessions that ended with 204, oldest first (bounded).
    finished: Mutex<Vec<SessionRecord>>,
}

/// Finished sessions kept for [`AcsServer::finished`].
const KEEP_FINISHED: usize = 1024;

/// A running embedded ACS.
pub struct AcsServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AcsServer {
    /// Binds `addr` (use port 0 for a free one) with the configured backlog and starts serving.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(addr: SocketAddr, cfg: ServerConfig) -> std::io::Result<AcsServer> {
        let listener = listen(addr, cfg.backlog.unwrap_or(DEFAULT_BACKLOG))?;
        let addr = listener.local_addr()?;
        let tls = cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let shared = Arc::new(Shared {
            cfg,
            sessions: Mutex::default(),
            stats: Mutex::default(),
            next_id: Mutex::new(0),
            finished: Mutex::default(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => break,
                };
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let conn = Arc::new(Mutex::new(ConnState::new(&s, peer)));
                    let svc = service_fn(move |req| handle(s.clone(), conn.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (untrusted client, plain HTTP) just ends the connection.
                            if let Ok(Ok(tls_stream)) =
                                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await
                            {
                                let _ = http.serve_connection(TokioIo::new(tls_stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Ok(AcsServer { addr, shared, stop, task })
    }

    /// `http://addr/` (or `https://…`) for CPEs.
    pub fn url(&self) -> String {
        let scheme = if self.shared.cfg.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// Sessions that ended with 204, oldest first (the last 1024).
    pub fn finished(&self) -> Vec<SessionRecord> {
        self.shared.finished.lock().expect("finished lock").clone()
    }

    pub fn stats(&self) -> ServerStats {
        *self.shared.stats.lock().expect("stats lock")
    }

    /// Stops accepting; open connections end with their tasks.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Per-connection auth state: the Digest nonce is bound to the socket (as GenieACS does).
struct ConnState {
    nonce: String,
    failures: u8,
    /// The session running on this connection, for clients that send no cookie.
    session: Option<String>,
    /// The client's address and port.
    peer: SocketAddr,
}

impl ConnState {
    fn new(s: &Shared, peer: SocketAddr) -> ConnState {
        let mut id = s.next_id.lock().expect("id lock");
        *id += 1;
        let seed = crate::model::identity::mix64(*id ^ std::process::id() as u64 ^ nanos());
        ConnState { nonce: format!("{seed:016x}{:016x}", crate::model::identity::mix64(seed)), failures: 0, session: None, peer }
    }
}

fn nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn handle(s: Arc<Shared>, conn: Arc<Mutex<ConnState>>, req: Request<Incoming>) -> Result<Reply, std::convert::Infallible> {
    if req.method() != Method::POST {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        r.headers_mut().insert("allow", http::HeaderValue::from_static("POST"));
        return Ok(r);
    }
    let path = req.uri().path().to_string();
    let authz = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let cookie = session_cookie(req.headers());
    let body = match Limited::new(req.into_body(), 4 * 1024 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large\n")),
    };
    if let Some(creds) = &s.cfg.credentials {
        let mut c = conn.lock().expect("conn lock");
        if !authorized(&s.cfg, creds, &c.nonce, authz.as_deref(), &path, &body) {
            c.failures += 1;
            s.stats.lock().expect("stats lock").auth_challenges += 1;
            let mut r = reply(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            let challenge = match s.cfg.auth_mode {
                AuthMode::Digest => format!("Digest realm=\"cpe-sim\",qop=\"auth,auth-int\",nonce=\"{}\"", c.nonce),
                AuthMode::Basic => "Basic realm=\"cpe-sim\"".to_string(),
            };
            r.headers_mut().insert(WWW_AUTHENTICATE, http::HeaderValue::from_str(&challenge).expect("ascii"));
            if c.failures >= 2 && authz.is_some() {
                r.headers_mut().insert(CONNECTION, http::HeaderValue::from_static("close"));
            }
            return Ok(r);
        }
    }
    // The session: by cookie (GenieACS), else the one running on this connection.
    let (on_conn, peer) = {
        let c = conn.lock().expect("conn lock");
        (c.session.clone(), c.peer)
    };
    let mut sessions = s.sessions.lock().expect("sessions lock");
    let (key, is_new) = match cookie.or(on_conn).filter(|c| sessions.contains_key(c)) {
        Some(c) => (c, false),
        None => {
            let mut id = s.next_id.lock().expect("id lock");
            *id += 1;
            (format!("{:016x}", crate::model::identity::mix64(*id ^ nanos())), true)
        }
    };
    let session = sessions.entry(key.clone()).or_insert_with(|| AcsSession::new(s.cfg.script.clone()));
    let out = session.handle(&body);
    conn.lock().expect("conn lock").session = matches!(out, Ok(AcsOutput::Envelope(_))).then(|| key.clone());
    let mut stats = s.stats.lock().expect("stats lock");
    Ok(match out {
        Ok(AcsOutput::Envelope(xml)) => {
            if is_new {
                stats.sessions_started += 1;
            }
            let mut r = Response::new(Full::new(Bytes::from(xml)));
            r.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("text/xml; charset=\"utf-8\""));
            if is_new {
                let v = format!("session={key}; Path=/");
                r.headers_mut().insert(SET_COOKIE, http::HeaderValue::from_str(&v).expect("ascii"));
            }
            r
        }
        Ok(AcsOutput::NoContent) => {
            if let Some(done) = sessions.remove(&key) {
                tracing::debug!(
                    serial = %done.serial.as_deref().unwrap_or("-"),
                    events = %done.events.join(","),
                    rpcs = done.log.len().saturating_sub(1),
                    peer = %peer,
                    "ACS session ended"
                );
                let mut finished = s.finished.lock().expect("finished lock");
                if finished.len() >= KEEP_FINISHED {
                    finished.remove(0);
                }
                finished.push(SessionRecord { serial: done.serial, events: done.events, exchanges: done.log, peer: Some(peer) });
            }
            stats.sessions_completed += 1;
            let mut r = reply(StatusCode::NO_CONTENT, "");
            if !s.cfg.keep_alive {
                r.headers_mut().insert(CONNECTION, http::HeaderValue::from_static("close"));
            }
            r
        }
        Err(e) => {
            sessions.remove(&key);
            stats.bad_requests += 1;
            tracing::debug!(peer = %peer, error = ?e, "ACS session refused (400)");
            match e {
                AcsError::NotInformFirst => reply(StatusCode::BAD_REQUEST, "Invalid session: the first message must be an Inform\n"),
                AcsError::Parse(_) => reply(StatusCode::BAD_REQUEST, "Invalid CWMP envelope\n"),
            }
        }
    })
}

/// A listening socket on `addr` with `backlog` pending connections.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std and tokio do for listeners: a restarted ACS rebinds its port at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

fn session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split([';', ','])).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == "session").then(|| v.to_string())
    })
}

fn authorized(cfg: &ServerConfig, creds: &Credentials, nonce: &str, authz: Option<&str>, path: &str, body: &[u8]) -> bool {
    let Some(a) = authz else { return false };
    match cfg.auth_mode {
        AuthMode::Basic => {
            let expected = crate::transport::auth::basic_value(creds);
            a.trim() == expected
        }
        AuthMode::Digest => {
            let Ok(mut h) = digest_auth::AuthorizationHeader::parse(a) else { return false };
            if h.nonce != nonce || h.username != creds.username || h.uri != path {
                return false;
            }
            let claimed = std::mem::take(&mut h.response);
            h.digest(&digest_auth::AuthContext::new_post(creds.username.as_str(), creds.password.as_str(), path, Some(body)));
            h.response == claimed
        }
    }
}
