//! UDP Connection Requests (TR-069 Annex G, issue 11 item 3): datagrams built here from the
//! documented algorithm (`sig = hex(HMAC-SHA1(ConnectionRequestPassword, ts‖id‖un‖cn))`) over real
//! UDP sockets on 127.0.0.1, the session they cause, every drop cause, and a flood of garbage.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpe_sim::connreq::udp::{UdpCrServer, UdpCrStats};
use cpe_sim::model::{Delta, DeviceId};
use cpe_sim::owners::{CpeMsg, Owners};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::support::raw::{http, simple_acs, RawAcs, RawReply};
use crate::support::{acs_envelope, profile, texts, OneCpe, TR181};

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The datagram an ACS sends (GenieACS's `udpConnectionRequest`, TR-069 Annex G.2.2.3).
pub fn udp_request(to: SocketAddr, ts: u64, id: u32, user: &str, pass: &str) -> Vec<u8> {
    let cn = format!("{:016x}", u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut mac = Hmac::<Sha1>::new_from_slice(pass.as_bytes()).unwrap();
    mac.update(format!("{ts}{id}{user}{cn}").as_bytes());
    let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("GET http://{to}?ts={ts}&id={id}&un={user}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: {to}\r\n\r\n").into_bytes()
}

async fn send(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for d in datagrams {
        sock.send_to(d, to).await.unwrap();
    }
}

/// Polls `cond` for up to 20 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..800 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

fn n(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A listener whose single owner has CPE 3 = `user3`/`pass3` (and nobody else), recording wakes.
async fn listener(rate: u32) -> (UdpCrServer, Arc<Mutex<Vec<u32>>>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let woken: Arc<Mutex<Vec<u32>>> = Arc::default();
    let log = woken.clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                CpeMsg::LookupUser { username, reply } => {
                    let _ = reply.send((&*username == "user3").then(|| (3, "pass3".to_string())));
                }
                CpeMsg::Wake { index } => log.lock().unwrap().push(index),
                other => panic!("the UDP listener only looks users up and wakes: {other:?}"),
            }
        }
    });
    let server = UdpCrServer::start("127.0.0.1:0".parse().unwrap(), Owners { first: 0, count: 10, senders: vec![tx] }, rate).await.unwrap();
    (server, woken)
}

/// Reads one counter.
type Counter = fn(&UdpCrStats) -> u64;

fn total(s: &UdpCrStats) -> u64 {
    n(&s.accepted) + s.dropped()
}

