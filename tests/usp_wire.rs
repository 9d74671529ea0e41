//! TR-369 Agents over a real MQTT broker (mosquitto): the binary's USP fleet against the embedded
//! Controller (the issue's "done when": every Boot! answered), and a Controller written here
//! against the binary's Agents for every message, bad input, reboot and notifications.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Notify::OneOfnotification;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::mod_Response::OneOfresp_type;
use rusp_lib::usp::{Body, Get, Header, Msg, NotifyResp, Operate, Request, Response};
use serde_json::Value;

use crate::support::mosquitto::Mosquitto;
use crate::support::repo;
use cpe_sim::usp::record;

pub(crate) fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cpe-sim-usp-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(args)
        .current_dir(repo("."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for the child and returns (exit code, stdout, stderr); kills it on timeout.
pub(crate) fn finish(mut child: Child, within: Duration) -> (i32, String, String) {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("cpe-sim did not finish within {within:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub(crate) fn report(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the report file")).unwrap()
}

// See: #14 ("done when"): 1,000 Agents connect to a local mosquitto, each publishes Boot!, the
// Controller receives and answers every one.
#[test]
fn a_thousand_agents_boot_through_mosquitto() {
    let broker = Mosquitto::start();
    let dir = scratch("thousand");
    let json = dir.join("r.json");
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--cpes",
        "1000",
        "--timeout",
        "20s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(child, Duration::from_secs(150));
    assert_eq!(code, 0, "{out}\n{err}");
    let r = report(&json);
    assert_eq!(r["agents"], 1000, "{r}");
    assert_eq!(r["booted"], 1000, "{r}");
    assert_eq!(r["connections"]["peak"], 1000, "{r}");
    assert_eq!(r["connections"]["held"], 1000, "every Agent was connected when the run ended: {r}");
    assert_eq!(r["notify"]["Boot!"]["answered"], 1000, "{r}");
    assert_eq!(r["controller"]["booted_agents"], 1000, "the Controller saw 1,000 distinct endpoint IDs: {r}");
    assert!(out.contains("agents booted (Boot! answered): 1000 of 1000"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_duration_run_holds_connections_and_sends_periodic() {
    let broker = Mosquitto::start();
    let dir = scratch("periodic");
    let json = dir.join("r.json");
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--cpes",
        "20",
        "--duration",
        "6s",
        "--inform-interval",
        "1s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(child, Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    let r = report(&json);
    assert_eq!(r["connections"]["held"], 20, "{r}");
    assert!(r["notify"]["Periodic!"]["answered"].as_u64().unwrap() >= 20, "{r}");
    assert!(r["controller"]["notifications"]["Periodic!"].as_u64().unwrap() >= 20, "{r}");
}

#[test]
fn no_broker_is_a_counted_failure_and_exit_1() {
    // A port nothing listens on: the embedded Controller cannot connect, said plainly.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = spawn(&["--protocol", "usp", "--usp-url", &format!("mqtt://127.0.0.1:{port}"), "--cpes", "2", "--timeout", "2s"]);
    let (code, _, err) = finish(child, Duration::from_secs(60));
    // A runtime failure (exit 1), not a usage error (2): the flags were fine, the broker was not there.
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("the embedded Controller could not connect to mqtt://127.0.0.1:{port}")), "{err}");
}

#[test]
fn a_stop_signal_while_the_controller_connects_ends_the_run_promptly() {
    // A "broker" that accepts the TCP connection and never answers CONNACK: the embedded
    // Controller would wait out --timeout (120 s) for it; SIGTERM must end that wait at once.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Ctrl-C (SIGINT) and SIGTERM alike: the run had started, so it is a runtime failure (exit 1).
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let child = spawn(&["--protocol", "usp", "--usp-url", &format!("mqtt://127.0.0.1:{port}"), "--cpes", "2", "--timeout", "120s"]);
        // Wait for the Controller's connection before signalling.
        let (_held, _) = silent.accept().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        // SAFETY: signals the child we started, by its pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let (code, _, err) = finish(child, Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?} to stop: {err}", started.elapsed());
        assert_eq!(code, 1, "signal {signal}: {err}");
        assert!(err.contains(&format!("stopped while the embedded Controller was connecting to mqtt://127.0.0.1:{port}")), "{err}");
    }
}

/// A Controller written here (rumqttc + rusp-lib), on the broker as `self::wire-ctl`.
struct TestController {
    client: AsyncClient,
    inbox: tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>, Msg)>,
    /// Messages no wait has picked yet, oldest first.
    backlog: Vec<(String, Msg)>,
    next: u32,
}

const CTL: &str = "self::wire-ctl";

