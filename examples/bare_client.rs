//! The floor of cpe-sim's network stack: the fewest instructions tokio and hyper need for a CWMP
//! session, with no CPE behind it. Each of N tasks on one current-thread runtime POSTs a fixed
//! Inform, reads the answer, POSTs the empty message, reads the 204, and starts over, on a new
//! connection per session (`close`) or on its own kept-alive one (`keepalive`). No data model,
//! no codec, no measurement beyond a count. With RATE (sessions/s over all connections), each
//! task starts a session every CONNECTIONS/RATE seconds instead of flat out (a fixed offered
//! load, as cpe-sim's periodic Informs; `scripts/bench-instructions.sh` uses it).
//!
//! `scripts/bench-ceiling.sh` runs it beside wrk and cpe-sim: what cpe-sim loses to this is our
//! own overhead; what this loses to wrk is the stack's.
//!
//! ```sh
//! cargo run --release --example bare_client -- URL INFORM_FILE close|keepalive CONNECTIONS SECONDS [RATE]
//! ```

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 && args.len() != 7 {
        eprintln!("usage: bare_client URL INFORM_FILE close|keepalive CONNECTIONS SECONDS [RATE]");
        std::process::exit(2);
    }
    let url: http::Uri = args[1].parse().expect("a URL");
    let inform = Bytes::from(std::fs::read(&args[2]).expect("the Inform file"));
    let per_session = args[3] == "close";
    let connections: usize = args[4].parse().expect("a connection count");
    let seconds: u64 = args[5].parse().expect("seconds");
    // Each task's time between session starts (`None`: flat out).
    let every = args.get(6).map(|r| Duration::from_secs_f64(connections as f64 / r.parse::<f64>().expect("sessions/s")));
    let authority = url.authority().expect("host:port").as_str().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let sessions = Rc::new(Cell::new(0u64));
    let end = Instant::now() + Duration::from_secs(seconds);
    rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        for i in 0..connections {
            let (inform, authority, sessions) = (inform.clone(), authority.clone(), sessions.clone());
            local.spawn_local(async move {
                // Spread over the period, as cpe-sim spreads its CPEs' boots.
                let mut next = tokio::time::Instant::now() + every.unwrap_or_default().mul_f64(i as f64 / connections as f64);
                while Instant::now() < end {
                    pace(&mut next, every).await;
                    let Ok(tcp) = tokio::net::TcpStream::connect(authority.as_str()).await else { continue };
                    let _ = tcp.set_nodelay(true);
                    let Ok((mut sender, conn)) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp)).await else { continue };
                    let mut conn = Some(Box::pin(conn));
                    loop {
                        let ok = drive(&mut conn, async {
                            for body in [inform.clone(), Bytes::new()] {
                                let mut req = http::Request::post("/").header(http::header::HOST, authority.as_str());
                                req = match body.is_empty() {
                                    true => req.header(http::header::CONTENT_LENGTH, "0"),
                                    false => req.header(http::header::CONTENT_TYPE, "text/xml; charset=\"utf-8\"").header("SOAPAction", ""),
                                };
                                let resp = sender.send_request(req.body(Full::new(body)).expect("a request")).await.ok()?;
                                resp.into_body().collect().await.ok()?;
                            }
                            Some(())
                        })
                        .await;
                        if ok.is_none() {
                            break;
                        }
                        sessions.set(sessions.get() + 1);
                        if per_session || Instant::now() >= end {
                            break;
                        }
                        pace(&mut next, every).await;
                    }
                }
            });
        }
        local.await;
    });
    println!("sessions {} per_second {:.1}", sessions.get(), sessions.get() as f64 / seconds as f64);
}

/// Waits for the next session's start, `every` after the last one's (nothing when flat out).
async fn pace(next: &mut tokio::time::Instant, every: Option<Duration>) {
    if let Some(every) = every {
        *next += every;
        tokio::time::sleep_until(*next).await;
    }
}

/// Polls `f` and the connection together (as cpe-sim's transport does: no task per connection).
async fn drive<C: Future + Unpin, F: Future>(conn: &mut Option<C>, f: F) -> F::Output {
    let mut f = pin!(f);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = f.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(c) = conn {
            if pin!(c).poll(cx).is_ready() {
                *conn = None;
                return f.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
}
