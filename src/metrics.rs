//! `--metrics-bind-addr`: a Prometheus scrape endpoint, `GET /metrics`, on its own listener and
//! without the device state API (which can change CPEs and so is not for a monitoring network).
//!
//! It serves the text the engine renders at each progress tick ([`crate::stats::exposition`]);
//! a scrape never reaches a shard. Until the first tick has rendered it (the listener serves
//! before the engine starts), `/metrics` answers 503 with `Retry-After: 1` rather than an empty
//! 200 a scraper would take for a target without series. Any other path is 404, any other
//! method 405.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::connreq::serve_http;

/// The latest exposition text, shared between the engine (writer) and the server (reader).
pub type Exposition = Arc<Mutex<String>>;

/// The running scrape endpoint.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// `--metrics-bind-addr`, for either protocol's run: when `bind` is given, a fresh (empty:
    /// 503 until the first progress tick) exposition and the server for it, started on `rt`
    /// and announced in the log; `(None, None)` without it.
    ///
    /// # Errors
    /// The address cannot be bound (the message names the flag).
    pub fn for_flag(bind: Option<SocketAddr>, rt: &tokio::runtime::Runtime) -> anyhow::Result<(Option<Exposition>, Option<MetricsServer>)> {
        let Some(bind) = bind else { return Ok((None, None)) };
        let text = Exposition::default();
        let server = rt
            .block_on(MetricsServer::start(bind, text.clone()))
            .map_err(|e| anyhow::anyhow!("--metrics-bind-addr {bind}: cannot listen: {e}"))?;
        tracing::info!("Prometheus metrics at http://{}/metrics", server.addr);
        Ok((Some(text), Some(server)))
    }

    /// Binds `bind` and serves `text` at `/metrics`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(bind: SocketAddr, text: Exposition) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let limit = crate::connreq::ConnectionLimit { max: 64, refused: Arc::new(|| {}) };
        let task = serve_http(listener, stopped, 16 * 1024, limit, move |_, req| {
            let text = text.clone();
            async move {
                let reply = |status: StatusCode, body: String, kind: &'static str| {
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = status;
                    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(kind));
                    r
                };
                Ok(match (req.method(), req.uri().path()) {
                    (&Method::GET, "/metrics") => {
                        let body = text.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if body.is_empty() {
                            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "no progress tick yet: retry\n".into(), "text/plain");
                            r.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
                            r
                        } else {
                            reply(StatusCode::OK, body, "text/plain; version=0.0.4; charset=utf-8")
                        }
                    }
                    (_, "/metrics") => reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), "text/plain"),
                    _ => reply(StatusCode::NOT_FOUND, "only /metrics is served here\n".into(), "text/plain"),
                })
            }
        });
        Ok(MetricsServer { addr, stop, task })
    }

    /// Stops accepting.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: SocketAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw
    }

    #[test]
    fn before_the_first_tick_metrics_answers_503_with_retry_after() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let text = Exposition::default();
        let server = rt.block_on(MetricsServer::start(([127, 0, 0, 1], 0).into(), text.clone())).unwrap();
        let raw = get(server.addr);
        assert!(raw.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{raw}");
        assert!(raw.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"), "{raw}");
        *text.lock().unwrap() = "cpesim_cpes 1\n".into();
        let raw = get(server.addr);
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.ends_with("\r\n\r\ncpesim_cpes 1\n"), "{raw}");
        rt.block_on(server.stop());
    }
}
