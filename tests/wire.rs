//! One CPE on the wire: the runner over real sockets on 127.0.0.1:0 against the embedded ACS and
//! against scripted raw HTTP servers, for every RPC, auth scheme, TLS mode and failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cpe_sim::acs::server::{AcsServer, AuthMode, ServerConfig};
use cpe_sim::acs::{AcsRpc, AcsScript};
use cpe_sim::cpe::CpeState;
use cpe_sim::model::DeviceId;
use cpe_sim::time::UnixMillis;
use cpe_sim::transport::tls::{client_config, server_config, TlsOptions};
use cpe_sim::transport::{Credentials, TransportConfig, DEFAULT_MAX_BODY};

use crate::support::pki::Pki;
use crate::support::raw::{http, simple_acs, RawAcs, RawReply};
use crate::support::{acs_envelope, case_download, held, inform_response, profile, OneCpe, RunReport, TR181};

fn transport(timeout: Duration) -> TransportConfig {
    TransportConfig {
        timeout,
        max_body: DEFAULT_MAX_BODY,
        tls: client_config(&TlsOptions { no_system_roots: true, ..TlsOptions::default() }).unwrap(),
        credentials: None,
    }
}

fn creds(user: &str, pass: &str) -> Option<Credentials> {
    Some(Credentials { username: user.into(), password: pass.into() })
}

/// Runs CPE 0 of the TR-181 example one-shot against `url`; returns the report and the CPE.
async fn one_shot(url: &str, transport: TransportConfig) -> (RunReport, CpeState) {
    OneCpe::new(profile(TR181), url, transport).run().await
}

fn error(report: &RunReport) -> &str {
    report.last_error.as_deref().unwrap_or("")
}

async fn acs(cfg: ServerConfig) -> AcsServer {
    AcsServer::start(([127, 0, 0, 1], 0).into(), cfg).await.unwrap()
}

#[tokio::test]
async fn bootstrap_and_every_rpc_end_to_end() {
    // A file server for the Download: Basic auth, then the file.
    let file = RawAcs::start(|req, _| {
        RawReply::Send(match req.header("authorization") {
            Some("Basic Znc6ZnctcGFzcw==") => http("200 OK", &[], b"FIRMWARE-BYTES"),
            _ if req.path == "/missing.bin" => http("404 Not Found", &[], b""),
            _ => http("401 Unauthorized", &[("WWW-Authenticate", "Basic realm=\"files\"")], b""),
        })
    })
    .await;
    let script = AcsScript {
        on_bootstrap: vec![
            AcsRpc::GetRpcMethods,
            AcsRpc::GetParameterAttributes { names: vec!["Device.DeviceInfo.SoftwareVersion".into()] },
            AcsRpc::SetParameterAttributes { name: "Device.WiFi.SSID.1.SSID".into(), notification: 1 },
            AcsRpc::AddObject { object: "Device.NAT.PortMapping.".into(), parameter_key: "k-add".into() },
            AcsRpc::DeleteObject { object: "Device.NAT.PortMapping.1.".into(), parameter_key: "k-del".into() },
            AcsRpc::GetParameterValues { names: vec!["Device.NoSuchThing".into()] },
            AcsRpc::ScheduleInform { delay_seconds: 1, command_key: "sched-1".into() },
            AcsRpc::Raw {
                method: "Download".into(),
                body: format!("<cwmp:Download><CommandKey>fw-1</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>{}</URL><Username>fw</Username><Password>fw-pass</Password><FileSize>14</FileSize></cwmp:Download>", file.url("/fw.bin")),
            },
            AcsRpc::Raw {
                method: "Download".into(),
                body: format!("<cwmp:Download><CommandKey>cfg-404</CommandKey><FileType>3 Vendor Configuration File</FileType><URL>{}</URL></cwmp:Download>", file.url("/missing.bin")),
            },
            AcsRpc::Reboot { command_key: "reboot-1".into() },
        ],
        ..AcsScript::default()
    };
    let server = acs(ServerConfig { script, ..ServerConfig::default() }).await;
    let (report, cpe) = one_shot(&server.url(), transport(Duration::from_secs(10))).await;
    assert_eq!((report.failed, report.last_error.as_deref()), (0, None));
    let sessions = server.finished();
    let events: Vec<Vec<String>> = sessions.iter().map(|s| s.events.clone()).collect();
    assert_eq!(events[0], ["0 BOOTSTRAP", "1 BOOT"]);
    assert!(events.iter().any(|e| e.contains(&"M Reboot".to_string())), "{events:?}");
    assert!(events.iter().any(|e| e.contains(&"3 SCHEDULED".to_string()) && e.contains(&"M ScheduleInform".to_string())), "{events:?}");
    assert!(events.iter().any(|e| e.contains(&"7 TRANSFER COMPLETE".to_string())), "{events:?}");
    // The bootstrap session: provisioning, then each pushed RPC answered (9005 for the bad GPV).
    let first: Vec<(String, Option<u32>)> = sessions[0].exchanges.iter().map(|x| (x.answer.clone(), x.fault)).collect();
    for want in [
        "GetRPCMethodsResponse",
        "GetParameterAttributesResponse",
        "SetParameterAttributesResponse",
        "AddObjectResponse",
        "DeleteObjectResponse",
        "ScheduleInformResponse",
        "DownloadResponse",
        "RebootResponse",
    ] {
        assert!(first.iter().any(|(a, _)| a == want), "{want} missing from {first:?}");
    }
    assert!(first.contains(&("Fault".to_string(), Some(9005))));
    // TransferComplete reports: fw-1 succeeded (Basic auth to the file server), cfg-404 got 9016.
    let tcs: Vec<Option<u32>> =
        sessions.iter().flat_map(|s| s.exchanges.iter()).filter(|x| x.answer == "TransferComplete").map(|x| x.fault).collect();
    assert_eq!(tcs.len(), 2, "{tcs:?}");
    assert!(tcs.contains(&Some(0)) && tcs.contains(&Some(9016)), "{tcs:?}");
    assert!(file.requests().iter().any(|r| r.header("authorization").is_some()), "credentials were sent to the file server");
    assert!(cpe.events.is_empty());
    assert_eq!(report.completed as usize, sessions.len());
    server.stop().await;
}

