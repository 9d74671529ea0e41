//! The engine's time: the system's (monotonic, µs-precise wake-ups through a timerfd) or a manual
//! clock that tests move by hand, so agendas and whole fleets run in virtual time.
//!
//! Time is milliseconds since the Unix epoch ([`UnixMillis`]). The system clock reads the wall
//! clock once at start and counts monotonic time from there, so a wall-clock step (NTP) moves no
//! timer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::timer::PreciseTimer;
use crate::time::UnixMillis;

/// Where the engine reads the time and how it sleeps.
#[derive(Debug, Clone)]
pub enum Clock {
    System(SystemClock),
    Manual(Arc<ManualClock>),
}

/// Monotonic time since a wall-clock reading.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    epoch: Instant,
    epoch_unix: UnixMillis,
}

/// A clock that moves only when told to ([`ManualClock::advance`]); sleepers wake when it passes
/// their deadline.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    moved: Notify,
}

impl Clock {
    /// The system clock, from now.
    pub fn system() -> Clock {
        Clock::System(SystemClock { epoch: Instant::now(), epoch_unix: UnixMillis::now() })
    }

    /// A manual clock at `start`, and the handle that moves it.
    pub fn manual(start: UnixMillis) -> (Clock, Arc<ManualClock>) {
        let m = Arc::new(ManualClock { now: AtomicU64::new(start.0), moved: Notify::new() });
        (Clock::Manual(m.clone()), m)
    }

    /// The current time.
    pub fn now(&self) -> UnixMillis {
        match self {
            Clock::System(s) => s.epoch_unix.plus(s.epoch.elapsed()),
            Clock::Manual(m) => UnixMillis(m.now.load(Ordering::SeqCst)),
        }
    }

    /// The monotonic instant of `t` (for latency measured from a scheduled time). A manual clock
    /// maps every time to the present: its schedule is virtual, its I/O real.
    pub fn instant_of(&self, t: UnixMillis) -> Instant {
        match self {
            Clock::System(s) => match t.0.checked_sub(s.epoch_unix.0) {
                Some(ms) => s.epoch.checked_add(Duration::from_millis(ms)).unwrap_or_else(Instant::now),
                None => s.epoch,
            },
            Clock::Manual(_) => Instant::now(),
        }
    }

    /// Sleeps until `at`. With the system clock `precise` (a timerfd) wakes within µs of it;
    /// without one, tokio's timer (ms, a little late).
    pub async fn sleep_until(&self, at: UnixMillis, precise: Option<&PreciseTimer>) {
        match self {
            Clock::System(_) => {
                let when = self.instant_of(at);
                match precise {
                    Some(t) => {
                        t.arm_at(when);
                        t.wait().await;
                    }
                    None => tokio::time::sleep_until(when.into()).await,
                }
            }
            Clock::Manual(m) => {
                if m.now.load(Ordering::SeqCst) >= at.0 {
                    // Already due: still yield once, so a loop that sleeps until a time already
                    // reached lets the runtime drive its I/O (tokio's coop budget is only
                    // refilled when the task yields; a sleep that is always ready never does).
                    tokio::task::yield_now().await;
                    return;
                }
                loop {
                    let moved = m.moved.notified();
                    if m.now.load(Ordering::SeqCst) >= at.0 {
                        return;
                    }
                    moved.await;
                }
            }
        }
    }
}

impl ManualClock {
    /// Moves the clock forward by `d` and wakes every sleeper whose time has come.
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    /// The current time.
    pub fn now(&self) -> UnixMillis {
        UnixMillis(self.now.load(Ordering::SeqCst))
    }
}
