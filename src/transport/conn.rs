//! One HTTP/1.1 connection to a host, over TCP or TLS, driven by hyper.
//!
//! hyper's connection future is polled inline, by whichever future is waiting on the connection
//! (a request, a response body), not by a task of its own: a session costs no extra task and no
//! cross-task wake-ups. Dropping a connection gives hyper one last poll to close it properly.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};

use super::{Phase, TransportConfig, TransportError};

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]` for the Host header.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
    /// The whole URL as given (it may carry userinfo: show [`Target::shown`] instead).
    pub url: String,
    /// `path` as a request target and `authority` as a Host header, made once per URL (`None`:
    /// not usable in a request).
    pub request_uri: Option<http::Uri>,
    pub host_header: Option<http::HeaderValue>,
    /// Credentials in the URL's userinfo (`user:pass@`), percent-decoded; never part of
    /// `authority`, the Host header or the request target.
    pub userinfo: Option<(String, String)>,
    /// The URL as a `url::Url` for cookie matching, parsed once per URL (`None`: not parsable by
    /// the URL standard, so no cookie is kept for it).
    pub cookie_url: Option<url::Url>,
    /// The local address connections to this URL are bound to (a scenario's `sources`, so an
    /// ACS or its load balancer sees many CPE addresses); `None`: the system picks.
    pub source: Option<IpAddr>,
}

impl Target {
    /// The URL for messages and logs, without credentials in its userinfo.
    pub fn shown(&self) -> String {
        super::without_userinfo(&self.url).into_owned()
    }

    /// Parses an `http://` or `https://` URL.
    ///
    /// # Errors
    /// [`TransportError::BadUrl`] for anything else.
    pub fn parse(url: &str) -> Result<Target, TransportError> {
        let bad = |reason| TransportError::BadUrl { url: super::without_userinfo(url).into_owned(), reason };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or(bad("no host"))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        // `Authority::as_str` keeps the userinfo: split it off (RFC 3986 §3.2.1).
        let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
            Some((info, rest)) => {
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                (Some((percent_decode(user), percent_decode(pass))), rest)
            }
            None => (None, authority.as_str()),
        };
        let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
        let path = if path.is_empty() { "/".to_string() } else { path };
        // Userinfo is never part of the Host header or of a redirect's base.
        Ok(Target {
            https,
            host,
            port,
            authority: host_port.to_string(),
            request_uri: path.parse().ok(),
            host_header: http::HeaderValue::from_str(host_port).ok(),
            userinfo,
            path,
            cookie_url: url::Url::parse(url).ok(),
            url: url.to_string(),
            source: None,
        })
    }

    /// This target with its connections bound to `source` (`None`: the system picks).
    pub fn with_source(mut self, source: Option<IpAddr>) -> Target {
        self.source = source;
        self
    }

    /// Resolves a redirect's `Location` against this URL.
    /// The CPE keeps its source address across redirects.
    pub fn join(&self, location: &str) -> Option<Target> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Target::parse(location).ok().map(|t| t.with_source(self.source));
        }
        if !location.starts_with('/') {
            return None;
        }
        let scheme = if self.https { "https" } else { "http" };
        Target::parse(&format!("{scheme}://{}{location}", self.authority)).ok().map(|t| t.with_source(self.source))
    }

    /// Whether two targets are the same origin (RFC 6454: scheme, host, port), which can share a
    /// connection, cookies and credentials. Host names compare without case.
    pub fn same_origin(&self, other: &Target) -> bool {
        self.https == other.https && self.host.eq_ignore_ascii_case(&other.host) && self.port == other.port
    }
}

/// A TCP connection to `addr`, from `source` when given (bound before connecting, port chosen by
/// the system). A source of the other address family, or one this host does not have, fails the
/// connect (`EADDRNOTAVAIL`), and the error says which address.
async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else { return TcpStream::connect(addr).await };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(ip, 0)).map_err(|e| std::io::Error::new(e.kind(), format!("binding source address {ip}: {e}")))?;
    socket.connect(addr).await
}

/// `%XX` escapes decoded (userinfo may escape `:` and `@`); invalid escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// hyper's half of a connection: reads and writes the socket while polled.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// An open connection.
pub struct Connection {
    /// Always `Some` until dropped (then `None` first, so hyper sees no more requests coming).
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    /// `None` once hyper finished with the connection (closed by either side, or broken).
    driver: Option<Driver>,
}

impl Connection {
    /// Connects (DNS, TCP, TLS when https, HTTP/1.1 handshake), all within the timeout.
    ///
    /// # Errors
    /// [`TransportError::Dns`], [`TransportError::Connect`], [`TransportError::Tls`] or
    /// [`TransportError::Timeout`].
    pub async fn open(target: &Target, cfg: &TransportConfig) -> Result<Connection, TransportError> {
        Connection::open_buffered(target, cfg, None).await
    }

    /// [`Connection::open`] with hyper's read buffer capped at `max_buf` bytes (≥ 8 KiB; `None`:
    /// hyper's ~400 KiB): a streamed download holds no more than that per connection.
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub async fn open_buffered(target: &Target, cfg: &TransportConfig, max_buf: Option<usize>) -> Result<Connection, TransportError> {
        tokio::time::timeout(cfg.timeout, Connection::set_up(target, cfg, max_buf)).await.map_err(|_| TransportError::Timeout {
            url: target.shown(),
            phase: Phase::Connect,
            after: cfg.timeout,
        })?
    }

