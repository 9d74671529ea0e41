//! Turning the flags of a run or a sweep into a validated plan before anything starts (ripgrep's
//! low/high args split): every value is checked against its allowed range, the ACS URL is parsed,
//! output files are proven creatable and the fleet is proven to fit in memory, so a bad flag is a
//! one-line usage error (exit 2) before the first packet, not a crash or a lost run.
//!
//! It owns the rules, not the run: it starts no runtime, opens no socket and leaves no file behind.
//! `main.rs` calls [`validate`] first thing for `cpe-sim` and `cpe-sim sweep`. It does not load the
//! profile (the loader reports its own errors, naming file and key).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::cwmp::envelope::urn_minor;
use crate::slice::Slice;
use crate::stats::threshold::Threshold;
use crate::stats::timeline::MAX_PHASES;
use crate::time::UnixMillis;

/// Shortest `--progress-interval`: below it, progress lines would be most of the run's work.
pub const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Longest duration any flag accepts (365 days): beyond, deadlines overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Largest interval multiplier: × 1e6 turns a 300 s period into ~9.5 years; beyond, periods
/// would overflow the clock.
pub const MAX_MULTIPLIER: f64 = 1e6;

/// Estimated memory of one simulated CPE in a fleet, in bytes.
pub const BYTES_PER_CPE: u64 = 160;

/// Fixed memory of a fleet run besides its CPEs (runtimes, buffers, histograms), in bytes.
pub const FLEET_BASE_BYTES: u64 = 128 << 20;

/// The flags only `cpe-sim sweep` has, borrowed from `cli::SweepArgs`.
#[derive(Debug, Clone, Copy)]
pub struct SweepFlags<'a> {
    /// `--multipliers`: one step per value.
    pub multipliers: &'a [f64],
    /// `--step-duration`: how long each step runs.
    pub step_duration: Duration,
    /// `--sweep-json`: where the sweep table goes.
    pub sweep_json: Option<&'a Path>,
}

/// What validation parsed along the way, so that nothing is parsed twice.
#[derive(Debug)]
pub struct Checked {
    /// `--log-level`.
    pub log_level: tracing::Level,
    /// `--acs-url`, parsed (http or https, with a host); `None`: the embedded ACS.
    pub acs_url: Option<http::Uri>,
    /// `--threshold` rules, parsed, in the order given.
    pub thresholds: Vec<Threshold>,
    /// This process's slice of the fleet (`--slice`, or `JOB_COMPLETION_INDEX` with `--slices`);
    /// [`Slice::WHOLE`] without either.
    pub slice: Slice,
    /// `--start-at`, parsed: when the first CPE may boot.
    pub start_at: Option<UnixMillis>,
}

/// A flag outside its allowed range: one line naming the flag, the value given and the rule,
/// e.g. `--max-connections 0: must be at least 1`, `--mqtt-password <hidden>: needs
/// --mqtt-username`, or without a value when the rule is about the flag itself
/// (`--controller-id: is required with a ws:// …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The flag as typed, e.g. `--max-connections`.
    pub flag: &'static str,
    /// The value given, as the user would type it; empty when the flag was not given a value
    /// (or the rule is about the flag, not its value). See [`UsageError::shown_value`].
    pub value: String,
    /// The allowed range, or what is wrong.
    pub rule: String,
}

impl UsageError {
    /// The value as an error line may show it: `None` when there is none, `<hidden>` for a
    /// password flag (any flag ending in `password`: `--mqtt-password`, `--acs-password`), and
    /// any URL in it without its userinfo (`ftp://u:pw@h/` shows as `ftp://***@h/`), so no secret
    /// reaches a terminal or a CI log. The one rule for every refusal: call sites pass the value
    /// as given.
    pub fn shown_value(&self) -> Option<std::borrow::Cow<'_, str>> {
        if self.value.is_empty() {
            None
        } else if self.flag.ends_with("password") {
            Some("<hidden>".into())
        } else {
            Some(crate::transport::without_userinfo(&self.value))
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shown_value() {
            None => write!(f, "{}: {}", self.flag, self.rule),
            // Quote values a shell would split or a terminal would mangle, so the line stays one line.
            Some(v) if v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"') => {
                write!(f, "{} {v:?}: {}", self.flag, self.rule)
            }
            Some(v) => write!(f, "{} {v}: {}", self.flag, self.rule),
        }
    }
}

impl std::error::Error for UsageError {}