#[tokio::test]
async fn digest_auth_with_a_nonce_per_connection() {
    let server = acs(ServerConfig { credentials: creds("cpe", "s3cret"), ..ServerConfig::default() }).await;
    let mut t = transport(Duration::from_secs(10));
    t.credentials = creds("cpe", "s3cret");
    let (report, _) = one_shot(&server.url(), t.clone()).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    // One challenge for the whole 12-request session: the nonce is reused with a growing nc.
    assert_eq!(server.stats().auth_challenges, 1);
    t.credentials = creds("cpe", "wrong");
    let (report, _) = one_shot(&server.url(), t.clone()).await;
    assert!(error(&report).contains("answered 401 again after credentials were sent"), "{}", error(&report));
    t.credentials = None;
    let (report, _) = one_shot(&server.url(), t).await;
    assert!(error(&report).contains("no --acs-username/--acs-password"), "{}", error(&report));
    server.stop().await;
}

#[tokio::test]
async fn basic_auth() {
    let server = acs(ServerConfig { credentials: creds("cpe", "pw"), auth_mode: AuthMode::Basic, ..ServerConfig::default() }).await;
    let mut t = transport(Duration::from_secs(10));
    t.credentials = creds("cpe", "pw");
    let (report, _) = one_shot(&server.url(), t).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    server.stop().await;
}