    /// [`Connection::open`] without the deadline.
    async fn set_up(target: &Target, cfg: &TransportConfig, max_buf: Option<usize>) -> Result<Connection, TransportError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|source| TransportError::Dns { host: target.host.clone(), url: target.shown(), source })?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in &addrs {
            match connect(*addr, target.source).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let tcp = match (tcp, last) {
            (Some(s), _) => s,
            (None, Some((addr, source))) => return Err(TransportError::Connect { addr: addr.to_string(), url: target.shown(), source }),
            (None, None) => {
                return Err(TransportError::Dns {
                    host: target.host.clone(),
                    url: target.shown(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut builder = http1::Builder::new();
        if let Some(n) = max_buf {
            builder.max_buf_size(n.max(8192));
        }
        let handshake_err = |e: hyper::Error| TransportError::Connection { url: target.shown(), detail: e.to_string() };
        let (sender, driver) = if target.https {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| TransportError::Tls { host: target.host.clone(), reason: "invalid server name".into() })?;
            let tls = tokio_rustls::TlsConnector::from(cfg.tls.clone());
            let stream =
                tls.connect(name, tcp).await.map_err(|e| TransportError::Tls { host: target.host.clone(), reason: tls_reason(&e) })?;
            let (sender, conn) = builder.handshake(TokioIo::new(stream)).await.map_err(handshake_err)?;
            (sender, Box::pin(conn) as Driver)
        } else {
            let (sender, conn) = builder.handshake(TokioIo::new(tcp)).await.map_err(handshake_err)?;
            (sender, Box::pin(conn) as Driver)
        };
        Ok(Connection { sender: Some(sender), driver: Some(driver) })
    }

    /// False once the connection is known to be closed (by either side, or broken). Cheap: it
    /// does not look at the socket; see [`Connection::check_open`].
    pub fn is_open(&self) -> bool {
        self.driver.is_some() && self.sender.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Like [`Connection::is_open`], but first lets hyper read what arrived while nobody was
    /// polling (a connection idle in a pool): a close the peer sent in the meantime is seen here.
    pub fn check_open(&mut self) -> bool {
        if let Some(d) = &mut self.driver {
            if d.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())).is_ready() {
                self.driver = None;
            }
        }
        self.is_open()
    }

    /// Sends one request and waits for the response head.
    pub async fn send(&mut self, req: http::Request<Full<Bytes>>) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        let Connection { sender, driver } = self;
        let sender = sender.as_mut().expect("a connection has its sender until dropped");
        drive(driver, async {
            sender.ready().await?;
            sender.send_request(req).await
        })
        .await
    }

    /// Waits for `f` (a response body, say) while the connection makes progress.
    pub async fn drive<F: Future>(&mut self, f: F) -> F::Output {
        drive(&mut self.driver, f).await
    }
}

impl Drop for Connection {
    /// Ends the connection as hyper would on its own: with no more requests coming, one poll
    /// shuts the socket down (a TLS close_notify, then a TCP FIN) when that needs no waiting.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(mut d) = self.driver.take() {
            let _ = d.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
        }
    }
}

/// Polls `f` and the connection's driver together until `f` is done. A finished driver is
/// dropped; whatever `f` waits on then ends (hyper closes its channels), so this cannot hang.
async fn drive<F: Future>(driver: &mut Option<Driver>, f: F) -> F::Output {
    let mut f = pin!(f);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = f.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(d) = driver {
            if d.as_mut().poll(cx).is_ready() {
                *driver = None;
                return f.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
}

fn tls_reason(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => format!("certificate not trusted: {c:?}"),
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_redirects() {
        let t = Target::parse("http://acs.example.net:7547/cwmp?x=1").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str(), t.authority.as_str()),
            (false, "acs.example.net", 7547, "/cwmp?x=1", "acs.example.net:7547")
        );
        assert_eq!(Target::parse("https://[::1]/").unwrap().host, "::1");
        assert_eq!(Target::parse("https://h").unwrap().port, 443);
        assert!(Target::parse("ftp://h/").is_err());
        assert!(Target::parse("not a url").is_err());
        assert_eq!(t.join("/other").unwrap().url, "http://acs.example.net:7547/other");
        assert_eq!(t.join("https://b/").unwrap().host, "b");
        assert!(t.join("relative").is_none());
        let same = |a: &str, b: &str| Target::parse(a).unwrap().same_origin(&Target::parse(b).unwrap());
        assert!(same("http://ACS.example.net/a", "http://acs.example.net:80/b"));
        assert!(!same("http://h:1/", "http://h:2/") && !same("http://h/", "https://h/") && !same("http://h/", "http://g/"));
    }
}

#[cfg(test)]
mod userinfo {
    use super::Target;

    #[test]
    fn userinfo_is_never_in_the_host_header() {
        let t = Target::parse("http://user:pw@acs.example:7547/cwmp").unwrap();
        assert_eq!(t.host_header.as_ref().map(|h| h.to_str().unwrap()), Some("acs.example:7547"));
        assert_eq!(t.authority, "acs.example:7547");
        assert!(!t.shown().contains("pw"));
        assert_eq!(t.join("/next").unwrap().authority, "acs.example:7547");
    }

    #[test]
    fn userinfo_is_split_off_the_host() {
        let t = Target::parse("http://us%40er:p%3Ass@files.example.net:8080/f").unwrap();
        assert_eq!(t.userinfo, Some(("us@er".to_string(), "p:ss".to_string())));
        assert_eq!(t.authority, "files.example.net:8080");
        assert_eq!(t.host_header.as_ref().unwrap(), "files.example.net:8080");
        assert_eq!(t.request_uri.as_ref().unwrap(), "/f");
        assert!(!t.shown().contains("p%3Ass"));
        assert_eq!(Target::parse("http://u@h/").unwrap().userinfo, Some(("u".into(), String::new())));
        assert_eq!(Target::parse("http://h/").unwrap().userinfo, None);
    }
}
