//! The UDP Connection Request listener (TR-069 Annex G.2.2, for CPEs behind a NAT per TR-111
//! Part 2): one UDP socket for the whole process (`--udp-cr-bind-addr`), whose `host:port` every
//! CPE publishes as `ManagementServer.UDPConnectionRequestAddress`.
//!
//! A datagram is an HTTP-like request line (TR-069 Annex G.2.2.3; PROTOCOL.md §10.2):
//!
//! ```text
//! GET http://host:port?ts=1120673700&id=1234&un=0F0F0F&cn=C0DE1234&sig=<40 hex> HTTP/1.1
//! Host: host:port
//! ```
//!
//! with `sig = hex(HMAC-SHA1(key = ConnectionRequestPassword, text = ts ‖ id ‖ un ‖ cn))`. A valid
//! one wakes the CPE whose ConnectionRequestUsername is `un` with `6 CONNECTION REQUEST`; nothing
//! is ever sent back. Everything else is dropped and counted by cause ([`UdpDrop`]): malformed
//! datagrams, timestamps outside [`MAX_CLOCK_SKEW`] of our clock or older than the CPE's last
//! accepted one (stale), an `id` already accepted for that user (replayed; GenieACS sends each
//! message three times, so two of every three count here), unknown users, bad signatures, and
//! datagrams beyond the rate (`--cr-rate`). The checks are ordered cheapest first so a flood of
//! garbage never reaches a CPE's owner.
//!
//! Like the HTTP listener it owns no CPE state: every owner is asked which of its CPEs has the
//! username ([`CpeMsg::LookupUser`]), and the one that does is sent [`CpeMsg::Wake`]. Replay
//! tracking ([`ReplayGuard`]) is bounded ([`MAX_TRACKED_USERS`]) and takes `now` as an argument.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use smallvec::SmallVec;
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch, Semaphore};

use crate::model::identity::fnv1a;
use crate::owners::{CpeMsg, Owners};
use crate::time::UnixMillis;

/// How far a message's `ts` may be from our clock, either way, before it is stale.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Users whose last accepted message is remembered (beyond: the oldest quarter is forgotten;
/// their old messages are outside the clock window by then, or soon).
pub const MAX_TRACKED_USERS: usize = 65_536;
/// Largest datagram read; a longer one is malformed (a request line fits in a few hundred bytes).
const MAX_DATAGRAM: usize = 2048;
/// Owner lookups in flight at once (beyond: the datagram is dropped as rate-limited).
const MAX_LOOKUPS: usize = 256;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpDrop {
    /// Not a `GET <uri>?ts=&id=&un=&cn=&sig= HTTP/1.1` request line with each field once.
    Malformed,
    /// `ts` outside [`MAX_CLOCK_SKEW`] of now, or older than the user's last accepted message.
    Stale,
    /// An `id` already accepted for this user (a retransmission or a replay).
    Replayed,
    /// No CPE has this ConnectionRequestUsername.
    UnknownUser,
    /// The signature does not match the CPE's ConnectionRequestPassword.
    BadSignature,
    /// Beyond the rate, or too many lookups in flight.
    RateLimited,
    /// The owners did not answer in time.
    OwnerBusy,
}

/// One parsed message: the field texts as they were signed (percent-decoded) and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpMessage {
    pub ts_text: String,
    /// `ts` in seconds since the Unix epoch.
    pub ts: u64,
    pub id_text: String,
    pub id: u32,
    pub un: String,
    pub cn: String,
    /// The HMAC-SHA1 as sent (hex, either case), decoded.
    pub sig: [u8; 20],
}

