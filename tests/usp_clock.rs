//! USP Agents in virtual time: the run's machinery (`mtp::shards` threads, each Agent's agenda
//! and `Life`) on a manual clock, over real WebSocket connections on 127.0.0.1. `Periodic!`
//! reaches the embedded Controller (`WsController`) at its planned times as the clock moves; a
//! Notify that a Controller leaves unanswered is sent again after each timeout and given up after
//! the retries. Wall time is waited for only while bytes cross the sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::engine::{eventually, GRACE};
use crate::support::{profile, T0, TR181};
use cpe_sim::engine::clock::{Clock, ManualClock};
use cpe_sim::mtp::life::{notify_name, Shared, Transport, NOTIFY_RETRIES};
use cpe_sim::mtp::report::AgentFigures;
use cpe_sim::mtp::shards::Shards;
use cpe_sim::mtp::ws::{self, WsController, WsServe};
use cpe_sim::usp::endpoint::{DEFAULT_CONTROLLER_ID, DEFAULT_TEMPLATE};
use cpe_sim::usp::EndpointTemplate;

const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

fn shared(url: String, clock: Clock, periodic: Option<Duration>) -> Arc<Shared> {
    let model = Arc::new(profile(TR181));
    Arc::new(Shared {
        model,
        transport: Transport::WebSocket { url, connect_timeout: Duration::from_secs(10), tls: None },
        endpoints: EndpointTemplate::compile(DEFAULT_TEMPLATE).unwrap(),
        controller_id: DEFAULT_CONTROLLER_ID.into(),
        controller_topic: String::new(),
        notify_timeout: NOTIFY_TIMEOUT,
        periodic,
        figures: Mutex::new(AgentFigures::default()),
        sink: None,
        clock,
    })
}

/// `agents` Agents (indexes 0..) on two shards, all booting at the clock's start.
fn start(shared: &Arc<Shared>, agents: u32) -> Shards {
    let s = shared.clone();
    Shards::start(2, (0..agents).collect(), Duration::from_secs(2), move |k, stop| ws::run(s.clone(), k, Duration::ZERO, stop, None, None))
        .unwrap()
}

fn advance(hand: &ManualClock, ms: u64) {
    hand.advance(Duration::from_millis(ms));
}

#[test]
fn periodic_arrives_at_its_planned_times_in_virtual_time() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ctl = rt.block_on(WsController::start(DEFAULT_CONTROLLER_ID, WsServe { ask_ttl: None, tls: None })).unwrap();
    let (clock, hand) = Clock::manual(T0);
    let shared = shared(ctl.url.clone(), clock, Some(Duration::from_millis(60_250)));
    let mut shards = start(&shared, 3);
    let periodic = || ctl.figures.lock().unwrap().notifications.get("Periodic!").copied().unwrap_or(0);
    eventually("three Boot! at the Controller", || ctl.figures.lock().unwrap().booted.len() == 3);
    // One millisecond before the first period ends: nothing.
    advance(&hand, 60_249);
    std::thread::sleep(GRACE);
    assert_eq!(periodic(), 0, "Periodic! came early");
    advance(&hand, 1);
    eventually("the first Periodic! of every Agent", || periodic() == 3);
    // The sub-second phase holds: the next at boot + 2 × 60.25 s, not at the moment it fired.
    advance(&hand, 60_249);
    std::thread::sleep(GRACE);
    assert_eq!(periodic(), 3, "Periodic! came early or twice in one period");
    advance(&hand, 1);
    eventually("the second Periodic!", || periodic() == 6);
    // Far behind (ten periods at once): one Periodic! each, not ten.
    advance(&hand, 602_500);
    eventually("one catch-up Periodic!", || periodic() == 9);
    std::thread::sleep(GRACE);
    assert_eq!(periodic(), 9, "a late timer fired once per Agent");
    let answered = shared.figures.lock().unwrap().notify.get("Periodic!").map_or(0, |n| n.answered);
    assert_eq!(answered, 9, "every Periodic! was answered");
    shards.stop();
    assert!(shards.complete());
    rt.block_on(ctl.stop());
}

/// A v1.usp Controller that answers nothing: every Record's (Message ID, notification) in order.
async fn silent_controller(seen: Arc<Mutex<Vec<(String, &'static str)>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/usp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)]
                let agree = |_: &Request, mut resp: Response| {
                    resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(ws::SUBPROTOCOL));
                    Ok(resp)
                };
                let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, agree).await else { return };
                while let Some(Ok(m)) = socket.next().await {
                    if let Message::Binary(b) = m {
                        let opened = cpe_sim::usp::record::open(&b, DEFAULT_CONTROLLER_ID).unwrap();
                        let id = opened.msg.header.map(|h| h.msg_id).unwrap_or_default();
                        let what = match opened.msg.body.map(|b| b.msg_body) {
                            Some(rusp_lib::usp::mod_Body::OneOfmsg_body::request(rusp_lib::usp::Request {
                                req_type: rusp_lib::usp::mod_Request::OneOfreq_type::notify(n),
                            })) => notify_name(&n),
                            _ => "other",
                        };
                        seen.lock().unwrap().push((id, what));
                    }
                }
            });
        }
    });
    url
}

#[test]
fn an_unanswered_notify_is_resent_on_time_then_given_up() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let seen: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
    let url = rt.block_on(silent_controller(seen.clone()));
    let (clock, hand) = Clock::manual(T0);
    let shared = shared(url, clock, None);
    let mut shards = start(&shared, 1);
    let count = || seen.lock().unwrap().len();
    eventually("the Boot!", || count() == 1);
    let (boot_id, what) = seen.lock().unwrap()[0].clone();
    assert_eq!(what, "Boot!");
    let t = NOTIFY_TIMEOUT.as_millis() as u64;
    for retry in 1..=NOTIFY_RETRIES as usize {
        advance(&hand, t - 1);
        std::thread::sleep(GRACE);
        assert_eq!(count(), retry, "retry {retry} came early");
        advance(&hand, 1);
        eventually("the retransmission", || count() == retry + 1);
        assert_eq!(seen.lock().unwrap()[retry], (boot_id.clone(), "Boot!"), "the same Message ID again");
    }
    // One more timeout: given up, not sent again.
    advance(&hand, t);
    let unanswered = || shared.figures.lock().unwrap().notify.get("Boot!").map_or(0, |n| n.unanswered);
    eventually("the give-up", || unanswered() == 1);
    advance(&hand, 10 * t);
    std::thread::sleep(GRACE);
    assert_eq!(count(), 1 + NOTIFY_RETRIES as usize, "sent again after the give-up");
    let f = shared.figures.lock().unwrap();
    assert_eq!(f.notify["Boot!"].retransmitted, NOTIFY_RETRIES as u64);
    assert_eq!(f.booted, 0);
    drop(f);
    shards.stop();
    assert!(shards.complete());
}
