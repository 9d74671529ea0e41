//! TR-143 diagnostics of one CPE: IPPing, TraceRoute, DownloadDiagnostics, UploadDiagnostics and
//! ServerSelectionDiagnostics, under TR-181 `Device.IP.Diagnostics.` and TR-098
//! `InternetGatewayDevice.` (which has no ServerSelectionDiagnostics). Sans-IO, no clock.
//!
//! The session calls [`check_spv`] before a SetParameterValues is applied (malformed inputs:
//! 9003 with 9007 entries, nothing applied or started) and [`after_spv`] once it was: an SPV of
//! `DiagnosticsState = Requested` draws the test's outcome now ([`plan`]) and hands it to the
//! agenda as a deferred action, due when the simulated test ends; a change of an input while a
//! test is requested or running cancels it (TR-181 `DiagnosticsState`: "modifying any of the
//! writable parameters in this object except for this one MUST result in the test being
//! terminated and the value of this parameter being set to None"). When it comes due the agenda
//! calls [`complete`], which writes the results and owes `8 DIAGNOSTICS COMPLETE`.
//!
//! Results are drawn from the profile's `diagnostics:` settings with a generator seeded by the
//! profile seed, the CPE index, the kind and the request time: the same run of the same fleet
//! measures the same numbers. Only result parameters the profile declares are written.

use std::time::Duration;

use smallvec::SmallVec;

use crate::cwmp::FaultCode;
use crate::model::device::{SpvEntry, SpvFault};
use crate::model::diagnostics::DiagnosticsSettings;
use crate::model::identity::{fnv1a, mix64};
use crate::model::tree::Inst;
use crate::model::{Delta, Device, Loc, Model, NodeId, ReadFor, Source};
use crate::time::{format_datetime, UnixMillis};

/// One kind of diagnostic test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// ICMP echo (TR-143 §A.1 IP Ping, TR-181 `IP.Diagnostics.IPPing.`).
    IpPing,
    /// TraceRoute (TR-181 `IP.Diagnostics.TraceRoute.`).
    TraceRoute,
    /// HTTP/FTP download throughput (TR-143 §4.1 DownloadDiagnostics).
    Download,
    /// HTTP/FTP upload throughput (TR-143 §4.2 UploadDiagnostics).
    Upload,
    /// The fastest of a list of hosts (TR-181 `IP.Diagnostics.ServerSelectionDiagnostics.`).
    ServerSelection,
}

impl DiagnosticKind {
    pub const ALL: [DiagnosticKind; 5] = [
        DiagnosticKind::IpPing,
        DiagnosticKind::TraceRoute,
        DiagnosticKind::Download,
        DiagnosticKind::Upload,
        DiagnosticKind::ServerSelection,
    ];

    /// The object path under `root` (`Device` or `InternetGatewayDevice`), with its trailing dot.
    pub fn object(self, root: &str) -> Option<&'static str> {
        use DiagnosticKind::*;
        match (root, self) {
            ("Device", IpPing) => Some("Device.IP.Diagnostics.IPPing."),
            ("Device", TraceRoute) => Some("Device.IP.Diagnostics.TraceRoute."),
            ("Device", Download) => Some("Device.IP.Diagnostics.DownloadDiagnostics."),
            ("Device", Upload) => Some("Device.IP.Diagnostics.UploadDiagnostics."),
            ("Device", ServerSelection) => Some("Device.IP.Diagnostics.ServerSelectionDiagnostics."),
            ("InternetGatewayDevice", IpPing) => Some("InternetGatewayDevice.IPPingDiagnostics."),
            ("InternetGatewayDevice", TraceRoute) => Some("InternetGatewayDevice.TraceRouteDiagnostics."),
            ("InternetGatewayDevice", Download) => Some("InternetGatewayDevice.DownloadDiagnostics."),
            ("InternetGatewayDevice", Upload) => Some("InternetGatewayDevice.UploadDiagnostics."),
            _ => None,
        }
    }

    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            DiagnosticKind::IpPing => "IPPing",
            DiagnosticKind::TraceRoute => "TraceRoute",
            DiagnosticKind::Download => "DownloadDiagnostics",
            DiagnosticKind::Upload => "UploadDiagnostics",
            DiagnosticKind::ServerSelection => "ServerSelectionDiagnostics",
        }
    }

    /// The input naming where the test goes (required for `Requested`).
    fn target_input(self) -> &'static str {
        match self {
            DiagnosticKind::IpPing | DiagnosticKind::TraceRoute => "Host",
            DiagnosticKind::Download => "DownloadURL",
            DiagnosticKind::Upload => "UploadURL",
            DiagnosticKind::ServerSelection => "HostList",
        }
    }

    /// The DiagnosticsState a test that fails as a whole ends in (TR-181's enumerations).
    fn failure_state(self) -> &'static str {
        match self {
            DiagnosticKind::IpPing | DiagnosticKind::TraceRoute | DiagnosticKind::ServerSelection => "Error_CannotResolveHostName",
            DiagnosticKind::Download | DiagnosticKind::Upload => "Error_InitConnectionFailed",
        }
    }
}

