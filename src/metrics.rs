//! `--metrics-bind-addr`: a Prometheus scrape endpoint, `GET /metrics`, on its own listener and
//! without the device state API (which can change CPEs and so is not for a monitoring network).
//!
//! It serves the text the engine renders at each progress tick ([`crate::stats::exposition`]);
//! a scrape never reaches a shard. Any other path is 404, any other method 405.

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
                        reply(StatusCode::OK, body, "text/plain; version=0.0.4; charset=utf-8")
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