impl TestController {
    async fn connect(port: u16) -> TestController {
        let mut o = MqttOptions::new(CTL, "127.0.0.1", port);
        o.set_outgoing_inflight_upper_limit(64);
        o.set_max_packet_size(Some(1 << 20));
        let (client, mut events) = AsyncClient::new(o, 256);
        let (tx, inbox) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let sub = client.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Ok(ev) = events.poll().await {
                match ev {
                    Event::Incoming(Packet::ConnAck(_)) => {
                        let _ = sub.try_subscribe(format!("usp/controller/{CTL}"), QoS::AtLeastOnce);
                    }
                    Event::Incoming(Packet::SubAck(_)) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        let reply = p.properties.as_ref().and_then(|pr| pr.response_topic.clone());
                        if let Ok(o) = record::open(&p.payload, CTL) {
                            let _ = tx.send((o.from_id, reply, o.msg));
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(20), ready_rx).await.expect("subscribed").unwrap();
        TestController { client, inbox, backlog: Vec::new(), next: 1 }
    }

    async fn send_raw(&self, agent: &str, bytes: Vec<u8>) {
        let props = PublishProperties { response_topic: Some(format!("usp/controller/{CTL}")), ..Default::default() };
        self.client.publish_with_properties(format!("usp/agent/{agent}"), QoS::AtLeastOnce, false, bytes, props).await.unwrap();
    }

    /// Waits (bounded) for a message from `agent` that `pick` accepts, answering Notifies on the
    /// way; other messages are kept for later.
    async fn wait_for<T>(&mut self, agent: &str, mut pick: impl FnMut(&Msg) -> Option<T>) -> T {
        if let Some(i) = self.backlog.iter().position(|(from, m)| from == agent && pick(m).is_some()) {
            let (_, m) = self.backlog.remove(i);
            if let Some(t) = pick(&m) {
                return t;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (from, reply, msg) = tokio::time::timeout_at(deadline, self.inbox.recv()).await.expect("an answer in time").unwrap();
            if let Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) = msg.body.as_ref().map(|b| &b.msg_body) {
                if n.send_resp {
                    let resp = Msg {
                        header: Some(Header { msg_id: msg.header.as_ref().unwrap().msg_id.clone(), msg_type: MsgType::NOTIFY_RESP }),
                        body: Some(Body {
                            msg_body: OneOfmsg_body::response(Response {
                                resp_type: OneOfresp_type::notify_resp(NotifyResp { subscription_id: n.subscription_id.clone() }),
                            }),
                        }),
                    };
                    let props = PublishProperties { response_topic: Some(format!("usp/controller/{CTL}")), ..Default::default() };
                    let to = reply.clone().unwrap_or_else(|| format!("usp/agent/{from}"));
                    self.client.publish_with_properties(to, QoS::AtLeastOnce, false, record::seal(&resp, CTL, &from), props).await.unwrap();
                }
            }
            if from == agent {
                if let Some(t) = pick(&msg) {
                    return t;
                }
            }
            self.backlog.push((from, msg));
        }
    }

    /// Subscribes this Controller on `agent` (an Add on `Device.LocalAgent.Subscription.`, with
    /// NotifRetry so every Notify is answered and measured).
    async fn subscribe(&mut self, agent: &str, id: &str, notif_type: &str, refs: &str) {
        let setting = |p: &str, v: &str| rusp_lib::usp::mod_Add::CreateParamSetting { param: p.into(), value: v.into(), required: true };
        let add = rusp_lib::usp::Add {
            allow_partial: false,
            create_objs: vec![rusp_lib::usp::mod_Add::CreateObject {
                obj_path: "Device.LocalAgent.Subscription.".into(),
                param_settings: vec![
                    setting("Enable", "true"),
                    setting("ID", id),
                    setting("NotifType", notif_type),
                    setting("ReferenceList", refs),
                    setting("NotifRetry", "true"),
                ],
            }],
        };
        let answer = self.request(agent, OneOfreq_type::add(add)).await;
        assert!(matches!(answer, OneOfmsg_body::response(_)), "{answer:?}");
    }

    /// Sends a Get to `agent` until one is answered (each attempt waits `each`), so a Controller
    /// can tell an Agent is back after a reboot without a Boot!.
    async fn until_answered(&mut self, agent: &str, each: Duration, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let id = format!("wire-{}", self.next);
            self.next += 1;
            let get = Get { param_paths: vec!["Device.DeviceInfo.SerialNumber".into()], max_depth: 0 };
            let msg = Msg {
                header: Some(Header { msg_id: id.clone(), msg_type: MsgType::GET }),
                body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: OneOfreq_type::get(get) }) }),
            };
            self.send_raw(agent, record::seal(&msg, CTL, agent)).await;
            let until = (tokio::time::Instant::now() + each).min(deadline);
            while let Ok(Some((from, _, m))) = tokio::time::timeout_at(until, self.inbox.recv()).await {
                if from == agent && m.header.as_ref().is_some_and(|h| h.msg_id == id) {
                    return;
                }
                self.backlog.push((from, m));
            }
            assert!(tokio::time::Instant::now() < deadline, "{agent} did not answer within {within:?}");
        }
    }

    async fn request(&mut self, agent: &str, req: OneOfreq_type) -> OneOfmsg_body {
        let id = format!("wire-{}", self.next);
        self.next += 1;
        let msg = Msg {
            header: Some(Header { msg_id: id.clone(), msg_type: MsgType::GET }),
            body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: req }) }),
        };
        self.send_raw(agent, record::seal(&msg, CTL, agent)).await;
        self.wait_for(agent, |m| (m.header.as_ref().unwrap().msg_id == id).then(|| m.body.clone().unwrap().msg_body)).await
    }
}