/// The diagnostic object a full parameter name lies in, and the name below it.
fn split<'n>(root: &str, name: &'n str) -> Option<(DiagnosticKind, &'n str)> {
    DiagnosticKind::ALL.into_iter().find_map(|k| Some((k, name.strip_prefix(k.object(root)?)?)))
}

/// One test's drawn outcome, carried by the agenda until the test ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticRun {
    pub kind: DiagnosticKind,
    /// How long the simulated test takes, from the end of the session that requested it.
    pub duration: Duration,
    /// Where DiagnosticsState lives.
    pub state: Loc,
    /// DiagnosticsState at the end: `Complete` or an `Error_*` value.
    pub end_state: &'static str,
    /// Result values as text.
    pub values: Vec<(Loc, Box<str>)>,
    /// Result timestamps (ROMTime, BOMTime, …) as ms before the end of the test.
    pub times: Vec<(Loc, u64)>,
    /// TraceRoute: the RouteHops table, its column nodes and how many rows the results fill
    /// (rows 1..=n; their values are in `values`).
    pub hops: Option<(NodeId, SmallVec<[NodeId; 4]>, u32)>,
}

fn param_loc(model: &Model, path: &str) -> Option<Loc> {
    let node = model.tree.by_schema_path(path)?;
    model.tree.node(node).param().map(|_| Loc::plain(node))
}

/// Checks the diagnostics inputs of a SetParameterValues before anything is applied.
///
/// # Errors
/// 9003 with a 9007 entry per malformed input: a Host that is no host name or IP address
/// (RFC 1123 §2.1), a DownloadURL/UploadURL that is no http, https or ftp URL with a host, a
/// HostList with a bad or more than 10 entries, a DiagnosticsState other than `Requested` (the
/// only value an ACS writes), or `Requested` while the test's target input would be empty.
///
/// Returns which kinds the SPV touches, in [`DiagnosticKind::ALL`] order (none for an ordinary
/// provisioning SPV, which then costs no diagnostics lookup: see [`requested`]).
pub fn check_spv(dev: &Device<'_>, entries: &[SpvEntry<'_>]) -> Result<[bool; 5], SpvFault> {
    let root = dev.model.tree.root_name();
    let mut bad = Vec::new();
    let mut touched = [false; 5];
    for e in entries {
        let Some((kind, rel)) = split(root, e.name) else { continue };
        if let Some(i) = DiagnosticKind::ALL.iter().position(|k| *k == kind) {
            touched[i] = true;
        }
        let ok = match rel {
            "DiagnosticsState" => e.value == "Requested" && !target_of(dev, entries, kind).is_empty(),
            "Host" => e.value.is_empty() || valid_host(e.value),
            "DownloadURL" | "UploadURL" => e.value.is_empty() || valid_url(e.value),
            "HostList" => e.value.is_empty() || valid_host_list(e.value),
            _ => true,
        };
        if !ok {
            bad.push((e.name.to_string(), FaultCode::InvalidParameterValue));
        }
    }
    if bad.is_empty() {
        Ok(touched)
    } else {
        Err(SpvFault { code: FaultCode::InvalidArguments, params: bad })
    }
}

