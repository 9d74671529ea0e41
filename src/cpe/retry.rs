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

/// The longest wait the back-off gives (what the formula reaches at its legal maximum saturates
/// here instead of overflowing): about 136 years, `u32::MAX` seconds.
pub const MAX_WAIT: Duration = Duration::from_secs(u32::MAX as u64);

/// The wait before retry `attempt` (1-based, any value). `unit` is a random number in `[0, 1)`.
/// Saturates at [`MAX_WAIT`] for any `min_wait` and multiplier.
pub fn retry_wait(min_wait: Duration, multiplier_permille: u32, attempt: u32, unit: f64) -> Duration {
    let n = attempt.clamp(1, 10) as i32;
    let k = (multiplier_permille.clamp(1000, 65_535)) as f64 / 1000.0;
    let m = min_wait.as_secs_f64().max(0.0);
    let low = m * k.powi(n - 1);
    let high = m * k.powi(n);
    let unit = if unit.is_nan() { 0.0 } else { unit.clamp(0.0, 1.0) };
    let secs = low + (high - low) * unit;
    Duration::try_from_secs_f64(secs).unwrap_or(MAX_WAIT).min(MAX_WAIT)
}

/// The TR-069 wait before `cpe`'s next retry, from its CWMPRetryMinimumWaitInterval and
/// CWMPRetryIntervalMultiplier (PROTOCOL.md §5; any value they hold, defaults when unreadable),
/// spread per CPE and attempt so a fleet does not stampede.
pub fn wait_for(model: &crate::model::Model, cpe: &crate::cpe::CpeState) -> Duration {
    use crate::model::{Loc, ReadFor};
    let wk = &model.well_known;
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, cpe.boot_at);
    let read =
        |n: Option<crate::model::NodeId>| n.and_then(|n| dev.value_string(&Loc::plain(n), ReadFor::Local).trim().parse::<u64>().ok());
    let m = read(wk.retry_minimum_wait_interval).map_or(DEFAULT_MIN_WAIT, Duration::from_secs);
    let k = read(wk.retry_interval_multiplier).map_or(DEFAULT_MULTIPLIER, |k| k.min(u32::MAX as u64) as u32);
    let unit = (crate::model::identity::mix64((cpe.id.0 as u64) << 16 ^ cpe.retry_count as u64) >> 11) as f64 / (1u64 << 53) as f64;
    retry_wait(m, k, cpe.retry_count.max(1) as u32, unit)
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
    fn saturates_at_any_attempt_and_setting() {
        for n in [1, 10, 11, 1000, u32::MAX] {
            for m in [0, 1, 5, u32::MAX as u64, u64::MAX] {
                for unit in [0.0, 0.5, 1.0, f64::NAN] {
                    let w = retry_wait(Duration::from_secs(m), 65_535, n, unit);
                    assert!(w <= MAX_WAIT, "{n} {m} {unit}");
                }
            }
        }
        assert_eq!(retry_wait(Duration::from_secs(u32::MAX as u64), 65_535, 10, 1.0), MAX_WAIT);
    }

    #[test]
    fn multiplier_is_clamped_to_its_range() {
        assert_eq!(retry_wait(Duration::from_secs(10), 500, 3, 0.5), Duration::from_secs(10));
    }
}
