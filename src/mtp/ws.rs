//! The TR-369 WebSocket binding (TR-369 §"WebSocket Binding"): Agents connect to a Controller's
//! `ws://` or `wss://` URL (TLS with the CWMP side's rustls settings) with the `v1.usp`
//! subprotocol and exchange Records as binary frames, one connection per Agent ([`run`]); and the
//! embedded Controller served over WebSocket on 127.0.0.1, plain or over TLS ([`WsController`]),
//! the default when no `--usp-url` is given (no broker needed).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::controller::{AgentIds, Core, DEFAULT_ASK_TTL};
use super::life::{next_msg, stopped, Life, Outbox, Shared, To, Transport};
use super::report::{ConnFailure, ControllerFigures};
use crate::cpe::CpeState;
use crate::owners::CpeMsg;

/// The WebSocket subprotocol TR-369 names (R-WS.?: `Sec-WebSocket-Protocol: v1.usp`).
pub const SUBPROTOCOL: &str = "v1.usp";

/// Largest WebSocket message an Agent or the embedded Controller accepts.
const MAX_MESSAGE: usize = 1 << 20;

/// Records queued during one event, sent after it (the sink is async, handlers are not).
#[derive(Default)]
struct Queue(Vec<Vec<u8>>);

impl Outbox for Queue {
    fn send(&mut self, record: Vec<u8>, _to: To<'_>) -> bool {
        // One connection, to the Controller at the other end: every Record goes on it.
        self.0.push(record);
        true
    }
}

fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE))
}

fn offers_usp(req: &Request) -> bool {
    req.headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL))
}

/// A byte stream a WebSocket runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens a WebSocket to `url` (`ws://`, or `wss://` with `tls`) offering `v1.usp`: the TCP
/// connection, the TLS handshake, then the WebSocket handshake, each failure a counted cause.
async fn open(
    url: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(WebSocketStream<Box<dyn Io>>, tokio_tungstenite::tungstenite::handshake::client::Response), ConnFailure> {
    let mut request = url.into_client_request().map_err(|_| ConnFailure::Protocol)?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let u = url::Url::parse(url).map_err(|_| ConnFailure::Protocol)?;
    let host = match u.host().ok_or(ConnFailure::Protocol)? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    let port = u.port_or_known_default().ok_or(ConnFailure::Protocol)?;
    let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|_| ConnFailure::Refused)?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if u.scheme() == "wss" {
        // `run` sets the configuration for every wss:// URL; without one, no TLS is possible.
        let cfg = tls.ok_or(ConnFailure::Tls)?;
        let name = rustls_pki_types::ServerName::try_from(host).map_err(|_| ConnFailure::Tls)?;
        // A certificate that does not verify, a refused client certificate, a peer that does not
        // speak TLS: all `tls`.
        Box::new(tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp).await.map_err(|_| ConnFailure::Tls)?)
    } else {
        Box::new(tcp)
    };
    match tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config())).await {
        Ok(c) => Ok(c),
        // TLS 1.3 refuses a client certificate after the client's handshake is done: the alert
        // arrives with the first read, as an I/O error carrying rustls' error.
        Err(tokio_tungstenite::tungstenite::Error::Io(e)) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => Err(ConnFailure::Tls),
        Err(tokio_tungstenite::tungstenite::Error::Io(_)) => Err(ConnFailure::Refused),
        Err(_) => Err(ConnFailure::Protocol),
    }
}

/// Runs Agent `index` over WebSocket until `stop` turns true.
pub async fn run(
    shared: Arc<Shared>,
    index: u32,
    start_after: Duration,
    mut stop: watch::Receiver<bool>,
    mut inbox: Option<mpsc::UnboundedReceiver<CpeMsg>>,
    resumed: Option<CpeState>,
) {
    let Transport::WebSocket { url, connect_timeout, tls } = &shared.transport else { return };
    let (url, connect_timeout, tls) = (url.clone(), *connect_timeout, tls.clone());
    let mut life = Life::new(shared.clone(), index, start_after, resumed);
    if !life.wait_to_connect(&mut stop, &mut inbox).await {
        return;
    }
    loop {
        let started = Instant::now();
        let ended: Option<ConnFailure> = 'conn: {
            let connected = tokio::select! {
                r = tokio::time::timeout(connect_timeout, open(&url, tls.as_ref())) => r,
                _ = stopped(&mut stop) => return,
            };
            let (ws, response) = match connected {
                Err(_) => break 'conn Some(ConnFailure::Timeout),
                Ok(Err(cause)) => break 'conn Some(cause),
                Ok(Ok(c)) => c,
            };
            // A server that did not agree to v1.usp is not a USP Controller.
            if response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()) != Some(SUBPROTOCOL) {
                break 'conn Some(ConnFailure::Protocol);
            }
            let (mut sink, mut stream) = ws.split();
            let mut out = Queue::default();
            life.on_connected(&mut out, started.elapsed());
            let mut restart = false;
            let ended = loop {
                // What the last event queued goes out first (on a new connection: the Notifies
                // still owed and the Boot!).
                let mut failed = false;
                for r in out.0.drain(..) {
                    if sink.send(Message::Binary(r.into())).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    break Some(ConnFailure::Lost);
                }
                if restart {
                    // A Reboot/FactoryReset: the answer is out; close and come back with Boot!.
                    let _ = sink.send(Message::Close(None)).await;
                    break None;
                }
                tokio::select! {
                    _ = stopped(&mut stop) => {
                        let _ = sink.send(Message::Close(None)).await;
                        shared.figures().disconnected();
                        return;
                    }
                    msg = stream.next() => match msg {
                        Some(Ok(Message::Binary(b))) => restart = life.on_record(&mut out, &b, None),
                        Some(Ok(Message::Close(_))) | None => break Some(ConnFailure::Lost),
                        Some(Ok(_)) => {}
                        Some(Err(_)) => break Some(ConnFailure::Lost),
                    },
                    Some(msg) = next_msg(&mut inbox) => life.on_api(&mut out, msg),
                    _ = life.sleep_until_due() => life.on_timers(&mut out),
                }
            };
            shared.figures().disconnected();
            ended
        };
        if !life.reconnect(ended, &mut stop, &mut inbox).await {
            return;
        }
    }
}

