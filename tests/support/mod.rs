//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod files;
pub mod mosquitto;
pub mod pki;
pub mod raw;

use std::path::PathBuf;

use bytes::BytesMut;
use cpe_sim::config::load_profile;
use cpe_sim::cpe::CpeState;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::session::template::InformTemplate;
use cpe_sim::session::{AcsReply, Session, Step};
use cpe_sim::time::UnixMillis;

/// A client transport for tests: no system roots, a 5 s timeout, no ACS credentials.
pub fn test_transport() -> cpe_sim::transport::TransportConfig {
    use cpe_sim::transport::tls::{client_config, TlsOptions};
    cpe_sim::transport::TransportConfig {
        timeout: std::time::Duration::from_secs(5),
        max_body: cpe_sim::transport::DEFAULT_MAX_BODY,
        tls: client_config(&TlsOptions { no_system_roots: true, ..TlsOptions::default() }).unwrap(),
        credentials: None,
    }
}

pub const TR181: &str = "profiles/example-tr181-gateway";
pub const TR098: &str = "profiles/example-tr098-gateway";

/// 2025-01-15T10:20:30Z, the time of the shared examples.
pub const T0: UnixMillis = UnixMillis(1_736_936_430_000);

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn profile(path: &str) -> Model {
    load_profile(&repo(path)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("tests/fixtures/protocol-examples/{name}"))).unwrap()
}

/// The shared case's Download (`cases/holdrequests/download.xml`, copied to
/// `tests/fixtures/cases/`) with its URL and size filled in.
pub fn case_download(url: &str, size: usize) -> Vec<u8> {
    let xml = std::fs::read_to_string(repo("tests/fixtures/cases/holdrequests/download.xml")).unwrap();
    xml.replace("{URL}", url).replace("{SIZE}", &size.to_string()).into_bytes()
}

/// `body` with `<cwmp:HoldRequests>1</cwmp:HoldRequests>` in its header (after `cwmp:ID`).
pub fn held(body: &[u8]) -> Vec<u8> {
    let s = std::str::from_utf8(body).unwrap();
    assert!(s.contains("</cwmp:ID>"));
    s.replace("</cwmp:ID>", "</cwmp:ID><cwmp:HoldRequests soap-env:mustUnderstand=\"1\">1</cwmp:HoldRequests>").into_bytes()
}

/// Wraps an RPC body in a GenieACS-style ACS envelope.
pub fn acs_envelope(id: &str, body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap-env:Envelope xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">{id}</cwmp:ID></soap-env:Header><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
    )
    .into_bytes()
}

pub fn inform_response(id: &str) -> Vec<u8> {
    acs_envelope(id, "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>")
}

/// One simulated CPE and its model, driven message by message (quinn-proto's `Pair` shape).
pub struct Cpe {
    pub model: Model,
    pub template: InformTemplate,
    pub state: CpeState,
    pub now: UnixMillis,
    pub session: Option<Session>,
    out: BytesMut,
}

impl Cpe {
    pub fn new(profile_path: &str, index: u32) -> Cpe {
        let model = profile(profile_path);
        let template = InformTemplate::new(&model);
        Cpe { state: CpeState::new(DeviceId(index), T0), model, template, now: T0, session: None, out: BytesMut::new() }
    }

    pub fn root(&self) -> &str {
        self.model.tree.root_name()
    }

    /// Starts a session; returns the Inform.
    pub fn inform(&mut self) -> String {
        self.out.clear();
        self.session = Some(Session::start(&self.model, &self.template, &mut self.state, self.now, &mut self.out));
        String::from_utf8(self.out.to_vec()).unwrap()
    }

    /// Feeds the ACS's reply; returns the step and whatever the CPE wrote.
    pub fn reply(&mut self, body: Option<&[u8]>) -> (Step, String) {
        self.out.clear();
        let reply = match body {
            Some(b) => AcsReply::Body(b),
            None => AcsReply::Empty,
        };
        let session = self.session.as_mut().expect("session started");
        let step = session.handle(&self.model, &mut self.state, reply, self.now, &mut self.out);
        (step, String::from_utf8(self.out.to_vec()).unwrap())
    }

    /// Inform → InformResponse → empty POST; leaves the session waiting for ACS requests.
    pub fn open(&mut self) -> String {
        let inform = self.inform();
        let (step, _) = self.reply(Some(&inform_response("1")));
        assert_eq!(step, Step::SendEmpty);
        inform
    }

    /// Sends an ACS request and returns the CPE's answer.
    pub fn rpc(&mut self, id: &str, body: &str) -> String {
        let (step, out) = self.reply(Some(&acs_envelope(id, body)));
        assert_eq!(step, Step::Send, "expected an answer to {body}");
        out
    }

