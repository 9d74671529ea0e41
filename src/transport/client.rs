//! The HTTP side of one CWMP session (PROTOCOL.md §1): every POST of the session goes over one
//! held connection, with the session's cookies, the CPE's cached auth, and redirects followed.
//!
//! Cookies and credentials stay with their origin (scheme, host, port): the session's cookies
//! ([`super::cookies`]) are dropped on a redirect to another origin, and the CPE's cached
//! challenge is used only on the origin the session started at. Another origin gets no
//! `Authorization` up front; if it challenges, its own challenge is answered (kept for this
//! session only, so it never reaches the CPE's cache). A redirect from https to plain http is
//! refused ([`TransportError::InsecureRedirect`]).
//!
//! Envelope POSTs carry `Content-Type: text/xml; charset="utf-8"` and an empty `SOAPAction`; the
//! empty POST carries `Content-Length: 0` and neither. A 401 is answered once on the same
//! connection (GenieACS ties the Digest nonce to the socket), or on a new one when the 401 said
//! `Connection: close`. If the ACS closed the kept-alive connection between two POSTs, the next
//! POST goes out once more on a new connection, cookies included.

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE, USER_AGENT,
    WWW_AUTHENTICATE,
};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};

use super::auth::{AuthState, Credentials};
use super::conn::{Connection, Target};
use super::cookies::Jar;
use super::{Phase, TransportConfig, TransportError, MAX_REDIRECTS};

/// A 200/204 answer to a CWMP POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Any answer, as the generic request loop returns it.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The request was already re-sent with fresh credentials.
    pub auth_retried: bool,
    /// Bytes of a 2xx body handed to a [`Stream`]'s sink (the body itself is then empty).
    pub streamed: u64,
}

/// How a 2xx response body is read by [`HttpSession::request_streaming`]: chunk by chunk as it
/// arrives, each handed to `sink` and dropped, so memory stays bounded whatever its size.
pub struct Stream<'s> {
    /// Longest wait for the next bytes (a stalled server); the whole body may take longer.
    pub stall: std::time::Duration,
    /// Most bytes accepted.
    pub limit: u64,
    pub sink: &'s mut (dyn FnMut(&[u8]) + Send),
}

/// Where a session goes: a URL, or one parsed once for many sessions (a fleet's ACS).
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    Url(&'a str),
    Parsed(&'a Target),
}

/// The HTTP side of one session.
pub struct HttpSession<'a> {
    cfg: &'a TransportConfig,
    auth: &'a mut AuthState,
    credentials: Option<&'a Credentials>,
    target: std::borrow::Cow<'a, Target>,
    conn: Option<Connection>,
    /// Cookies set during this session, for the origin in use; made at the first `Set-Cookie`
    /// and dropped with the session.
    cookies: Option<Jar>,
    /// After a redirect to another origin than the session's first: credentials are neither
    /// sent nor offered there (a 401 from it fails the session, saying why).
    abroad: bool,
    /// Where the session started, noted at its first redirect to another origin.
    home: Option<Target>,
    redirects: u8,
    /// hyper's read buffer cap for the connections this session opens (`None`: hyper's default).
    max_buf: Option<usize>,
    /// Connections opened by this session and the time they took (DNS + TCP + TLS).
    connects: u32,
    connect_time: std::time::Duration,
}

const USER_AGENT_VALUE: &str = concat!("cpe-sim/", env!("CARGO_PKG_VERSION"));
/// `SOAPAction` (header names are case-insensitive; hyper writes them in lower case), made once
/// rather than parsed from a string at every request.
const SOAP_ACTION: http::HeaderName = http::HeaderName::from_static("soapaction");

