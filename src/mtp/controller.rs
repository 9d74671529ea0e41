//! The embedded USP Controller (the USP twin of the embedded ACS). It answers every Notify that
//! asks for a response (NotifyResp), and after an Agent's Boot! reads its `Device.DeviceInfo.`
//! with a Get (as an ACS's bootstrap script would; once per Boot!, not per retransmission of it),
//! measuring the round trip. It keeps counts for the report; it is not a management server.
//!
//! [`Core`] is what it does with one Record, whatever the MTP; [`Controller`] is the MQTT one (two
//! connections on the run's broker: one subscribed to its own topic, `{id}-tx` publishing the
//! answers); `ws::WsController` serves the same over WebSocket.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::mod_Response::OneOfresp_type;
use rusp_lib::usp::{Body, Get, Header, Msg, NotifyResp, Request, Response};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::mqtt::{agent_topic, controller_topic, reply_topic_ok, ClientSettings};
use super::mqtt_conn::{Conn, Incoming, Publisher};
use super::report::{histogram, ControllerFigures, Timed};
use crate::usp::record;
use crate::usp::MsgKind;

fn lock(f: &Mutex<ControllerFigures>) -> std::sync::MutexGuard<'_, ControllerFigures> {
    f.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often [`Controller::start`] looks for a stop signal while it connects.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Most of its own requests the Controller keeps waiting for an answer at once: past it, a
/// Boot! is still answered but DeviceInfo is not read.
pub const MAX_ASKED: usize = 65_536;

/// How long a request waits for its answer unless the run says (its --timeout).
pub const DEFAULT_ASK_TTL: Duration = Duration::from_secs(30);

/// The run's Agents' endpoint IDs, once known: only their Boot! counts.
pub type AgentIds = Arc<OnceLock<HashSet<String>>>;

/// What the embedded Controller does with Records, for one connection (MQTT: all Agents; WebSocket:
/// one Agent).
pub struct Core {
    id: String,
    figures: Arc<Mutex<ControllerFigures>>,
    /// Message IDs unique across the Controller's connections.
    next_msg: Arc<AtomicU64>,
    /// Its own requests in flight: Message ID → (kind, sent at); at most [`MAX_ASKED`], each for
    /// at most `ask_ttl`.
    asked: HashMap<String, (MsgKind, Instant)>,
    ask_ttl: Duration,
    /// When `asked` is next swept for requests past `ask_ttl` (counted in
    /// `ControllerFigures::expired`).
    next_sweep: Instant,
    /// The run's Agents; until set, every sender's Boot! counts.
    agents: AgentIds,
    /// Each Agent's last Boot! Message ID (at most [`MAX_ASKED`] Agents): a Boot! sent again
    /// because its NotifyResp was late is answered again, but DeviceInfo is not read again.
    last_boot: HashMap<String, String>,
}

impl Core {
    pub fn new(id: String, figures: Arc<Mutex<ControllerFigures>>, next_msg: Arc<AtomicU64>) -> Core {
        Core {
            id,
            figures,
            next_msg,
            asked: HashMap::new(),
            ask_ttl: DEFAULT_ASK_TTL,
            next_sweep: Instant::now() + DEFAULT_ASK_TTL,
            agents: Arc::new(OnceLock::new()),
            last_boot: HashMap::new(),
        }
    }

    /// Requests unanswered after `ttl` are given up (counted in `ControllerFigures::expired`);
    /// only the Agents in `agents` (once set) are counted as booted, anyone else's Boot! is
    /// dropped.
    pub fn with_limits(mut self, ttl: Duration, agents: AgentIds) -> Core {
        self.ask_ttl = ttl.max(Duration::from_millis(1));
        self.next_sweep = Instant::now() + self.ask_ttl;
        self.agents = agents;
        self
    }

    /// Drops requests waiting longer than `ask_ttl`, counted in `ControllerFigures::expired`: at
    /// most once per `ask_ttl` or when the map is full, unless `now_anyway` (the connection or the
    /// run ends; requests younger than `ask_ttl` are in flight, not counted).
    pub fn expire(&mut self, now: Instant, now_anyway: bool) {
        if !now_anyway && now < self.next_sweep && self.asked.len() < MAX_ASKED {
            return;
        }
        self.next_sweep = now + self.ask_ttl;
        let ttl = self.ask_ttl;
        let before = self.asked.len();
        self.asked.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
        let gone = before - self.asked.len();
        if gone > 0 {
            lock(&self.figures).expired += gone as u64;
        }
    }

    /// How many of its requests wait for an answer.
    pub fn asked_len(&self) -> usize {
        self.asked.len()
    }

