//! Connection Requests: the listener's HTTP answers (Digest computed here by hand from RFC 7616,
//! Basic, wrong passwords, replays, unknown CPEs, floods) and the session they cause in one CPE,
//! over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpe_sim::connreq::{CrConfig, CrServer};
use cpe_sim::model::{ConnRequestAuth, Delta, DeviceId};
use cpe_sim::owners::{CpeMsg, Owners};
use md5::{Digest as _, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::support::raw::{simple_acs, RawAcs, RawReply};
use crate::support::{profile, texts, OneCpe, TR181};

/// An HTTP/1.1 request on a fresh connection: (status, WWW-Authenticate).
pub async fn request(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> (u16, Option<String>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let authz = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authz}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("the listener answers").unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let challenge = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate")).map(|(_, v)| v.trim().to_string()));
    (status, challenge)
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `key="value"` from a challenge.
fn challenge_param(challenge: &str, key: &str) -> String {
    let at = challenge.find(&format!(" {key}=\"")).unwrap_or_else(|| panic!("no {key} in {challenge}")) + key.len() + 3;
    challenge[at..].split('"').next().unwrap().to_string()
}

/// The Digest answer (MD5, qop=auth) to `challenge` for a GET of `uri`.
pub fn digest(challenge: &str, user: &str, pass: &str, uri: &str, nc: u32) -> String {
    let (realm, nonce) = (challenge_param(challenge, "realm"), challenge_param(challenge, "nonce"));
    let ha1 = md5_hex(&format!("{user}:{realm}:{pass}"));
    let ha2 = md5_hex(&format!("GET:{uri}"));
    let (nc, cnonce) = (format!("{nc:08x}"), "0a4f113b");
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", algorithm=MD5"
    )
}

/// A challenge, then the right answer: the status of the answered request.
pub async fn connection_request(addr: SocketAddr, path: &str, user: &str, pass: &str) -> u16 {
    let (status, challenge) = request(addr, "GET", path, None).await;
    assert_eq!(status, 401);
    request(addr, "GET", path, Some(&digest(&challenge.unwrap(), user, pass, path, 1))).await.0
}

/// A listener for CPEs 0..10 whose owner answers `user<i>`/`pass<i>` and records wake-ups.
async fn listener(auth: ConnRequestAuth, rate: u32) -> (CrServer, Arc<Mutex<Vec<u32>>>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let woken: Arc<Mutex<Vec<u32>>> = Arc::default();
    let log = woken.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                CpeMsg::Lookup { index, reply } => {
                    let _ = reply.send(Some((format!("user{index}"), format!("pass{index}"))));
                }
                CpeMsg::Wake { index } => log.lock().unwrap().push(index),
                other => panic!("the listener only looks up and wakes: {other:?}"),
            }
        }
    });
    let cfg = CrConfig::new("127.0.0.1:0".parse().unwrap(), auth, false, rate);
    (CrServer::start(cfg, Owners { first: 0, count: 10, senders: vec![tx] }).await.unwrap(), woken)
}

