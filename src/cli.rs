//! The command line: clap-derive data only; `main.rs` turns it into a run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// `--mqtt-keep-alive`'s default (`plan` tells a value given from it).
pub const MQTT_KEEP_ALIVE_DEFAULT: &str = "60s";

/// A TR-069 (CWMP) CPE simulator and ACS load generator.
///
/// Without --acs-url, cpe-sim starts its embedded ACS on a free loopback port and runs one CPE's
/// bootstrap session against it over real HTTP. With --acs-url, the CPE informs that ACS.
#[derive(Debug, Parser)]
#[command(name = "cpe-sim", version, about, long_about, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags of a CPE run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Device profile: a YAML file or a directory holding profile.yaml
    /// [default: the built-in example-tr181-gateway]
    #[arg(long, env = "CPE_SIM_PROFILE")]
    pub profile: Option<PathBuf>,

    /// ACS URL to inform (http:// or https://). Omit it to use the embedded ACS.
    #[arg(long, env = "CPE_SIM_ACS_URL")]
    pub acs_url: Option<String>,

    /// Log level: error, warn, info, debug (every SOAP body), trace
    #[arg(long, default_value = "info", env = "CPE_SIM_LOG_LEVEL")]
    pub log_level: String,

    /// Username for HTTP Basic/Digest auth to the ACS
    #[arg(long, env = "CPE_SIM_ACS_USERNAME")]
    pub acs_username: Option<String>,

    /// Password for HTTP Basic/Digest auth to the ACS
    #[arg(long, env = "CPE_SIM_ACS_PASSWORD", hide_env_values = true)]
    pub acs_password: Option<String>,

    /// Extra CA bundle (PEM) to trust for https ACS URLs, besides the system bundle
    #[arg(long)]
    pub ca_cert_file: Option<PathBuf>,

    /// Do not verify the ACS's TLS certificate (insecure: local tests only)
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", value_name = "BOOL")]
    pub tls_skip_verify: bool,

    /// Client certificate (PEM) for mutual TLS; needs --client-key
    #[arg(long)]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert
    #[arg(long)]
    pub client_key: Option<PathBuf>,

    /// cwmp namespace to speak (cwmp-1-0 … cwmp-1-4), overriding the profile
    #[arg(long)]
    pub cwmp_version: Option<String>,

    /// Time allowed to connect and for each ACS response (e.g. 30s, 500ms, 2m)
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Largest ACS response body accepted, in bytes (k and m suffixes allowed)
    #[arg(long, default_value = "4m", value_parser = parse_size)]
    pub max_body: usize,

    /// Keep running with periodic informs and retries for this long (e.g. 10m). Without it the
    /// run is one-shot unless the profile enables periodic informs; SIGINT/SIGTERM always end a
    /// run after the open session.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Listen for Connection Requests here (e.g. 0.0.0.0:7547): /cr for one CPE, /cr/cpe-N in a
    /// fleet; the URL is published into the data model so the next Inform reports it
    #[arg(long)]
    pub cr_bind_addr: Option<SocketAddr>,

    /// Parameter to publish the Connection Request URL in
    /// [default: <root>.ManagementServer.ConnectionRequestURL]
    #[arg(long)]
    pub cr_publish_path: Option<String>,

    /// Host in the published URL [default: the bind address, or the outbound address toward the
    /// ACS when bound to all addresses]
    #[arg(long)]
    pub cr_advertise_host: Option<String>,

    /// Connection Requests accepted per second across all CPEs (beyond: 503)
    #[arg(long, default_value_t = 1000)]
    pub cr_rate: u32,

    /// Listen for UDP Connection Requests here (TR-069 Annex G, e.g. 0.0.0.0:7547): every CPE
    /// publishes this host:port as ManagementServer.UDPConnectionRequestAddress; a datagram signed
    /// with a CPE's ConnectionRequestPassword wakes it (at most --cr-rate a second)
    #[arg(long)]
    pub udp_cr_bind_addr: Option<SocketAddr>,

    /// Keep each CPE's state here across restarts: a restarted simulator resumes (1 BOOT, not
    /// 0 BOOTSTRAP), keeping what the ACS set and pending M-events
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// Serve the device state API here (e.g. 127.0.0.1:7548): GET /cpes, GET /cpes/{cpe-N|serial},
    /// PUT /cpes/{id}/parameters, POST /cpes/{id}/connection-request, GET /metrics
    #[arg(long)]
    pub api_bind_addr: Option<SocketAddr>,

    /// Index of the (first) CPE: stamps serial, MAC and credentials (cpe-N). Give processes or
    /// machines disjoint slices with --first-index and --cpes.
    #[arg(long, visible_alias = "cpe-index", default_value_t = 0)]
    pub first_index: u32,

    /// This process's part of the fleet, K/N (0 ≤ K < N): CPEs first-index + ⌊K·cpes/N⌋ up to
    /// first-index + ⌊(K+1)·cpes/N⌋, so N processes or machines simulate the fleet once
    #[arg(long, env = "CPE_SIM_SLICE", value_name = "K/N")]
    pub slice: Option<String>,

    /// Number of slices N when the slice index K comes from JOB_COMPLETION_INDEX (set by
    /// Kubernetes in each pod of an Indexed Job); --slice wins over both
    #[arg(long, env = "CPE_SIM_SLICES", value_name = "N")]
    pub slices: Option<u32>,

    /// Wait until this time before the first CPE boots, so slices started apart begin their
    /// timeline together: an RFC 3339 time (2026-12-01T10:00:00Z) or Unix seconds; a time
    /// already past starts at once
    #[arg(long, env = "CPE_SIM_START_AT", value_name = "TIME")]
    pub start_at: Option<String>,

    /// Number of CPEs (k and m suffixes: 100k, 1m), on per-core shards. One CPE or many run on
    /// the same engine with the same flags, progress line and final report; one CPE logs each
    /// session at info.
    #[arg(long, default_value = "1", value_parser = parse_count)]
    pub cpes: u32,

    /// Shards (threads with their own runtime) [default: available cores]
    #[arg(long)]
    pub shards: Option<u16>,

    /// Spread the first Informs uniformly over this long (0s: a boot storm)
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub boot_spread: Duration,

    /// Start this many CPEs per second instead of --boot-spread
    #[arg(long, allow_negative_numbers = true)]
    pub boot_rate: Option<f64>,

    /// Periodic inform period = PeriodicInformInterval × this (e.g. 0.001, 0.5, 10)
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub interval_multiplier: f64,

    /// PeriodicInformInterval for every CPE until the ACS sets another (turns periodic informs on)
    #[arg(long, value_parser = parse_duration)]
    pub inform_interval: Option<Duration>,

    /// pooled (keep-alive connections shared per shard) or per-session (a new connection each)
    #[arg(long, default_value = "pooled", value_parser = ["pooled", "per-session"])]
    pub connection_mode: String,

    /// Most sessions (and connections) in flight at once, across all shards
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,

    /// Most Downloads/Uploads in flight at once in this process; a CPE whose transfer is due
    /// waits for a slot (its session then reports the TransferComplete)
    #[arg(long, default_value_t = 64)]
    pub max_transfers: usize,

    /// Time a whole Download/Upload may take (e.g. 10m); --timeout still bounds connecting, the
    /// response head and each wait for more bytes (a stalled file server)
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub transfer_timeout: Duration,

    /// On a stop (end of --duration, SIGINT/SIGTERM), how long open sessions get to finish before
    /// they are cut (and counted as interrupted)
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// How often the progress line is printed
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress_interval: Duration,

    /// Write the final report as JSON to this file
    #[arg(long)]
    pub report_json: Option<PathBuf>,

    /// Write an HdrHistogram interval log (V2, one tagged histogram per RPC) to this file
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,

    /// Write a self-contained HTML report (charts over time, phases, sweep knee, tables by event
    /// code and ACS endpoint; opens offline) to this file
    #[arg(long)]
    pub report_html: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics during the run (labels: run id, phase,
    /// ACS endpoint; never a CPE), without the device state API
    #[arg(long)]
    pub metrics_bind_addr: Option<SocketAddr>,

    /// Pass/fail rule, e.g. 'Inform.p99<500ms' or 'sessions.failed_ratio<0.001' (repeatable;
    /// a breach exits 99)
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,

    /// Management protocol: cwmp (TR-069 to an ACS) or usp (TR-369 Agents to a Controller)
    #[arg(long, default_value = "cwmp", value_parser = ["cwmp", "usp"])]
    pub protocol: String,

    /// USP: the MQTT broker the Agents connect to (mqtt://HOST:PORT or mqtts://HOST:PORT); needs
    /// --protocol usp
    #[arg(long, env = "CPE_SIM_USP_URL")]
    pub usp_url: Option<String>,

    /// USP: the Controller's endpoint ID. Without it the embedded Controller
    /// (self::cpe-sim-controller) runs on the same broker and answers the Agents
    #[arg(long)]
    pub controller_id: Option<String>,

    /// USP: the Agents' endpoint ID template
    #[arg(long, default_value = crate::usp::endpoint::DEFAULT_TEMPLATE)]
    pub usp_endpoint_id: String,

    /// USP: MQTT username (and --mqtt-password) for the broker
    #[arg(long, env = "CPE_SIM_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,

    /// USP: MQTT password
    #[arg(long, env = "CPE_SIM_MQTT_PASSWORD", hide_env_values = true)]
    pub mqtt_password: Option<String>,

    /// USP: MQTT keep-alive
    #[arg(long, default_value = MQTT_KEEP_ALIVE_DEFAULT, value_parser = parse_duration)]
    pub mqtt_keep_alive: Duration,

    /// USP: the MQTT version the Agents and the embedded Controller speak: 5, or 3.1.1 (the
    /// reply-to Topic travels in the Topic Name, TR-369 R-MQTT.24)
    #[arg(long, default_value = "5", value_parser = ["5", "3.1.1"])]
    pub mqtt_version: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario file: fleets, ACS endpoints, source addresses, phases and thresholds (a
    /// flag given overrides the file's setting)
    Run(Box<ScenarioArgs>),
    /// Run the fleet once per interval multiplier and find the knee where the ACS stops keeping up
    Sweep(Box<SweepArgs>),
    /// Work with reports
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run the embedded ACS as a server until interrupted
    Acs(Box<AcsArgs>),
    /// Validate a profile and print what it defines
    Check {
        /// Profile file or directory
        #[arg(long)]
        profile: PathBuf,
        /// Print this CPE's Inform as it would be sent
        #[arg(long, default_value_t = 0)]
        cpe_index: u32,
    },
}

/// Flags of `cpe-sim sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Interval multipliers, one step each (e.g. 1,0.5,0.25,0.1)
    #[arg(long, value_delimiter = ',', required = true, allow_negative_numbers = true)]
    pub multipliers: Vec<f64>,

    /// How long each step runs
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub step_duration: Duration,

    /// Write the sweep table as JSON to this file
    #[arg(long)]
    pub sweep_json: Option<PathBuf>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags of `cpe-sim run <scenario.yaml>`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    /// The scenario file (YAML; see the README's "Scenario files")
    pub scenario: PathBuf,

    /// Scale the scenario's times: phase durations, boot spread and the run's duration × this,
    /// interval multipliers × this (0.01 runs a 10-minute story in 6 s)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,

    /// Listen backlog of the embedded ACS (pending connections; the kernel caps it at
    /// net.core.somaxconn) [default: the scenario's, else 4096]
    #[arg(long)]
    pub acs_backlog: Option<u32>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `cpe-sim report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge interval logs (--hdr-log, exact latencies) and JSON reports (--report-json, session
    /// counts) from several runs or machines; the same run twice is refused
    Merge {
        /// Interval logs (--hdr-log) and JSON reports (--report-json), told apart by content, or
        /// directories holding them (*.hdr, *.json)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the merged report as JSON
        #[arg(long)]
        report_json: Option<PathBuf>,
    },
}

/// Flags of `cpe-sim acs`.
#[derive(Debug, clap::Args)]
pub struct AcsArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:7547")]
    pub bind: SocketAddr,

    /// Require this username from CPEs (with --acs-password)
    #[arg(long)]
    pub acs_username: Option<String>,

    /// Require this password from CPEs
    #[arg(long, hide_env_values = true)]
    pub acs_password: Option<String>,

    /// Auth scheme to challenge with: digest or basic
    #[arg(long, default_value = "digest")]
    pub auth: String,

    /// Skip the GenieACS-like discovery and provisioning after 0 BOOTSTRAP
    #[arg(long)]
    pub no_provisioning: bool,

    /// Keep connections open after a session's final 204 (GenieACS closes them)
    #[arg(long)]
    pub keep_alive: bool,

    /// An RPC to push, e.g. "GPV Device.DeviceInfo." or "Reboot key-1" (repeatable; see the
    /// README for the forms), once per CPE or in every session (--push-mode)
    #[arg(long = "push")]
    pub push: Vec<String>,

    /// once: push in the first session of each CPE (by serial), so a pushed Reboot ends;
    /// every-session: in every session (a pushed Reboot then reboots the CPE forever)
    #[arg(long, default_value = "once", value_parser = ["once", "every-session"])]
    pub push_mode: String,

    /// Listen backlog: connections the kernel queues before they are accepted, for boot storms
    /// (capped by net.core.somaxconn)
    #[arg(long, default_value_t = crate::acs::server::DEFAULT_BACKLOG, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub backlog: u32,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(long)]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates issued by this CA (PEM): mutual TLS
    #[arg(long)]
    pub tls_client_ca: Option<PathBuf>,

    /// Log level
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

/// Parses `500ms`, `30s`, `5m`, `2h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, ""), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 30s, 500ms or 5m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a positive duration"));
    }
    // A value too large for a Duration is a usage error, not a panic.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is too long a duration"))
}

/// Parses a count with decimal suffixes: `2000`, `100k`, `1m`.
pub fn parse_count(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1_000u64),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a count like 2000, 100k or 1m"))?;
    let v = (n * mult as f64).round();
    if !(1.0..=u32::MAX as f64).contains(&v) {
        return Err(format!("`{s}` is out of range (1 … {})", u32::MAX));
    }
    Ok(v as u32)
}

/// Parses `4m`, `512k`, `1048576`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1024),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let n: usize = num.parse().map_err(|_| format!("`{s}` is not a size like 4m or 65536"))?;
    n.checked_mul(mult).filter(|&v| v > 0).ok_or_else(|| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert_eq!(parse_size("4m").unwrap(), 4 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_count("100k").unwrap(), 100_000);
        assert_eq!(parse_count("1m").unwrap(), 1_000_000);
        assert_eq!(parse_count("2.5k").unwrap(), 2_500);
        assert!(parse_count("0").is_err());
    }
}
