//! TR-369 MTPs beyond MQTT 5 and plain WebSocket, against real peers: Agents and the embedded
//! Controller on MQTT 3.1.1 through mosquitto (the reply-to Topic in the Topic Name, R-MQTT.24/25),
//! driven by a 3.1.1 Controller written here; Agents on `wss://` to the embedded WebSocket
//! Controller served over TLS (CA file, skip-verify, mutual TLS, a bad certificate); the WebSocket
//! Controller's Agent filter and its expired requests.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::mod_Response::OneOfresp_type;
use rusp_lib::usp::{Body, Get, Header, Msg, NotifyResp, Request, Response};

use crate::support::mosquitto::Mosquitto;
use crate::support::pki::Pki;
use crate::usp_wire::{boot_cause, finish, report, scratch, spawn};
use cpe_sim::mtp::ws::{WsController, WsServe, SUBPROTOCOL};
use cpe_sim::transport::tls::server_config;
use cpe_sim::usp::record;

// The embedded Controller and 100 Agents, all on MQTT 3.1.1: every Boot! answered, and the
// Controller's Get of DeviceInfo after each Boot! answered on the reply-to Topic of its Topic Name.
#[test]
fn mqtt_311_agents_boot_through_mosquitto() {
    let broker = Mosquitto::start();
    let dir = scratch("v311");
    let json = dir.join("r.json");
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--mqtt-version",
        "3.1.1",
        "--cpes",
        "100",
        "--duration",
        "4s",
        "--timeout",
        "10s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(child, Duration::from_secs(90));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("MQTT 3.1.1"), "{out}");
    let r = report(&json);
    assert_eq!(r["booted"], 100, "{r}");
    assert_eq!(r["controller"]["booted_agents"], 100, "{r}");
    assert_eq!(r["connections"]["held"], 100, "{r}");
    assert_eq!(r["controller"]["round_trips"]["Get"]["count"], 100, "every DeviceInfo Get came back: {r}");
    assert_eq!(r["controller"]["expired"], 0, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

const CTL: &str = "self::v311-ctl";

fn msg(id: &str, msg_type: MsgType, body: OneOfmsg_body) -> Msg {
    Msg { header: Some(Header { msg_id: id.into(), msg_type }), body: Some(Body { msg_body: body }) }
}

// A Controller written here on rumqttc's 3.1.1 client: it sees the Agent's Boot! on a Topic Name
// carrying the Agent's reply-to Topic, answers it there, and a Get and a Set round trip.
#[test]
fn a_311_controller_drives_an_agent() {
    let broker = Mosquitto::start();
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--mqtt-version",
        "3.1.1",
        "--controller-id",
        CTL,
        "--cpes",
        "1",
        "--duration",
        "60s",
        "--timeout",
        "2s",
    ]);
    let pid = child.id();
    let agent = "os::FEFEFE-FEFEFE000000";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut o = MqttOptions::new(CTL, "127.0.0.1", broker.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(o, 64);
        let own = format!("usp/controller/{CTL}");
        client.subscribe(format!("{own}/#"), QoS::AtLeastOnce).await.unwrap();
        let reply_to_me = |topic: &str| format!("{topic}/reply-to={}", own.replace('/', "%2F"));
        // Every PUBLISH the Agent sent: (Topic Name, Msg).
        let next = async |events: &mut rumqttc::EventLoop| -> (String, Msg) {
            loop {
                if let Event::Incoming(Packet::Publish(p)) = events.poll().await.unwrap() {
                    let opened = record::open(&p.payload, CTL).unwrap();
                    assert_eq!(opened.from_id, agent);
                    return (p.topic, opened.msg);
                }
            }
        };
        let (topic, boot) = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let (topic, m) = next(&mut events).await;
                if boot_cause(&m).is_some() {
                    return (topic, m);
                }
            }
        })
        .await
        .expect("Boot! within 30 s");
        // R-MQTT.24: the Agent's reply-to Topic at the end of the Topic Name, `/` as %2F.
        assert_eq!(topic, format!("{own}/reply-to=usp%2Fagent%2F{agent}"));
        let agent_topic = format!("usp/agent/{agent}");
        let resp = msg(
            &boot.header.unwrap().msg_id,
            MsgType::NOTIFY_RESP,
            OneOfmsg_body::response(Response { resp_type: OneOfresp_type::notify_resp(NotifyResp { subscription_id: String::new() }) }),
        );
        client.publish(reply_to_me(&agent_topic), QoS::AtLeastOnce, false, record::seal(&resp, CTL, agent)).await.unwrap();
        // Get, then Set, then Get again; each answer on our topic.
        let mut ask = async |id: &str, t: MsgType, req: OneOfreq_type| -> OneOfmsg_body {
            let m = msg(id, t, OneOfmsg_body::request(Request { req_type: req }));
            client.publish(reply_to_me(&agent_topic), QoS::AtLeastOnce, false, record::seal(&m, CTL, agent)).await.unwrap();
            tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    let (topic, m) = next(&mut events).await;
                    if m.header.as_ref().unwrap().msg_id == id {
                        assert!(topic.starts_with(&format!("{own}/reply-to=")), "{topic}");
                        return m.body.unwrap().msg_body;
                    }
                }
            })
            .await
            .expect("an answer within 20 s")
        };
        let get = |p: &str| OneOfreq_type::get(Get { param_paths: vec![p.into()], max_depth: 0 });
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::get_resp(g) }) =
            ask("g1", MsgType::GET, get("Device.DeviceInfo.SerialNumber")).await
        else {
            panic!("not a GetResp")
        };
        assert_eq!(g.req_path_results[0].resolved_path_results[0].result_params["SerialNumber"], "FEFEFE000000");
        let set = rusp_lib::usp::Set {
            allow_partial: false,
            update_objs: vec![rusp_lib::usp::mod_Set::UpdateObject {
                obj_path: "Device.WiFi.SSID.1.".into(),
                param_settings: vec![rusp_lib::usp::mod_Set::UpdateParamSetting {
                    param: "SSID".into(),
                    value: "over-311".into(),
                    required: true,
                }],
            }],
        };
        let answer = ask("s1", MsgType::SET, OneOfreq_type::set(set)).await;
        assert!(matches!(answer, OneOfmsg_body::response(Response { resp_type: OneOfresp_type::set_resp(_) })), "{answer:?}");
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::get_resp(g) }) =
            ask("g2", MsgType::GET, get("Device.WiFi.SSID.1.SSID")).await
        else {
            panic!("not a GetResp")
        };
        assert_eq!(g.req_path_results[0].resolved_path_results[0].result_params["SSID"], "over-311");
    });
    // SAFETY: signals the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = finish(child, Duration::from_secs(30));
}