    /// Handles one Record; returns its sender's endpoint ID and the Records to send it back.
    pub fn on_record(&mut self, bytes: &[u8]) -> Option<(String, Vec<Vec<u8>>)> {
        self.expire(Instant::now(), false);
        let Ok(opened) = record::open(bytes, &self.id) else {
            lock(&self.figures).dropped += 1;
            return None;
        };
        let from = opened.from_id;
        // A Boot! from an endpoint that is none of the run's Agents (anyone can publish to the
        // Controller's topic): not counted as booted, not answered, no state kept for it.
        let forged_boot = matches!(
            opened.msg.body.as_ref().map(|b| &b.msg_body),
            Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) if super::life::notify_name(n) == "Boot!"
        ) && self.agents.get().is_some_and(|ids| !ids.contains(&from));
        if forged_boot {
            lock(&self.figures).dropped += 1;
            return None;
        }
        let header = opened.msg.header.unwrap_or_default();
        let mut out = Vec::new();
        match opened.msg.body.map(|b| b.msg_body) {
            Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) => {
                // The report's one naming rule (every name one `report merge` knows).
                let what = super::life::notify_name(&n);
                let boot = what == "Boot!";
                {
                    let mut f = lock(&self.figures);
                    *f.notifications.entry(what).or_default() += 1;
                    if boot {
                        f.booted.insert(from.clone());
                    }
                }
                if n.send_resp {
                    let resp = Msg {
                        header: Some(Header { msg_id: header.msg_id.clone(), msg_type: MsgType::NOTIFY_RESP }),
                        body: Some(Body {
                            msg_body: OneOfmsg_body::response(Response {
                                resp_type: OneOfresp_type::notify_resp(NotifyResp { subscription_id: n.subscription_id.clone() }),
                            }),
                        }),
                    };
                    out.push(record::seal(&resp, &self.id, &from));
                }
                // A retransmitted Boot! (same Message ID) would ask again for every retry: under a
                // storm, that multiplies the Controller's load just when it is behind.
                let again = boot && self.last_boot.get(&from) == Some(&header.msg_id);
                if boot && !again && self.last_boot.len() < MAX_ASKED {
                    self.last_boot.insert(from.clone(), header.msg_id.clone());
                }
                if boot && !again && self.asked.len() < MAX_ASKED {
                    // Read DeviceInfo after Boot!, as an ACS's bootstrap script would.
                    let msg_id = format!("ctl-{}", self.next_msg.fetch_add(1, Ordering::Relaxed));
                    let get = Msg {
                        header: Some(Header { msg_id: msg_id.clone(), msg_type: MsgType::GET }),
                        body: Some(Body {
                            msg_body: OneOfmsg_body::request(Request {
                                req_type: OneOfreq_type::get(Get { param_paths: vec!["Device.DeviceInfo.".into()], max_depth: 0 }),
                            }),
                        }),
                    };
                    self.asked.insert(msg_id, (MsgKind::Get, Instant::now()));
                    out.push(record::seal(&get, &self.id, &from));
                }
            }
            Some(OneOfmsg_body::response(_)) => {
                if let Some((kind, at)) = self.asked.remove(&header.msg_id) {
                    let mut f = lock(&self.figures);
                    let t = f.round_trips.entry(kind).or_insert_with(|| Timed { count: 0, latency: histogram() });
                    t.count += 1;
                    t.latency.saturating_record((at.elapsed().as_micros() as u64).max(1));
                }
            }
            Some(OneOfmsg_body::error(_)) => {
                self.asked.remove(&header.msg_id);
                lock(&self.figures).errors += 1;
            }
            _ => lock(&self.figures).dropped += 1,
        }
        Some((from, out))
    }
}

