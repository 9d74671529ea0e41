//! Session retry back-off (TR-069 §3.2.1.1, PROTOCOL.md §5), as a pure function.
//!
//! Wait before retry n (n = 1, 2, …, capped at 10): uniform in
//! `[m·(k/1000)^(n−1), m·(k/1000)^n]` seconds, m = CWMPRetryMinimumWaitInterval (default 5),
//! k = CWMPRetryIntervalMultiplier (default 2000). The randomness comes from the caller, so a
//! fleet spreads its retries instead of stampeding and tests stay deterministic.

use std::time::Duration;

/// Default CWMPRetryMinimumWaitInterval.
pub const DEFAULT_MIN_WAIT: Duration = Duration::from_secs(5);
/// Default CWMPRetryIntervalMultiplier (×2.0).
pub const DEFAULT_MULTIPLIER: u32 = 2000;

/// The wait before retry `attempt` (1-based). `unit` is a random number in `[0, 1)`.
pub fn retry_wait(min_wait: Duration, multiplier_permille: u32, attempt: u32, unit: f64) -> Duration {
    let n = attempt.clamp(1, 10) as i32;
    let k = (multiplier_permille.clamp(1000, 65_535)) as f64 / 1000.0;
    let m = min_wait.as_secs_f64().max(0.0);
    let low = m * k.powi(n - 1);
    let high = m * k.powi(n);
    let unit = unit.clamp(0.0, 1.0);
    Duration::from_secs_f64(low + (high - low) * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_default_table() {
        let table = [(1, 5.0, 10.0), (2, 10.0, 20.0), (3, 20.0, 40.0), (9, 1280.0, 2560.0), (10, 2560.0, 5120.0), (25, 2560.0, 5120.0)];
        for (n, lo, hi) in table {
            assert_eq!(retry_wait(DEFAULT_MIN_WAIT, DEFAULT_MULTIPLIER, n, 0.0).as_secs_f64(), lo, "retry {n}");
            assert_eq!(retry_wait(DEFAULT_MIN_WAIT, DEFAULT_MULTIPLIER, n, 1.0).as_secs_f64(), hi, "retry {n}");
        }
    }

    #[test]
    fn multiplier_is_clamped_to_its_range() {
        assert_eq!(retry_wait(Duration::from_secs(10), 500, 3, 0.5), Duration::from_secs(10));
    }
}