/// A multi-threaded runtime, so a Controller started on it serves while the test waits on the
/// binary.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `cpe-sim` as USP Agents against the wss:// Controller `url` with `extra` flags; returns
/// the exit code and the JSON report.
fn wss_run(url: &str, cpes: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let dir = scratch(&format!("wss-{cpes}-{}", extra.len()));
    let json = dir.join("r.json");
    let mut args = vec!["--protocol", "usp", "--usp-url", url, "--controller-id", "self::wss-ctl", "--cpes", cpes, "--timeout", "5s"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--report-json", json.to_str().unwrap()]);
    let (code, out, err) = finish(spawn(&args), Duration::from_secs(60));
    let r = report(&json);
    let _ = std::fs::remove_dir_all(&dir);
    (code, r, format!("{out}\n{err}"))
}

// wss://: Agents reach a TLS WebSocket Controller (the embedded one served over tokio-rustls with
// a private CA's certificate) with --ca-cert-file or --tls-skip-verify; without the CA every
// attempt is a counted `tls` failure and the run exits 1, never a panic.
#[test]
fn wss_agents_reach_a_tls_controller() {
    let pki = Pki::new("wss");
    let rt = runtime();
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    let ctl = rt.block_on(WsController::start("self::wss-ctl", WsServe { ask_ttl: None, tls: Some(tls) })).unwrap();
    assert!(ctl.url.starts_with("wss://127.0.0.1:"), "{}", ctl.url);
    let ca = pki.path("ca.pem");
    let (code, r, log) = wss_run(&ctl.url, "5", &["--ca-cert-file", ca.to_str().unwrap()]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(r["booted"], 5, "{r}");
    assert!(log.contains("WebSocket over TLS"), "{log}");
    let (code, r, log) = wss_run(&ctl.url, "3", &["--tls-skip-verify"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(r["booted"], 3, "{r}");
    assert_eq!(ctl.figures.lock().unwrap().booted.len(), 5, "the same 5 endpoint IDs (0..5 and 0..3)");
    // The Controller's certificate chains to no root the Agents know: a counted tls failure.
    let (code, r, log) = wss_run(&ctl.url, "2", &["--duration", "2s"]);
    assert_eq!(code, 1, "{log}");
    assert!(r["failures"]["tls"].as_u64().unwrap_or(0) >= 2, "{r}");
    assert_eq!(r["booted"], 0, "{r}");
    rt.block_on(ctl.stop());
}

// Mutual TLS over wss://: a Controller that asks for a client certificate takes the Agents that
// present one (--client-cert/--client-key, signed by its CA); without it, a counted tls failure.
#[test]
fn wss_with_a_client_certificate() {
    let pki = Pki::new("wss-mtls");
    let rt = runtime();
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), Some(&pki.path("ca.pem"))).unwrap();
    let ctl = rt.block_on(WsController::start("self::wss-ctl", WsServe { ask_ttl: None, tls: Some(tls) })).unwrap();
    let (ca, cert, key) = (pki.path("ca.pem"), pki.path("client.pem"), pki.path("client.key"));
    let ca = ca.to_str().unwrap();
    let (code, r, log) =
        wss_run(&ctl.url, "3", &["--ca-cert-file", ca, "--client-cert", cert.to_str().unwrap(), "--client-key", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(r["booted"], 3, "{r}");
    let (code, r, log) = wss_run(&ctl.url, "2", &["--ca-cert-file", ca, "--duration", "2s"]);
    assert_eq!(code, 1, "{log}");
    assert!(r["failures"]["tls"].as_u64().unwrap_or(0) >= 2, "{r}");
    rt.block_on(ctl.stop());
}

fn boot_from(from: &str, id: &str) -> Vec<u8> {
    use rusp_lib::usp::mod_Notify::{Event, OneOfnotification};
    let notify = rusp_lib::usp::Notify {
        subscription_id: "boot".into(),
        send_resp: true,
        notification: OneOfnotification::event(Event {
            obj_path: "Device.".into(),
            event_name: "Boot!".into(),
            params: Default::default(),
        }),
    };
    let m = msg(id, MsgType::NOTIFY, OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(notify) }));
    record::seal(&m, from, "self::ws-ctl")
}

// The embedded WebSocket Controller takes Boot! only from the run's Agents: another endpoint's is
// dropped (counted, not answered, no request sent to it). A request the Agent never answers
// expires after the Controller's --timeout and is counted.
#[test]
fn the_websocket_controller_drops_strangers_and_counts_expired_requests() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let rt = runtime();
    rt.block_on(async {
        let how = WsServe { ask_ttl: Some(Duration::from_millis(1)), tls: None };
        let ctl = WsController::start("self::ws-ctl", how).await.unwrap();
        let agent = "os::FEFEFE-FEFEFE000000";
        ctl.expect_agents([agent.to_string()]);
        let mut req = ctl.url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        // A stranger's Boot!, then the Agent's: the first answer is the Agent's.
        ws.send(Message::Binary(boot_from("os::STRANGER-1", "forged").into())).await.unwrap();
        ws.send(Message::Binary(boot_from(agent, "boot-1").into())).await.unwrap();
        let mut next = async || -> Msg {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an answer").unwrap().unwrap();
            record::open(&m.into_data(), agent).unwrap().msg
        };
        let first = next().await;
        assert_eq!(first.header.unwrap().msg_id, "boot-1", "the stranger's Boot! was not answered");
        let get = next().await;
        assert_eq!(get.header.unwrap().msg_type, MsgType::GET, "DeviceInfo is read after Boot!");
        // The Get is never answered: once its 1 ms is over and the connection ends, it counts.
        tokio::time::sleep(Duration::from_millis(5)).await;
        ws.close(None).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while ctl.figures.lock().unwrap().expired == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        {
            let f = ctl.figures.lock().unwrap();
            assert_eq!(f.expired, 1);
            assert_eq!(f.dropped, 1, "the stranger's Boot!");
            assert_eq!(f.booted.len(), 1);
            assert!(f.booted.contains(agent));
        }
        ctl.stop().await;
    });
}

/// A TCP proxy to `upstream` on 127.0.0.1 that holds every new connection for `delay` before it
/// connects upstream (a broker slow to accept, as under a connection storm); counts connections.
struct SlowProxy {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowProxy {
    fn start(upstream: u16, delay: Duration) -> SlowProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopping) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = client.set_nonblocking(false);
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else { return };
                    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut s2);
                        let _ = s2.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut s, mut c) = (server, client);
                    let _ = std::io::copy(&mut s, &mut c);
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                });
            }
        });
        SlowProxy { port, accepted, stop, thread: Some(thread) }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// Issue 14's 10,000-at-once collapse: a connect slower than the Agents' 250 ms tick was abandoned