/// Publishes Gets to `agent` from a throwaway client: (sender ID, Message ID, Response Topic).
async fn hostile_publish(port: u16, agent: &str, records: &[(String, &str, Option<String>)]) {
    let mut o = MqttOptions::new("self::hostile", "127.0.0.1", port);
    o.set_max_packet_size(Some(1 << 20));
    let (client, mut events) = AsyncClient::new(o, 16);
    for (from, id, reply) in records {
        let msg = Msg {
            header: Some(Header { msg_id: id.to_string(), msg_type: MsgType::GET }),
            body: Some(Body {
                msg_body: OneOfmsg_body::request(Request {
                    req_type: OneOfreq_type::get(Get { param_paths: vec!["Device.DeviceInfo.SerialNumber".into()], max_depth: 0 }),
                }),
            }),
        };
        let props = PublishProperties { response_topic: reply.clone(), ..Default::default() };
        client
            .publish_with_properties(format!("usp/agent/{agent}"), QoS::AtLeastOnce, false, record::seal(&msg, from, agent), props)
            .await
            .unwrap();
    }
    // Drive the connection until every publish is acknowledged (or the broker closed it).
    let mut acked = 0;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(ev) = events.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = ev {
                acked += 1;
                if acked == records.len() {
                    return;
                }
            }
        }
    })
    .await;
    assert_eq!(acked, records.len(), "the broker took every hostile publish");
}

pub(crate) fn boot_cause(m: &Msg) -> Option<String> {
    match m.body.as_ref().map(|b| &b.msg_body) {
        Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) => match &n.notification {
            OneOfnotification::event(e) if e.event_name == "Boot!" => Some(e.params.get("Cause").cloned().unwrap_or_default()),
            _ => None,
        },
        _ => None,
    }
}

fn notification(m: &Msg) -> Option<OneOfnotification> {
    match m.body.as_ref().map(|b| &b.msg_body) {
        Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) => Some(n.notification.clone()),
        _ => None,
    }
}