/// The embedded Controller over WebSocket: accepts `v1.usp` connections on a loopback port
/// (plain, or TLS with a server configuration) and answers each Agent on its own connection.
pub struct WsController {
    /// The URL Agents connect to (`ws://127.0.0.1:PORT/usp`, or `wss://` with TLS).
    pub url: String,
    pub figures: Arc<Mutex<ControllerFigures>>,
    /// The run's Agents' endpoint IDs ([`WsController::expect_agents`]).
    agents: AgentIds,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// How the embedded WebSocket Controller serves.
#[derive(Clone, Default)]
pub struct WsServe {
    /// How long its requests wait for an answer (the run's `--timeout`); 30 s when None.
    pub ask_ttl: Option<Duration>,
    /// TLS (`wss://`): its certificate, key and, for mutual TLS, the client CA.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl WsController {
    /// Binds `127.0.0.1:0` and serves as `endpoint_id`.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start(endpoint_id: &str, how: WsServe) -> std::io::Result<WsController> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let figures = Arc::new(Mutex::new(ControllerFigures::default()));
        let agents: AgentIds = Arc::new(std::sync::OnceLock::new());
        let (stop, stop_rx) = watch::channel(false);
        let scheme = if how.tls.is_some() { "wss" } else { "ws" };
        let made = Made { id: endpoint_id.to_string(), figures: figures.clone(), agents: agents.clone(), how };
        let task = tokio::spawn(accept(listener, made, stop_rx));
        Ok(WsController { url: format!("{scheme}://{addr}/usp"), figures, agents, stop, task })
    }

    /// Counts Boot! only from these endpoint IDs (the run's Agents) from now on; a Boot! from
    /// anyone else is dropped (counted in `dropped`) and not answered. Set once; later calls are
    /// ignored.
    pub fn expect_agents(&self, ids: impl IntoIterator<Item = String>) {
        let _ = self.agents.set(ids.into_iter().collect());
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// What every connection's [`Core`] is made from.
struct Made {
    id: String,
    figures: Arc<Mutex<ControllerFigures>>,
    agents: AgentIds,
    how: WsServe,
}

async fn accept(listener: TcpListener, made: Made, mut stop: watch::Receiver<bool>) {
    let next_msg = Arc::new(AtomicU64::new(1));
    let tls = made.how.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or the like: a moment, then accept again.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // The NotifyResp and the Get after it are two small writes: without this, Nagle holds
        // the second back until the Agent's delayed ACK (~40 ms a round trip, measured).
        let _ = stream.set_nodelay(true);
        let ttl = made.how.ask_ttl.unwrap_or(DEFAULT_ASK_TTL);
        let core = Core::new(made.id.clone(), made.figures.clone(), next_msg.clone()).with_limits(ttl, made.agents.clone());
        let stop = stop.clone();
        match &tls {
            None => drop(tokio::spawn(serve(stream, core, stop))),
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    // A client that fails the handshake (or never finishes it) is let go.
                    if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), handshake).await {
                        serve(tls, core, stop).await;
                    }
                });
            }
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, mut core: Core, mut stop: watch::Receiver<bool>) {
    // The signature is tungstenite's Callback; its error type is theirs.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if !offers_usp(req) {
            let mut refuse = ErrorResponse::new(Some(format!("a USP Controller: Sec-WebSocket-Protocol must offer {SUBPROTOCOL}")));
            *refuse.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refuse);
        }
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
        Ok(resp)
    };
    let config = ws_config();
    let accepted = tokio::select! {
        a = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))) => a,
        _ = stopped(&mut stop) => return,
    };
    let Ok(Ok(ws)) = accepted else { return };
    let (mut sink, mut source) = ws.split();
    // A return ends the conversation; what the Controller still waits for is settled after it.
    async {
        loop {
            let msg = tokio::select! {
                _ = stopped(&mut stop) => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
                m = source.next() => m,
            };
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    let Some((_, replies)) = core.on_record(&b) else { continue };
                    for r in replies {
                        if sink.send(Message::Binary(r.into())).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
    .await;
    core.expire(Instant::now(), true);
}
