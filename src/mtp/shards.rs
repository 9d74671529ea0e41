//! The USP run's shards: `--shards` OS threads (`engine::thread`, the CWMP shards' thread with
//! its panic report), each a current-thread tokio runtime owning a strided slice of the Agents
//! (the one at position k of the run goes to shard k mod n, the CWMP shard's rule), every Agent's
//! loop a future polled by its shard. Stopping gives each shard's Agents `--drain-timeout` to
//! close their connections; what is left then is dropped with the shard's runtime. An Agent that
//! panics takes its shard down: the run hears `shard N panicked: …` ([`Shards::panics`]), and
//! fails.

use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::life::stopped;
use crate::engine::thread::{join_finished, panic_line, spawn_shard, STOP_MARGIN};

/// A shard that ended: on its own (its Agents done, or drained after a stop), or by a panic.
struct Ended {
    shard: u16,
    panic: Option<String>,
}

/// The running shards of a USP run.
pub struct Shards {
    threads: Vec<std::thread::JoinHandle<()>>,
    ended: mpsc::Receiver<Ended>,
    live: usize,
    stop: watch::Sender<bool>,
    drain: Duration,
    /// Shards that died, as `shard N panicked: message` lines (in the order they died).
    pub panics: Vec<String>,
}

impl Shards {
    /// Starts `shards` threads (at least one) running `agents` strided across them: `run(agent,
    /// stop)` is an Agent's whole life, which must end soon after `stop` turns true. `drain`:
    /// how long a stopping shard waits for its Agents.
    ///
    /// # Errors
    /// A thread could not be created (the ones already started are stopped).
    pub fn start<A, F, Fut>(shards: u16, agents: Vec<A>, drain: Duration, run: F) -> std::io::Result<Shards>
    where
        A: Send + 'static,
        F: Fn(A, watch::Receiver<bool>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let n = shards.max(1);
        let mut slices: Vec<Vec<A>> = (0..n).map(|_| Vec::new()).collect();
        for (k, a) in agents.into_iter().enumerate() {
            slices[k % n as usize].push(a);
        }
        let (stop, stop_rx) = watch::channel(false);
        let (tx, ended) = mpsc::channel();
        let mut me = Shards { threads: Vec::new(), ended, live: 0, stop, drain, panics: Vec::new() };
        for (id, slice) in (0..n).zip(slices) {
            let (run, stop_rx, done, on_panic) = (run.clone(), stop_rx.clone(), tx.clone(), tx.clone());
            let spawned = spawn_shard(
                id,
                move |rt| {
                    rt.block_on(async move {
                        let mut agents: FuturesUnordered<_> = slice.into_iter().map(|a| run(a, stop_rx.clone())).collect();
                        let mut stop = stop_rx;
                        loop {
                            tokio::select! {
                                left = agents.next() => if left.is_none() { return },
                                _ = stopped(&mut stop) => break,
                            }
                        }
                        let _ = tokio::time::timeout(drain, async { while agents.next().await.is_some() {} }).await;
                    });
                    let _ = done.send(Ended { shard: id, panic: None });
                },
                move |message| {
                    let _ = on_panic.send(Ended { shard: id, panic: Some(message) });
                },
            );
            match spawned {
                Ok(t) => {
                    me.threads.push(t);
                    me.live += 1;
                }
                Err(e) => {
                    me.stop();
                    return Err(e);
                }
            }
        }
        Ok(me)
    }

    /// Takes in the shards that ended since the last call; true when one has panicked (the
    /// run must stop and fail).
    pub fn poll(&mut self) -> bool {
        while let Ok(e) = self.ended.try_recv() {
            self.ended_one(e);
        }
        !self.panics.is_empty()
    }

    fn ended_one(&mut self, e: Ended) {
        self.live -= 1;
        if let Some(message) = e.panic {
            let line = panic_line(e.shard, &message);
            tracing::error!(shard = e.shard, "{line}; the run fails and its report is incomplete");
            self.panics.push(line);
        }
    }

    /// Tells every Agent to stop and waits for the shards: each drains within the drain time;
    /// a shard that did not end by then plus `engine::thread::STOP_MARGIN` is left behind (the
    /// process exits anyway), as the CWMP engine's stop does.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        let until = Instant::now() + self.drain + STOP_MARGIN;
        while self.live > 0 {
            let left = until.saturating_duration_since(Instant::now());
            match self.ended.recv_timeout(left) {
                Ok(e) => self.ended_one(e),
                Err(_) => break,
            }
        }
        join_finished(std::mem::take(&mut self.threads));
    }

    /// Whether every shard ran to its end (no panic).
    pub fn complete(&self) -> bool {
        self.panics.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn agents_are_strided_a_panic_is_named_and_a_stop_drains_within_its_time() {
        let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
        let log = seen.clone();
        let mut shards = Shards::start(2, (0..6u32).collect(), Duration::from_millis(300), move |k, mut stop| {
            let log = log.clone();
            async move {
                let thread = std::thread::current().name().unwrap_or_default().to_string();
                log.lock().unwrap().push((thread, k));
                if k == 3 {
                    // Let the others start first.
                    tokio::task::yield_now().await;
                    panic!("agent {k} exploded");
                }
                if k == 4 {
                    // Ignores the stop: the drain time cuts it.
                    return std::future::pending().await;
                }
                stopped(&mut stop).await;
            }
        })
        .unwrap();
        let t0 = Instant::now();
        while !shards.poll() {
            assert!(t0.elapsed() < Duration::from_secs(10), "the panic was not reported");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(shards.panics, vec!["shard 1 panicked: agent 3 exploded".to_string()]);
        let t1 = Instant::now();
        shards.stop();
        let took = t1.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "drained in {took:?}");
        assert!(!shards.complete());
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_by_key(|s| s.1);
        for (thread, k) in &seen[..4] {
            assert_eq!(thread, &format!("shard-{}", k % 2), "agent {k}");
        }
    }
}
