//! The TR-369 WebSocket binding (TR-369 §"WebSocket Binding"): Agents connect to a Controller's
//! URL with the `v1.usp` subprotocol and exchange Records as binary frames, one connection per
//! Agent ([`run`]); and the embedded Controller served over WebSocket on 127.0.0.1
//! ([`WsController`]), the default when no `--usp-url` is given (no broker needed).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;

use super::controller::Core;
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

/// Runs Agent `index` over WebSocket until `stop` turns true.
pub async fn run(
    shared: Arc<Shared>,
    index: u32,
    start_after: Duration,
    mut stop: watch::Receiver<bool>,
    mut inbox: Option<mpsc::UnboundedReceiver<CpeMsg>>,
    resumed: Option<CpeState>,
) {
    let Transport::WebSocket { url, connect_timeout } = &shared.transport else { return };
    let (url, connect_timeout) = (url.clone(), *connect_timeout);
    let mut life = Life::new(shared.clone(), index, start_after, resumed);
    if !life.wait_to_connect(&mut stop).await {
        return;
    }
    loop {
        let started = Instant::now();
        let ended: Option<ConnFailure> = 'conn: {
            let Ok(mut request) = url.as_str().into_client_request() else { break 'conn Some(ConnFailure::Protocol) };
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
            let connected = tokio::select! {
                r = tokio::time::timeout(connect_timeout, tokio_tungstenite::connect_async_with_config(request, Some(ws_config()), true)) => r,
                _ = stopped(&mut stop) => return,
            };
            let (ws, response) = match connected {
                Err(_) => break 'conn Some(ConnFailure::Timeout),
                Ok(Err(tokio_tungstenite::tungstenite::Error::Io(_))) => break 'conn Some(ConnFailure::Refused),
                Ok(Err(_)) => break 'conn Some(ConnFailure::Protocol),
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
        if let Some(cause) = ended {
            *shared.figures().failures.entry(cause).or_default() += 1;
        }
        life.on_lost(ended.is_some());
        if !life.wait_to_connect(&mut stop).await {
            return;
        }
    }
}

/// The embedded Controller over WebSocket: accepts `v1.usp` connections on a loopback port and
/// answers each Agent on its own connection.
pub struct WsController {
    /// The URL Agents connect to (`ws://127.0.0.1:PORT/usp`).
    pub url: String,
    pub figures: Arc<Mutex<ControllerFigures>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WsController {
    /// Binds `127.0.0.1:0` and serves as `endpoint_id`.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start(endpoint_id: &str) -> std::io::Result<WsController> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let figures = Arc::new(Mutex::new(ControllerFigures::default()));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept(listener, endpoint_id.to_string(), figures.clone(), stop_rx));
        Ok(WsController { url: format!("ws://{addr}/usp"), figures, stop, task })
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

async fn accept(listener: TcpListener, id: String, figures: Arc<Mutex<ControllerFigures>>, mut stop: watch::Receiver<bool>) {
    let next_msg = Arc::new(AtomicU64::new(1));
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
        let core = Core::new(id.clone(), figures.clone(), next_msg.clone());
        tokio::spawn(serve(stream, core, stop.clone()));
    }
}

async fn serve(stream: tokio::net::TcpStream, mut core: Core, mut stop: watch::Receiver<bool>) {
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