    /// Ends the session with 204 and returns the summary.
    pub fn close(&mut self) -> cpe_sim::session::SessionSummary {
        match self.reply(None).0 {
            Step::Finished(s) => s,
            other => panic!("expected the session to finish, got {other:?}"),
        }
    }

    /// The CPE's own view of a parameter.
    pub fn get(&self, path: &str) -> Option<String> {
        self.model.device(self.state.id, &self.state.delta, self.state.boot_at, self.now).get(path)
    }
}

/// Values of `<tag>` elements in a document, in order (good enough for assertions).
pub fn texts(doc: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j..];
    }
    out
}

/// Value of the parameter `name` in a ParameterValueStruct list.
pub fn value_of(doc: &str, name: &str) -> Option<String> {
    let marker = format!("<Name>{name}</Name><Value");
    let i = doc.find(&marker)?;
    let after = &doc[i + marker.len()..];
    let start = after.find('>')? + 1;
    let end = after.find("</Value>")?;
    Some(after[start..end].to_string())
}

/// How a run of one CPE on the engine went.
#[derive(Debug)]
pub struct RunReport {
    pub completed: u64,
    pub failed: u64,
    pub last_error: Option<String>,
    pub outcome: cpe_sim::engine::FleetOutcome,
}

/// One CPE on the engine (the same code path as the binary's), for tests over real sockets.
pub struct OneCpe {
    pub model: std::sync::Arc<Model>,
    pub url: String,
    pub transport: cpe_sim::transport::TransportConfig,
    pub mode: cpe_sim::engine::Mode,
    pub duration: Option<std::time::Duration>,
    /// Set to stop the run as a signal would.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The listeners' channel to the CPE's owner.
    pub owner: Option<tokio::sync::mpsc::UnboundedReceiver<cpe_sim::owners::CpeMsg>>,
    /// The CPE's state at start (it powers on with it, as a resumed CPE does).
    pub initial: Option<CpeState>,
    pub clock: Option<cpe_sim::engine::clock::Clock>,
}

impl OneCpe {
    /// CPE 0 of `model`, one-shot, against `url`.
    pub fn new(model: impl Into<std::sync::Arc<Model>>, url: impl Into<String>, transport: cpe_sim::transport::TransportConfig) -> OneCpe {
        OneCpe {
            model: model.into(),
            url: url.into(),
            transport,
            mode: cpe_sim::engine::Mode::OneShot,
            duration: None,
            stop: Default::default(),
            owner: None,
            initial: None,
            clock: None,
        }
    }

    /// Periodic informs and retries for `d` (or until `stop`).
    pub fn daemon(mut self, d: std::time::Duration) -> OneCpe {
        self.mode = cpe_sim::engine::Mode::Daemon;
        self.duration = Some(d);
        self
    }

    /// Runs it to its end (bounded to 60 s) on a blocking thread, so the test's own servers keep
    /// running on the test's runtime. Returns the report and the CPE's final state.
    pub async fn run(self) -> (RunReport, CpeState) {
        use cpe_sim::engine::{self, Outputs, Plan};
        let mut plan = Plan::new(self.model, self.url, self.transport, 1);
        plan.mode = self.mode;
        plan.verbose = true;
        plan.return_states = true;
        plan.report_every = std::time::Duration::from_millis(50);
        plan.drain_timeout = std::time::Duration::from_secs(5);
        if let Some(c) = self.clock {
            plan.clock = c;
        }
        if let Some(cpe) = self.initial {
            plan.state = Some(cpe_sim::persist::Resume { saved: std::sync::Mutex::new([(cpe.id.0, cpe)].into()), sink: None });
        }
        let out = Outputs { progress_every: std::time::Duration::from_millis(100), stop: Some(self.stop.clone()), ..Outputs::default() };
        let duration = self.duration.or(Some(std::time::Duration::from_secs(60)));
        let owners = self.owner.into_iter().collect();
        let stop = self.stop.clone();
        let run = tokio::task::spawn_blocking(move || engine::run(plan, duration, &out, owners).expect("the engine starts"));
        let outcome = match tokio::time::timeout(std::time::Duration::from_secs(90), run).await {
            Ok(r) => r.expect("the engine does not panic"),
            Err(_) => {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                panic!("the run did not end within 90 s");
            }
        };
        assert!(outcome.complete(), "{:?}", outcome.panics);
        let o = &outcome.total.outcomes;
        let report = RunReport { completed: o.completed, failed: o.failed_sessions(), last_error: o.last_failure.clone(), outcome };
        let cpe = report.outcome.states.last().cloned().expect("the CPE's final state");
        (report, cpe)
    }
}
