//! Downloads over real sockets (issue 10 items 7 and 9): FileSize checks on a streamed body, the
//! transfer timeout apart from the exchange timeout (slow but progressing vs stalled), userinfo
//! in the URL as the credentials (never in Host, the request target or a FaultString), and the
//! limit on transfers in flight across a fleet. Bounded memory is measured in
//! `tests/transfer_memory.rs` (a binary of its own: its allocator counts the whole process).

use std::time::Duration;

use cpe_sim::cpe::{TransferKind, TransferRequest};
use cpe_sim::cwmp::FaultCode;
use cpe_sim::engine::transfer::perform;
use cpe_sim::engine::TransferLimits;

use crate::engine::{eventually, ok, plan, rpc, scripted, start, Acs};
use crate::support::files::{FileServer, Serve};
use crate::support::{test_transport, texts};

fn download(url: &str, file_size: u32) -> TransferRequest {
    TransferRequest {
        kind: TransferKind::Download,
        command_key: "k".into(),
        file_type: "1 Firmware Upgrade Image".into(),
        url: url.into(),
        username: "".into(),
        password: "".into(),
        file_size,
        target_file_name: "".into(),
        delay: Duration::ZERO,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn file_size_mismatches_are_download_incomplete() {
    let rt = rt();
    let cfg = test_transport();
    let exact = FileServer::start(Serve::bytes(100_000));
    assert_eq!(rt.block_on(perform(&cfg, &download(&exact.url("/f"), 100_000), LONG)), None);
    assert_eq!(rt.block_on(perform(&cfg, &download(&exact.url("/f"), 0), LONG)), None, "FileSize 0: any size");
    // Fewer bytes than FileSize, more than FileSize, and a body cut short of its Content-Length.
    let short = rt.block_on(perform(&cfg, &download(&exact.url("/f"), 200_000), LONG)).unwrap();
    assert_eq!(short.0, FaultCode::DownloadIncomplete, "{short:?}");
    assert!(short.1.contains("got 100000 bytes, FileSize said 200000"), "{short:?}");
    let long = rt.block_on(perform(&cfg, &download(&exact.url("/f"), 50_000), LONG)).unwrap();
    assert_eq!(long.0, FaultCode::DownloadIncomplete, "{long:?}");
    let cut = FileServer::start(Serve { declared: Some(300_000), ..Serve::bytes(100_000) });
    let cut = rt.block_on(perform(&cfg, &download(&cut.url("/f"), 0), LONG)).unwrap();
    assert_eq!(cut.0, FaultCode::DownloadIncomplete, "{cut:?}");
}

#[test]
fn a_slow_server_is_not_cut_by_the_exchange_timeout_but_a_stalled_one_is() {
    let rt = rt();
    let mut cfg = test_transport();
    cfg.timeout = Duration::from_millis(400);
    // 24 KiB, 1 KiB every 50 ms: ~1.2 s in all, three times --timeout, never 400 ms without bytes.
    let slow = FileServer::start(Serve { chunk: 1024, pause: Duration::from_millis(50), ..Serve::bytes(24 * 1024) });
    let t = std::time::Instant::now();
    assert_eq!(rt.block_on(perform(&cfg, &download(&slow.url("/f"), 24 * 1024), LONG)), None);
    assert!(t.elapsed() > cfg.timeout * 2, "the file took {:?}", t.elapsed());
    // The same server under a transfer timeout shorter than the whole file.
    let cut = rt.block_on(perform(&cfg, &download(&slow.url("/f"), 24 * 1024), Duration::from_millis(500))).unwrap();
    assert_eq!(cut.0, FaultCode::DownloadIncomplete, "{cut:?}");
    assert!(cut.1.contains("--transfer-timeout"), "{cut:?}");
    // Bytes, then nothing for longer than --timeout: stalled, long before the transfer timeout.
    let stalled = FileServer::start(Serve { chunk: 1024, stall_after: Some(4096), ..Serve::bytes(24 * 1024) });
    let t = std::time::Instant::now();
    let f = rt.block_on(perform(&cfg, &download(&stalled.url("/f"), 0), LONG)).unwrap();
    assert_eq!(f.0, FaultCode::DownloadIncomplete, "{f:?}");
    assert!(f.1.contains("stalled"), "{f:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "cut after {:?}", t.elapsed());
    // A server that never answers the head: --timeout, not the transfer timeout.
    let mute = FileServer::start(Serve { hold: Duration::from_secs(3600), ..Serve::bytes(10) });
    let t = std::time::Instant::now();
    let f = rt.block_on(perform(&cfg, &download(&mute.url("/f"), 0), LONG)).unwrap();
    assert_eq!(f.0, FaultCode::DownloadIncomplete, "{f:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "cut after {:?}", t.elapsed());
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

#[test]
fn userinfo_is_the_credentials_and_never_leaves_the_url() {
    let rt = rt();
    let cfg = test_transport();
    let server = FileServer::start(Serve { require: Some(basic("fw", "s3cr@t")), ..Serve::bytes(1000) });
    let url = format!("http://fw:s3cr%40t@{}/image.bin", server.addr);
    assert_eq!(rt.block_on(perform(&cfg, &download(&url, 1000), LONG)), None);
    let heads = server.heads();
    assert!(!heads.is_empty(), "{heads:?}");
    for h in &heads {
        assert!(h.starts_with("GET /image.bin HTTP/1.1\r\n"), "{h}");
        let host = h.lines().find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: "))).unwrap();
        assert_eq!(host, server.addr.to_string(), "{h}");
        assert!(!h.contains("s3cr") && !h.contains("fw:"), "{h}");
    }
    // Username/Password given by the ACS win over the userinfo.
    let mut req = download(&format!("http://fw:wrong@{}/image.bin", server.addr), 1000);
    (req.username, req.password) = ("fw".into(), "s3cr@t".into());
    assert_eq!(rt.block_on(perform(&cfg, &req, LONG)), None);
    // Refused userinfo: 9012, and the FaultString does not carry it.
    let url = format!("http://fw:n0pe-secret@{}/image.bin", server.addr);
    let f = rt.block_on(perform(&cfg, &download(&url, 0), LONG)).unwrap();
    assert_eq!(f.0, FaultCode::TransferAuthFailure, "{f:?}");
    assert!(!f.1.contains("n0pe-secret") && !f.1.contains("fw:"), "{f:?}");
    // Nor does any other failure's: an unreachable server, a bad URL.
    let f = rt.block_on(perform(&cfg, &download("http://fw:n0pe-secret@127.0.0.1:1/x", 0), LONG)).unwrap();
    assert!(!f.1.contains("n0pe-secret"), "{f:?}");
    let f = rt.block_on(perform(&cfg, &download("ftp://fw:n0pe-secret@127.0.0.1/x", 0), LONG)).unwrap();
    assert!(!f.1.contains("n0pe-secret"), "{f:?}");
}

fn download_rpc(url: &str) -> Vec<u8> {
    rpc(
        "dl",
        &format!(
            "<cwmp:Download><CommandKey>dl-1</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>{url}</URL><Username></Username><Password></Password><FileSize>0</FileSize><TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds><SuccessURL></SuccessURL><FailureURL></FailureURL></cwmp:Download>"
        ),
    )
}

fn transfer_completes(acs: &Acs) -> Vec<String> {
    acs.raw.requests().iter().map(|r| r.body_str()).filter(|b| b.contains("<cwmp:TransferComplete>")).collect()
}

#[test]
fn a_fleet_never_has_more_transfers_in_flight_than_max_transfers() {
    let files = FileServer::start(Serve { hold: Duration::from_millis(150), ..Serve::bytes(10_000) });
    let url = files.url("/fw.bin");
    let acs = Acs::start(scripted(move |s| if s.n == 0 { ok(s, vec![download_rpc(&url)]) } else { ok(s, vec![]) }));
    let mut p = plan(acs.url(), 10, None);
    p.shards = 2;
    p.transfers = TransferLimits::new(2, Duration::from_secs(30));
    let run = start(p, Some(Duration::from_secs(60)), vec![]);
    eventually("ten TransferCompletes", || transfer_completes(&acs).len() >= 10);
    let outcome = run.finish();
    assert_eq!(outcome.total.outcomes.failed_sessions(), 0, "{:?}", outcome.total.outcomes.last_failure);
    assert_eq!(files.heads().len(), 10);
    assert_eq!(files.most_at_once(), 2, "never more than --max-transfers at once, and the slots are used");
    for tc in transfer_completes(&acs) {
        assert_eq!(texts(&tc, "FaultCode"), ["0"], "{tc}");
    }
}

#[test]
fn a_transfer_complete_never_carries_the_url_userinfo() {
    let files = FileServer::start(Serve { require: Some(basic("fw", "right")), ..Serve::bytes(100) });
    let url = format!("http://fw:Wr0ngSecret@{}/fw.bin", files.addr);
    let acs = Acs::start(scripted(move |s| if s.n == 0 { ok(s, vec![download_rpc(&url)]) } else { ok(s, vec![]) }));
    let run = start(plan(acs.url(), 1, None), Some(Duration::from_secs(60)), vec![]);
    eventually("the TransferComplete", || !transfer_completes(&acs).is_empty());
    run.finish();
    let tc = transfer_completes(&acs).remove(0);
    assert_eq!(texts(&tc, "FaultCode"), ["9012"], "{tc}");
    assert!(!tc.contains("Wr0ngSecret"), "{tc}");
    assert!(files.heads().iter().all(|h| !h.contains("Wr0ngSecret")));
}