impl<'a> HttpSession<'a> {
    /// A session toward `destination`, using `auth` (the CPE's cached challenge) and the
    /// configured credentials.
    ///
    /// # Errors
    /// [`TransportError::BadUrl`].
    pub fn new(cfg: &'a TransportConfig, auth: &'a mut AuthState, destination: Destination<'a>) -> Result<HttpSession<'a>, TransportError> {
        let credentials = cfg.credentials.as_ref();
        Ok(HttpSession {
            cfg,
            auth,
            credentials,
            target: match destination {
                Destination::Url(url) => std::borrow::Cow::Owned(Target::parse(url)?),
                Destination::Parsed(t) => std::borrow::Cow::Borrowed(t),
            },
            conn: None,
            cookies: None,
            abroad: false,
            home: None,
            redirects: 0,
            max_buf: None,
            connects: 0,
            connect_time: std::time::Duration::ZERO,
        })
    }

    /// Starts on an already open connection (from a pool).
    pub fn with_connection(mut self, conn: Option<Connection>) -> Self {
        self.conn = conn.and_then(|mut c| c.check_open().then_some(c));
        self
    }

    /// The connection, if still open, for reuse by the next session: not one to another origin
    /// than the session started at (after a redirect), which the next session would not expect.
    pub fn into_connection(mut self) -> Option<Connection> {
        if self.home.as_ref().is_some_and(|h| !h.same_origin(&self.target)) {
            return None;
        }
        self.conn.take().filter(Connection::is_open)
    }

    /// Uses other credentials than the ACS's (file servers for Download).
    pub fn with_credentials(mut self, credentials: Option<&'a Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Caps hyper's read buffer on the connections this session opens (streamed downloads).
    pub fn with_read_buffer(mut self, max: usize) -> Self {
        self.max_buf = Some(max);
        self
    }

    /// Connections this session opened, and their total set-up time.
    pub fn connects(&self) -> (u32, std::time::Duration) {
        (self.connects, self.connect_time)
    }

    /// The URL in use (after redirects), for logs: without userinfo.
    pub fn url(&self) -> String {
        self.target.shown()
    }

    /// POSTs one CWMP message (`body` empty for the empty POST).
    ///
    /// # Errors
    /// Anything but a 200/204 answer, as a [`TransportError`].
    pub async fn post(&mut self, body: Bytes) -> Result<AcsResponse, TransportError> {
        let r = self.request(Method::POST, body).await?;
        // The URL is only written out for an error: a session that goes well allocates nothing here.
        match r.status {
            200 | 204 => Ok(AcsResponse { status: r.status, body: r.body }),
            401 if self.credentials.is_none() => Err(TransportError::AuthRequired { url: self.target.shown() }),
            401 => Err(TransportError::AuthRejected { url: self.target.shown() }),
            status => {
                let retry_after = r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                Err(TransportError::HttpStatus { url: self.target.shown(), status, retry_after })
            }
        }
    }

    /// Sends one request, handling auth challenges, redirects and stale connections.
    ///
    /// # Errors
    /// Only failures that leave no HTTP answer (and challenges that cannot be answered).
    pub async fn request(&mut self, method: Method, body: Bytes) -> Result<RawResponse, TransportError> {
        self.request_with(method, body, None).await
    }

    /// [`HttpSession::request`], with a 2xx body streamed to `stream` instead of collected: the
    /// response head must come within the timeout, then bytes at least every `stream.stall`.
    /// Other answers (redirects, challenges, errors) are collected as usual.
    ///
    /// # Errors
    /// As [`HttpSession::request`]; a stall is [`TransportError::Stalled`], a body over the limit
    /// [`TransportError::BodyTooLarge`].
    pub async fn request_streaming(&mut self, method: Method, body: Bytes, stream: Stream<'_>) -> Result<RawResponse, TransportError> {
        self.request_with(method, body, Some(stream)).await
    }

    async fn request_with(&mut self, method: Method, body: Bytes, mut stream: Option<Stream<'_>>) -> Result<RawResponse, TransportError> {
        let mut auth_retried = false;
        let mut stale_retry = false;
        loop {
            let fresh = match &self.conn {
                Some(c) if c.is_open() => false,
                _ => {
                    let t = std::time::Instant::now();
                    self.conn = Some(Connection::open_buffered(&self.target, self.cfg, self.max_buf).await?);
                    self.connects += 1;
                    self.connect_time += t.elapsed();
                    true
                }
            };
            let req = self.build(&method, &body)?;
            let conn = self.conn.as_mut().expect("connected above");
            let max_body = self.cfg.max_body;
            let timeout = self.cfg.timeout;
            let is_stream = stream.is_some();
            let streaming = stream.as_mut();
            // Collected: one deadline for the whole exchange (the request out, the response head
            // and body in). Streamed: the timeout for the head, then for each wait for bytes.
            let exchange = async {
                let (head, body) = match streaming {
                    None => conn.send(req).await.map_err(Broken::Send)?,
                    Some(_) => tokio::time::timeout(timeout, conn.send(req)).await.map_err(|_| Broken::Head)?.map_err(Broken::Send)?,
                }
                .into_parts();
                match streaming {
                    Some(st) if head.status.is_success() => {
                        let mut body = body;
                        let mut got = 0u64;
                        loop {
                            let frame = tokio::time::timeout(st.stall, conn.drive(body.frame())).await.map_err(|_| Broken::Stalled)?;
                            let Some(frame) = frame else { break };
                            if let Ok(data) = frame.map_err(|e| Broken::Body(Box::new(e)))?.into_data() {
                                got += data.len() as u64;
                                if got > st.limit {
                                    return Err(Broken::TooLarge(st.limit));
                                }
                                (st.sink)(&data);
                            }
                        }
                        Ok::<_, Broken>((head, Bytes::new(), got))
                    }
                    _ => {
                        let mut body = body;
                        let mut whole = Whole::default();
                        while let Some(frame) = conn.drive(body.frame()).await {
                            if let Ok(data) = frame.map_err(|e| Broken::Body(Box::new(e)))?.into_data() {
                                whole.push(data, max_body)?;
                            }
                        }
                        Ok((head, whole.into_bytes(), 0))
                    }
                }
            };
            let outcome = if is_stream { Ok(exchange.await) } else { tokio::time::timeout(timeout, exchange).await };
            let (head, body_bytes, streamed) = match outcome {
                Err(_) | Ok(Err(Broken::Head)) => {
                    self.conn = None;
                    return Err(self.timeout());
                }
                Ok(Err(Broken::Stalled)) => {
                    self.conn = None;
                    return Err(TransportError::Stalled { url: self.target.shown(), after: timeout });
                }
                Ok(Err(Broken::TooLarge(limit))) => {
                    self.conn = None;
                    return Err(TransportError::BodyTooLarge {
                        url: self.target.shown(),
                        limit: usize::try_from(limit).unwrap_or(usize::MAX),
                    });
                }
                Ok(Err(Broken::Send(e))) => {
                    self.conn = None;
                    // The ACS may close an idle keep-alive connection between two POSTs: go on
                    // once more on a new one (TR-069 §3.4.2, PROTOCOL.md §1.4).
                    if !fresh && !stale_retry {
                        stale_retry = true;
                        continue;
                    }
                    return Err(TransportError::Connection { url: self.target.shown(), detail: hyper_detail(&e) });
                }
                Ok(Err(Broken::Body(e))) => {
                    self.conn = None;
                    return Err(self.broken_body(&*e));
                }
                Ok(Ok(r)) => r,
            };
            let status = head.status.as_u16();
            let headers = head.headers;
            if headers.contains_key(SET_COOKIE) {
                if let Some(url) = &self.target.cookie_url {
                    let jar = self.cookies.get_or_insert_with(Jar::default);
                    for v in headers.get_all(SET_COOKIE) {
                        if let Ok(s) = v.to_str() {
                            jar.set(s, url);
                        }
                    }
                }
            }
            if headers.get(CONNECTION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                self.conn = None;
            }
            match status {
                401 if self.abroad => return Err(TransportError::ForeignAuth { url: self.target.shown() }),
                401 if self.credentials.is_some() && !auth_retried => {
                    let values = headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok());
                    self.auth.learn(values).map_err(|detail| TransportError::BadChallenge { url: self.target.shown(), detail })?;
                    auth_retried = true;
                }
                301 | 302 | 303 | 307 | 308 => {
                    let next = headers
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|l| self.target.join(l))
                        .ok_or_else(|| TransportError::BadRedirect { url: self.target.shown() })?;
                    if self.target.https && !next.https {
                        return Err(TransportError::InsecureRedirect { from: self.target.shown(), to: next.shown() });
                    }
                    self.redirects += 1;
                    if self.redirects > MAX_REDIRECTS {
                        return Err(TransportError::TooManyRedirects { url: next.shown() });
                    }
                    if !next.same_origin(&self.target) {
                        // Nothing of this origin's follows: not the connection, the cookies, or
                        // the credentials (the first origin's come back if the redirect does).
                        self.conn = None;
                        if let Some(jar) = &mut self.cookies {
                            jar.clear();
                        }
                        let home = self.home.get_or_insert_with(|| self.target.as_ref().clone());
                        self.abroad = !next.same_origin(home);
                    }
                    tracing::debug!(from = %self.target.shown(), to = %next.shown(), status, "following redirect");
                    self.target = std::borrow::Cow::Owned(next);
                }
                _ => return Ok(RawResponse { status, headers, body: body_bytes, auth_retried, streamed }),
            }
        }
    }

