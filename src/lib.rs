//! cpe-sim: a TR-069 (CWMP) CPE simulator and ACS load generator.
//!
//! # Layout
//! The module tree is the architecture; dependencies point one way (down this list).
//!
//! - [`time`]: instants as numbers and dateTime formatting (the core never reads a clock).
//! - [`model`]: the shared parameter tree of a profile, each CPE's delta, identity stamping, the
//!   parameter RPC semantics (GPV, GPN, SPV, GPA, SPA, AddObject, DeleteObject) and the
//!   extension hooks library users implement.
//! - [`cwmp`]: the sans-IO codec: quick-xml parsing that borrows from the body, one file per RPC,
//!   the pre-rendered Inform template.
//! - [`cpe`]: one CPE's compact state: events owed, retry count, deferred actions, and its
//!   agenda (every timer a CPE has: boot, periodic, back-off, deferred work, wake-ups).
//! - [`session`]: the CWMP session state machine (Inform → requests → empty POST → RPCs → 204).
//! - [`config`]: loading YAML profiles (and genieacs-sim CSV data models) into a `model::Model`.
//! - [`transport`]: HTTP(S) to the ACS: one held connection per session, cookies, redirects,
//!   Basic/Digest, rustls TLS and mTLS, timeouts, body limits; fetching files.
//! - [`stats`]: HdrHistograms per RPC, outcomes, the report, thresholds, interval logs.
//! - [`persist`]: `--state-dir`: CPE states saved in batches and resumed after a restart.
//! - [`owners`]: what listeners ask a CPE's owner (credentials, wake-ups, state, local changes).
//! - [`engine`]: one engine for one CPE or ten million: shards that run agendas on a timing
//!   wheel, sessions over HTTP, transfers, progress, report, stop, sweeps.
//! - [`metrics`]: `--metrics-bind-addr`, a Prometheus `/metrics` endpoint alone (no state API).
//! - [`api`]: the device state API: a CPE's state as JSON, local changes (VALUE CHANGE), wake-ups.
//! - [`connreq`]: the Connection Request listener: Digest/Basic checks, then a wake-up to the CPE's
//!   owner (its shard).
//! - [`acs`]: the embedded ACS: a scripted, sans-IO session and a hyper server around it.
//! - [`run`]: one session against an in-process ACS with no sockets (a test harness).
//! - [`plan`]: flags checked into a plan before anything starts (usage errors, exit 2).
//! - [`slice`]: one process's disjoint part of a fleet (`--slice K/N`, Kubernetes Indexed Jobs).
//! - [`scenario`]: scenario files (fleets, ACS endpoints, source addresses, phases) read into
//!   the same flags and a checked [`scenario::Scenario`].
//! - [`console`]: stdout/stderr writes that survive closed streams.
//! - [`commands`]: the subcommands (run, sweep, acs, check, report) from flags to exit codes.
//! - [`cli`]: the command line.
//!
//! `model`, `cwmp`, `cpe` and `session` do no I/O and never read a clock (the quinn-proto split);
//! `transport` and `engine` compose them with sockets, timers and threads.

pub mod acs;
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connreq;
pub mod console;
pub mod cpe;
pub mod cwmp;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod mtp;
pub mod owners;
pub mod persist;
pub mod plan;
pub mod run;
pub mod scenario;
pub mod session;
pub mod slice;
pub mod stats;
pub mod time;
pub mod transport;
pub mod usp;