/// The USP flags (issue 14): only with `--protocol usp`, a broker URL we can use, endpoint IDs
/// that fit an MQTT topic.
fn check_usp(args: &RunArgs) -> Result<(), UsageError> {
    let usp = args.protocol == "usp";
    // One table of the flags only one protocol reads: given for the other, they would be
    // silently ignored (a threshold that never fails a CI gate, a listener that never opens).
    // Each with the value given (`None`: not given), shown in the refusal.
    let usp_only = [
        ("--usp-url", args.usp_url.clone()),
        ("--controller-id", args.controller_id.clone()),
        ("--mqtt-username", args.mqtt_username.clone()),
        ("--mqtt-password", args.mqtt_password.clone()),
        ("--usp-endpoint-id", Some(args.usp_endpoint_id.clone()).filter(|t| t != crate::usp::endpoint::DEFAULT_TEMPLATE)),
        (
            "--mqtt-keep-alive",
            Some(format!("{}s", args.mqtt_keep_alive.as_secs()))
                .filter(|_| Ok(args.mqtt_keep_alive) != crate::cli::parse_duration(crate::cli::MQTT_KEEP_ALIVE_DEFAULT)),
        ),
        ("--mqtt-version", Some(args.mqtt_version.clone()).filter(|v| v != "5")),
    ];
    let cwmp_only = [
        ("--cr-bind-addr", args.cr_bind_addr.map(|a| a.to_string())),
        ("--udp-cr-bind-addr", args.udp_cr_bind_addr.map(|a| a.to_string())),
        ("--hdr-log", args.hdr_log.as_ref().map(|p| p.display().to_string())),
    ];
    let (other, needs): (&[(&'static str, Option<String>)], &str) =
        if usp { (&cwmp_only, "--protocol cwmp (USP runs do not read it yet)") } else { (&usp_only, "--protocol usp") };
    if let Some((flag, Some(value))) = other.iter().find(|(_, given)| given.is_some()) {
        return Err(usage(flag, value, format!("needs {needs}")));
    }
    if !usp {
        return Ok(());
    }
    if args.acs_url.is_some() {
        return Err(usage(
            "--acs-url",
            args.acs_url.clone().unwrap_or_default(),
            "is for --protocol cwmp; USP Agents connect to --usp-url",
        ));
    }
    // Without --usp-url the embedded Controller serves WebSocket on loopback; a ws:// URL is
    // another Controller, whose endpoint ID the Records must name.
    if let Some(u) = &args.usp_url {
        let target = crate::mtp::UspTarget::parse(u).map_err(|why| usage("--usp-url", u, why))?;
        if matches!(target, crate::mtp::UspTarget::WebSocket(_)) && args.controller_id.is_none() {
            return Err(usage("--controller-id", "", "is required with a ws:// or wss:// --usp-url (the Controller's endpoint ID)"));
        }
    }
    let mqtt = matches!(args.usp_url.as_deref().map(crate::mtp::UspTarget::parse), Some(Ok(crate::mtp::UspTarget::Mqtt(_))));
    crate::mtp::mqtt::MqttVersion::parse(&args.mqtt_version).map_err(|why| usage("--mqtt-version", &args.mqtt_version, why))?;
    if args.mqtt_version != "5" && !mqtt {
        return Err(usage("--mqtt-version", &args.mqtt_version, "needs an mqtt:// or mqtts:// --usp-url (WebSocket has no MQTT version)"));
    }
    if let Some(id) = &args.controller_id {
        if !crate::usp::endpoint::is_valid(id) {
            return Err(usage("--controller-id", id, "must be a TR-369 endpoint ID (authority:…:id) without spaces, `/`, `+` or `#`"));
        }
    }
    crate::usp::EndpointTemplate::compile(&args.usp_endpoint_id)
        .map_err(|e| usage("--usp-endpoint-id", &args.usp_endpoint_id, e.to_string()))?;
    if args.mqtt_password.is_some() && args.mqtt_username.is_none() {
        return Err(usage("--mqtt-password", args.mqtt_password.clone().unwrap_or_default(), "needs --mqtt-username"));
    }
    let keep_alive = args.mqtt_keep_alive.as_secs();
    if !(5..=u16::MAX as u64).contains(&keep_alive) {
        return Err(usage("--mqtt-keep-alive", format!("{keep_alive}s"), "must be 5s … 65535s (MQTT's two-byte field)"));
    }
    Ok(())
}

fn usage(flag: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> UsageError {
    UsageError { flag, value: value.to_string(), rule: rule.into() }
}

/// Checks every flag of a run (and of a sweep when `sweep` is given) before anything starts.
///
/// Output files (`--report-json`, `--hdr-log`, `--sweep-json`) are opened for writing to prove
/// they can be created; one that did not exist is removed again and an existing one is left as it
/// was (not truncated). The memory check reads `MemAvailable` from `/proc/meminfo` (skipped where
/// that cannot be read) and applies to fleets and sweeps only.
///
/// # Errors
/// The first flag found outside its allowed range, as a [`UsageError`].
pub fn validate(args: &RunArgs, sweep: Option<SweepFlags<'_>>) -> Result<Checked, UsageError> {
    let log_level = args
        .log_level
        .parse::<tracing::Level>()
        .map_err(|_| usage("--log-level", &args.log_level, "must be one of error, warn, info, debug, trace"))?;
    let acs_url = args.acs_url.as_deref().map(parse_acs_url).transpose()?;
    check_credentials(args)?;
    check_tls_files(args)?;
    check_usp(args)?;
    if let Some(v) = &args.cwmp_version {
        if urn_minor(v).is_none() {
            return Err(usage("--cwmp-version", v, "must be one of cwmp-1-0 … cwmp-1-4"));
        }
    }
    positive_duration("--timeout", args.timeout)?;
    if args.max_body == 0 {
        return Err(usage("--max-body", args.max_body, "must be at least 1 byte"));
    }
    if let Some(d) = args.duration {
        positive_duration("--duration", d)?;
    }
    // Zero is meaningful: cut open sessions at once.
    at_most("--drain-timeout", args.drain_timeout)?;
    if let Some(host) = &args.cr_advertise_host {
        let ok = !host.is_empty()
            && format!("http://{host}/").parse::<http::Uri>().is_ok_and(|u| u.host() == Some(host.trim_matches(['[', ']'])));
        if !ok {
            return Err(usage("--cr-advertise-host", host, "must be a host name or IP address (no scheme, port or path)"));
        }
    }
    if args.cr_rate == 0 {
        return Err(usage("--cr-rate", args.cr_rate, "must be at least 1 per second"));
    }
    if let Some(a) = args.udp_cr_bind_addr {
        let unicast = match a.ip() {
            std::net::IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
            std::net::IpAddr::V6(v6) => !v6.is_multicast(),
        };
        if !unicast {
            return Err(usage("--udp-cr-bind-addr", a, "must be a unicast address (or 0.0.0.0 / [::]) and port"));
        }
    }
    check_fleet_size(args)?;
    let slice = check_slice(args, std::env::var(crate::slice::JOB_COMPLETION_INDEX).ok().as_deref())?;
    let start_at = args.start_at.as_deref().map(|t| parse_start_at(t, UnixMillis::now())).transpose()?;
    if args.shards == Some(0) {
        return Err(usage("--shards", 0, format!("must be 1 … {}", u16::MAX)));
    }
    at_most("--boot-spread", args.boot_spread)?;
    if let Some(r) = args.boot_rate {
        positive_number("--boot-rate", r, f64::MAX, "CPEs per second")?;
        // The last CPE boots at cpes ÷ rate: within the same bound as --boot-spread.
        let last = args.cpes.saturating_sub(1) as f64 / r;
        if last > MAX_DURATION.as_secs_f64() {
            let least = args.cpes.saturating_sub(1) as f64 / MAX_DURATION.as_secs_f64();
            return Err(usage(
                "--boot-rate",
                r,
                format!(
                    "boots the last of {} CPEs after {last:.3e} s, beyond {}; must be at least {least:.3e} CPEs per second",
                    args.cpes,
                    show(MAX_DURATION)
                ),
            ));
        }
    }
    positive_number("--interval-multiplier", args.interval_multiplier, MAX_MULTIPLIER, "")?;
    if let Some(d) = args.inform_interval {
        // TR-069 Amd 6 Table 25: PeriodicInformInterval is an unsignedInt[1:] of seconds.
        if d < Duration::from_secs(1) || d > MAX_DURATION {
            return Err(usage("--inform-interval", show(d), format!("must be 1s … {}", show(MAX_DURATION))));
        }
    }
    if args.max_connections == 0 {
        return Err(usage("--max-connections", 0, "must be at least 1"));
    }
    if args.max_transfers == 0 || args.max_transfers > tokio::sync::Semaphore::MAX_PERMITS {
        return Err(usage("--max-transfers", args.max_transfers, format!("must be 1 … {}", tokio::sync::Semaphore::MAX_PERMITS)));
    }
    positive_duration("--transfer-timeout", args.transfer_timeout)?;
    if args.progress_interval < MIN_PROGRESS_INTERVAL || args.progress_interval > MAX_DURATION {
        return Err(usage(
            "--progress-interval",
            show(args.progress_interval),
            format!("must be {} … {}", show(MIN_PROGRESS_INTERVAL), show(MAX_DURATION)),
        ));
    }
    let thresholds = args
        .thresholds
        .iter()
        .map(|t| {
            // A USP run's rules name the USP report's figures.
            let parsed = Threshold::parse_for(&args.protocol, t);
            parsed.map_err(|e| usage("--threshold", t, e.strip_prefix(&format!("`{t}`: ")).unwrap_or(&e).to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(s) = &sweep {
        if s.multipliers.is_empty() {
            return Err(usage("--multipliers", "", "must list at least one multiplier, e.g. 1,0.5,0.25"));
        }
        if s.multipliers.len() > MAX_PHASES {
            let n = s.multipliers.len();
            return Err(usage(
                "--multipliers",
                format!("{n} values"),
                format!("must list 1 … {MAX_PHASES} multipliers (each step keeps its own latency histograms)"),
            ));
        }
        for &m in s.multipliers {
            positive_number("--multipliers", m, MAX_MULTIPLIER, "")?;
        }
        positive_duration("--step-duration", s.step_duration)?;
    }
    if sweep.is_some() || args.cpes > 1 {
        let r = slice.of(args.first_index, args.cpes);
        check_memory(r.end - r.start, mem_available())?;
    }
    // Files last: a usage error above leaves nothing behind to clean up.
    creatable("--report-json", args.report_json.as_deref())?;
    creatable("--hdr-log", args.hdr_log.as_deref())?;
    creatable("--report-html", args.report_html.as_deref())?;
    if let Some(m) = args.metrics_bind_addr {
        let taken = [args.api_bind_addr, args.cr_bind_addr].into_iter().flatten().any(|a| a == m && a.port() != 0);
        if taken {
            return Err(usage("--metrics-bind-addr", m, "must differ from --api-bind-addr and --cr-bind-addr"));
        }
    }
    creatable("--sweep-json", sweep.and_then(|s| s.sweep_json))?;
    Ok(Checked { log_level, acs_url, thresholds, slice, start_at })
}

/// The slice of the fleet this process runs: `--slice K/N` wins over `JOB_COMPLETION_INDEX`
/// (`job_index`, read from the environment by the caller) with `--slices N`. A slice that would
/// get no CPE is refused: N processes need at least N CPEs.
fn check_slice(args: &RunArgs, job_index: Option<&str>) -> Result<Slice, UsageError> {
    let slice = match (&args.slice, args.slices) {
        (Some(s), _) => Slice::parse(s).map_err(|e| usage("--slice", s, e.0))?,
        (None, n) => match Slice::from_job_index(job_index, n) {
            Ok(Some(s)) => s,
            Ok(None) if n.is_some() => {
                return Err(usage(
                    "--slices",
                    n.unwrap_or_default(),
                    format!("needs the slice index from {} (or give --slice K/N)", crate::slice::JOB_COMPLETION_INDEX),
                ))
            }
            Ok(None) => Slice::WHOLE,
            Err(e) => return Err(usage("--slices", n.map_or_else(|| "(unset)".to_string(), |n| n.to_string()), e.0)),
        },
    };
    if slice.count > args.cpes {
        return Err(usage(
            "--slice",
            slice,
            format!("cuts {} CPEs into {} slices; each slice needs at least one CPE", args.cpes, slice.count),
        ));
    }
    Ok(slice)
}

/// Longest wait `--start-at` may ask for (24 h): beyond, it is more likely a typo than a plan.
pub const MAX_START_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `--start-at`: an RFC 3339 time or Unix seconds, at most [`MAX_START_WAIT`] after `now`. A time
/// already past is accepted (a pod started late begins at once and says so).
fn parse_start_at(text: &str, now: UnixMillis) -> Result<UnixMillis, UsageError> {
    let rule = "must be an RFC 3339 time (2026-12-01T10:00:00Z) or Unix seconds";
    let t = text.trim();
    let ms = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().ok().and_then(|s| s.checked_mul(1000)).ok_or_else(|| usage("--start-at", text, rule))?
    } else {
        let ms = crate::time::parse_datetime_ms(t).ok_or_else(|| usage("--start-at", text, rule))?;
        u64::try_from(ms).map_err(|_| usage("--start-at", text, "must be after 1970"))?
    };
    if UnixMillis(ms).since(now) > MAX_START_WAIT {
        return Err(usage("--start-at", text, format!("must be at most {} from now", show(MAX_START_WAIT))));
    }
    Ok(UnixMillis(ms))
}

/// The flags of one slice's run: `--first-index` and `--cpes` narrowed to the slice's range, and
/// `--boot-rate` to the slice's share of it.
pub fn sliced(args: &RunArgs, slice: Slice) -> RunArgs {
    let r = slice.of(args.first_index, args.cpes);
    narrowed(args, r.start, r.end - r.start)
}

/// The flags of a part of the run: `cpes` CPEs from `first_index`, with its share of a
/// fleet-wide `--boot-rate` (N parts together boot at the rate asked for). The one rule for a
/// slice of flags and of a scenario's fleets.
pub fn narrowed(args: &RunArgs, first_index: u32, cpes: u32) -> RunArgs {
    let boot_rate = args.boot_rate.map(|b| Slice::rate_share(b, cpes, args.cpes));
    RunArgs { first_index, cpes, boot_rate, ..args.clone() }
}

/// Largest `--time-scale`.
pub const MAX_TIME_SCALE: f64 = 1e6;

/// The flags only `cpe-sim run <scenario>` has: `--time-scale` in (0, 1e6], `--acs-backlog`
/// 1 … 65535.
///
/// # Errors
/// The flag outside its range, as a [`UsageError`].
pub fn check_scenario_flags(time_scale: f64, acs_backlog: Option<u32>) -> Result<(), UsageError> {
    positive_number("--time-scale", time_scale, MAX_TIME_SCALE, "")?;
    check_backlog("--acs-backlog", acs_backlog)
}

/// A listen backlog: 1 … 65535 (the kernel caps it at `net.core.somaxconn`).
///
/// # Errors
/// Outside that range.
pub fn check_backlog(flag: &'static str, backlog: Option<u32>) -> Result<(), UsageError> {
    match backlog {
        Some(b) if b == 0 || b > u16::MAX as u32 => Err(usage(flag, b, "must be 1 … 65535")),
        _ => Ok(()),
    }
}

/// A duration as the user would type it: `250ms`, `5s`, `1.5s`, `8760h`.
fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 && d.as_secs() >= 3600 && d.as_secs() % 3600 == 0 {
        format!("{}h", d.as_secs() / 3600)
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

fn at_most(flag: &'static str, d: Duration) -> Result<(), UsageError> {
    if d > MAX_DURATION {
        return Err(usage(flag, show(d), format!("must be at most {}", show(MAX_DURATION))));
    }
    Ok(())
}

fn positive_duration(flag: &'static str, d: Duration) -> Result<(), UsageError> {
    if d.is_zero() || d > MAX_DURATION {
        return Err(usage(flag, show(d), format!("must be greater than 0s and at most {}", show(MAX_DURATION))));
    }
    Ok(())
}

/// A finite number in (0, `max`].
fn positive_number(flag: &'static str, x: f64, max: f64, unit: &str) -> Result<(), UsageError> {
    if x.is_finite() && x > 0.0 && x <= max {
        return Ok(());
    }
    let range = if max == f64::MAX {
        "must be a finite number greater than 0".to_string()
    } else {
        format!("must be a number greater than 0 and at most {max}")
    };
    Err(usage(flag, x, if unit.is_empty() { range } else { format!("{range} ({unit})") }))
}

/// `--acs-url` (or a scenario's endpoint): http or https with a host.
pub(crate) fn parse_acs_url(text: &str) -> Result<http::Uri, UsageError> {
    let rule = "must be an http:// or https:// URL with a host, e.g. http://acs.example:7547/";
    let uri: http::Uri = text.parse().map_err(|_| usage("--acs-url", text, rule))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    if !scheme_ok || uri.host().is_none_or(str::is_empty) {
        return Err(usage("--acs-url", text, rule));
    }
    Ok(uri)
}

fn check_credentials(args: &RunArgs) -> Result<(), UsageError> {
    if args.acs_password.is_some() && args.acs_username.is_none() {
        return Err(usage("--acs-password", args.acs_password.clone().unwrap_or_default(), "needs --acs-username"));
    }
    Ok(())
}

fn check_tls_files(args: &RunArgs) -> Result<(), UsageError> {
    match (&args.client_cert, &args.client_key) {
        (Some(c), None) => return Err(usage("--client-cert", c.display(), "needs --client-key")),
        (None, Some(k)) => return Err(usage("--client-key", k.display(), "needs --client-cert")),
        _ => {}
    }
    for (flag, path) in [("--ca-cert-file", &args.ca_cert_file), ("--client-cert", &args.client_cert), ("--client-key", &args.client_key)] {
        if let Some(p) = path {
            readable(flag, p)?;
        }
    }
    Ok(())
}

fn readable(flag: &'static str, path: &Path) -> Result<(), UsageError> {
    match std::fs::File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Ok(()),
        Ok(_) => Err(usage(flag, path.display(), "must be a readable file, not a directory")),
        Err(e) => Err(usage(flag, path.display(), format!("must be a readable file ({e})"))),
    }
}

fn check_fleet_size(args: &RunArgs) -> Result<(), UsageError> {
    if args.cpes == 0 {
        return Err(usage("--cpes", 0, format!("must be 1 … {}", u32::MAX)));
    }
    if args.first_index.checked_add(args.cpes).is_none() {
        return Err(usage(
            "--cpes",
            args.cpes,
            format!(
                "with --first-index {} must be at most {} (first index + CPEs ≤ {})",
                args.first_index,
                u32::MAX - args.first_index,
                u32::MAX
            ),
        ));
    }
    Ok(())
}

/// Estimated memory of a fleet of `cpes`, in bytes.
pub fn fleet_bytes(cpes: u32) -> u64 {
    FLEET_BASE_BYTES + BYTES_PER_CPE * cpes as u64
}

/// Refuses a fleet whose estimate exceeds `available` bytes (`None`: unknown, not checked).
fn check_memory(cpes: u32, available: Option<u64>) -> Result<(), UsageError> {
    let need = fleet_bytes(cpes);
    match available {
        Some(have) if need > have => Err(usage(
            "--cpes",
            cpes,
            format!(
                "needs about {} ({BYTES_PER_CPE} B per CPE + {}) but {} is available (MemAvailable); at most {} CPEs fit",
                mib(need),
                mib(FLEET_BASE_BYTES),
                mib(have),
                have.saturating_sub(FLEET_BASE_BYTES) / BYTES_PER_CPE
            ),
        )),
        _ => Ok(()),
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

/// `MemAvailable` from `/proc/meminfo`, in bytes; `None` where it cannot be read.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.trim_start_matches("MemAvailable:").trim().trim_end_matches("kB").trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Proves an output file can be created by opening it for writing (not truncating); removes it
/// again if this call created it.
fn creatable(flag: &'static str, path: Option<&Path>) -> Result<(), UsageError> {
    let Some(path) = path else { return Ok(()) };
    if path.is_dir() {
        return Err(usage(flag, path.display(), "must be a file path, not a directory"));
    }
    let existed = path.exists();
    match std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(usage(flag, path.display(), format!("cannot be created ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Args, Command};
    use clap::Parser;

    fn run_args(flags: &[&str]) -> RunArgs {
        let mut argv = vec!["cpe-sim"];
        argv.extend_from_slice(flags);
        Args::try_parse_from(argv).expect("flags parse").run
    }

    /// The error line for `flags`, which must be refused.
    fn refused(flags: &[&str]) -> String {
        match validate(&run_args(flags), None) {
            Ok(_) => panic!("{flags:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn refusals_show_the_value_given_none_or_hidden() {
        // The value given, not `""` (review finding 8).
        assert_eq!(refused(&["--mqtt-username", "x"]), "--mqtt-username x: needs --protocol usp");
        assert_eq!(refused(&["--mqtt-version", "3.1.1"]), "--mqtt-version 3.1.1: needs --protocol usp");
        assert_eq!(refused(&["--usp-url", "mqtt://u:pw@127.0.0.1:1883"]), "--usp-url mqtt://<hidden>@127.0.0.1:1883: needs --protocol usp");
        // A URL's userinfo is hidden by the one rule, whichever check refused it.
        assert_eq!(
            refused(&["--acs-url", "ftp://admin:s3cret@127.0.0.1/"]),
            "--acs-url ftp://<hidden>@127.0.0.1/: must be an http:// or https:// URL with a host, e.g. http://acs.example:7547/"
        );
        assert_eq!(
            refused(&[&["--protocol", "usp"][..], &["--acs-url", "http://u:pw@127.0.0.1:1/"]].concat()),
            "--acs-url http://<hidden>@127.0.0.1:1/: is for --protocol cwmp; USP Agents connect to --usp-url"
        );
        // A password is never shown, whatever the rule.
        assert_eq!(refused(&["--mqtt-password", "s3cret"]), "--mqtt-password <hidden>: needs --protocol usp");
        assert_eq!(refused(&["--protocol", "usp", "--mqtt-password", "s3cret"]), "--mqtt-password <hidden>: needs --mqtt-username");
        let usp = ["--protocol", "usp"];
        assert_eq!(
            refused(&[&usp[..], &["--hdr-log", "/tmp/x.hlog"]].concat()),
            "--hdr-log /tmp/x.hlog: needs --protocol cwmp (USP runs do not read it yet)"
        );
        // A rule about the flag itself (not given, or its value beside the point) shows none.
        assert_eq!(
            refused(&[&usp[..], &["--usp-url", "ws://127.0.0.1:1/x"]].concat()),
            "--controller-id: is required with a ws:// or wss:// --usp-url (the Controller's endpoint ID)"
        );
        assert_eq!(
            refused(&[&usp[..], &["--acs-url", "http://127.0.0.1:1/"]].concat()),
            "--acs-url http://127.0.0.1:1/: is for --protocol cwmp; USP Agents connect to --usp-url"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let c = validate(&run_args(&[]), None).expect("defaults");
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert!(c.acs_url.is_none() && c.thresholds.is_empty());
    }

    #[test]
    fn float_flags_must_be_finite_and_positive() {
        for v in ["NaN", "0", "-1", "inf", "1e7"] {
            let e = refused(&["--interval-multiplier", v]);
            assert!(e.starts_with("--interval-multiplier ") && e.contains("greater than 0"), "{e}");
        }
        for v in ["0", "NaN", "-5", "inf"] {
            let e = refused(&["--boot-rate", v]);
            assert!(e.starts_with("--boot-rate ") && e.contains("greater than 0"), "{e}");
        }
        assert!(validate(&run_args(&["--interval-multiplier", "0.001", "--boot-rate", "0.5"]), None).is_ok());
    }

    #[test]
    fn counts_that_cannot_be_zero() {
        assert_eq!(refused(&["--max-connections", "0"]), "--max-connections 0: must be at least 1");
        assert!(refused(&["--shards", "0"]).starts_with("--shards 0: must be 1"));
        assert!(refused(&["--cr-rate", "0"]).starts_with("--cr-rate 0: must be at least 1"));
        let mut a = run_args(&[]);
        a.cpes = 0;
        assert!(validate(&a, None).unwrap_err().to_string().starts_with("--cpes 0: must be 1"));
        a.cpes = 1;
        a.max_body = 0;
        assert!(validate(&a, None).unwrap_err().to_string().starts_with("--max-body 0:"));
    }

    #[test]
    fn first_index_plus_cpes_fits_u32() {
        let e = refused(&["--first-index", "4294967290", "--cpes", "10"]);
        assert!(e.starts_with("--cpes 10: with --first-index 4294967290 must be at most 5"), "{e}");
    }

    #[test]
    fn durations_that_cannot_be_zero() {
        let e = refused(&["--progress-interval", "0s"]);
        assert_eq!(e, "--progress-interval 0s: must be 100ms … 8760h");
        assert!(refused(&["--progress-interval", "50ms"]).starts_with("--progress-interval 50ms:"));
        assert!(refused(&["--timeout", "0"]).starts_with("--timeout 0s: must be greater than 0s"));
        assert!(refused(&["--drain-timeout", "9000h"]).starts_with("--drain-timeout 9000h: must be at most"));
        assert!(refused(&["--max-transfers", "0"]).starts_with("--max-transfers 0: must be 1 …"));
        assert!(refused(&["--transfer-timeout", "0"]).starts_with("--transfer-timeout 0s: must be greater than 0s"));
        assert!(refused(&["--transfer-timeout", "9000h"]).starts_with("--transfer-timeout 9000h: must be greater than 0s and at most"));
        assert!(refused(&["--boot-rate", "0.00000001", "--cpes", "2"]).starts_with("--boot-rate 0.00000001: boots the last of 2 CPEs"));
        // The time and the floor are shown as they are, not rounded to 8760h and 0.000000.
        let e = refused(&["--boot-rate", "1e-9", "--cpes", "5"]);
        assert!(e.contains("after 4.000e9 s, beyond 8760h") && e.contains("at least 1.268e-7 CPEs per second"), "{e}");
        assert!(refused(&["--boot-rate", "1e-300", "--cpes", "3"]).starts_with("--boot-rate"));
        assert!(refused(&["--duration", "0s"]).starts_with("--duration 0s:"));
        assert!(refused(&["--inform-interval", "0s"]).starts_with("--inform-interval 0s: must be 1s"));
        assert!(refused(&["--boot-spread", "9000h"]).starts_with("--boot-spread 9000h: must be at most 8760h"));
        assert!(validate(&run_args(&["--progress-interval", "100ms", "--boot-spread", "0s"]), None).is_ok());
    }

    #[test]
    fn acs_url_is_http_or_https_with_a_host() {
        for bad in ["ftp://x", "not a url", "http://", "/just/a/path", "acs.example:7547"] {
            let e = refused(&["--acs-url", bad]);
            assert!(e.starts_with("--acs-url ") && e.contains("must be an http:// or https:// URL"), "{e}");
        }
        assert!(refused(&["--acs-url", "not a url"]).starts_with("--acs-url \"not a url\": "));
        for good in ["http://127.0.0.1:7547/", "https://acs.example/cwmp", "http://[::1]:80/"] {
            let c = validate(&run_args(&["--acs-url", good]), None).expect(good);
            assert!(c.acs_url.is_some());
        }
    }

    #[test]
    fn output_files_must_be_creatable_and_are_left_alone() {
        let e = refused(&["--report-html", "/nonexistent-dir/x.html"]);
        assert!(e.starts_with("--report-html /nonexistent-dir/x.html: cannot be created"), "{e}");
        let e = refused(&["--metrics-bind-addr", "127.0.0.1:9100", "--api-bind-addr", "127.0.0.1:9100"]);
        assert_eq!(e, "--metrics-bind-addr 127.0.0.1:9100: must differ from --api-bind-addr and --cr-bind-addr");
        let e = refused(&["--report-json", "/nonexistent-dir/x.json"]);
        assert!(e.starts_with("--report-json /nonexistent-dir/x.json: cannot be created"), "{e}");
        // /proc refuses new files, even to root.
        assert!(refused(&["--hdr-log", "/proc/cpe-sim.hlog"]).starts_with("--hdr-log /proc/cpe-sim.hlog: cannot be created"));
        let dir = std::env::temp_dir();
        assert!(refused(&["--report-json", dir.to_str().expect("utf-8 temp dir")]).contains("not a directory"));
        let fresh = dir.join(format!("cpe-sim-plan-{}.json", std::process::id()));
        validate(&run_args(&["--report-json", fresh.to_str().expect("utf-8 temp dir")]), None).expect("creatable");
        assert!(!fresh.exists(), "a file validation created is removed again");
        std::fs::write(&fresh, "kept").expect("temp file");
        validate(&run_args(&["--report-json", fresh.to_str().expect("utf-8 temp dir")]), None).expect("creatable");
        assert_eq!(std::fs::read_to_string(&fresh).expect("temp file"), "kept", "an existing file is not truncated");
        let _ = std::fs::remove_file(&fresh);
    }

    #[test]
    fn thresholds_are_parsed_for_a_single_cpe_too() {
        let e = refused(&["--threshold", "garbage"]);
        assert!(e.starts_with("--threshold garbage: expected <path><op><value>"), "{e}");
        let c =
            validate(&run_args(&["--threshold", "Inform.p99<500ms", "--threshold", "sessions.failed_ratio<0.001"]), None).expect("rules");
        assert_eq!(c.thresholds.len(), 2);
    }

    #[test]
    fn a_fleet_that_does_not_fit_in_memory_is_refused() {
        assert!(check_memory(1_000_000, Some(1 << 30)).is_ok());
        let e = check_memory(100_000_000, Some(1 << 30)).unwrap_err().to_string();
        assert!(e.starts_with("--cpes 100000000: needs about 15387 MiB (160 B per CPE + 128 MiB) but 1024 MiB is available"), "{e}");
        assert!(e.ends_with("at most 5872025 CPEs fit"), "{e}");
        assert!(check_memory(u32::MAX, None).is_ok(), "unknown memory is not checked");
        assert!(mem_available().is_some_and(|b| b > 0), "Linux has /proc/meminfo");
    }

    #[test]
    fn other_flags() {
        assert!(refused(&["--log-level", "loud"]).starts_with("--log-level loud: must be one of"));
        assert!(refused(&["--cwmp-version", "cwmp-9-9"]).starts_with("--cwmp-version cwmp-9-9:"));
        assert_eq!(refused(&["--acs-password", "s3cret"]), "--acs-password <hidden>: needs --acs-username");
        let never_shown = refused(&["--acs-password", "has a space"]);
        assert_eq!(never_shown, "--acs-password <hidden>: needs --acs-username");
        assert!(refused(&["--client-cert", "c.pem"]).starts_with("--client-cert c.pem: needs --client-key"));
        assert!(refused(&["--ca-cert-file", "/no/such/ca.pem"]).starts_with("--ca-cert-file /no/such/ca.pem: must be a readable file"));
        assert!(refused(&["--cr-advertise-host", "http://x/"]).starts_with("--cr-advertise-host http://x/:"));
        assert!(validate(&run_args(&["--cr-advertise-host", "cpe.example"]), None).is_ok());
    }

    #[test]
    fn scenario_flags() {
        assert!(check_scenario_flags(0.01, Some(4096)).is_ok());
        assert!(check_scenario_flags(1.0, None).is_ok());
        assert_eq!(
            check_scenario_flags(0.0, None).unwrap_err().to_string(),
            "--time-scale 0: must be a number greater than 0 and at most 1000000"
        );
        assert!(check_scenario_flags(f64::NAN, None).is_err());
        assert_eq!(check_scenario_flags(1.0, Some(70_000)).unwrap_err().to_string(), "--acs-backlog 70000: must be 1 … 65535");
        assert!(check_scenario_flags(1.0, Some(0)).is_err());
    }

    #[test]
    fn sweep_flags() {
        let argv = ["cpe-sim", "sweep", "--multipliers", "1,NaN", "--step-duration", "1s"];
        let Some(Command::Sweep(s)) = Args::try_parse_from(argv).expect("flags parse").command else { panic!("not a sweep") };
        let flags = |m: &'static [f64], step: Duration, json: Option<&'static Path>| SweepFlags {
            multipliers: m,
            step_duration: step,
            sweep_json: json,
        };
        let e = validate(&s.run, Some(SweepFlags { multipliers: &s.multipliers, step_duration: s.step_duration, sweep_json: None }))
            .unwrap_err();
        assert!(e.to_string().starts_with("--multipliers NaN: must be a number greater than 0"), "{e}");
        assert!(validate(&s.run, Some(flags(&[1.0, 0.0], Duration::from_secs(1), None))).is_err());
        assert!(validate(&s.run, Some(flags(&[], Duration::from_secs(1), None))).is_err());
        let many: &'static [f64] = Box::leak(vec![0.5; MAX_PHASES + 1].into_boxed_slice());
        let e = validate(&s.run, Some(flags(many, Duration::from_secs(1), None))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--multipliers \"257 values\": must list 1 … 256 multipliers (each step keeps its own latency histograms)"
        );
        assert!(validate(&s.run, Some(flags(&many[..MAX_PHASES], Duration::from_secs(1), None))).is_ok());
        let e = validate(&s.run, Some(flags(&[1.0], Duration::ZERO, None))).unwrap_err();
        assert!(e.to_string().starts_with("--step-duration 0s:"), "{e}");
        let e = validate(&s.run, Some(flags(&[1.0], Duration::from_secs(1), Some(Path::new("/nonexistent-dir/s.json"))))).unwrap_err();
        assert!(e.to_string().starts_with("--sweep-json /nonexistent-dir/s.json: cannot be created"), "{e}");
        assert!(validate(&s.run, Some(flags(&[1.0, 0.5], Duration::from_secs(1), None))).is_ok());
    }

    #[test]
    fn slices_are_checked_and_narrow_the_fleet() {
        let args = run_args(&["--cpes", "10", "--first-index", "100", "--slice", "2/3"]);
        let slice = check_slice(&args, None).unwrap();
        let one = sliced(&args, slice);
        assert_eq!((one.first_index, one.cpes), (106, 4));
        // A fleet-wide boot rate is shared by the slices.
        let args = run_args(&["--cpes", "40", "--boot-rate", "10", "--slice", "0/2"]);
        assert_eq!(sliced(&args, check_slice(&args, None).unwrap()).boot_rate, Some(5.0));
        // The flag wins over the Job's index.
        let args = run_args(&["--cpes", "10", "--slice", "0/2", "--slices", "5"]);
        assert_eq!(check_slice(&args, Some("4")).unwrap(), Slice::new(0, 2).unwrap());
        let args = run_args(&["--cpes", "10", "--slices", "5"]);
        assert_eq!(check_slice(&args, Some("4")).unwrap(), Slice::new(4, 5).unwrap());
        assert_eq!(check_slice(&run_args(&["--cpes", "10"]), None).unwrap(), Slice::WHOLE);
        for (flags, job, says) in [
            (&["--cpes", "10", "--slice", "3/3"][..], None, "--slice 3/3: the slice index must be 0 … 2"),
            (&["--cpes", "10", "--slice", "1of3"][..], None, "--slice 1of3: must be K/N"),
            (&["--cpes", "2", "--slice", "0/3"][..], None, "--slice 0/3: cuts 2 CPEs into 3 slices"),
            (&["--cpes", "10", "--slices", "3"][..], None, "--slices 3: needs the slice index from JOB_COMPLETION_INDEX"),
            (&["--cpes", "10"][..], Some("1"), "--slices (unset): JOB_COMPLETION_INDEX=1 needs --slices N"),
            (&["--cpes", "10", "--slices", "2"][..], Some("2"), "--slices 2: the slice index must be 0 … 1"),
            (&["--cpes", "10", "--slices", "0"][..], Some("0"), "--slices 0: the number of slices must be 1"),
        ] {
            let e = check_slice(&run_args(flags), job).unwrap_err().to_string();
            assert!(e.starts_with(says), "{flags:?} {job:?}: {e}");
        }
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds_within_a_day() {
        let now = UnixMillis(1_790_000_000_000);
        assert_eq!(parse_start_at("1790000060", now), Ok(UnixMillis(1_790_000_060_000)));
        assert_eq!(parse_start_at("2026-09-21T14:13:20.5Z", now), Ok(UnixMillis(1_790_000_000_500)));
        // Already past: accepted (the run starts at once).
        assert_eq!(parse_start_at("1000", now), Ok(UnixMillis(1_000_000)));
        for bad in ["", "soon", "+30s", "2026-13-01", "-5", "99999999999999999999"] {
            assert!(parse_start_at(bad, now).unwrap_err().to_string().contains("must be an RFC 3339 time"), "{bad}");
        }
        let e = parse_start_at("1790200000", now).unwrap_err().to_string();
        assert!(e.contains("at most 24h from now"), "{e}");
    }
}
