//! A scripted ACS that speaks raw HTTP/1.1 on 127.0.0.1:0, for the cases a well-behaved server
//! never produces: missing challenges, redirect loops, resets mid-body, replies that never come.
//! Every request is recorded; a handler decides each reply.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Which connection (0-based, in accept order).
    pub conn: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to do with a request.
pub enum RawReply {
    /// Write these bytes and keep the connection.
    Send(Vec<u8>),
    /// Write these bytes and close.
    SendThenClose(Vec<u8>),
    /// Close without answering.
    Close,
    /// Never answer (until the test ends).
    Hang,
    /// Write these bytes after a delay and keep the connection.
    Delayed(Duration, Vec<u8>),
}

type Handler = dyn Fn(&RawRequest, usize) -> RawReply + Send + Sync;

/// The running server.
pub struct RawAcs {
    pub addr: SocketAddr,
    /// Served over TLS ([`RawAcs::start_tls`]).
    pub https: bool,
    pub requests: Arc<Mutex<Vec<RawRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawAcs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawAcs {
    /// Starts a server on 127.0.0.1 whose `handler` gets each request and its overall number (0-based).
    pub async fn start(handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static) -> RawAcs {
        RawAcs::start_with([127, 0, 0, 1].into(), None, handler).await
    }

    /// Like [`RawAcs::start`], on another loopback address (127.0.0.2: another host).
    pub async fn start_on(ip: std::net::IpAddr, handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static) -> RawAcs {
        RawAcs::start_with(ip, None, handler).await
    }

    /// Like [`RawAcs::start`], over TLS with `tls`.
    pub async fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static,
    ) -> RawAcs {
        RawAcs::start_with([127, 0, 0, 1].into(), Some(tls), handler).await
    }

    async fn start_with(
        ip: std::net::IpAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&RawRequest, usize) -> RawReply + Send + Sync + 'static,
    ) -> RawAcs {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let https = tls.is_some();
        let task = tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, reqs) = (handler.clone(), reqs.clone());
                match &tls {
                    None => drop(tokio::spawn(serve(stream, conn, handler, reqs))),
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                        tokio::spawn(async move {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, conn, handler, reqs).await;
                            }
                        });
                    }
                }
                conn += 1;
            }
        });
        RawAcs { addr, https, requests, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", if self.https { "https" } else { "http" }, self.addr)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, conn: usize, handler: Arc<Handler>, reqs: Arc<Mutex<Vec<RawRequest>>>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
        let len: usize =
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let req = RawRequest { conn, method, path, headers, body };
        let n = {
            let mut r = reqs.lock().unwrap();
            r.push(req.clone());
            r.len() - 1
        };
        match handler(&req, n) {
            RawReply::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            RawReply::SendThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            RawReply::Close => return,
            RawReply::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            RawReply::Delayed(d, bytes) => {
                tokio::time::sleep(d).await;
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// An HTTP/1.1 response with a Content-Length.
pub fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len()).into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A minimal ACS reply: InformResponse to an Inform, 204 to anything else.
pub fn simple_acs(req: &RawRequest) -> Vec<u8> {
    if req.body_str().contains("<cwmp:Inform>") {
        http("200 OK", &[("Content-Type", "text/xml"), ("Set-Cookie", "session=abc123; Path=/")], &super::inform_response("1"))
    } else {
        http("204 No Content", &[], b"")
    }
}