/// The target input of `kind` as it will be once `entries` are applied.
fn target_of(dev: &Device<'_>, entries: &[SpvEntry<'_>], kind: DiagnosticKind) -> String {
    let root = dev.model.tree.root_name();
    let Some(obj) = kind.object(root) else { return String::new() };
    let name = kind.target_input();
    if let Some(e) = entries.iter().find(|e| e.name.strip_prefix(obj) == Some(name)) {
        return e.value.to_string();
    }
    dev.get(&format!("{obj}{name}")).unwrap_or_default()
}

/// A host name (RFC 1123 §2.1: labels of letters, digits and hyphens, 1–63 characters, 253 in
/// all) or an IPv4/IPv6 address.
fn valid_host(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn valid_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "ftp") && u.host_str().is_some_and(|h| !h.is_empty()))
}

fn valid_host_list(s: &str) -> bool {
    let hosts: Vec<&str> = s.split(',').map(str::trim).collect();
    hosts.len() <= 10 && hosts.iter().all(|h| valid_host(h))
}

/// What an applied SetParameterValues means for the diagnostics: for each object it touched,
/// `Start(run)` when it set `Requested`, `Cancel(kind)` when it changed an input of a test that
/// is requested or running (DiagnosticsState is set to `None` here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Start(Box<DiagnosticRun>),
    Cancel(DiagnosticKind),
}

/// Called after a SetParameterValues was applied at `now`: starts or cancels tests (see
/// [`Effect`]). `was_requested[k]` says whether kind `k` (in [`DiagnosticKind::ALL`] order) was
/// requested or running before the SPV.
pub fn after_spv(
    model: &Model,
    delta: &mut Delta,
    id: crate::model::DeviceId,
    boot_at: UnixMillis,
    now: UnixMillis,
    entries: &[SpvEntry<'_>],
    was_requested: [bool; 5],
) -> SmallVec<[Effect; 1]> {
    let root = model.tree.root_name();
    let mut effects = SmallVec::new();
    for (i, kind) in DiagnosticKind::ALL.into_iter().enumerate() {
        let Some(obj) = kind.object(root) else { continue };
        let touched: SmallVec<[&str; 4]> = entries.iter().filter_map(|e| e.name.strip_prefix(obj)).collect();
        if touched.is_empty() {
            continue;
        }
        let Some(state) = param_loc(model, &format!("{obj}DiagnosticsState")) else { continue };
        if touched.contains(&"DiagnosticsState") {
            let dev = model.device(id, delta, boot_at, now);
            effects.push(Effect::Start(Box::new(plan(&dev, kind, state, &model.diagnostics, now))));
        } else if was_requested[i] {
            delta.set_value(state, "None", Source::Cpe);
            effects.push(Effect::Cancel(kind));
        }
    }
    effects
}

/// Whether each kind's test is requested or running (DiagnosticsState = `Requested`), in
/// [`DiagnosticKind::ALL`] order, for the kinds `of` names (the others read `false`, unlooked).
pub fn requested(dev: &Device<'_>, of: [bool; 5]) -> [bool; 5] {
    let root = dev.model.tree.root_name();
    let mut i = 0;
    DiagnosticKind::ALL.map(|k| {
        let asked = of[i];
        i += 1;
        asked
            && k.object(root)
                .and_then(|obj| param_loc(dev.model, &format!("{obj}DiagnosticsState")))
                .is_some_and(|loc| dev.value_string(&loc, ReadFor::Local) == "Requested")
    })
}

/// The tests a resumed CPE (`--state-dir`) still had requested or running when the simulator
/// stopped: each runs again from its inputs, drawn anew at `now` (the agenda is not saved).
/// Cheap for the usual CPE: nothing to look at unless a value reads `Requested`.
pub fn resume(model: &Model, cpe: &super::CpeState, now: UnixMillis) -> SmallVec<[Box<DiagnosticRun>; 1]> {
    let mut runs = SmallVec::new();
    if !cpe.delta.inner().is_some_and(|d| d.values.iter().any(|v| &*v.value == "Requested")) {
        return runs;
    }
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
    let root = model.tree.root_name();
    for (kind, requested) in DiagnosticKind::ALL.into_iter().zip(requested(&dev, [true; 5])) {
        let state = kind.object(root).and_then(|obj| param_loc(model, &format!("{obj}DiagnosticsState")));
        if let (true, Some(state)) = (requested, state) {
            runs.push(Box::new(plan(&dev, kind, state, &model.diagnostics, now)));
        }
    }
    runs
}

/// A deterministic stream of draws (splitmix64 steps).
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = mix64(self.0);
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn chance(&mut self, share: f64) -> bool {
        self.unit() < share
    }
}