#[tokio::test]
async fn digest_is_checked_once_per_nonce_count_and_nothing_else_wakes() {
    let (server, woken) = listener(ConnRequestAuth::Digest, 1000).await;
    let addr = server.addr;
    let (status, challenge) = request(addr, "GET", "/cr/cpe-3", None).await;
    assert_eq!(status, 401);
    let challenge = challenge.unwrap();
    assert!(challenge.starts_with("Digest ") && challenge.contains("qop=\"auth\""), "{challenge}");

    let answer = digest(&challenge, "user3", "pass3", "/cr/cpe-3", 1);
    assert_eq!(request(addr, "GET", "/cr/cpe-3", Some(&answer)).await.0, 200);
    assert_eq!(*woken.lock().unwrap(), [3]);
    assert_eq!(request(addr, "GET", "/cr/cpe-3", Some(&answer)).await.0, 401, "the same answer again is a replay");
    let next = digest(&challenge, "user3", "pass3", "/cr/cpe-3", 2);
    assert_eq!(request(addr, "GET", "/cr/cpe-3", Some(&next)).await.0, 200, "the next nonce count is accepted");

    // Wrong password, another CPE's credentials, an answer for another URI: 401, no wake.
    for (user, pass, uri) in [("user3", "wrong", "/cr/cpe-3"), ("user4", "pass4", "/cr/cpe-3"), ("user3", "pass3", "/cr/cpe-4")] {
        let (_, fresh) = request(addr, "GET", "/cr/cpe-3", None).await;
        let bad = digest(&fresh.unwrap(), user, pass, uri, 1);
        assert_eq!(request(addr, "GET", "/cr/cpe-3", Some(&bad)).await.0, 401, "{user}/{pass} for {uri}");
    }
    assert_eq!(request(addr, "GET", "/cr/cpe-3", Some("Basic dXNlcjM6cGFzczM=")).await.0, 401, "Basic where Digest is due");
    // A nonce this listener never issued.
    let forged = digest("Digest realm=\"cpe-sim connection request\", nonce=\"00ff\"", "user3", "pass3", "/cr/cpe-3", 1);
    assert_eq!(request(addr, "GET", "/cr/cpe-3", Some(&forged)).await.0, 401);

    for path in ["/cr/cpe-10", "/cr/cpe-x", "/cr", "/cr/cpe-+3", "/cr/cpe-3/", "/cr/cpe-"] {
        assert_eq!(request(addr, "GET", path, None).await.0, 404, "{path}");
    }
    assert_eq!(request(addr, "POST", "/cr/cpe-3", None).await.0, 405);

    assert_eq!(*woken.lock().unwrap(), [3, 3], "only the two accepted requests woke the CPE");
    let stats = server.stats();
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 2);
    assert_eq!(stats.unauthorized.load(Ordering::Relaxed), 10);
    assert_eq!(stats.not_found.load(Ordering::Relaxed), 6);
    assert_eq!(stats.bad_requests.load(Ordering::Relaxed), 1);
    server.stop().await;
}

#[tokio::test]
async fn basic_and_open_listeners_and_the_rate_limit() {
    let (server, woken) = listener(ConnRequestAuth::Basic, 1000).await;
    let (status, challenge) = request(server.addr, "GET", "/cr/cpe-1", None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Basic realm=\"cpe-sim connection request\"")));
    // base64("user1:pass1"), base64("user1:nope")
    assert_eq!(request(server.addr, "GET", "/cr/cpe-1", Some("Basic dXNlcjE6cGFzczE=")).await.0, 200);
    assert_eq!(request(server.addr, "GET", "/cr/cpe-1", Some("Basic dXNlcjE6bm9wZQ==")).await.0, 401);
    assert_eq!(*woken.lock().unwrap(), [1]);
    server.stop().await;

    // No authentication, 5 requests a second: a burst of 20 gets about 5 through, the rest 503.
    let (server, woken) = listener(ConnRequestAuth::None, 5).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(request(server.addr, "GET", "/cr/cpe-2", None).await.0);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=10).contains(&ok), "{statuses:?}");
    assert_eq!(ok + statuses.iter().filter(|s| **s == 503).count(), 20, "{statuses:?}");
    assert_eq!(woken.lock().unwrap().len(), ok);
    assert_eq!(server.stats().rate_limited.load(Ordering::Relaxed) as usize, 20 - ok);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_request_wakes_the_cpe_and_a_burst_during_a_session_coalesces() {
    // An ACS that answers every Inform after 400 ms, and records each Inform's events.
    let informs: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let log = informs.clone();
    let acs = RawAcs::start(move |req, _| {
        let body = req.body_str();
        if body.contains("<cwmp:Inform>") {
            log.lock().unwrap().push(texts(&body, "EventCode"));
            return RawReply::Delayed(Duration::from_millis(400), simple_acs(req));
        }
        RawReply::Send(simple_acs(req))
    })
    .await;
    let model = profile(TR181);
    let (user, pass) = model.connection_request_credentials(DeviceId(0), &Delta::default());
    assert_eq!((user.len(), pass.len()), (12, 12), "the example profile derives 12-character secrets");

    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = CrConfig::new("127.0.0.1:0".parse().unwrap(), ConnRequestAuth::Digest, true, 100);
    let server = CrServer::start(cfg, Owners { first: 0, count: 1, senders: vec![tx] }).await.unwrap();
    let addr = server.addr;

    let transport = crate::support::test_transport();
    let mut one = OneCpe::new(model, acs.url("/"), transport).daemon(Duration::from_secs(20));
    one.owner = Some(rx);
    let stop = one.stop.clone();
    // The engine runs on a blocking thread; the test drives it from the other arm of the join.
    let ((report, _), ()) = tokio::join!(one.run(), drive(addr, &user, &pass, &informs, stop));
    server.stop().await;

    let informs = informs.lock().unwrap().clone();
    assert_eq!(informs.len(), 3, "{informs:?}");
    assert_eq!(informs[0], ["0 BOOTSTRAP", "1 BOOT"]);
    assert_eq!(informs[1], ["6 CONNECTION REQUEST"]);
    assert_eq!(informs[2], ["6 CONNECTION REQUEST"]);
    assert_eq!((report.completed, report.failed), (3, 0));
}