#[test]
fn a_controller_drives_the_agents_over_mqtt() {
    let broker = Mosquitto::start();
    let dir = scratch("driven");
    let json = dir.join("r.json");
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--controller-id",
        CTL,
        "--cpes",
        "2",
        "--duration",
        "120s",
        "--timeout",
        "3s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let agent = "os::FEFEFE-FEFEFE000001";
    rt.block_on(async {
        let mut ctl = TestController::connect(broker.port).await;
        // Boot! (the Agent sends it again until answered, so a Controller that subscribed late
        // still gets it).
        assert_eq!(ctl.wait_for(agent, boot_cause).await, "LocalReboot");
        // Get of a partial path.
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::get_resp(g) }) =
            ctl.request(agent, OneOfreq_type::get(Get { param_paths: vec!["Device.DeviceInfo.".into()], max_depth: 1 })).await
        else {
            panic!()
        };
        assert_eq!(g.req_path_results[0].resolved_path_results[0].result_params["SerialNumber"], "FEFEFE000001");
        // Set, then read back.
        let set = rusp_lib::usp::Set {
            allow_partial: false,
            update_objs: vec![rusp_lib::usp::mod_Set::UpdateObject {
                obj_path: "Device.WiFi.SSID.1.".into(),
                param_settings: vec![rusp_lib::usp::mod_Set::UpdateParamSetting {
                    param: "SSID".into(),
                    value: "wired".into(),
                    required: true,
                }],
            }],
        };
        assert!(matches!(ctl.request(agent, OneOfreq_type::set(set)).await, OneOfmsg_body::response(_)));
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::get_resp(g) }) =
            ctl.request(agent, OneOfreq_type::get(Get { param_paths: vec!["Device.WiFi.SSID.1.SSID".into()], max_depth: 0 })).await
        else {
            panic!()
        };
        assert_eq!(g.req_path_results[0].resolved_path_results[0].result_params["SSID"], "wired");
        // Add → ObjectCreation; Delete → ObjectDeletion; each because this Controller subscribed.
        ctl.subscribe(agent, "oc", "ObjectCreation", "Device.NAT.PortMapping.").await;
        ctl.subscribe(agent, "od", "ObjectDeletion", "Device.NAT.PortMapping.").await;
        ctl.subscribe(agent, "op", "OperationComplete", "Device.SelfTestDiagnostics()").await;
        let add = rusp_lib::usp::Add {
            allow_partial: false,
            create_objs: vec![rusp_lib::usp::mod_Add::CreateObject { obj_path: "Device.NAT.PortMapping.".into(), param_settings: vec![] }],
        };
        assert!(matches!(ctl.request(agent, OneOfreq_type::add(add)).await, OneOfmsg_body::response(_)));
        let created = ctl
            .wait_for(agent, |m| match notification(m) {
                Some(OneOfnotification::obj_creation(c)) => Some(c.obj_path),
                _ => None,
            })
            .await;
        assert_eq!(created, "Device.NAT.PortMapping.1.");
        let del = rusp_lib::usp::Delete { allow_partial: false, obj_paths: vec![created.clone()] };
        assert!(matches!(ctl.request(agent, OneOfreq_type::delete(del)).await, OneOfmsg_body::response(_)));
        let deleted = ctl
            .wait_for(agent, |m| match notification(m) {
                Some(OneOfnotification::obj_deletion(d)) => Some(d.obj_path),
                _ => None,
            })
            .await;
        assert_eq!(deleted, created);
        // An unknown path: 7026 for that path.
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::get_resp(g) }) =
            ctl.request(agent, OneOfreq_type::get(Get { param_paths: vec!["Device.Nope.".into()], max_depth: 0 })).await
        else {
            panic!()
        };
        assert_eq!(g.req_path_results[0].err_code, 7026);
        // Async command → OperationComplete.
        let op = |cmd: &str| {
            OneOfreq_type::operate(Operate { command: cmd.into(), command_key: "k1".into(), send_resp: true, input_args: HashMap::new() })
        };
        assert!(matches!(ctl.request(agent, op("Device.SelfTestDiagnostics()")).await, OneOfmsg_body::response(_)));
        let done = ctl
            .wait_for(agent, |m| match notification(m) {
                Some(OneOfnotification::oper_complete(c)) => Some(c.command_key),
                _ => None,
            })
            .await;
        assert_eq!(done, "k1");
        // Bad input on the Agent's topic: garbage, and a Record for another endpoint. Neither is
        // answered; the Agent still answers the next request.
        ctl.send_raw(agent, b"\x0a\xff\xff garbage".to_vec()).await;
        let other = Msg {
            header: Some(Header { msg_id: "x".into(), msg_type: MsgType::GET }),
            body: Some(Body {
                msg_body: OneOfmsg_body::request(Request {
                    req_type: OneOfreq_type::get(Get { param_paths: vec!["Device.".into()], max_depth: 0 }),
                }),
            }),
        };
        ctl.send_raw(agent, record::seal(&other, CTL, "os::FEFEFE-SOMEONE-ELSE")).await;
        // Hostile reply addressing, from a client of its own: a request with an empty Response
        // Topic (answered on the Controller's configured topic instead: publishing to "" is a
        // protocol error the broker disconnects for), and one whose sender ID is 70,000 bytes
        // (dropped as bad_sender: its topic would not fit an MQTT packet).
        hostile_publish(broker.port, agent, &[(CTL.to_string(), "empty-rt", Some(String::new())), ("x".repeat(70_000), "long-from", None)])
            .await;
        let answered =
            ctl.wait_for(agent, |m| (m.header.as_ref().unwrap().msg_id == "empty-rt").then(|| m.body.clone().unwrap().msg_body)).await;
        assert!(matches!(answered, OneOfmsg_body::response(_)), "{answered:?}");
        let unsupported = ctl.request(agent, OneOfreq_type::notify(cpe_sim::usp::notify::periodic("Device", "s".into(), true))).await;
        assert!(matches!(unsupported, OneOfmsg_body::error(e) if e.err_code == 7001));
        // Reboot: answered, then the Agent reconnects and sends Boot! with Cause RemoteReboot.
        assert!(matches!(ctl.request(agent, op("Device.Reboot()")).await, OneOfmsg_body::response(_)));
        assert_eq!(ctl.wait_for(agent, boot_cause).await, "RemoteReboot");
        // The Controller deletes the factory-default Boot! subscription (addressed by its unique
        // key) and reboots the Agent: it comes back (answers a Get) and sends no Boot!. A Boot!
        // would precede the Get's answer on the same connection.
        let del = rusp_lib::usp::Delete {
            allow_partial: false,
            obj_paths: vec!["Device.LocalAgent.Subscription.[ID==\"cpe-sim-boot\"].".into()],
        };
        let OneOfmsg_body::response(Response { resp_type: OneOfresp_type::delete_resp(d) }) =
            ctl.request(agent, OneOfreq_type::delete(del)).await
        else {
            panic!()
        };
        assert_eq!(format!("{d:?}").matches("Device.LocalAgent.Subscription.1.").count(), 1, "{d:?}");
        ctl.backlog.clear();
        assert!(matches!(ctl.request(agent, op("Device.Reboot()")).await, OneOfmsg_body::response(_)));
        ctl.until_answered(agent, Duration::from_secs(2), Duration::from_secs(30)).await;
        assert!(!ctl.backlog.iter().any(|(from, m)| from == agent && boot_cause(m).is_some()), "no Boot! subscription, no Boot!");
        // FactoryReset() brings the factory defaults back: Boot! again.
        assert!(matches!(ctl.request(agent, op("Device.FactoryReset()")).await, OneOfmsg_body::response(_)));
        assert_eq!(ctl.wait_for(agent, boot_cause).await, "RemoteFactoryReset");
        // The other Agent booted too (answered by wait_for on the way, or now).
        let _ = ctl
            .request(
                "os::FEFEFE-FEFEFE000000",
                OneOfreq_type::get(Get { param_paths: vec!["Device.RootDataModelVersion".into()], max_depth: 0 }),
            )
            .await;
    });
    // SIGTERM ends the run with its report.
    // SAFETY: signals the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (code, out, err) = finish(child, Duration::from_secs(30));
    let r = report(&json);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(r["dropped"]["malformed_record"], 1, "{r}");
    assert_eq!(r["dropped"]["wrong_endpoint"], 1, "{r}");
    assert_eq!(r["dropped"]["bad_sender"], 1, "{r}");
    assert!(r["failures"]["connection_lost"].is_null(), "no Agent was knocked off the broker: {r}");
    assert_eq!(r["errors_answered"]["7001"], 1, "{r}");
    assert!(r["handled"]["Get"]["count"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(r["notify"]["OperationComplete"]["answered"], 1, "{r}");
    assert!(r["controller"].is_null(), "no embedded Controller with --controller-id: {r}");
    let _ = std::fs::remove_dir_all(&dir);
}

// A Controller no one here wrote: usp-js (npm) over MQTT 3.1.1 drives an Agent through the same
// broker; its answers and the Agent's notifications are checked here. Needs `npm ci` in
// tests/usp-js (scripts/test.sh runs it); fails, not skips, without it.
#[test]
fn usp_js_drives_an_agent_through_mosquitto() {
    let js = repo("tests/usp-js");
    assert!(
        js.join("node_modules/usp-js").is_dir(),
        "tests/usp-js/node_modules is missing: run `npm ci` in tests/usp-js (scripts/test.sh does)"
    );
    let broker = Mosquitto::start();
    let dir = scratch("usp-js");
    let json = dir.join("r.json");
    let agent = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &broker.url(),
        "--controller-id",
        "self::usp-js",
        "--cpes",
        "1",
        "--duration",
        "120s",
        "--timeout",
        "2s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let pid = agent.id();
    let node = Command::new("node")
        .arg("drive.js")
        .current_dir(&js)
        .env("USP_PORT", broker.port.to_string())
        .env("USP_AGENT", "os::FEFEFE-FEFEFE000000")
        .env("USP_CONTROLLER", "self::usp-js")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js 20) runs tests/usp-js/drive.js");
    let (code, out, err) = finish(node, Duration::from_secs(90));
    // SAFETY: signals the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (agent_code, agent_out, agent_err) = finish(agent, Duration::from_secs(30));
    assert_eq!(code, 0, "usp-js: {out}\n{err}\nagent: {agent_out}\n{agent_err}");
    let r: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["serial"], "FEFEFE000000", "{r}");
    assert_eq!(r["deviceInfo"]["ModelName"], "SimGW-181", "{r}");
    assert_eq!(r["ssid"], "from-usp-js", "{r}");
    assert_eq!(r["added"], "Device.NAT.PortMapping.1.", "{r}");
    // usp-js's own subscription (its subscribe recipe) brought the Add's ObjectCreation back.
    assert_eq!(r["objectCreation"]["objPath"], "Device.NAT.PortMapping.1.", "{r}");
    assert_eq!(r["objectCreation"]["uniqueKeys"]["Alias"], "js", "{r}");
    assert_eq!(r["addedPort"], "8081", "{r}");
    assert_eq!(r["instances"][0]["currInsts"][0]["uniqueKeys"]["Alias"], "js", "{r}");
    assert_eq!(r["deleted"][0], "Device.NAT.PortMapping.1.", "{r}");
    assert_eq!(r["operationComplete"]["message"]["Status"], "Complete", "{r}");
    assert!(r["proto"].as_array().unwrap().iter().any(|v| v == "1.3"), "{r}");
    assert_eq!(r["badPath"]["errCode"], 7026, "{r}");
    assert_eq!(r["readOnly"]["errCode"], 7013, "{r}");
    assert_eq!(r["boot"]["message"]["params"]["Cause"], "LocalReboot", "{r}");
    // usp-js answered the Agent's Notifies: the Agent measured those round trips.
    assert_eq!(agent_code, 0, "{agent_out}\n{agent_err}");
    let rep = report(&json);
    assert_eq!(rep["notify"]["Boot!"]["answered"], 1, "{rep}");
    assert_eq!(rep["notify"]["ObjectCreation"]["answered"], 1, "{rep}");
    assert_eq!(rep["notify"]["OperationComplete"]["answered"], 1, "{rep}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A raw HTTP/1.1 request to the device state API; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// One Agent for 120 s on `url`, reporting to the test's Controller, with the device state API on
/// `api` and its state kept in `state` (so a second run resumes it).
fn one_agent_with_state(url: &str, api: &str, state: &std::path::Path) -> Child {
    let args = ["--protocol", "usp", "--usp-url", url, "--controller-id", CTL, "--cpes", "1", "--duration", "120s", "--timeout", "2s"];
    spawn(&[&args[..], &["--api-bind-addr", api, "--state-dir", state.to_str().unwrap()]].concat())
}

// A Controller subscribes to a parameter (Add on Device.LocalAgent.Subscription.); a local change
// through the device state API then arrives as a ValueChange for that subscription.
#[test]
fn a_subscription_gets_value_change_after_a_local_change() {
    let broker = Mosquitto::start();
    let dir = scratch("subscription");
    let state = dir.join("state");
    let api_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("127.0.0.1:{api_port}");
    let child = one_agent_with_state(&broker.url(), &api, &state);
    let pid = child.id();
    let agent = "os::FEFEFE-FEFEFE000000";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut ctl = TestController::connect(broker.port).await;
        ctl.wait_for(agent, boot_cause).await;
        let setting = |p: &str, v: &str| rusp_lib::usp::mod_Add::CreateParamSetting { param: p.into(), value: v.into(), required: true };
        let add = rusp_lib::usp::Add {
            allow_partial: false,
            create_objs: vec![rusp_lib::usp::mod_Add::CreateObject {
                obj_path: "Device.LocalAgent.Subscription.".into(),
                param_settings: vec![
                    setting("Enable", "true"),
                    setting("ID", "vc-1"),
                    setting("NotifType", "ValueChange"),
                    setting("ReferenceList", "Device.WiFi.SSID.*.SSID"),
                ],
            }],
        };
        assert!(matches!(ctl.request(agent, OneOfreq_type::add(add)).await, OneOfmsg_body::response(_)));
        // A parameter no subscription names: no ValueChange for it.
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(api_port, "PUT", "/cpes/cpe-0/parameters", r#"{"Device.DeviceInfo.ProvisioningCode":"x"}"#)
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(api_port, "PUT", "/cpes/cpe-0/parameters", r#"{"Device.WiFi.SSID.2.SSID":"changed-locally"}"#)
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        // A USP Agent's answer says what happens there, not CWMP's `4 VALUE CHANGE` session.
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["notification"], "value change: a ValueChange Notify goes to each enabled subscription naming the parameter",
            "{body}"
        );
        let (sub, path, value) = ctl
            .wait_for(agent, |m| match m.body.as_ref().map(|b| &b.msg_body) {
                Some(OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) })) => match &n.notification {
                    OneOfnotification::value_change(v) => Some((n.subscription_id.clone(), v.param_path.clone(), v.param_value.clone())),
                    _ => None,
                },
                _ => None,
            })
            .await;
        assert_eq!((sub.as_str(), path.as_str(), value.as_str()), ("vc-1", "Device.WiFi.SSID.2.SSID", "changed-locally"));
        // The subscription is data-model state: the API shows it.
        let (status, body) = tokio::task::spawn_blocking(move || http(api_port, "GET", "/cpes/cpe-0", "")).await.unwrap();
        assert_eq!(status, 200);
        // (Instances 1 and 2 are the factory-default Boot! and Periodic! subscriptions.)
        assert!(body.contains("Device.LocalAgent.Subscription.3.ID"), "{body}");
    });
    // SAFETY: signals the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (code, out, err) = finish(child, Duration::from_secs(30));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("ValueChange"), "{out}");
    // --state-dir: the next run's Agent still has the subscription (it lives in the CPE's delta).
    let api_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("127.0.0.1:{api_port}");
    let child = one_agent_with_state(&broker.url(), &api, &state);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok() {
            let (status, body) = http(api_port, "GET", "/cpes/cpe-0", "");
            if status == 200 {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "the second run's API did not answer");
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: signals the child we started, by its pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = finish(child, Duration::from_secs(30));
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(v.to_string().contains("vc-1"), "the subscription survived the restart: {v}");
    assert!(v.to_string().contains("changed-locally"), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

// Without --usp-url the embedded Controller serves WebSocket (v1.usp) on loopback: no broker.
#[test]
fn agents_boot_over_websocket_without_a_broker() {
    let dir = scratch("ws");
    let json = dir.join("r.json");
    let child = spawn(&["--protocol", "usp", "--cpes", "200", "--timeout", "20s", "--report-json", json.to_str().unwrap()]);
    let (code, out, err) = finish(child, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("embedded USP Controller at ws://127.0.0.1:"), "{err}");
    let r = report(&json);
    assert_eq!(r["booted"], 200, "{r}");
    assert_eq!(r["connections"]["held"], 200, "{r}");
    assert_eq!(r["controller"]["booted_agents"], 200, "{r}");
    // The run ends once every Boot! is answered; the Controller's Gets after them are answered as
    // they come (those still in flight at the end are not counted).
    let gets = r["handled"]["Get"]["count"].as_u64().unwrap_or(0);
    assert!((1..=200).contains(&gets), "{r}");
    assert!(r["controller"]["round_trips"]["Get"]["count"].as_u64().unwrap_or(0) <= gets, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

// A ws:// server that is not a USP Controller (no v1.usp): a counted protocol failure, exit 1.
#[test]
fn a_websocket_server_without_v1_usp_is_a_protocol_failure() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let server = std::thread::spawn(move || {
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    let dir = scratch("ws-refused");
    let json = dir.join("r.json");
    let url = format!("ws://127.0.0.1:{port}/usp");
    let child = spawn(&[
        "--protocol",
        "usp",
        "--usp-url",
        &url,
        "--controller-id",
        "self::x",
        "--cpes",
        "2",
        "--duration",
        "2s",
        "--report-json",
        json.to_str().unwrap(),
    ]);
    let (code, out, err) = finish(child, Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    assert_eq!(code, 1, "{out}\n{err}");
    let r = report(&json);
    assert!(r["failures"]["protocol"].as_u64().unwrap_or(0) >= 2, "{r}");
    assert_eq!(r["booted"], 0, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

// The USP flags are checked before anything starts: exit 2, naming the flag.
#[test]
fn usp_flags_are_checked_before_anything_starts() {
    let cases: &[(&[&str], &str)] = &[
        (&["--usp-url", "mqtt://127.0.0.1:1883"], "--usp-url"),
        (&["--controller-id", "self::c"], "--controller-id"),
        (&["--protocol", "usp", "--usp-url", "http://127.0.0.1/"], "--usp-url"),
        (&["--protocol", "usp", "--usp-url", "ws://127.0.0.1:9/usp"], "--controller-id"),
        (&["--protocol", "usp", "--usp-url", "wss://127.0.0.1:9/usp"], "--controller-id"),
        // WebSocket has no MQTT version; 3.1.1 is for a broker.
        (
            &["--protocol", "usp", "--usp-url", "ws://127.0.0.1:9/usp", "--controller-id", "self::c", "--mqtt-version", "3.1.1"],
            "--mqtt-version",
        ),
        (&["--protocol", "usp", "--mqtt-version", "3.1.1"], "--mqtt-version"),
        (&["--mqtt-version", "3.1.1"], "--mqtt-version"),
        (&["--protocol", "usp", "--usp-url", "mqtt://127.0.0.1:1883", "--mqtt-version", "4"], "--mqtt-version"),
        (&["--protocol", "usp", "--controller-id", "no colon"], "--controller-id"),
        (&["--protocol", "usp", "--usp-endpoint-id", "os::{nope}"], "--usp-endpoint-id"),
        (&["--protocol", "usp", "--usp-url", "mqtt://127.0.0.1:1883", "--mqtt-keep-alive", "1s"], "--mqtt-keep-alive"),
        (&["--protocol", "usp", "--mqtt-password", "x"], "--mqtt-password"),
        (&["--protocol", "usp", "--acs-url", "http://127.0.0.1/"], "--acs-url"),
        // A flag of the other protocol is refused, not silently ignored.
        (&["--mqtt-username", "u"], "--mqtt-username"),
        (&["--usp-endpoint-id", "os::{serial}"], "--usp-endpoint-id"),
        // A USP run's thresholds name the USP report's figures, not CWMP's.
        (&["--protocol", "usp", "--threshold", "Inform.p99<1ms"], "--threshold"),
        (&["--protocol", "usp", "--threshold", "Boot!.p99<1"], "--threshold"),
        (&["--protocol", "usp", "--cr-bind-addr", "127.0.0.1:0"], "--cr-bind-addr"),
        // Every Agent's ID must be an endpoint ID (it names topics).
        (&["--protocol", "usp", "--usp-endpoint-id", "os::#{index}"], "--usp-endpoint-id"),
        (&["--protocol", "usp", "--usp-endpoint-id", "agent {index}"], "--usp-endpoint-id"),
        // Credentials in a ws:// URL are refused, and never echoed.
        (&["--protocol", "usp", "--usp-url", "ws://bob:S3cr3tPW@127.0.0.1:9/usp", "--controller-id", "self::c"], "--usp-url"),
    ];
    for (args, flag) in cases {
        let (code, out, err) = finish(spawn(args), Duration::from_secs(30));
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(flag), "{args:?} should name {flag}: {err}");
        assert!(!err.contains("S3cr3tPW") && !out.contains("S3cr3tPW"), "a password was shown: {err}");
    }
}

/// A boot rate too slow to matter is the engine's boot rule for Agents too: no panic (it
/// computed cpes ÷ rate as a Duration), the one Agent boots at once.
#[test]
fn a_tiny_boot_rate_does_not_panic_an_agent_run() {
    let (code, out, err) = finish(spawn(&["--protocol", "usp", "--cpes", "1", "--boot-rate", "1e-300"]), Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn a_threshold_on_a_time_without_samples_breaches_and_a_bogus_cause_is_refused() {
    // No Agent ever connects (nothing listens on port 1): no Boot! round trip was timed, so a
    // latency gate must not pass on nothing; a count of nothing is a real 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}/x");
    let base = ["--protocol", "usp", "--usp-url", &url, "--controller-id", "self::x", "--duration", "2s", "--timeout", "1s"];
    let mut args = base.to_vec();
    args.extend(["--threshold", "Boot!.p99<1s", "--threshold", "Boot!.unanswered<1"]);
    let (code, out, err) = finish(spawn(&args), Duration::from_secs(60));
    assert_eq!(code, 99, "{err}");
    assert!(out.contains("  BREACHED Boot!.p99<1s (actual no data)"), "{out}");
    assert!(out.contains("  passed   Boot!.unanswered<1 (actual 0)"), "{out}");
    assert!(err.contains("threshold breached: Boot!.p99<1s (actual no data)"), "{err}");
    // Misspelt causes are usage errors naming the flag and the causes the report counts.
    for (rule, names) in [("failures.bogus<1", "connect_refused, timeout"), ("dropped.x<1", "malformed_record, wrong_endpoint")] {
        let mut args = base.to_vec();
        args.extend(["--threshold", rule]);
        let (code, _, err) = finish(spawn(&args), Duration::from_secs(30));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("error: --threshold {rule}: unknown cause in")) && err.contains(names), "{err}");
    }
}

// --threshold reads a USP run's report: rules that hold exit 0, a breach exits 99 (CWMP's code),
// every verdict in the text and JSON reports.
#[test]
fn usp_thresholds_pass_or_fail_the_run() {
    let dir = scratch("thresholds");
    let json = dir.join("r.json");
    let j = json.to_str().unwrap();
    let rules = ["booted>=3", "Boot!.unanswered<1", "Boot!.p99<20s", "connections.held>=3"];
    let mut args = vec!["--protocol", "usp", "--cpes", "3", "--timeout", "20s", "--report-json", j];
    for r in &rules {
        args.extend(["--threshold", r]);
    }
    let (code, out, err) = finish(spawn(&args), Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("thresholds: 4 of 4 passed"), "{out}");
    let r = report(&json);
    assert_eq!(r["thresholds"].as_array().map(Vec::len), Some(4), "{r}");
    assert!(r["thresholds"].as_array().unwrap().iter().all(|v| v["passed"] == true), "{r}");
    assert_eq!(r["complete"], true, "{r}");
    let (code, out, err) =
        finish(spawn(&["--protocol", "usp", "--cpes", "3", "--timeout", "20s", "--threshold", "booted>=4"]), Duration::from_secs(120));
    assert_eq!(code, 99, "{out}\n{err}");
    assert!(out.contains("BREACHED booted>=4 (actual 3)"), "{out}");
    assert!(err.contains("threshold breached: booted>=4 (actual 3)"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// Slices side by side on one broker, each with the embedded Controller: each slice's Controller
// has an endpoint ID (and MQTT client ID) of its own, so neither is closed for the other and
// every Boot! is answered the first time, then the reports merge.
#[test]
fn slices_on_one_broker_each_have_their_own_embedded_controller() {
    let broker = Mosquitto::start();
    let dir = scratch("slices");
    let url = broker.url();
    let jsons: Vec<_> = (0..2).map(|k| dir.join(format!("s{k}.json"))).collect();
    let children: Vec<_> = (0..2)
        .map(|k| {
            let slice = format!("{k}/2");
            spawn(&[
                "--protocol",
                "usp",
                "--usp-url",
                &url,
                "--cpes",
                "100",
                "--slice",
                &slice,
                // Both slices' Agents boot over the same 2 s, while both Controllers are up.
                "--boot-spread",
                "2s",
                "--timeout",
                "20s",
                "--report-json",
                jsons[k].to_str().unwrap(),
            ])
        })
        .collect();
    for child in children {
        let (code, out, err) = finish(child, Duration::from_secs(90));
        assert_eq!(code, 0, "{out}\n{err}");
    }
    for (k, path) in jsons.iter().enumerate() {
        let r = report(path);
        assert_eq!(r["booted"], 50, "slice {k}: {r}");
        assert_eq!(r["notify"]["Boot!"]["retransmitted"], 0, "slice {k}: no Boot! waited for a closed Controller: {r}");
        assert_eq!(r["controller"]["booted_agents"], 50, "slice {k}: {r}");
    }
    let merged = dir.join("fleet.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cpe-sim"))
        .args(["report", "merge", jsons[0].to_str().unwrap(), jsons[1].to_str().unwrap(), "--report-json", merged.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report(&merged)["booted"], 100);
    let _ = std::fs::remove_dir_all(&dir);
}