/// A running embedded Controller on an MQTT broker.
pub struct Controller {
    pub figures: Arc<Mutex<ControllerFigures>>,
    /// The run's Agents' endpoint IDs ([`Controller::expect_agents`]).
    agents: AgentIds,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    /// Connects to the broker as `endpoint_id` and subscribes to its topic; returns once the
    /// subscription is acknowledged, so no Agent's Boot! is published before it listens.
    ///
    /// # Errors
    /// The broker could not be reached or refused the connection within `within`.
    pub async fn start(client: &ClientSettings, endpoint_id: &str, within: Duration) -> anyhow::Result<Controller> {
        let figures = Arc::new(Mutex::new(ControllerFigures::default()));
        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = oneshot::channel();
        let conn = Conn::new(client, endpoint_id, endpoint_id, 1024, 1 << 16);
        // Answers go out on a connection of their own: rumqttc's event loop hands back a burst
        // of incoming publishes before it takes the next request, so under a Boot! storm the
        // answers on a shared connection starved (measured: 50 of 10,000 Boot! answered).
        let tx = Conn::new(client, &format!("{endpoint_id}-tx"), endpoint_id, 1024, 1 << 16);
        let agents: AgentIds = Arc::new(OnceLock::new());
        // Its requests wait as long as the run waits for anything (--timeout).
        let core = Core::new(endpoint_id.to_string(), figures.clone(), Arc::new(AtomicU64::new(1))).with_limits(within, agents.clone());
        let task = tokio::spawn(serve(conn, tx, core, stop_rx, ready_tx));
        // A stop signal (SIGINT/SIGTERM) while connecting ends the wait at once rather than
        // after `within` (the run's --timeout).
        let stop_signal = async {
            while !crate::engine::stop_requested() {
                tokio::time::sleep(STOP_POLL).await;
            }
        };
        let ready = tokio::select! {
            r = ready_rx => Some(r),
            _ = tokio::time::sleep(within) => None,
            _ = stop_signal => {
                task.abort();
                anyhow::bail!("stopped while the embedded Controller was connecting to {}", client.target)
            }
        };
        match ready {
            Some(Ok(Ok(()))) => Ok(Controller { figures, agents, stop, task }),
            Some(Ok(Err(e))) => {
                task.abort();
                anyhow::bail!("the embedded Controller could not connect to {}: {e}", client.target)
            }
            _ => {
                task.abort();
                anyhow::bail!("the embedded Controller could not subscribe at {} within {within:?}", client.target)
            }
        }
    }

    /// Counts Boot! only from these endpoint IDs (the run's Agents) from now on; a Boot! from
    /// anyone else is dropped (counted in `dropped`). Set once; later calls are ignored.
    pub fn expect_agents(&self, ids: impl IntoIterator<Item = String>) {
        let _ = self.agents.set(ids.into_iter().collect());
    }

    /// Disconnects and waits for the task.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Drives the answering connection until the run stops (rumqttc reconnects on the next poll).
async fn drive_tx(mut conn: Conn, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = super::life::stopped(&mut stop) => {
                conn.disconnect().await;
                return;
            }
            ev = conn.poll() => {
                // The connection's driver waits before it reconnects (`mqtt_conn::drive`).
                if let Err(e) = ev {
                    tracing::warn!("embedded Controller: its answering connection failed ({e}); reconnecting");
                }
            }
        }
    }
}

async fn serve(mut conn: Conn, tx_conn: Conn, mut core: Core, mut stop: watch::Receiver<bool>, ready: oneshot::Sender<Result<(), String>>) {
    let topic = controller_topic(&core.id);
    let mut ready = Some(ready);
    let client = conn.publisher.clone();
    let tx = tx_conn.publisher.clone();
    let tx_task = tokio::spawn(drive_tx(tx_conn, stop.clone()));
    loop {
        let ev = tokio::select! {
            _ = super::life::stopped(&mut stop) => {
                core.expire(Instant::now(), true);
                conn.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_secs(1), tx_task).await;
                return;
            }
            ev = conn.poll() => ev,
        };
        match ev {
            Ok(Incoming::Connected) => {
                let _ = client.subscribe(&topic);
            }
            Ok(Incoming::Subscribed) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
            }
            Ok(Incoming::Publish { payload, reply_to }) => {
                let Some((from, replies)) = core.on_record(&payload) else { continue };
                let reply_to = reply_to.filter(|t| reply_topic_ok(t)).unwrap_or_else(|| agent_topic(&from));
                for r in replies {
                    publish(&tx, &reply_to, &topic, r);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e.to_string()));
                    return;
                }
                // The connection's driver waits before it reconnects (`mqtt_conn::drive`).
                tracing::warn!("embedded Controller: connection to the broker failed ({e}); reconnecting");
            }
        }
    }
}

