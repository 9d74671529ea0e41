//! cpe-sim: a TR-069 (CWMP) CPE simulator and ACS load generator.
//!
//! # Layout
//! The module tree is the architecture; dependencies point one way (down this list).
//!
//! - [`time`]: instants as numbers and dateTime formatting (the core never reads a clock).
//! - [`model`]: the shared parameter tree of a profile, each CPE's delta, identity stamping, and
//!   the parameter RPC semantics (GPV, GPN, SPV, GPA, SPA, AddObject, DeleteObject).
//! - [`cwmp`]: the sans-IO codec: quick-xml parsing that borrows from the body, one file per RPC,
//!   the pre-rendered Inform template.
//! - [`cpe`]: one CPE's compact state: events owed, retry count, deferred actions, back-off.
//! - [`session`]: the CWMP session state machine (Inform → requests → empty POST → RPCs → 204).
//! - [`config`]: loading YAML profiles (and genieacs-sim CSV data models) into a `model::Model`.
//! - [`transport`]: HTTP(S) to the ACS: one held connection per session, cookies, redirects,
//!   Basic/Digest, rustls TLS and mTLS, timeouts, body limits; Download/Upload fetching.
//! - [`runner`]: one CPE over the network: its sessions, deferred work, retries, periodic informs.
//! - [`stats`]: HdrHistograms per RPC, outcomes, the report, thresholds, interval logs.
//! - [`shard`]: one per core: a fleet slice of CPEs on a timing wheel, sessions in flight.
//! - [`fleet`]: the main thread of a fleet run: shards, progress, report, sweeps.
//! - [`api`]: the device state API: a CPE's state as JSON, local changes (VALUE CHANGE), wake-ups.
//! - [`connreq`]: the Connection Request listener: Digest/Basic checks, then a wake-up to the CPE's
//!   owner (the runner or its shard).
//! - [`acs`]: the embedded ACS: a scripted, sans-IO session and a hyper server around it.
//! - [`run`]: one session against an in-process ACS with no sockets (a test harness).
//! - [`persist`]: `--state-dir`: CPE states saved in batches and resumed after a restart.
//! - [`hooks`]: the extension trait library users implement to change CPE behaviour.
//! - [`cli`]: the command line.
//! - [`plan`]: the flags of a run, validated into one plan before anything starts (usage errors).
//! - [`console`]: stdout and stderr lines that a closed or broken stream cannot turn into a panic.
//!
//! `model`, `cwmp`, `cpe` and `session` do no I/O and never read a clock (the quinn-proto split);
//! `transport`, `runner`, `shard` and `fleet` compose them with sockets, timers and threads.

pub mod acs;
pub mod api;
pub mod cli;
pub mod config;
pub mod connreq;
pub mod console;
pub mod cpe;
pub mod cwmp;
pub mod engine;
pub mod hooks;
pub mod model;
pub mod persist;
pub mod plan;
pub mod run;
pub mod session;
pub mod stats;
pub mod time;
pub mod transport;