/// Draws the outcome of a `kind` test CPE `dev` runs with its current inputs, requested at `now`.
pub fn plan(dev: &Device<'_>, kind: DiagnosticKind, state: Loc, s: &DiagnosticsSettings, now: UnixMillis) -> DiagnosticRun {
    let model = dev.model;
    let obj = kind.object(model.tree.root_name()).unwrap_or("");
    let input = |name: &str| dev.get(&format!("{obj}{name}")).unwrap_or_default();
    let number = |name: &str, default: u64| input(name).parse::<u64>().ok().filter(|n| *n > 0).unwrap_or(default);
    let mut r = Draws(mix64(model.identity.seed ^ mix64(u64::from(dev.id.0) ^ fnv1a(kind.name()).rotate_left(21)) ^ now.0));
    let mut run =
        DiagnosticRun { kind, duration: Duration::ZERO, state, end_state: "Complete", values: Vec::new(), times: Vec::new(), hops: None };
    let put = |run: &mut DiagnosticRun, name: &str, value: String| {
        if let Some(loc) = param_loc(model, &format!("{obj}{name}")) {
            run.values.push((loc, value.into()));
        }
    };
    let rtt_us = |r: &mut Draws| (s.latency_ms.at(r.normal()) * 1000.0).clamp(1.0, 60_000_000.0) as u64;
    if r.chance(s.failure_share) {
        run.end_state = kind.failure_state();
        // A failed name lookup or connection takes about one timeout.
        run.duration = Duration::from_millis(number("Timeout", 1000).min(60_000));
        return run;
    }
    match kind {
        DiagnosticKind::IpPing => {
            let reps = number("NumberOfRepetitions", 1).min(65_535);
            let timeout_us = number("Timeout", 1000).min(3_600_000) * 1000;
            let (mut ok, mut sum, mut min, mut max, mut spent_us) = (0u64, 0u64, u64::MAX, 0u64, 0u64);
            for i in 0..reps {
                let rtt = rtt_us(&mut r);
                if r.chance(s.loss) || rtt > timeout_us {
                    spent_us += timeout_us;
                } else {
                    ok += 1;
                    sum += rtt;
                    min = min.min(rtt);
                    max = max.max(rtt);
                    spent_us += rtt;
                }
                // Echoes go out once a second (ping's default interval).
                if i + 1 < reps {
                    spent_us = spent_us.max((i + 1) * 1_000_000);
                }
            }
            let (avg, min) = sum.checked_div(ok).map_or((0, 0), |avg| (avg, min));
            put(&mut run, "SuccessCount", ok.to_string());
            put(&mut run, "FailureCount", (reps - ok).to_string());
            put(&mut run, "AverageResponseTime", avg.div_ceil(1000).to_string());
            put(&mut run, "MinimumResponseTime", min.div_ceil(1000).to_string());
            put(&mut run, "MaximumResponseTime", max.div_ceil(1000).to_string());
            put(&mut run, "AverageResponseTimeDetailed", avg.to_string());
            put(&mut run, "MinimumResponseTimeDetailed", min.to_string());
            put(&mut run, "MaximumResponseTimeDetailed", max.to_string());
            put(&mut run, "IPAddressUsed", address_used(dev));
            run.duration = Duration::from_micros(spent_us.max(1000));
        }
        DiagnosticKind::TraceRoute => {
            let tries = number("NumberOfTries", 3).min(16);
            let max_hops = number("MaxHopCount", 30).min(255) as u32;
            let timeout_us = number("Timeout", 5000).min(3_600_000) * 1000;
            let span = u64::from(s.hops.max - s.hops.min) + 1;
            let path = s.hops.min + (r.next() % span) as u32;
            let hops = path.min(max_hops);
            if path > max_hops {
                run.end_state = "Error_MaxHopCountExceeded";
            }
            let host = input("Host");
            let table = model.tree.by_schema_path(&format!("{obj}RouteHops."));
            let col = |names: [&str; 2]| names.iter().find_map(|n| model.tree.by_schema_path(&format!("{obj}RouteHops.{{i}}.{n}")));
            // TR-181 names the columns Host, HostAddress, ErrorCode, RTTimes; TR-098 adds `Hop`.
            let cols = [
                col(["Host", "HopHost"]),
                col(["HostAddress", "HopHostAddress"]),
                col(["ErrorCode", "HopErrorCode"]),
                col(["RTTimes", "HopRTTimes"]),
            ];
            let mut spent_us = 0u64;
            let mut last_rtt = 0u64;
            for k in 1..=hops {
                let last = k == path;
                // Each hop adds its share of the path's latency.
                let mut times = Vec::with_capacity(tries as usize);
                for _ in 0..tries {
                    let rtt = rtt_us(&mut r) * u64::from(k) / u64::from(path);
                    let lost = r.chance(s.loss) || rtt > timeout_us;
                    spent_us += if lost { timeout_us } else { rtt.max(1) };
                    times.push(if lost { 0 } else { rtt.div_ceil(1000) });
                    last_rtt = rtt;
                }
                let name = if last && !host.is_empty() { host.clone() } else { format!("hop{k}.net{}.example", dev.id.0 % 97) };
                let address = if last { resolved(&host) } else { format!("10.{}.{}.1", k, dev.id.0 % 250) };
                let rt = times.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
                for (c, v) in cols.iter().zip([name, address, "0".to_string(), rt]) {
                    if let Some(node) = c {
                        run.values.push((Loc { node: *node, inst: Inst::from_slice(&[k]) }, v.into()));
                    }
                }
            }
            if let Some(t) = table {
                run.hops = Some((t, cols.iter().flatten().copied().collect(), hops));
            }
            let response = if run.end_state == "Complete" { last_rtt.div_ceil(1000) } else { 0 };
            put(&mut run, "ResponseTime", response.to_string());
            if param_loc(model, &format!("{obj}RouteHopsNumberOfEntries")).is_some_and(|l| !is_dynamic(model, &l)) {
                put(&mut run, "RouteHopsNumberOfEntries", hops.to_string());
            }
            put(&mut run, "IPAddressUsed", address_used(dev));
            run.duration = Duration::from_micros(spent_us.max(1000));
        }
        DiagnosticKind::Download | DiagnosticKind::Upload => {
            let download = kind == DiagnosticKind::Download;
            let bytes = if download { s.download_bytes } else { number("TestFileLength", 1_000_000).min(1 << 40) };
            let kbps = if download { s.download_kbps } else { s.upload_kbps }.at(r.normal()).max(1.0);
            let transfer_us = (bytes as f64 * 8.0 / kbps * 1000.0) as u64;
            let rtt = rtt_us(&mut r);
            // TR-143 §4.1: TCPOpenRequestTime → TCPOpenResponseTime (one RTT), ROMTime (the
            // request sent), BOMTime (first byte, one RTT later), EOMTime (last byte).
            let total_us = 3 * rtt + transfer_us;
            let before = |us: u64| (total_us - us) / 1000;
            for (name, at_us) in
                [("TCPOpenRequestTime", 0), ("TCPOpenResponseTime", rtt), ("ROMTime", rtt * 2), ("BOMTime", rtt * 3), ("EOMTime", total_us)]
            {
                if let Some(loc) = param_loc(model, &format!("{obj}{name}")) {
                    run.times.push((loc, before(at_us)));
                }
            }
            // Protocol overhead: ~2.5 % on the data's way (headers, TCP/IP), requests the other.
            let overhead = bytes / 40 + 400;
            if download {
                put(&mut run, "TestBytesReceived", bytes.to_string());
                put(&mut run, "TotalBytesReceived", (bytes + overhead).to_string());
                put(&mut run, "TotalBytesSent", (overhead / 20 + 300).to_string());
            } else {
                put(&mut run, "TestBytesSent", bytes.to_string());
                put(&mut run, "TotalBytesSent", (bytes + overhead).to_string());
                put(&mut run, "TotalBytesReceived", (overhead / 20 + 300).to_string());
            }
            put(&mut run, "IPAddressUsed", address_used(dev));
            run.duration = Duration::from_micros(total_us.max(1000));
        }
        DiagnosticKind::ServerSelection => {
            let reps = number("NumberOfRepetitions", 3).min(100);
            let timeout_us = number("Timeout", 1000).min(3_600_000) * 1000;
            let list = input("HostList");
            let mut best: Option<(u64, u64, u64, &str)> = None;
            let mut spent_us = 0;
            for host in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                let (mut ok, mut sum, mut min, mut max) = (0u64, 0u64, u64::MAX, 0u64);
                for _ in 0..reps {
                    let rtt = rtt_us(&mut r);
                    if r.chance(s.loss) || rtt > timeout_us {
                        spent_us += timeout_us;
                        continue;
                    }
                    spent_us += rtt;
                    ok += 1;
                    sum += rtt;
                    min = min.min(rtt);
                    max = max.max(rtt);
                }
                if ok > 0 && best.is_none_or(|b| sum / ok < b.0) {
                    best = Some((sum / ok, min, max, host));
                }
            }
            match best {
                None => run.end_state = "Error_CannotResolveHostName",
                Some((avg, min, max, host)) => {
                    // TR-181 ServerSelectionDiagnostics reports response times in µs.
                    put(&mut run, "FastestHost", host.to_string());
                    put(&mut run, "AverageResponseTime", avg.to_string());
                    put(&mut run, "MinimumResponseTime", min.to_string());
                    put(&mut run, "MaximumResponseTime", max.to_string());
                    put(&mut run, "IPAddressUsed", address_used(dev));
                }
            }
            run.duration = Duration::from_micros(spent_us.max(1000));
        }
    }
    run
}