#[tokio::test]
async fn cookies_are_returned_and_headers_are_cwmp_shaped() {
    let raw = RawAcs::start(|req, n| {
        if n > 0 && req.header("cookie") != Some("session=abc123") {
            return RawReply::Send(http("400 Bad Request", &[], b"Invalid session"));
        }
        RawReply::Send(simple_acs(req))
    })
    .await;
    let (report, _) = one_shot(&raw.url("/cwmp"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    let reqs = raw.requests();
    assert_eq!(reqs.len(), 2);
    let (inform, empty) = (&reqs[0], &reqs[1]);
    assert_eq!((inform.method.as_str(), inform.path.as_str()), ("POST", "/cwmp"));
    assert_eq!(inform.header("content-type"), Some("text/xml; charset=\"utf-8\""));
    assert_eq!(inform.header("soapaction"), Some(""));
    assert_eq!(empty.header("content-length"), Some("0"));
    assert_eq!(inform.header("content-length"), Some(inform.body.len().to_string().as_str()));
    assert_eq!((empty.header("soapaction"), empty.header("content-type")), (None, None));
    assert_eq!(inform.conn, empty.conn, "one connection for the session");
}

#[tokio::test]
async fn the_session_continues_on_a_new_connection_with_its_cookies() {
    // The ACS drops the connection after the InformResponse (without saying so).
    let raw = RawAcs::start(|req, n| if n == 0 { RawReply::SendThenClose(simple_acs(req)) } else { RawReply::Send(simple_acs(req)) }).await;
    let (report, _) = one_shot(&raw.url("/"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    let reqs = raw.requests();
    assert_eq!(reqs[1].conn, 1, "the empty POST went out on a new connection");
    assert_eq!(reqs[1].header("cookie"), Some("session=abc123"));
}

#[tokio::test]
async fn redirects_are_followed_and_loops_stopped() {
    let target = RawAcs::start(|req, _| RawReply::Send(simple_acs(req))).await;
    let to = target.url("/real");
    let redirect = RawAcs::start(move |_, _| RawReply::Send(http("302 Found", &[("Location", to.as_str())], b""))).await;
    let (report, _) = one_shot(&redirect.url("/old"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    assert_eq!(redirect.requests().len(), 1, "the rest of the session stays at the new URL");
    assert!(target.requests().iter().all(|r| r.path == "/real"));
    let looping = RawAcs::start(|_, _| RawReply::Send(http("307 Temporary Redirect", &[("Location", "/again")], b""))).await;
    let (report, _) = one_shot(&looping.url("/"), transport(Duration::from_secs(5))).await;
    assert!(error(&report).contains("more than 5 redirects"), "{}", error(&report));
    let nowhere = RawAcs::start(|_, _| RawReply::Send(http("302 Found", &[], b""))).await;
    let (report, _) = one_shot(&nowhere.url("/"), transport(Duration::from_secs(5))).await;
    assert!(error(&report).contains("without a usable Location"), "{}", error(&report));
}

fn tls_transport(opts: TlsOptions) -> TransportConfig {
    TransportConfig { tls: client_config(&opts).unwrap(), ..transport(Duration::from_secs(10)) }
}

#[tokio::test]
async fn tls_ca_file_default_roots_and_skip_verify() {
    let pki = Pki::new("tls");
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    let server = acs(ServerConfig { tls: Some(tls), ..ServerConfig::default() }).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let with_ca = tls_transport(TlsOptions { ca_cert_file: Some(pki.path("ca.pem")), ..TlsOptions::default() });
    let (report, _) = one_shot(&server.url(), with_ca).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    let system_only = tls_transport(TlsOptions::default());
    let (report, _) = one_shot(&server.url(), system_only).await;
    assert!(error(&report).contains("TLS handshake") && error(&report).contains("--ca-cert-file"), "{}", error(&report));
    let skip = tls_transport(TlsOptions { skip_verify: true, ..TlsOptions::default() });
    let (report, _) = one_shot(&server.url(), skip).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls() {
    let pki = Pki::new("mtls");
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), Some(&pki.path("ca.pem"))).unwrap();
    let server = acs(ServerConfig { tls: Some(tls), ..ServerConfig::default() }).await;
    let anonymous = tls_transport(TlsOptions { ca_cert_file: Some(pki.path("ca.pem")), ..TlsOptions::default() });
    let (report, _) = one_shot(&server.url(), anonymous).await;
    assert_eq!(report.completed, 0, "a server requiring client certificates refuses us without one");
    let with_cert = tls_transport(TlsOptions {
        ca_cert_file: Some(pki.path("ca.pem")),
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(pki.path("client.key")),
        ..TlsOptions::default()
    });
    let (report, _) = one_shot(&server.url(), with_cert).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    assert!(client_config(&TlsOptions { client_cert: Some(pki.path("client.pem")), ..TlsOptions::default() }).is_err(), "cert without key");
    server.stop().await;
}

#[tokio::test]
async fn every_failure_is_a_clear_outcome() {
    let t = || transport(Duration::from_millis(800));
    // ACS down.
    let (report, _) = one_shot("http://127.0.0.1:1/", t()).await;
    assert!(error(&report).starts_with("TCP connect to 127.0.0.1:1 failed"), "{}", error(&report));
    // DNS failure (the resolver may also just not answer in time: both are clear outcomes).
    let (report, _) = one_shot("http://no-such-host.invalid/", t()).await;
    assert!(
        error(&report).contains("DNS lookup of no-such-host.invalid failed") || error(&report).contains("timed out"),
        "{}",
        error(&report)
    );
    // Cases from a scripted server: (reply to the Inform, expected words in the error).
    let fault = acs_envelope("1", "<soap-env:Fault><faultcode>Server</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>8005</FaultCode><FaultString>Retry request</FaultString></cwmp:Fault></detail></soap-env:Fault>");
    let big = vec![b'x'; 70_000];
    let cases: Vec<(RawReply, &str)> = vec![
        (RawReply::Send(http("500 Internal Server Error", &[], b"boom")), "answered HTTP 500"),
        (RawReply::Send(http("503 Service Unavailable", &[("Retry-After", "60")], b"")), "HTTP 503 (Retry-After 60s)"),
        (RawReply::Send(http("400 Bad Request", &[], b"CPE already in session")), "answered HTTP 400"),
        (RawReply::Send(http("401 Unauthorized", &[], b"")), "no --acs-username"),
        (
            RawReply::Send(http("200 OK", &[("Content-Type", "text/html")], b"<html><body>Welcome to nginx</body></html>")),
            "CWMP envelope round-trip failed",
        ),
        (RawReply::Send(http("200 OK", &[], &fault)), "ACS fault 8005 Retry request"),
        (RawReply::Send(http("200 OK", &[], &big)), "larger than the 65536-byte limit"),
        (RawReply::Hang, "timed out after 800ms"),
        (
            RawReply::SendThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<soap-env:Envelope".to_vec()),
            "response body broken off",
        ),
        (RawReply::Close, "connection"),
    ];
    for (i, (reply, want)) in cases.into_iter().enumerate() {
        let reply = std::sync::Mutex::new(Some(reply));
        let raw = RawAcs::start(move |_, _| reply.lock().unwrap().take().unwrap_or(RawReply::Close)).await;
        let mut cfg = t();
        cfg.max_body = 65_536;
        let (report, cpe) = one_shot(&raw.url("/"), cfg).await;
        assert_eq!((report.completed, report.failed), (0, 1), "case {i}");
        assert!(error(&report).contains(want), "case {i}: `{}` lacks `{want}`", error(&report));
        assert_eq!(cpe.retry_count, 1, "case {i}: counted for RetryCount");
        assert!(cpe.events.has(cpe_sim::cwmp::rpc::inform::EventCode::Bootstrap), "case {i}: events kept for the retry");
    }
    // 401 without a challenge, with credentials configured.
    let raw = RawAcs::start(|_, _| RawReply::Send(http("401 Unauthorized", &[], b""))).await;
    let mut cfg = t();
    cfg.credentials = creds("a", "b");
    let (report, _) = one_shot(&raw.url("/"), cfg).await;
    assert!(error(&report).contains("without a usable WWW-Authenticate"), "{}", error(&report));
}

#[tokio::test]
async fn daemon_mode_retries_with_retry_count() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let raw = RawAcs::start(move |req, _| {
        if req.body_str().contains("<cwmp:Inform>") && s.fetch_add(1, Ordering::SeqCst) == 0 {
            return RawReply::Send(http("500 Internal Server Error", &[], b""));
        }
        RawReply::Send(simple_acs(req))
    })
    .await;
    let model = profile(TR181);
    let mut cpe = CpeState::new(DeviceId(0), UnixMillis::now());
    let now = UnixMillis::now();
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.CWMPRetryMinimumWaitInterval", "1").unwrap();
    let mut one = OneCpe::new(model, raw.url("/"), transport(Duration::from_secs(5))).daemon(Duration::from_secs(4));
    one.initial = Some(cpe);
    let started = std::time::Instant::now();
    let (report, cpe) = one.run().await;
    assert_eq!((report.completed, report.failed), (1, 1), "{}", error(&report));
    assert!(started.elapsed() >= Duration::from_secs(1), "the retry waited (TR-069 back-off, m = 1 s)");
    let informs: Vec<String> = raw.requests().iter().map(|r| r.body_str()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    assert!(informs[0].contains("<RetryCount>0</RetryCount>") && informs[1].contains("<RetryCount>1</RetryCount>"));
    assert!(informs[1].contains("0 BOOTSTRAP"), "the retry carries the undelivered events");
    assert_eq!(cpe.retry_count, 0);
}

#[test]
fn the_binary_against_its_own_acs_and_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_cpe-sim");
    let mut acs = Command::new(bin)
        .args(["acs", "--bind", "127.0.0.1:0", "--push", "GPV Device.DeviceInfo.SerialNumber"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(acs.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("the ACS says where it listens").to_string();
    let out = Command::new(bin).args(["--acs-url", &url, "--cpe-index", "5"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cpe_id=cpe-5") && err.contains("serial=FEFEFE000005") && err.contains("rpc=GetParameterValues"), "{err}");
    let _ = Command::new("kill").args(["-TERM", &acs.id().to_string()]).status();
    let status = acs.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM stops the ACS cleanly");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("embedded ACS stopped") && l.contains("sessions_completed=1")), "{rest:?}");
}

#[tokio::test]
async fn factory_reset_and_upload_over_the_wire() {
    let uploads = RawAcs::start(|req, _| {
        RawReply::Send(if req.method == "PUT" { http("201 Created", &[], b"") } else { http("405 Method Not Allowed", &[], b"") })
    })
    .await;
    let upload_url = uploads.url("/upload/cfg");
    let empties = Arc::new(AtomicUsize::new(0));
    let e = empties.clone();
    let raw = RawAcs::start(move |req, _| {
        let b = req.body_str();
        let reply = if b.contains("<cwmp:Inform>") {
            simple_acs(req)
        } else if b.is_empty() && e.fetch_add(1, Ordering::SeqCst) == 0 {
            http("200 OK", &[], &acs_envelope("fr", "<cwmp:FactoryReset/>"))
        } else if b.contains("FactoryResetResponse") {
            let upload = format!("<cwmp:Upload><CommandKey>up-1</CommandKey><FileType>1 Vendor Configuration File</FileType><URL>{upload_url}</URL><Username/><Password/><DelaySeconds>0</DelaySeconds></cwmp:Upload>");
            http("200 OK", &[], &acs_envelope("up", &upload))
        } else if b.contains("<cwmp:TransferComplete>") {
            http("200 OK", &[], &acs_envelope("tc", "<cwmp:TransferCompleteResponse/>"))
        } else {
            http("204 No Content", &[], b"")
        };
        RawReply::Send(reply)
    })
    .await;
    let (report, cpe) = one_shot(&raw.url("/"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (2, 0), "{}", error(&report));
    let informs: Vec<String> = raw.requests().iter().map(|r| r.body_str()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    assert_eq!(informs.len(), 2);
    for code in ["0 BOOTSTRAP", "1 BOOT", "7 TRANSFER COMPLETE", "M Upload"] {
        assert!(informs[1].contains(code), "after FactoryReset + Upload the Inform carries {code}");
    }
    let tc = raw.requests().iter().map(|r| r.body_str()).find(|b| b.contains("<cwmp:TransferComplete>")).expect("TransferComplete sent");
    assert!(tc.contains("<CommandKey>up-1</CommandKey>") && tc.contains("<FaultCode>0</FaultCode>"), "{tc}");
    let put = uploads.requests().into_iter().find(|r| r.method == "PUT").expect("the file was uploaded");
    assert!(put.body_str().contains("1 Vendor Configuration File"));
    assert!(cpe.events.is_empty());
}

#[tokio::test]
async fn a_tls_session_ends_with_close_notify() {
    use http_body_util::BodyExt;
    let pki = Pki::new("notify");
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    // A keep-alive ACS that never closes first: how the CPE ends the connection is what it sees.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let stream = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await.unwrap();
        let svc = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
            let body = req.into_body().collect().await?.to_bytes();
            let resp = match String::from_utf8_lossy(&body).contains("<cwmp:Inform>") {
                true => hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(crate::support::inform_response("1")))),
                false => hyper::Response::builder().status(204).body(http_body_util::Full::new(bytes::Bytes::new())).unwrap(),
            };
            Ok::<_, hyper::Error>(resp)
        });
        let parts = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
            .without_shutdown()
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = parts.io.into_inner();
        let state = tls.get_mut().1.process_new_packets().map_err(|e| e.to_string())?;
        Ok::<_, String>(state.peer_has_closed())
    });
    let t = tls_transport(TlsOptions { ca_cert_file: Some(pki.path("ca.pem")), ..TlsOptions::default() });
    let (report, _) = one_shot(&url, t).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    let served = tokio::time::timeout(Duration::from_secs(5), server).await.expect("the CPE closed the connection").unwrap();
    assert_eq!(served, Ok(true), "the CPE sent no TLS close_notify");
}

/// What one POST of a CWMP session was, for checking the order of an exchange.
fn kind(body: &str) -> String {
    if body.is_empty() {
        return "empty".into();
    }
    for k in ["Inform", "TransferComplete", "DownloadResponse", "GetParameterValuesResponse", "GetRPCMethods"] {
        if body.contains(&format!("<cwmp:{k}>")) {
            return k.into();
        }
    }
    "other".into()
}

/// The CWMP POSTs an ACS received, by kind.
fn posts(raw: &RawAcs) -> Vec<String> {
    raw.requests().iter().filter(|r| r.method == "POST").map(|r| kind(&r.body_str())).collect()
}

#[tokio::test]
async fn hold_requests_then_the_owed_transfer_complete_over_the_wire() {
    // The shared case `cases/holdrequests/`: session 1 gets `download.xml` for a file this server
    // serves; session 2's InformResponse holds requests and its empty POST gets 204.
    const FILE: &[u8] = b"vendor-config!";
    let (empties, informs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let raw = RawAcs::start(move |req, _| {
        let b = req.body_str();
        RawReply::Send(if req.method == "GET" {
            http("200 OK", &[], FILE)
        } else if b.contains("<cwmp:Inform>") {
            // Session 2 holds; a third Inform would be a loop: it gets 500, which ends a one-shot run.
            match informs.fetch_add(1, Ordering::SeqCst) {
                0 => http("200 OK", &[], &inform_response("1")),
                1 => http("200 OK", &[], &held(&inform_response("2"))),
                _ => http("500 Internal Server Error", &[], b""),
            }
        } else if b.is_empty() && empties.fetch_add(1, Ordering::SeqCst) == 0 {
            let url = format!("http://{}/cfg.bin", req.header("host").unwrap());
            http("200 OK", &[], &case_download(&url, FILE.len()))
        } else if b.contains("<cwmp:TransferComplete>") {
            http("200 OK", &[], &acs_envelope("tc", "<cwmp:TransferCompleteResponse/>"))
        } else {
            http("204 No Content", &[], b"")
        })
    })
    .await;
    let (report, cpe) = one_shot(&raw.url("/"), transport(Duration::from_secs(5))).await;
    let informs: Vec<String> = raw.requests().iter().map(|r| r.body_str()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    assert_eq!(informs.len(), 2, "one session per reason, no loop: {:?}", posts(&raw));
    assert_eq!((report.completed, report.failed), (2, 0), "{}", error(&report));
    assert_eq!(
        posts(&raw),
        ["Inform", "empty", "DownloadResponse", "Inform", "empty", "TransferComplete", "empty"],
        "held: empty POST; after the 204: the TransferComplete, the empty POST, and the next 204 ends it"
    );
    let tc = raw.requests().iter().map(|r| r.body_str()).find(|b| b.contains("<cwmp:TransferComplete>")).unwrap();
    assert!(tc.contains("<CommandKey>cfg-42</CommandKey>") && tc.contains("<FaultCode>0</FaultCode>"), "{tc}");
    assert!(cpe.events.is_empty(), "nothing owed");
    assert_eq!(cpe.retry_count, 0);
}

#[tokio::test]
async fn an_acs_that_always_holds_and_never_acknowledges_gets_the_back_off_not_a_loop() {
    // Every InformResponse holds; the ACS ends each session with 204 after the held empty POST and
    // answers the TransferComplete sent then with 204 too. The report stays owed; each new try
    // waits for the TR-069 back-off (m = 1 s, k = 2: 1–2 s, then 2–4 s).
    const FILE: &[u8] = b"0123456789abcd";
    let downloads = AtomicUsize::new(0);
    let inform_times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let times = inform_times.clone();
    let raw = RawAcs::start(move |req, _| {
        let b = req.body_str();
        RawReply::Send(if req.method == "GET" {
            http("200 OK", &[], FILE)
        } else if b.contains("<cwmp:Inform>") {
            times.lock().unwrap().push(std::time::Instant::now());
            http("200 OK", &[], &held(&inform_response("1")))
        } else if b.is_empty() && downloads.fetch_add(1, Ordering::SeqCst) == 0 {
            let url = format!("http://{}/f.bin", req.header("host").unwrap());
            http("200 OK", &[], &case_download(&url, FILE.len()))
        } else {
            http("204 No Content", &[], b"")
        })
    })
    .await;
    let model = profile(TR181);
    let now = UnixMillis::now();
    let mut cpe = CpeState::new(DeviceId(0), now);
    cpe.device_mut(&model, now).set_local("Device.ManagementServer.CWMPRetryMinimumWaitInterval", "1").unwrap();
    let mut one = OneCpe::new(model, raw.url("/"), transport(Duration::from_secs(5))).daemon(Duration::from_millis(3500));
    one.initial = Some(cpe);
    let (report, cpe) = one.run().await;
    let informs: Vec<String> = raw.requests().iter().map(|r| r.body_str()).filter(|b| b.contains("<cwmp:Inform>")).collect();
    let owed: Vec<&String> = informs.iter().filter(|b| b.contains("7 TRANSFER COMPLETE")).collect();
    assert!((2..=4).contains(&owed.len()), "{} sessions owed the report in 3.5 s: {:?}", owed.len(), posts(&raw));
    // Each retry waited for the back-off (the first owed session follows the bootstrap at once).
    let times = inform_times.lock().unwrap().clone();
    for (i, pair) in times[1..].windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950), "retry {} came {gap:?} after the failed session", i + 1);
    }
    for (i, inform) in owed.iter().enumerate() {
        assert!(inform.contains(&format!("<RetryCount>{i}</RetryCount>")), "try {i} counts the failures before it");
    }
    assert_eq!(report.completed, 1, "only the bootstrap session completed");
    assert!(error(&report).contains("without answering the CPE's TransferComplete"), "{}", error(&report));
    assert_eq!(cpe.events.next_transfer().map(|t| &*t.command_key), Some("cfg-42"), "still owed");
}

#[tokio::test]
async fn an_inform_response_after_a_byte_order_mark_and_a_comment_completes_the_session() {
    let raw = RawAcs::start(|req, _| {
        RawReply::Send(if req.body_str().contains("<cwmp:Inform>") {
            let mut body = b"\xEF\xBB\xBF<!-- served by an ACS behind a proxy -->\r\n".to_vec();
            body.extend_from_slice(&inform_response("1"));
            http("200 OK", &[("Content-Type", "text/xml; charset=utf-8")], &body)
        } else {
            http("204 No Content", &[], b"")
        })
    })
    .await;
    let (report, cpe) = one_shot(&raw.url("/"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    assert_eq!(posts(&raw), ["Inform", "empty"]);
    assert!(cpe.bootstrapped && cpe.events.is_empty(), "the InformResponse delivered the events");
}

/// The cookies of a request's `Cookie` header, sorted (`name=value`).
fn cookies_of(req: &crate::support::raw::RawRequest) -> Vec<String> {
    let mut v: Vec<String> = req.header("cookie").map(|c| c.split("; ").map(str::to_string).collect()).unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn cookies_follow_rfc6265_path_domain_expiry_and_secure() {
    // The InformResponse sets cookies the CPE must keep or drop by RFC 6265; the answer to the
    // empty POST (a GPV) expires two of them, by Max-Age=0 and by an Expires in the past.
    let gpv = acs_envelope(
        "gpv",
        "<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[1]\"><string>Device.DeviceInfo.SoftwareVersion</string></ParameterNames></cwmp:GetParameterValues>",
    );
    let raw = RawAcs::start(move |req, _| {
        let b = req.body_str();
        RawReply::Send(if b.contains("<cwmp:Inform>") {
            http(
                "200 OK",
                &[
                    ("Set-Cookie", "keep=1; Path=/acs"),
                    ("Set-Cookie", "long=1; Max-Age=3600"),
                    ("Set-Cookie", "elsewhere=1; Path=/other"),
                    ("Set-Cookie", "foreign=1; Domain=acs.example.com"),
                    ("Set-Cookie", "secure=1; Secure"),
                    ("Set-Cookie", "gone=1"),
                    ("Set-Cookie", "old=1; Path=/"),
                ],
                &inform_response("1"),
            )
        } else if b.is_empty() && req.header("cookie").is_some_and(|c| c.contains("gone=1")) {
            http(
                "200 OK",
                &[("Set-Cookie", "gone=; Max-Age=0"), ("Set-Cookie", "old=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT")],
                &gpv,
            )
        } else {
            http("204 No Content", &[], b"")
        })
    })
    .await;
    let (report, _) = one_shot(&raw.url("/acs/cwmp"), transport(Duration::from_secs(5))).await;
    assert_eq!((report.completed, report.failed), (1, 0), "{}", error(&report));
    let reqs = raw.requests();
    assert_eq!(posts(&raw), ["Inform", "empty", "GetParameterValuesResponse"]);
    assert_eq!(cookies_of(&reqs[1]), ["gone=1", "keep=1", "long=1", "old=1"], "path, domain and Secure (over http) matched");
    assert_eq!(cookies_of(&reqs[2]), ["keep=1", "long=1"], "Max-Age=0 and a past Expires remove a cookie");
}

#[tokio::test]
async fn cookies_and_authorization_stay_with_their_origin() {
    // Origin A asks for credentials and sets a cookie, redirects once on its own origin (both
    // follow), then to origin B: another port of 127.0.0.1, or 127.0.0.2. B gets neither.
    for (scheme, challenge) in [("Basic", "Basic realm=\"a\""), ("Digest", "Digest realm=\"a\", qop=\"auth\", nonce=\"n1\"")] {
        for host in [[127, 0, 0, 1], [127, 0, 0, 2]] {
            let b = RawAcs::start_on(host.into(), |req, _| {
                RawReply::Send(if req.body_str().contains("<cwmp:Inform>") {
                    http("200 OK", &[], &inform_response("1"))
                } else {
                    http("204 No Content", &[], b"")
                })
            })
            .await;
            let to_b = b.url("/cwmp");
            let a = RawAcs::start(move |req, _| {
                RawReply::Send(match (req.header("authorization"), req.path.as_str()) {
                    (None, _) => http("401 Unauthorized", &[("WWW-Authenticate", challenge), ("Set-Cookie", "a=1; Path=/")], b""),
                    (Some(_), "/start") => http("307 Temporary Redirect", &[("Location", "/moved")], b""),
                    (Some(_), _) => http("307 Temporary Redirect", &[("Location", to_b.as_str())], b""),
                })
            })
            .await;
            let mut t = transport(Duration::from_secs(5));
            t.credentials = creds("cpe", "pw");
            let (report, _) = one_shot(&a.url("/start"), t).await;
            assert_eq!((report.completed, report.failed), (1, 0), "{scheme} {host:?}: {}", error(&report));
            let moved = a.requests().into_iter().find(|r| r.path == "/moved").expect("the same-origin redirect was followed");
            assert_eq!(cookies_of(&moved), ["a=1"], "{scheme}: the cookie follows on the same origin");
            assert!(moved.header("authorization").is_some_and(|v| v.starts_with(scheme)), "{scheme}: so does Authorization");
            let at_b = b.requests();
            assert_eq!(posts(&b), ["Inform", "empty"], "{scheme} {host:?}");
            for r in &at_b {
                assert_eq!((r.header("cookie"), r.header("authorization")), (None, None), "{scheme} {host:?}: nothing of A's went to B");
            }
        }
    }
}

#[tokio::test]
async fn a_new_origin_that_asks_for_credentials_gets_none() {
    // B challenges on its own: the CPE's credentials are for the ACS URL's origin only, so the
    // session fails saying so, and B never sees an Authorization header.
    let b = RawAcs::start(|req, _| {
        RawReply::Send(match req.header("authorization") {
            None => http("401 Unauthorized", &[("WWW-Authenticate", "Basic realm=\"b\"")], b""),
            Some(_) if req.body_str().contains("<cwmp:Inform>") => http("200 OK", &[], &inform_response("1")),
            Some(_) => http("204 No Content", &[], b""),
        })
    })
    .await;
    let to_b = b.url("/cwmp");
    let a = RawAcs::start(move |req, _| {
        RawReply::Send(match req.header("authorization") {
            None => http("401 Unauthorized", &[("WWW-Authenticate", "Digest realm=\"a\", qop=\"auth\", nonce=\"n1\"")], b""),
            Some(_) => http("302 Found", &[("Location", to_b.as_str())], b""),
        })
    })
    .await;
    let mut t = transport(Duration::from_secs(5));
    t.credentials = creds("cpe", "pw");
    let (report, _) = one_shot(&a.url("/"), t).await;
    assert_eq!((report.completed, report.failed), (0, 1), "{}", error(&report));
    assert!(error(&report).contains("another origin"), "{}", error(&report));
    assert!(
        !b.requests().is_empty() && b.requests().iter().all(|r| r.header("authorization").is_none()),
        "nothing of the CPE's credentials went to B"
    );
}

#[tokio::test]
async fn an_https_to_http_redirect_is_refused() {
    let pki = Pki::new("downgrade");
    let tls = server_config(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    let plain = RawAcs::start(|req, _| RawReply::Send(simple_acs(req))).await;
    let to_plain = plain.url("/cwmp");
    // A Secure cookie goes back over https; then the ACS sends the CPE to plain http.
    let secure = RawAcs::start_tls(tls, move |req, _| {
        RawReply::Send(if req.body_str().contains("<cwmp:Inform>") {
            http("200 OK", &[("Set-Cookie", "s=1; Secure; HttpOnly")], &inform_response("1"))
        } else {
            http("302 Found", &[("Location", to_plain.as_str())], b"")
        })
    })
    .await;
    assert!(secure.url("/").starts_with("https://"));
    let t = tls_transport(TlsOptions { ca_cert_file: Some(pki.path("ca.pem")), ..TlsOptions::default() });
    let (report, _) = one_shot(&secure.url("/"), t).await;
    assert_eq!((report.completed, report.failed), (0, 1), "{}", error(&report));
    assert!(error(&report).contains("refused a redirect from https") && error(&report).contains(&plain.url("/cwmp")), "{}", error(&report));
    assert_eq!(report.outcome.total.outcomes.failed[cpe_sim::stats::Cause::Redirect as usize], 1, "counted as `redirect`");
    assert!(plain.requests().is_empty(), "nothing went out over plain http");
    assert_eq!(cookies_of(&secure.requests()[1]), ["s=1"], "a Secure cookie goes back over https");
}

#[tokio::test]
async fn the_next_session_starts_at_its_own_origin_not_on_a_redirected_connection() {
    // Every POST to A is sent to B. In pooled mode the connection to B must not carry the next
    // session (its Inform, A's cookies and credentials) as if it led to A.
    let empties = AtomicUsize::new(0);
    let b = RawAcs::start(move |req, _| {
        let body = req.body_str();
        RawReply::Send(if body.contains("<cwmp:Inform>") {
            http("200 OK", &[], &inform_response("1"))
        } else if body.is_empty() && empties.fetch_add(1, Ordering::SeqCst) == 0 {
            let si = "<cwmp:ScheduleInform><DelaySeconds>1</DelaySeconds><CommandKey>again</CommandKey></cwmp:ScheduleInform>";
            http("200 OK", &[], &acs_envelope("si", si))
        } else {
            http("204 No Content", &[], b"")
        })
    })
    .await;
    let to_b = b.url("/cwmp");
    let a = RawAcs::start(move |_, _| RawReply::Send(http("307 Temporary Redirect", &[("Location", to_b.as_str())], b""))).await;
    let (report, _) =
        OneCpe::new(profile(TR181), a.url("/"), transport(Duration::from_secs(5))).daemon(Duration::from_millis(2500)).run().await;
    assert_eq!(report.completed, 2, "{}: {:?}", error(&report), posts(&b));
    let informs_at_a = a.requests().iter().filter(|r| r.body_str().contains("<cwmp:Inform>")).count();
    assert_eq!(informs_at_a as u64, report.completed, "each session's Inform went to A first");
}