#[tokio::test]
async fn each_drop_cause_is_counted_and_only_a_valid_request_wakes() {
    let (server, woken) = listener(1000).await;
    let to = server.addr;
    let t = now_s();
    let valid = udp_request(to, t, 77, "user3", "pass3");
    // One at a time, so each lands in its own counter.
    let cases: Vec<(&str, Vec<u8>, Counter)> = vec![
        ("malformed", b"GET / HTTP/1.1\r\n\r\n".to_vec(), |s| n(&s.malformed)),
        ("stale", udp_request(to, t - 3600, 1, "user3", "pass3"), |s| n(&s.stale)),
        ("future", udp_request(to, t + 3600, 2, "user3", "pass3"), |s| n(&s.stale)),
        ("bad signature", udp_request(to, t, 3, "user3", "wrong"), |s| n(&s.bad_signature)),
        ("unknown user", udp_request(to, t, 4, "nobody", "pass3"), |s| n(&s.unknown_user)),
        ("valid", valid.clone(), |s| n(&s.accepted)),
        ("replayed", valid.clone(), |s| n(&s.replayed)),
        ("older than the last accepted", udp_request(to, t - 5, 5, "user3", "pass3"), |s| n(&s.stale)),
    ];
    for (i, (what, datagram, counter)) in cases.into_iter().enumerate() {
        let before = counter(server.stats());
        send(to, &[datagram]).await;
        until(what, || total(server.stats()) == i as u64 + 1).await;
        assert_eq!(counter(server.stats()), before + 1, "{what}: {}", server.stats());
    }
    assert_eq!(*woken.lock().unwrap(), [3], "only the valid datagram woke CPE 3");
    // A new id in the same second is a new request.
    send(to, &[udp_request(to, t, 78, "user3", "pass3")]).await;
    until("a second request", || woken.lock().unwrap().len() == 2).await;
    assert_eq!(n(&server.stats().accepted), 2);
    let line = server.stats().to_string();
    assert!(line.contains("2 accepted") && line.contains("3 stale timestamp") && line.contains("1 replayed id"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_garbage_is_dropped_and_a_valid_request_still_wakes() {
    let (server, woken) = listener(100).await;
    let to = server.addr;
    let t = now_s();
    let mut flood: Vec<Vec<u8>> = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..3000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 1400) as usize;
        let bytes: Vec<u8> = (0..len).map(|j| (x.rotate_left(j as u32 % 64) >> 3) as u8).collect();
        flood.push(match i % 5 {
            0 => bytes,
            1 => vec![b'G'; 4000],
            2 => udp_request(to, t, i, "user3", "not-the-password"),
            3 => udp_request(to, t, i, &format!("stranger{i}"), "pw"),
            _ => String::from_utf8_lossy(&udp_request(to, t, i, "user3", "pass3")).replace("sig=", "sig=zz").into_bytes(),
        });
    }
    send(to, &flood).await;
    // Loopback may drop datagrams when the socket buffer is full: every one read is counted.
    // Read = the counters stop moving (polled, bounded).
    let mut last = u64::MAX;
    for _ in 0..400 {
        let now = total(server.stats());
        if now == last && now > 0 {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = server.stats();
    assert_eq!(n(&s.accepted), 0, "{s}");
    assert!(woken.lock().unwrap().is_empty());
    assert!(total(s) <= flood.len() as u64, "{s}");
    assert!(n(&s.malformed) > 0 && n(&s.rate_limited) + n(&s.bad_signature) + n(&s.unknown_user) > 0, "{s}");
    // After the flood (and its rate limit), a valid request gets through.
    for id in 10_000.. {
        send(to, &[udp_request(to, t, id, "user3", "pass3")]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !woken.lock().unwrap().is_empty() {
            break;
        }
        assert!(id < 10_400, "no valid request got through after the flood: {}", server.stats());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_signed_datagram_wakes_the_cpe_after_the_acs_set_its_credentials() {
    // An ACS that, like GenieACS's `inform` provision, sets the CPE's Connection Request
    // credentials in the bootstrap session (the username is GenieACS's device id, `%` escapes
    // and all, which it sends unencoded in the datagram); every Inform's events are recorded.
    let informs: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let log = informs.clone();
    let acs = RawAcs::start(move |req, _| {
        let body = req.body_str();
        if body.contains("<cwmp:Inform>") {
            log.lock().unwrap().push(texts(&body, "EventCode"));
            return RawReply::Send(simple_acs(req));
        }
        if body.is_empty() && log.lock().unwrap().len() == 1 {
            let spv = "<cwmp:SetParameterValues><ParameterList>\
                <ParameterValueStruct><Name>Device.ManagementServer.ConnectionRequestUsername</Name><Value xsi:type=\"xsd:string\">FEFEFE-SimGW%2D181-FEFEFE000000</Value></ParameterValueStruct>\
                <ParameterValueStruct><Name>Device.ManagementServer.ConnectionRequestPassword</Name><Value xsi:type=\"xsd:string\">genie-pass</Value></ParameterValueStruct>\
                </ParameterList><ParameterKey>cr</ParameterKey></cwmp:SetParameterValues>";
            return RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &acs_envelope("spv-1", spv)));
        }
        RawReply::Send(http("204 No Content", &[], b""))
    })
    .await;
    let model = profile(TR181);
    let (old_user, old_pass) = model.connection_request_credentials(DeviceId(0), &Delta::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let server = UdpCrServer::start("127.0.0.1:0".parse().unwrap(), Owners { first: 0, count: 1, senders: vec![tx] }, 100).await.unwrap();
    let to = server.addr;
    let mut one = OneCpe::new(model, acs.url("/"), crate::support::test_transport()).daemon(Duration::from_secs(30));
    one.owner = Some(rx);
    let stop = one.stop.clone();
    let drive = async {
        until("the bootstrap session", || informs.lock().unwrap().len() == 1).await;
        // GenieACS sends each request three times. Until the bootstrap session has ended the CPE
        // answers with the credentials it started it with, so the new username is unknown: send a
        // fresh request every 200 ms until one wakes the CPE.
        let mut id = 0;
        while informs.lock().unwrap().len() < 2 {
            id += 1;
            assert!(id < 100, "no UDP connection request woke the CPE: {}", server.stats());
            let d = udp_request(to, now_s(), id, "FEFEFE-SimGW%2D181-FEFEFE000000", "genie-pass");
            send(to, &[d.clone(), d.clone(), d]).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until("the copies to be counted", || n(&server.stats().replayed) >= 2).await;
        // The credentials the profile gave are gone: the ACS replaced them.
        send(to, &[udp_request(to, now_s(), 1000, &old_user, &old_pass)]).await;
        until("the old username to be refused", || n(&server.stats().unknown_user) >= 1).await;
        stop.store(true, Ordering::SeqCst);
    };
    let ((report, _), ()) = tokio::join!(one.run(), drive);
    let informs = informs.lock().unwrap().clone();
    assert_eq!(informs[0], ["0 BOOTSTRAP", "1 BOOT"]);
    assert_eq!(informs[1], ["6 CONNECTION REQUEST"]);
    let accepted = n(&server.stats().accepted);
    assert!(accepted >= 1, "{}", server.stats());
    assert!(informs[1..].iter().all(|e| e == &["6 CONNECTION REQUEST"]), "{informs:?}");
    assert!(informs.len() as u64 <= accepted + 1, "one session per accepted request, not per copy: {informs:?}");
    assert_eq!(n(&server.stats().bad_signature), 0, "{}", server.stats());
    assert_eq!(report.failed, 0);
    server.stop().await;
}
