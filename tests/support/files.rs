//! A file server for Download tests: generates the bytes it serves (never holds the file), on a
//! runtime of its own, and records what it saw (request heads, most requests at once).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the server answers every GET.
#[derive(Debug, Clone)]
pub struct Serve {
    /// Bytes sent.
    pub size: u64,
    /// Content-Length announced (`None`: `size`).
    pub declared: Option<u64>,
    /// Bytes per write.
    pub chunk: usize,
    /// Wait before each write (a slow server).
    pub pause: Duration,
    /// Wait before the response head.
    pub hold: Duration,
    /// After this many bytes, send nothing more and keep the connection open (a stalled server).
    pub stall_after: Option<u64>,
    /// The Authorization header required (else 401 with a Basic challenge).
    pub require: Option<String>,
}

impl Serve {
    pub fn bytes(size: u64) -> Serve {
        Serve { size, declared: None, chunk: 64 * 1024, pause: Duration::ZERO, hold: Duration::ZERO, stall_after: None, require: None }
    }
}

#[derive(Default)]
struct Seen {
    heads: Mutex<Vec<String>>,
    now: AtomicUsize,
    most: AtomicUsize,
}

pub struct FileServer {
    pub addr: std::net::SocketAddr,
    seen: Arc<Seen>,
    _rt: tokio::runtime::Runtime,
}

static ZEROS: [u8; 64 * 1024] = [0x5a; 64 * 1024];

impl FileServer {
    pub fn start(serve: Serve) -> FileServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (serve, seen) = (serve.clone(), s.clone());
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut sock).await else { return };
                    seen.heads.lock().unwrap().push(head.clone());
                    let now = seen.now.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most.fetch_max(now, Ordering::SeqCst);
                    serve_one(&mut sock, &serve, &seen, head).await;
                    seen.now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FileServer { addr, seen, _rt: rt }
    }

    /// `http://127.0.0.1:port<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn heads(&self) -> Vec<String> {
        self.seen.heads.lock().unwrap().clone()
    }

    /// Most requests being answered at once.
    pub fn most_at_once(&self) -> usize {
        self.seen.most.load(Ordering::SeqCst)
    }
}

async fn serve_one(sock: &mut tokio::net::TcpStream, serve: &Serve, seen: &Seen, mut head: String) {
    while let Some(want) = &serve.require {
        let given =
            head.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.trim()));
        if given == Some(want.as_str()) {
            break;
        }
        let challenge = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"files\"\r\nContent-Length: 0\r\n\r\n";
        if sock.write_all(challenge).await.is_err() {
            return;
        }
        // Keep-alive: the client answers the challenge on this connection.
        match read_head(sock).await {
            Some(next) => {
                seen.heads.lock().unwrap().push(next.clone());
                head = next;
            }
            None => return,
        }
    }
    tokio::time::sleep(serve.hold).await;
    let declared = serve.declared.unwrap_or(serve.size);
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n");
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut sent = 0u64;
    while sent < serve.size {
        if serve.stall_after.is_some_and(|s| sent >= s) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        tokio::time::sleep(serve.pause).await;
        let n = (serve.size - sent).min(serve.chunk as u64).min(ZEROS.len() as u64) as usize;
        if sock.write_all(&ZEROS[..n]).await.is_err() {
            return;
        }
        sent += n as u64;
    }
    let _ = sock.shutdown().await;
}

async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1];
    // Byte by byte: nothing past the head is consumed.
    while !head.ends_with(b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => head.push(buf[0]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}