fn publish(client: &Publisher, to: &str, own_topic: &str, record: Vec<u8>) {
    if !client.publish(to, record, own_topic) {
        tracing::warn!("embedded Controller: its MQTT request queue is full; a message was not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusp_lib::usp::mod_Notify::{Event, OneOfnotification};
    use rusp_lib::usp::Notify;

    const CTL: &str = "self::ctl";

    fn boot_from(from: &str, n: u32) -> Vec<u8> {
        let msg = Msg {
            header: Some(Header { msg_id: format!("b{n}"), msg_type: MsgType::NOTIFY }),
            body: Some(Body {
                msg_body: OneOfmsg_body::request(Request {
                    req_type: OneOfreq_type::notify(Notify {
                        subscription_id: "boot".into(),
                        send_resp: true,
                        notification: OneOfnotification::event(Event {
                            obj_path: "Device.".into(),
                            event_name: "Boot!".into(),
                            params: HashMap::new(),
                        }),
                    }),
                }),
            }),
        };
        record::seal(&msg, from, CTL)
    }

    fn core() -> (Core, Arc<Mutex<ControllerFigures>>, AgentIds) {
        let figures = Arc::new(Mutex::new(ControllerFigures::default()));
        let agents: AgentIds = Arc::new(OnceLock::new());
        let c = Core::new(CTL.into(), figures.clone(), Arc::new(AtomicU64::new(1))).with_limits(Duration::from_millis(20), agents.clone());
        (c, figures, agents)
    }

    #[test]
    fn boot_counts_only_from_the_runs_agents() {
        let (mut c, figures, agents) = core();
        agents.set(["os::A-0".to_string(), "os::A-1".to_string()].into()).unwrap();
        let (_, replies) = c.on_record(&boot_from("os::A-0", 1)).unwrap();
        assert_eq!(replies.len(), 2, "NotifyResp and the DeviceInfo Get");
        for i in 0..1000 {
            assert!(c.on_record(&boot_from(&format!("os::FORGED-{i}"), i)).is_none());
        }
        let f = lock(&figures);
        assert_eq!(f.booted.len(), 1);
        assert_eq!(f.dropped, 1000);
        assert_eq!(c.asked_len(), 1, "no state kept for forged senders");
    }

    // Whatever notification an endpoint sends, the Controller counts it under a name the
    // report knows, so its report always merges (an OnBoardRequest used to be "Other").
    #[test]
    fn every_notification_is_counted_under_a_report_name() {
        let (mut c, figures, _) = core();
        let msg = Msg {
            header: Some(Header { msg_id: "o1".into(), msg_type: MsgType::NOTIFY }),
            body: Some(Body {
                msg_body: OneOfmsg_body::request(Request {
                    req_type: OneOfreq_type::notify(Notify {
                        subscription_id: "s".into(),
                        send_resp: false,
                        notification: OneOfnotification::on_board_req(Default::default()),
                    }),
                }),
            }),
        };
        c.on_record(&record::seal(&msg, "os::A-0", CTL));
        let f = lock(&figures);
        assert_eq!(f.notifications.get("OnBoardRequest"), Some(&1));
        assert!(f.notifications.keys().all(|k| super::super::report::NOTIFY_NAMES.contains(k)));
    }

    #[test]
    fn a_retransmitted_boot_is_answered_without_a_second_get() {
        let (mut c, figures, _) = core();
        assert_eq!(c.on_record(&boot_from("os::A-0", 1)).unwrap().1.len(), 2, "NotifyResp and the Get");
        assert_eq!(c.on_record(&boot_from("os::A-0", 1)).unwrap().1.len(), 1, "the same Boot! again: NotifyResp only");
        assert_eq!(c.asked_len(), 1);
        // A new Boot! (the Agent rebooted): DeviceInfo is read again.
        assert_eq!(c.on_record(&boot_from("os::A-0", 2)).unwrap().1.len(), 2);
        assert_eq!(lock(&figures).notifications["Boot!"], 3);
    }

    #[test]
    fn unanswered_requests_expire_and_the_map_is_capped() {
        let (mut c, figures, _) = core();
        for i in 0..10 {
            c.on_record(&boot_from(&format!("os::A-{i}"), i)).unwrap();
        }
        assert_eq!(c.asked_len(), 10);
        std::thread::sleep(Duration::from_millis(40));
        c.on_record(&boot_from("os::A-x", 99)).unwrap();
        assert_eq!(c.asked_len(), 1, "the ten older Gets expired");
        assert_eq!(lock(&figures).expired, 10);
        // Full: Boot! is answered, DeviceInfo not read, the map does not grow.
        let (mut c, _, _) = core();
        c.ask_ttl = Duration::from_secs(3600);
        c.next_sweep = Instant::now() + c.ask_ttl;
        for i in 0..MAX_ASKED {
            c.asked.insert(format!("x{i}"), (MsgKind::Get, Instant::now()));
        }
        let (_, replies) = c.on_record(&boot_from("os::A-0", 1)).unwrap();
        assert_eq!(replies.len(), 1, "only the NotifyResp");
        assert_eq!(c.asked_len(), MAX_ASKED);
    }
}