fn is_dynamic(model: &Model, loc: &Loc) -> bool {
    model.tree.node(loc.node).param().is_some_and(|p| matches!(p.default, crate::model::tree::ValueSource::Dynamic(_)))
}

/// The address a host name resolves to in the simulation (the literal itself, else a stable
/// address in TEST-NET-2, RFC 5737).
fn resolved(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    format!("198.51.100.{}", fnv1a(host) % 254 + 1)
}

/// The CPE's own WAN-side address as the tests use it (TEST-NET-3, RFC 5737, per CPE index).
fn address_used(dev: &Device<'_>) -> String {
    format!("203.0.{}.{}", (dev.id.0 >> 8) % 256, dev.id.0 % 254 + 1)
}

/// A dateTime with microseconds, as TR-143 writes ROMTime and friends.
fn datetime_us(t: UnixMillis) -> String {
    let base = format_datetime(t);
    let s = std::str::from_utf8(&base[..base.len() - 1]).unwrap_or("0001-01-01T00:00:00");
    format!("{s}.{:03}000Z", t.0 % 1000)
}

/// The test `run` ended at `now`: writes its results and final DiagnosticsState into `delta`
/// (as the CPE's own values). The caller owes `8 DIAGNOSTICS COMPLETE`.
pub fn complete(delta: &mut Delta, run: &DiagnosticRun, now: UnixMillis) {
    if let Some((table, cols, n)) = &run.hops {
        let d = delta.inner_mut();
        d.added.retain(|e| e.table != *table);
        d.values.retain(|v| !cols.contains(&v.loc.node));
        for number in 1..=*n {
            d.added.push(crate::model::delta::InstanceEntry { table: *table, parent: Inst::new(), number, source: Source::Cpe });
        }
    }
    for (loc, v) in &run.values {
        delta.set_value(loc.clone(), v, Source::Cpe);
    }
    for (loc, before) in &run.times {
        delta.set_value(loc.clone(), &datetime_us(UnixMillis(now.0.saturating_sub(*before))), Source::Cpe);
    }
    delta.set_value(run.state.clone(), run.end_state, Source::Cpe);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_urls() {
        for ok in ["127.0.0.1", "::1", "example.com", "a-b.example.", "x"] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in ["", "-a.example", "a..b", "a b", "exa_mple.com", &"a".repeat(64), "1.2.3.4:80"] {
            assert!(!valid_host(bad), "{bad}");
        }
        assert!(valid_url("http://h/x") && valid_url("ftp://h/x") && valid_url("https://[::1]:8/x"));
        assert!(!valid_url("file:///etc/passwd") && !valid_url("http//h") && !valid_url("h/x"));
        assert!(valid_host_list("a.example, 127.0.0.1"));
        assert!(!valid_host_list("a,,b") && !valid_host_list(&["h"; 11].join(",")));
    }

    #[test]
    fn kinds_split_names_in_both_roots() {
        assert_eq!(split("Device", "Device.IP.Diagnostics.IPPing.Host"), Some((DiagnosticKind::IpPing, "Host")));
        assert_eq!(
            split("InternetGatewayDevice", "InternetGatewayDevice.TraceRouteDiagnostics.MaxHopCount"),
            Some((DiagnosticKind::TraceRoute, "MaxHopCount"))
        );
        assert_eq!(split("InternetGatewayDevice", "InternetGatewayDevice.ServerSelectionDiagnostics.HostList"), None);
        assert_eq!(split("Device", "Device.DeviceInfo.UpTime"), None);
    }

    fn tr181() -> Model {
        crate::config::load_profile(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-tr181-gateway")).unwrap()
    }

    fn ping_run(model: &Model, delta: &Delta, at: u64) -> DiagnosticRun {
        let dev = model.device(crate::model::DeviceId(7), delta, UnixMillis(0), UnixMillis(at));
        let state = param_loc(model, "Device.IP.Diagnostics.IPPing.DiagnosticsState").unwrap();
        plan(&dev, DiagnosticKind::IpPing, state, &model.diagnostics, UnixMillis(at))
    }

    #[test]
    fn outcomes_are_deterministic_and_follow_the_settings() {
        let mut model = tr181();
        let delta = Delta::default();
        assert_eq!(ping_run(&model, &delta, 1000), ping_run(&model, &delta, 1000), "same CPE, same request time: same results");
        model.diagnostics.failure_share = 1.0;
        let failed = ping_run(&model, &delta, 1000);
        assert_eq!(failed.end_state, "Error_CannotResolveHostName");
        assert!(failed.values.is_empty());
        model.diagnostics.failure_share = 0.0;
        model.diagnostics.loss = 1.0;
        let lost = ping_run(&model, &delta, 1000);
        assert_eq!(lost.end_state, "Complete", "all echoes lost is a complete test (TR-143), not an error");
        let text = |run: &DiagnosticRun, name: &str| {
            let loc = param_loc(&model, &format!("Device.IP.Diagnostics.IPPing.{name}")).unwrap();
            run.values.iter().find(|(l, _)| *l == loc).map(|(_, v)| v.to_string()).unwrap()
        };
        assert_eq!((text(&lost, "SuccessCount").as_str(), text(&lost, "FailureCount").as_str()), ("0", "3"));
        // Three echoes one second apart, each waiting out the 1000 ms Timeout.
        assert_eq!(lost.duration, Duration::from_secs(3));
    }

    #[test]
    fn completion_writes_results_and_replaces_route_hops() {
        let model = tr181();
        let mut delta = Delta::default();
        let obj = "Device.IP.Diagnostics.TraceRoute.";
        let state = param_loc(&model, &format!("{obj}DiagnosticsState")).unwrap();
        let mut hops = Vec::new();
        for at in [1_000u64, 2_000, 3_000] {
            let run = plan(
                &model.device(crate::model::DeviceId(1), &delta, UnixMillis(0), UnixMillis(at)),
                DiagnosticKind::TraceRoute,
                state.clone(),
                &model.diagnostics,
                UnixMillis(at),
            );
            complete(&mut delta, &run, UnixMillis(at + 5000));
            let dev = model.device(crate::model::DeviceId(1), &delta, UnixMillis(0), UnixMillis(at + 5000));
            let n: u32 = dev.get(&format!("{obj}RouteHopsNumberOfEntries")).unwrap().parse().unwrap();
            let table = model.tree.by_schema_path(&format!("{obj}RouteHops.")).unwrap();
            assert_eq!(dev.instances(table, &[]).as_slice(), (1..=n).collect::<Vec<_>>().as_slice(), "rows 1..=n, the last test's only");
            assert_eq!(dev.get(&format!("{obj}DiagnosticsState")).as_deref(), Some("Complete"));
            hops.push(n);
        }
        assert!(hops.iter().all(|n| (5..=11).contains(n)), "{hops:?}");
    }

    #[test]
    fn timestamps_have_microseconds() {
        assert_eq!(datetime_us(UnixMillis(1_700_000_000_123)), "2023-11-14T22:13:20.123000Z");
    }
}
