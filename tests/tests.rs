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
// Slices of one fleet in separate processes (Kubernetes Indexed Jobs), merged into one report.
mod slices;
// The container image: built from scratch, run by podman as one slice of a fleet.
mod image;
// deploy/kubernetes: manifests valid offline, the Indexed Job wired for slices.
mod deploy;
// Issue 12's reports: /metrics during a run, sweeps as steps, the HTML report in Chromium, merge.
mod report;
// Scenario files: fleets, ACS endpoints, source addresses, phases; the embedded ACS for storms.
mod scenario;
// Issue 11's realism: firmware that changes SoftwareVersion, TR-143 diagnostics, value generators.
mod realism;
// Nested multi-instance tables: AddObject/DeleteObject at any depth, against a reference model.
mod tables;
// UDP Connection Requests (TR-069 Annex G): signed datagrams, drop causes, floods.
mod udp_cr;
// Real devices as data models: GenieACS exports and genieacs-sim files, fleets of them, the README sample.
mod devices;
// TR-369 Agents sans-IO: every Controller message, refusals and drops.
mod usp;
// TR-369 Agents over a real mosquitto: the 1,000-Agent boot, a Controller driving every message.
mod usp_wire;
// TR-369 Agents in virtual time: Periodic! and Notify retries on a manual clock, real sockets.
mod usp_clock;
// TR-369 MTPs beyond MQTT 5 and ws://: MQTT 3.1.1 (reply-to in the Topic Name), wss://, the
// WebSocket Controller's Agent filter.
mod usp_mtp;
// USP runs' reports: slices merged into one USP report, a mix of protocols refused.
mod usp_report;
