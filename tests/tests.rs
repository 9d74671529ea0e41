//! Integration tests, compiled into one binary.

// Shared helpers: profiles, fixtures, a sans-IO session driver.
mod support;
// The codec against the shared protocol examples and hostile input.
mod codec;
// Whole CWMP sessions driven through the session machine, for both example profiles.
mod session_flow;
// Answers to the shared examples' ACS requests equal the shared CPE-side examples.
mod fixtures;
// One CPE on the wire: HTTP(S), auth, cookies, redirects, TLS, failures.
mod wire;
// The fleet engine: shards, schedule, connections, late informs, reports, sweeps.
mod fleet;
// Profile loading: YAML, CSV import, errors naming file and key.
mod profiles;
// The binary: exit codes and first lines.
mod cli;
// Connection Requests: the listener's answers and the sessions they cause.
mod connreq;
// The device state API: state dumps, local changes and VALUE CHANGE, refusals.
mod api;
// Extension hooks: what a library user can change in a CPE's answers.
mod hooks;
// --state-dir: resume, torn batches, refusal of another profile's store, kill -9.
mod persist;
// The engine end to end, one test per fault class of issue 9 (manual clock, real sockets).
mod engine;
// Downloads: streamed bodies, FileSize, transfer timeout vs stalls, userinfo, --max-transfers.
mod transfers;
// TR-369 Agents sans-IO: every Controller message, refusals and drops.
mod usp;
// TR-369 Agents over a real mosquitto: the 1,000-Agent boot, a Controller driving every message.
mod usp_wire;
