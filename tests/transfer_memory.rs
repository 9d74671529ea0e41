//! A 64 MiB download streamed over a real socket holds no more than a bounded amount of memory:
//! a counting global allocator tracks the bytes live in the whole process and their peak.
//!
//! Its own test binary with one test: the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cpe_sim::transport::fetch::{transfer, FileRequest};

#[path = "support/files.rs"]
mod files;

use files::{FileServer, Serve};

struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by as i64, Ordering::Relaxed) + by as i64;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        grew(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

const SIZE: u64 = 64 * 1024 * 1024;
/// What one streamed transfer may hold at its peak (hyper's read buffer, capped at 64 KiB, and the
/// session's own state), far below the file's size.
const BOUND: i64 = 1024 * 1024;

#[test]
fn a_64_mib_download_is_streamed_in_bounded_memory() {
    let server = FileServer::start(Serve::bytes(SIZE));
    let cfg = cpe_sim::transport::TransportConfig {
        timeout: Duration::from_secs(10),
        max_body: cpe_sim::transport::DEFAULT_MAX_BODY,
        tls: cpe_sim::transport::tls::client_config(&cpe_sim::transport::tls::TlsOptions { no_system_roots: true, ..Default::default() })
            .unwrap(),
        credentials: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = server.url("/image.bin");
    let req = FileRequest {
        download: true,
        url: &url,
        username: "",
        password: "",
        body: Bytes::new(),
        expected_size: Some(SIZE),
        timeout: Duration::from_secs(120),
    };
    // A warm-up (lazy statics, the runtime's timers), then the measured transfer.
    let small = server.url("/warm");
    rt.block_on(transfer(&cfg, &FileRequest { url: &small, expected_size: None, ..req.clone() })).unwrap();
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let got = rt.block_on(transfer(&cfg, &req)).unwrap();
    let peak = PEAK.load(Ordering::SeqCst) - base;
    eprintln!("64 MiB download: peak live heap growth {} KiB", peak / 1024);
    assert_eq!(got, SIZE);
    assert!(peak < BOUND, "a 64 MiB download held {peak} bytes at its peak (bound {BOUND})");
}