/// Parses a datagram (TR-069 Annex G.2.2.3: an HTTP 1.1 GET whose Request-URI carries ts, id, un,
/// cn and sig; the host and port in it are not checked, a NAT may have rewritten the address).
///
/// # Errors
/// [`UdpDrop::Malformed`] for anything else: not UTF-8, another method or version, a field
/// missing or repeated, a non-numeric ts/id, a sig that is not 40 hex digits.
pub fn parse(datagram: &[u8]) -> Result<UdpMessage, UdpDrop> {
    let text = std::str::from_utf8(datagram).map_err(|_| UdpDrop::Malformed)?;
    let line = text.split("\r\n").next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some("GET"), Some(uri), Some("HTTP/1.1"), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(UdpDrop::Malformed);
    };
    let query = uri.split_once('?').map(|(_, q)| q).ok_or(UdpDrop::Malformed)?;
    let mut fields: [Option<String>; 5] = Default::default();
    // The values as sent: GenieACS signs and sends them unencoded, and its usernames (DeviceID.ID)
    // hold `%` escapes of their own (`FEFEFE-SimGW%2D181-…`). [`UdpMessage::decoded`] is the
    // percent-decoded reading, for an ACS that encodes.
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "ts" => 0,
            "id" => 1,
            "un" => 2,
            "cn" => 3,
            "sig" => 4,
            _ => continue,
        };
        if fields[slot].replace(v.to_string()).is_some() {
            return Err(UdpDrop::Malformed);
        }
    }
    let [Some(ts_text), Some(id_text), Some(un), Some(cn), Some(sig_text)] = fields else {
        return Err(UdpDrop::Malformed);
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&ts_text) || !digits(&id_text) || un.is_empty() || un.len() > 256 || cn.len() > 256 {
        return Err(UdpDrop::Malformed);
    }
    let ts = ts_text.parse().map_err(|_| UdpDrop::Malformed)?;
    let id = id_text.parse().map_err(|_| UdpDrop::Malformed)?;
    let sig = hex20(&sig_text).ok_or(UdpDrop::Malformed)?;
    Ok(UdpMessage { ts_text, ts, id_text, id, un, cn, sig })
}

impl UdpMessage {
    /// The same message with `un` and `cn` percent-decoded, when that changes them (an ACS that
    /// encodes the values in the URI and signs the decoded text).
    pub fn decoded(&self) -> Option<UdpMessage> {
        let decode = |s: &str| -> String {
            // `+` stays itself: this is a URI query, not a form.
            url::form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (un, cn) = (decode(&self.un), decode(&self.cn));
        (un != self.un || cn != self.cn).then(|| UdpMessage { un, cn, ..self.clone() })
    }
}

fn hex20(s: &str) -> Option<[u8; 20]> {
    let b = s.as_bytes();
    if b.len() != 40 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 20];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = nib(pair[0])? << 4 | nib(pair[1])?;
    }
    Some(out)
}