/// Connection Requests at chosen moments of the CPE's sessions.
async fn drive(addr: SocketAddr, user: &str, pass: &str, informs: &Arc<Mutex<Vec<Vec<String>>>>, stop: Arc<AtomicBool>) {
    let count = |n: usize| {
        let informs = informs.clone();
        async move {
            for _ in 0..200 {
                if informs.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("the ACS never saw Inform {n}: {:?}", informs.lock().unwrap());
        }
    };

    // During the bootstrap session: accepted (the CPE answers its credentials even while busy),
    // and the CPE calls back once that session is over.
    count(1).await;
    assert_eq!(connection_request(addr, "/cr", user, pass).await, 200);
    count(2).await;
    // Two more during that session: one more session, not two.
    assert_eq!(connection_request(addr, "/cr", user, pass).await, 200);
    assert_eq!(connection_request(addr, "/cr", user, pass).await, 200);
    count(3).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A wrong password wakes nothing.
    assert_eq!(connection_request(addr, "/cr", user, "not-the-password").await, 401);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn hostile_http_on_the_listener_gets_errors_not_hangs() {
    let (server, woken) = listener(ConnRequestAuth::Digest, 1000).await;
    let addr = server.addr;
    // Odd encodings and traversal: not a CPE.
    for path in ["/cr/cpe-%33", "/cr/%2e%2e/cr/cpe-3", "/cr/cpe-3?x=1/../", "/cr/cpe-03x"] {
        assert!(matches!(request(addr, "GET", path, None).await.0, 404 | 401), "{path}");
    }
    // A request head over the 16 KiB buffer: an HTTP error (431), not a hang.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let huge = format!("GET /cr/cpe-3 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let _ = s.write_all(huge.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("closed, not hung");
    let head = String::from_utf8_lossy(&buf);
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 431"), "{head}");
    // Not HTTP at all.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"\x16\x03\x01 hello this is not http\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("closed, not hung");
    assert!(buf.is_empty() || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"));
    // Slowloris: a request head that never ends is cut off (header timeout 5 s).
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /cr/cpe-3 HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut buf)).await.expect("cut off within the header timeout");
    assert!(woken.lock().unwrap().is_empty(), "nothing woke a CPE");
    // And the listener still serves.
    assert_eq!(request(addr, "GET", "/cr/cpe-3", None).await.0, 401);
    server.stop().await;
}

/// [`request`] from another loopback address (another "source").
async fn request_from(from: [u8; 4], addr: SocketAddr, path: &str, authorization: Option<&str>) -> u16 {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let authz = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{authz}Connection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.expect("the listener answers").unwrap();
    String::from_utf8_lossy(&buf).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A flood of failing requests from one address takes at most its share of the rate: the ACS's
/// real requests from another address still get through.
#[tokio::test]
async fn a_flood_from_one_source_does_not_starve_the_acs() {
    let (server, woken) = listener(ConnRequestAuth::Digest, 40).await;
    let addr = server.addr;
    // 60 wrong answers at once from 127.0.0.2. Its share is 40/4 = 10 a second with room for 20
    // (wrong answers may dip to −share): whatever the machine's speed, no more than that share
    // of the time the flood took gets through.
    let started = std::time::Instant::now();
    let flood =
        futures_util::future::join_all((0..60).map(|_| request_from([127, 0, 0, 2], addr, "/cr/cpe-5", Some("Basic Zm9vOmJhcg==")))).await;
    let took = started.elapsed().as_secs_f64();
    let through = flood.iter().filter(|s| **s != 503).count();
    let share = 20 + (10.0 * took).ceil() as usize + 1;
    assert!(through <= share, "the flood is cut to its share ({through} through in {took:.2}s, at most {share}): {flood:?}");
    assert!(flood.iter().all(|s| matches!(s, 401 | 503)), "{flood:?}");
    // The ACS (127.0.0.1): challenge, then the right answer.
    assert_eq!(connection_request(addr, "/cr/cpe-5", "user5", "pass5").await, 200);
    assert_eq!(*woken.lock().unwrap(), [5]);
    server.stop().await;
}

/// An owner that does not answer in time is busy, not absent: 503 (retry), never 404.
#[tokio::test]
async fn a_busy_owner_answers_503_not_404() {
    // An owner that never reads its channel.
    let (tx, _rx) = mpsc::unbounded_channel::<CpeMsg>();
    let cfg = CrConfig::new("127.0.0.1:0".parse().unwrap(), ConnRequestAuth::Digest, false, 100);
    let server = CrServer::start(cfg, Owners { first: 0, count: 10, senders: vec![tx] }).await.unwrap();
    assert_eq!(request(server.addr, "GET", "/cr/cpe-1", None).await.0, 503);
    assert_eq!(server.stats().busy.load(Ordering::Relaxed), 1);
    assert_eq!(server.stats().not_found.load(Ordering::Relaxed), 0);
    server.stop().await;
}

/// Connections beyond a source's share are closed at accept: one source cannot hold every slot,
/// and another source is still served.
#[tokio::test]
async fn one_source_cannot_hold_every_connection() {
    let (tx, mut rx) = mpsc::unbounded_channel::<CpeMsg>();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if let CpeMsg::Lookup { index, reply } = msg {
                let _ = reply.send(Some((format!("user{index}"), format!("pass{index}"))));
            }
        }
    });
    let cfg = CrConfig { max_connections: 8, ..CrConfig::new("127.0.0.1:0".parse().unwrap(), ConnRequestAuth::Digest, false, 100) };
    let server = CrServer::start(cfg, Owners { first: 0, count: 10, senders: vec![tx] }).await.unwrap();
    // A slowloris from 127.0.0.2 opens idle connections: it gets its share (2 of 8), no more.
    let mut idle = Vec::new();
    for _ in 0..6 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        idle.push(sock.connect(server.addr).await.unwrap());
    }
    // Those beyond its share were closed at once, without an answer.
    let mut closed = 0;
    for s in &mut idle {
        let _ = s.write_all(b"GET /cr/cpe-1 HTTP/1.1\r\nHost: x\r\n").await;
        let mut buf = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 4, "2 of the 6 held, 4 closed at accept");
    assert_eq!(server.stats().refused_connections.load(Ordering::Relaxed), 4);
    // The ACS (127.0.0.1) is still served.
    assert_eq!(request(server.addr, "GET", "/cr/cpe-1", None).await.0, 401);
    assert_eq!(connection_request(server.addr, "/cr/cpe-1", "user1", "pass1").await, 200);
    drop(idle);
    server.stop().await;
}