// half-open and started again, forever. Behind a broker that takes 800 ms to accept, each Agent
// connects once (one TCP connection each, plus the Controller's two) and boots.
#[test]
fn a_slow_broker_connect_is_waited_for_not_restarted() {
    let broker = Mosquitto::start();
    let proxy = SlowProxy::start(broker.port, Duration::from_millis(800));
    let dir = scratch("slow-connect");
    let json = dir.join("r.json");
    let url = format!("mqtt://127.0.0.1:{}", proxy.port);
    let child = spawn(&["--protocol", "usp", "--usp-url", &url, "--cpes", "5", "--timeout", "5s", "--report-json", json.to_str().unwrap()]);
    // Before the fix no Agent ever connected; the run gave up after 5 s × 4 + 10 s, exit 1.
    let (code, out, err) = finish(child, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    let r = report(&json);
    assert_eq!(r["booted"], 5, "{r}");
    assert_eq!(r["connections"]["connects"], 5, "{r}");
    assert_eq!(proxy.accepted.load(std::sync::atomic::Ordering::Relaxed), 7, "one TCP connection per Agent and two for the Controller");
    let _ = std::fs::remove_dir_all(&dir);
}

// R-MQTT.13: an MQTT 5 Agent names its endpoint ID in a CONNECT User Property `usp-endpoint-id`
// (a broker that authorizes by endpoint reads it there). A listener here reads the first CONNECT.
#[test]
fn an_mqtt5_connect_names_the_endpoint_id() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &format!("mqtt://127.0.0.1:{port}"),
        "--controller-id",
        "self::elsewhere",
        "--cpes",
        "1",
        "--duration",
        "3s",
    ]);
    let (mut s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut connect = Vec::new();
    let mut buf = [0u8; 4096];
    // The whole CONNECT: the fixed header's type byte, the remaining length (a varint), then that
    // many bytes.
    let whole = |p: &[u8]| {
        let (mut len, mut shift) = (0usize, 0);
        for (i, b) in p.iter().enumerate().skip(1).take(4) {
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return p.len() >= 1 + i + len;
            }
        }
        false
    };
    while !whole(&connect) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed before a whole CONNECT");
        connect.extend_from_slice(&buf[..n]);
    }
    let (code, out, err) = finish(child, Duration::from_secs(60));
    assert_eq!(connect[0], 0x10, "a CONNECT packet");
    let text = String::from_utf8_lossy(&connect);
    assert!(text.contains("usp-endpoint-id"), "{text:?}");
    assert_eq!(text.matches("os::FEFEFE-FEFEFE000000").count(), 2, "client ID and the property's value: {text:?}");
    assert_eq!(code, 1, "no broker answered: {out}\n{err}");
}
