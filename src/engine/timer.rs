//! A precise one-shot timer for a shard's loop: a Linux timerfd registered with tokio's reactor.
//!
//! tokio's own timer counts whole milliseconds and its epoll timeout rounds up again, so a sleep
//! can end 1–2 ms after its target; that was the scheduler lag's p99. A timerfd becomes readable
//! within the kernel's timer slack (tens of µs) of its deadline and wakes the same epoll loop,
//! with no spinning.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The timer.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    /// The deadline it is armed for, so re-arming for the same deadline costs no syscall.
    armed: std::cell::Cell<Option<std::time::Instant>>,
}

impl PreciseTimer {
    /// Creates a disarmed timer on the current runtime.
    ///
    /// # Errors
    /// The kernel refused a timerfd, or the reactor refused to register it.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: plain syscall; the returned descriptor is checked and then owned.
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same until
        // the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(PreciseTimer { fd, armed: std::cell::Cell::new(None) })
    }

    /// Arms the timer to fire once at `at` (a past instant fires at once). Re-arming for the
    /// deadline it already has does nothing.
    pub fn arm_at(&self, at: std::time::Instant) {
        if self.armed.get() == Some(at) {
            return;
        }
        self.armed.set(Some(at));
        self.arm(at.saturating_duration_since(std::time::Instant::now()));
    }

    /// Arms the timer to fire once, `after` from now (zero fires at once).
    pub fn arm(&self, after: Duration) {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: after.as_secs() as libc::time_t, tv_nsec: after.subsec_nanos() as libc::c_long },
        };
        // SAFETY: valid descriptor and a fully initialised itimerspec; the old value is not wanted.
        unsafe {
            libc::timerfd_settime(self.fd.get_ref().as_raw_fd(), 0, &spec, std::ptr::null_mut());
        }
    }

    /// Waits until the armed deadline passes.
    pub async fn wait(&self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else { return };
            let mut expirations = [0u8; 8];
            // SAFETY: reading 8 bytes into an 8-byte buffer from our own descriptor.
            let n = unsafe { libc::read(self.fd.get_ref().as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                self.armed.set(None);
                return;
            }
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn fires_close_to_its_deadline() {
        let t = PreciseTimer::new().unwrap();
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let start = std::time::Instant::now();
            t.arm(Duration::from_micros(1500));
            t.wait().await;
            let took = start.elapsed();
            assert!(took >= Duration::from_micros(1500));
            worst = worst.max(took - Duration::from_micros(1500));
        }
        // Generous: a shared CI machine; tokio's own sleep would be ~0.5–2 ms late here.
        assert!(worst < Duration::from_millis(20), "{worst:?}");
    }
}