/// An ACS's own Connection Requests (a challenge, then the right answer) are never held back by
/// the per-source share, one after another or several at once.
#[tokio::test]
async fn an_acs_behind_one_address_is_not_throttled_by_its_share() {
    let (server, woken) = listener(ConnRequestAuth::Digest, 8).await;
    for i in 0..8u32 {
        assert_eq!(
            connection_request(server.addr, &format!("/cr/cpe-{}", i % 10), &format!("user{}", i % 10), &format!("pass{}", i % 10)).await,
            200,
            "CR {i}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(woken.lock().unwrap().len(), 8);
    // Three at once: three challenges, then three answers.
    let (mut challenges, mut answers) = (Vec::new(), Vec::new());
    for i in 0..3u32 {
        let path = format!("/cr/cpe-{i}");
        challenges.push(request(server.addr, "GET", &path, None).await);
    }
    for (i, (status, challenge)) in challenges.into_iter().enumerate() {
        assert_eq!(status, 401, "challenge {i}");
        let path = format!("/cr/cpe-{i}");
        answers.push(
            request(server.addr, "GET", &path, Some(&digest(&challenge.unwrap(), &format!("user{i}"), &format!("pass{i}"), &path, 1)))
                .await
                .0,
        );
    }
    assert_eq!(answers, [200, 200, 200]);
    server.stop().await;
}