/// `HMAC-SHA1(key = password, text = ts ‖ id ‖ un ‖ cn)` (TR-069 Annex G.2.2.3).
pub fn signature(password: &str, ts: &str, id: &str, un: &str, cn: &str) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(password.as_bytes()).expect("HMAC takes a key of any length");
    for part in [ts, id, un, cn] {
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// Whether `msg` is signed with `password` (compared in constant time).
pub fn verify(msg: &UdpMessage, password: &str) -> bool {
    let mut mac = Hmac::<Sha1>::new_from_slice(password.as_bytes()).expect("HMAC takes a key of any length");
    for part in [&msg.ts_text, &msg.id_text, &msg.un, &msg.cn] {
        mac.update(part.as_bytes());
    }
    mac.verify_slice(&msg.sig).is_ok()
}

/// The last accepted message per user (by username hash): its `ts`, the ids accepted with that
/// `ts`, and when it was accepted. Bounded by [`MAX_TRACKED_USERS`].
#[derive(Debug, Default)]
pub struct ReplayGuard {
    last: HashMap<u64, (u64, SmallVec<[u32; 4]>, UnixMillis)>,
}

impl ReplayGuard {
    /// The checks that need no CPE: the clock window, then this user's last accepted message.
    ///
    /// # Errors
    /// [`UdpDrop::Stale`] or [`UdpDrop::Replayed`].
    pub fn check(&self, msg: &UdpMessage, now: UnixMillis) -> Result<(), UdpDrop> {
        let now_s = now.secs();
        if msg.ts.abs_diff(now_s) > MAX_CLOCK_SKEW.as_secs() {
            return Err(UdpDrop::Stale);
        }
        match self.last.get(&fnv1a(&msg.un)) {
            Some((ts, ids, _)) if msg.ts == *ts && ids.contains(&msg.id) => Err(UdpDrop::Replayed),
            Some((ts, _, _)) if msg.ts < *ts => Err(UdpDrop::Stale),
            _ => Ok(()),
        }
    }

    /// Records an accepted message (call after [`ReplayGuard::check`] and the signature).
    ///
    /// # Errors
    /// [`UdpDrop::Replayed`] or [`UdpDrop::Stale`] when another copy was accepted meanwhile.
    pub fn accept(&mut self, msg: &UdpMessage, now: UnixMillis) -> Result<(), UdpDrop> {
        self.check(msg, now)?;
        let key = fnv1a(&msg.un);
        if self.last.len() >= MAX_TRACKED_USERS && !self.last.contains_key(&key) {
            self.forget_oldest_quarter();
        }
        let entry = self.last.entry(key).or_insert_with(|| (msg.ts, SmallVec::new(), now));
        if entry.0 != msg.ts {
            *entry = (msg.ts, SmallVec::new(), now);
        }
        // Ids sharing one second: a handful is plenty; beyond it the oldest is forgotten.
        if entry.1.len() >= 16 {
            entry.1.remove(0);
        }
        entry.1.push(msg.id);
        entry.2 = now;
        Ok(())
    }

    fn forget_oldest_quarter(&mut self) {
        let mut ages: Vec<u64> = self.last.values().map(|(_, _, at)| at.0).collect();
        let cut = ages.len() / 4;
        let (_, nth, _) = ages.select_nth_unstable(cut);
        let nth = *nth;
        self.last.retain(|_, (_, _, at)| at.0 > nth);
    }

    /// Users tracked.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

/// Counters, one per outcome.
#[derive(Debug, Default)]
pub struct UdpCrStats {
    pub accepted: AtomicU64,
    pub malformed: AtomicU64,
    pub stale: AtomicU64,
    pub replayed: AtomicU64,
    pub unknown_user: AtomicU64,
    pub bad_signature: AtomicU64,
    pub rate_limited: AtomicU64,
    pub owner_busy: AtomicU64,
}

impl UdpCrStats {
    fn count(&self, d: UdpDrop) {
        let c = match d {
            UdpDrop::Malformed => &self.malformed,
            UdpDrop::Stale => &self.stale,
            UdpDrop::Replayed => &self.replayed,
            UdpDrop::UnknownUser => &self.unknown_user,
            UdpDrop::BadSignature => &self.bad_signature,
            UdpDrop::RateLimited => &self.rate_limited,
            UdpDrop::OwnerBusy => &self.owner_busy,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams dropped, all causes.
    pub fn dropped(&self) -> u64 {
        [&self.malformed, &self.stale, &self.replayed, &self.unknown_user, &self.bad_signature, &self.rate_limited, &self.owner_busy]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Display for UdpCrStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "UDP connection requests: {} accepted; dropped: {} malformed, {} stale timestamp, {} replayed id, {} unknown user, {} bad signature, {} rate-limited, {} owner busy",
            n(&self.accepted),
            n(&self.malformed),
            n(&self.stale),
            n(&self.replayed),
            n(&self.unknown_user),
            n(&self.bad_signature),
            n(&self.rate_limited),
            n(&self.owner_busy)
        )
    }
}

struct Shared {
    owners: Owners,
    rate_per_second: u32,
    guard: Mutex<ReplayGuard>,
    bucket: Mutex<(f64, Instant)>,
    lookups: Arc<Semaphore>,
    stats: Arc<UdpCrStats>,
}

/// The running listener.
pub struct UdpCrServer {
    /// The bound address (its port is the one to publish).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpCrServer {
    /// Binds `bind` and starts reading datagrams; `rate_per_second` datagrams a second reach the
    /// owners (the rest are dropped as rate-limited).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(bind: SocketAddr, owners: Owners, rate_per_second: u32) -> std::io::Result<UdpCrServer> {
        let socket = UdpSocket::bind(bind).await?;
        let addr = socket.local_addr()?;
        let shared = Arc::new(Shared {
            owners,
            rate_per_second: rate_per_second.max(1),
            guard: Mutex::default(),
            bucket: Mutex::new((rate_per_second.max(1) as f64, Instant::now())),
            lookups: Arc::new(Semaphore::new(MAX_LOOKUPS)),
            stats: Arc::default(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM + 1];
            loop {
                let received = tokio::select! {
                    r = socket.recv_from(&mut buf) => r,
                    _ = stopped.changed() => break,
                };
                // ICMP errors from earlier sends and the like: nothing to do with this datagram.
                let Ok((n, peer)) = received else { continue };
                let datagram = if n > MAX_DATAGRAM { None } else { buf.get(..n) };
                match datagram.ok_or(UdpDrop::Malformed).and_then(|d| admit(&s, d, UnixMillis::now())) {
                    Ok((msg, permit)) => {
                        tokio::spawn(deliver(s.clone(), msg, permit));
                    }
                    Err(d) => {
                        s.stats.count(d);
                        tracing::debug!(%peer, cause = ?d, "UDP connection request dropped");
                    }
                }
            }
        });
        Ok(UdpCrServer { addr, shared, stop, task })
    }

    pub fn stats(&self) -> &UdpCrStats {
        &self.shared.stats
    }

    /// The counters, shared.
    pub fn stats_handle(&self) -> Arc<UdpCrStats> {
        self.shared.stats.clone()
    }

    /// Stops reading.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The checks before any owner is asked: parse, clock window and replay, rate, a lookup slot.
fn admit(s: &Shared, datagram: &[u8], now: UnixMillis) -> Result<(UdpMessage, tokio::sync::OwnedSemaphorePermit), UdpDrop> {
    let msg = parse(datagram)?;
    s.guard.lock().unwrap_or_else(|e| e.into_inner()).check(&msg, now)?;
    let rate = s.rate_per_second as f64;
    if !super::take_token(&mut s.bucket.lock().unwrap_or_else(|e| e.into_inner()), rate, Instant::now()) {
        return Err(UdpDrop::RateLimited);
    }
    let permit = s.lookups.clone().try_acquire_owned().map_err(|_| UdpDrop::RateLimited)?;
    Ok((msg, permit))
}

/// Asks every owner for the user, checks the signature, records the message and wakes the CPE.
async fn deliver(s: Arc<Shared>, msg: UdpMessage, _permit: tokio::sync::OwnedSemaphorePermit) {
    let outcome = lookup_and_verify(&s, &msg).await;
    match outcome {
        Ok(index) => {
            s.stats.accepted.fetch_add(1, Ordering::Relaxed);
            if let Some(owner) = s.owners.owner(index) {
                let _ = owner.send(CpeMsg::Wake { index });
            }
            tracing::debug!(cpe_id = %crate::model::DeviceId(index), "UDP connection request accepted");
        }
        Err(d) => {
            s.stats.count(d);
            tracing::debug!(cause = ?d, "UDP connection request dropped");
        }
    }
}

async fn lookup_and_verify(s: &Shared, msg: &UdpMessage) -> Result<u32, UdpDrop> {
    match (lookup_and_verify_as_sent(s, msg).await, msg.decoded()) {
        (Err(first @ (UdpDrop::UnknownUser | UdpDrop::BadSignature)), Some(decoded)) => {
            match lookup_and_verify_as_sent(s, &decoded).await {
                // Neither reading names a CPE: the cause is the one of the message as sent.
                Err(UdpDrop::UnknownUser) => Err(first),
                other => other,
            }
        }
        (result, _) => result,
    }
}

async fn lookup_and_verify_as_sent(s: &Shared, msg: &UdpMessage) -> Result<u32, UdpDrop> {
    let mut replies = Vec::with_capacity(s.owners.senders.len());
    for sender in &s.owners.senders {
        let (tx, rx) = oneshot::channel();
        if sender.send(CpeMsg::LookupUser { username: msg.un.as_str().into(), reply: tx }).is_ok() {
            replies.push(rx);
        }
    }
    let mut busy = false;
    let mut found = None;
    for rx in replies {
        match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(Some(hit))) => found = found.or(Some(hit)),
            Ok(Ok(None)) => {}
            Ok(Err(_)) | Err(_) => busy = true,
        }
    }
    let (index, password) = match (found, busy) {
        (Some(hit), _) => hit,
        (None, true) => return Err(UdpDrop::OwnerBusy),
        (None, false) => return Err(UdpDrop::UnknownUser),
    };
    if !verify(msg, &password) {
        return Err(UdpDrop::BadSignature);
    }
    // Checked again: a copy of this message may have been accepted while the owners answered.
    s.guard.lock().unwrap_or_else(|e| e.into_inner()).accept(msg, UnixMillis::now())?;
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn datagram(ts: u64, id: u32, un: &str, cn: &str, pass: &str) -> String {
        let sig = hex(&signature(pass, &ts.to_string(), &id.to_string(), un, cn));
        format!("GET http://10.0.0.1:7547?ts={ts}&id={id}&un={un}&cn={cn}&sig={sig} HTTP/1.1\r\nHost: 10.0.0.1:7547\r\n\r\n")
    }

    #[test]
    fn parses_and_verifies_the_annex_g_message() {
        let d = datagram(1_120_673_700, 1234, "0F0F0F", "C0DE1234", "pw");
        let m = parse(d.as_bytes()).unwrap();
        assert_eq!((m.ts, m.id, m.un.as_str(), m.cn.as_str()), (1_120_673_700, 1234, "0F0F0F", "C0DE1234"));
        assert!(verify(&m, "pw"));
        assert!(!verify(&m, "other"));
        // Upper-case hex is the same signature.
        let upper = d.replace(&hex(&m.sig), &hex(&m.sig).to_uppercase());
        assert!(verify(&parse(upper.as_bytes()).unwrap(), "pw"));
    }

    #[test]
    fn values_are_read_as_sent_and_decoded_on_request() {
        // GenieACS's username is the device id, with its own `%` escapes, sent unencoded.
        let d = datagram(5, 6, "FEFEFE-SimGW%2D181-FEFEFE000000", "ab", "pw");
        let m = parse(d.as_bytes()).unwrap();
        assert_eq!(m.un, "FEFEFE-SimGW%2D181-FEFEFE000000");
        assert!(verify(&m, "pw"));
        assert_eq!(m.decoded().unwrap().un, "FEFEFE-SimGW-181-FEFEFE000000");
        assert!(parse(datagram(5, 6, "plain+user", "ab", "pw").as_bytes()).unwrap().decoded().is_none());
    }

    #[test]
    fn malformed_datagrams() {
        let good = datagram(1, 2, "u", "c", "p");
        for bad in [
            String::new(),
            "\u{0}\u{1}".into(),
            good.replace("GET", "POST"),
            good.replace("HTTP/1.1", "HTTP/1.0"),
            good.replace("?", "/"),
            good.replace("&sig=", "&x="),
            good.replace("ts=1", "ts=1&ts=2"),
            good.replace("ts=1", "ts=-1"),
            good.replace("id=2", "id=99999999999"),
            good.replace("un=u", "un="),
            good[..good.find("sig=").unwrap() + 10].to_string() + " HTTP/1.1",
        ] {
            assert_eq!(parse(bad.as_bytes()), Err(UdpDrop::Malformed), "{bad:?}");
        }
        assert!(parse(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn replay_guard_window_ids_and_bounds() {
        let now = UnixMillis(1_700_000_000_000);
        let mut g = ReplayGuard::default();
        let m = |ts: u64, id: u32, un: &str| parse(datagram(ts, id, un, "c", "p").as_bytes()).unwrap();
        let t = now.secs();
        assert_eq!(g.check(&m(t - 301, 1, "a"), now), Err(UdpDrop::Stale));
        assert_eq!(g.check(&m(t + 301, 1, "a"), now), Err(UdpDrop::Stale));
        g.accept(&m(t, 1, "a"), now).unwrap();
        assert_eq!(g.check(&m(t, 1, "a"), now), Err(UdpDrop::Replayed));
        assert_eq!(g.check(&m(t, 2, "a"), now), Ok(()), "another id in the same second");
        assert_eq!(g.check(&m(t - 1, 3, "a"), now), Err(UdpDrop::Stale), "older than the last accepted");
        assert_eq!(g.check(&m(t, 1, "b"), now), Ok(()), "ids are per user");
        for i in 0..(MAX_TRACKED_USERS as u64 + 10) {
            g.accept(&m(t, 1, &format!("u{i}")), UnixMillis(now.0 + i)).unwrap();
        }
        assert!(g.len() <= MAX_TRACKED_USERS, "{}", g.len());
    }
}