    fn build(&mut self, method: &Method, body: &Bytes) -> Result<Request<Full<Bytes>>, TransportError> {
        let bad = |reason| TransportError::BadUrl { url: self.target.shown(), reason };
        let uri = self.target.request_uri.clone().ok_or_else(|| bad("path not usable in a request"))?;
        let host = self.target.host_header.clone().ok_or_else(|| bad("host not usable in a Host header"))?;
        let mut req = Request::builder().method(method.clone()).uri(uri);
        let headers = req.headers_mut().expect("builder is fresh");
        headers.insert(HOST, host);
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        // Content-Length: hyper writes it from a body's exact size, but not for an empty one, which
        // the empty POST must still declare (a static value: a number's HeaderValue allocates).
        if method != Method::GET && body.is_empty() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        if method == Method::POST && !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=\"utf-8\""));
            headers.insert(SOAP_ACTION, HeaderValue::from_static(""));
        }
        if let (Some(jar), Some(url)) = (&self.cookies, &self.target.cookie_url) {
            if let Some(v) = jar.header(url) {
                headers.insert(COOKIE, v);
            }
        }
        if let Some(creds) = self.credentials.filter(|_| !self.abroad) {
            if let Some(a) = self.auth.authorization_for(method.as_str(), creds, &self.target.path, body) {
                if let Ok(v) = HeaderValue::from_str(&a) {
                    headers.insert(AUTHORIZATION, v);
                }
            }
        }
        req.body(Full::new(body.clone()))
            .map_err(|_| TransportError::BadUrl { url: self.target.shown(), reason: "request could not be built" })
    }

    /// The response body could not be read to its end.
    fn broken_body(&self, e: &(dyn std::error::Error + Send + Sync + 'static)) -> TransportError {
        let detail = match e.downcast_ref::<hyper::Error>() {
            Some(h) => hyper_detail(h),
            None => e.to_string(),
        };
        TransportError::Connection { url: self.target.shown(), detail: format!("response body broken off: {detail}") }
    }

    fn timeout(&self) -> TransportError {
        TransportError::Timeout { url: self.target.shown(), phase: Phase::Response, after: self.cfg.timeout }
    }
}

/// A response body collected up to a limit: a body that arrives in one frame (an ACS's answer,
/// nearly always) is kept as that frame's bytes, with no copy and no allocation; only a body of
/// several frames is copied into one buffer.
#[derive(Default)]
struct Whole {
    first: Bytes,
    rest: Option<bytes::BytesMut>,
}

impl Whole {
    fn push(&mut self, data: Bytes, limit: usize) -> Result<(), Broken> {
        // `rest`, once made, holds the first frame too.
        let len = self.rest.as_ref().map_or(self.first.len(), |r| r.len()) + data.len();
        if len > limit {
            return Err(Broken::TooLarge(limit as u64));
        }
        match &mut self.rest {
            Some(r) => r.extend_from_slice(&data),
            None if self.first.is_empty() => self.first = data,
            None => {
                let mut r = bytes::BytesMut::with_capacity(len);
                r.extend_from_slice(&self.first);
                r.extend_from_slice(&data);
                self.rest = Some(r);
            }
        }
        Ok(())
    }

    fn into_bytes(self) -> Bytes {
        match self.rest {
            Some(r) => r.freeze(),
            None => self.first,
        }
    }
}

/// How an exchange broke: before the response head (the connection may just have been stale),
/// or while reading the body.
enum Broken {
    Send(hyper::Error),
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// No response head within the timeout (streamed requests).
    Head,
    /// No bytes of a streamed body for the stall time.
    Stalled,
    /// A body over its limit.
    TooLarge(u64),
}

fn hyper_detail(e: &hyper::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date turned into the wait
/// from now (zero when it is past). Any number of seconds is accepted (the caller saturates);
/// anything else is ignored.
pub fn parse_retry_after(v: &str) -> Option<std::time::Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(std::time::Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::{parse_retry_after, Broken, Whole};
    use bytes::Bytes;
    use std::time::Duration;

    #[test]
    fn seconds_dates_and_garbage() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("99999999999999999999999999"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT").unwrap() > Duration::from_secs(200 * 365 * 86_400));
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn a_body_in_one_frame_is_kept_without_a_copy() {
        let frame = Bytes::from_static(b"<soap-env:Envelope/>");
        let mut w = Whole::default();
        w.push(frame.clone(), 100).ok().unwrap();
        let got = w.into_bytes();
        assert_eq!(got.as_ptr(), frame.as_ptr());
    }

    #[test]
    fn frames_are_joined_and_the_limit_counts_them_all() {
        let mut w = Whole::default();
        for part in [&b"ab"[..], b"cd", b"e"] {
            w.push(Bytes::copy_from_slice(part), 5).ok().unwrap();
        }
        assert_eq!(&w.into_bytes()[..], b"abcde");
        let mut w = Whole::default();
        w.push(Bytes::from_static(b"abc"), 5).ok().unwrap();
        assert!(matches!(w.push(Bytes::from_static(b"def"), 5), Err(Broken::TooLarge(5))));
        // Empty frames change nothing.
        let mut w = Whole::default();
        w.push(Bytes::new(), 5).ok().unwrap();
        w.push(Bytes::from_static(b"x"), 5).ok().unwrap();
        assert_eq!(&w.into_bytes()[..], b"x");
    }
}
