//! Value generators: realistic values computed from (profile seed, CPE index, parameter,
//! instance, time) alone, so a CPE stores nothing for them and a fleet's memory stays flat.
//!
//! - [`Generator::Walk`]: a bounded random walk that moves once per `step`: the sum of three
//!   octaves of value noise (lattices 8, 64 and 512 steps apart), so neighbouring steps differ
//!   by a little and the value wanders over the whole range within a few hundred steps.
//! - [`Generator::Diurnal`]: a daily sine between `min` and `max` peaking at `peak_hour` (UTC),
//!   each CPE shifted by up to an hour, plus `noise` (share of the range) of walk noise.
//! - [`Generator::Bursty`]: a traffic counter since boot that never goes backwards: a
//!   multiplicative cascade (the multifractal traffic model of Riedi et al., 1999) splits a mean
//!   of `per_second` over a binary tree of time down to the second, each split within a ~68 min
//!   block drawn around one half by `burst` (0 smooth … 1000 very bursty); every block carries
//!   exactly the mean. Integer arithmetic: exactly monotone.
//!
//! Pure functions of `now`; no I/O, no clock. Called when a value is read (GPV, Inform) and when
//! a CPE plans its next active notification (`cpe::notify`).

use super::identity::mix64;

/// How one generated parameter's value comes about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// A bounded random walk in `min..=max`, moving every `step_s` seconds.
    Walk { min: i64, max: i64, step_s: u32, salt: u32 },
    /// A daily sine in `min..=max` with its peak at `peak_hour` UTC, plus `noise_permille` of the
    /// range as walk noise; moves every `step_s` seconds.
    Diurnal { min: i64, max: i64, peak_hour: u8, noise_permille: u16, step_s: u32, salt: u32 },
    /// A counter since boot with a long-run mean of `per_second`, bursty by `burst_permille`.
    Bursty { per_second: u64, burst_permille: u16, salt: u32 },
}

/// Seconds covered by the cascade's root: 2^32 s from the Unix epoch (until 2106).
const CASCADE_LEVELS: u32 = 32;

/// Splits are drawn only within blocks of 2^12 s (~68 min); above, every split is an exact half,
/// so each such block carries exactly the mean and a day's total stays near `per_second`
/// (drawn splits all the way up would make one day's mean a product of 20 draws: far off).
const BURST_LEVELS: u32 = 12;

impl Generator {
    /// The same generator with `salt` (a hash of the parameter's path) mixed into its draws.
    pub fn salted(self, s: u32) -> Generator {
        match self {
            Generator::Walk { min, max, step_s, .. } => Generator::Walk { min, max, step_s, salt: s },
            Generator::Diurnal { min, max, peak_hour, noise_permille, step_s, .. } => {
                Generator::Diurnal { min, max, peak_hour, noise_permille, step_s, salt: s }
            }
            Generator::Bursty { per_second, burst_permille, .. } => Generator::Bursty { per_second, burst_permille, salt: s },
        }
    }

    /// The draw key of one CPE's parameter instance.
    pub fn key(self, seed: u64, cpe: u32, inst: &[u32]) -> u64 {
        let salt = match self {
            Generator::Walk { salt, .. } | Generator::Diurnal { salt, .. } | Generator::Bursty { salt, .. } => salt,
        };
        let mut k = mix64(seed ^ mix64(u64::from(cpe) ^ (u64::from(salt) << 32)));
        for &i in inst {
            k = mix64(k ^ u64::from(i));
        }
        k
    }

    /// The value at `now_ms` for the CPE instance drawn by `key`, booted at `boot_ms`.
    pub fn value(self, key: u64, boot_ms: u64, now_ms: u64) -> i128 {
        match self {
            Generator::Walk { min, max, step_s, .. } => {
                let step = now_ms / (u64::from(step_s.max(1)) * 1000);
                let span = (max - min) as f64;
                min as i128 + (walk_share(key, step) * span).round() as i128
            }
            Generator::Diurnal { min, max, peak_hour, noise_permille, step_s, .. } => {
                let step_ms = u64::from(step_s.max(1)) * 1000;
                let t = now_ms - now_ms % step_ms;
                // Each CPE's day is shifted by up to an hour (its users are not all on one clock).
                let shift = (key % 3_600_000) as f64;
                let day = ((t as f64 + shift) / 3_600_000.0 - f64::from(peak_hour)) / 24.0;
                let sine = 0.5 + 0.5 * (std::f64::consts::TAU * day).cos();
                let noise = f64::from(noise_permille.min(1000)) / 1000.0;
                let share = (sine * (1.0 - noise) + walk_share(key ^ 0x5eed, t / step_ms) * noise).clamp(0.0, 1.0);
                min as i128 + (share * (max - min) as f64).round() as i128
            }
            Generator::Bursty { per_second, burst_permille, .. } => {
                let at = |ms: u64| cascade_prefix(key, per_second, burst_permille, ms);
                (at(now_ms).saturating_sub(at(boot_ms.min(now_ms)))).min(u64::MAX as u128) as i128
            }
        }
    }

    /// The first time after `t_ms` at which the value may differ from the value at `t_ms`.
    pub fn next_change_after(self, t_ms: u64) -> u64 {
        let step_ms = match self {
            Generator::Walk { step_s, .. } | Generator::Diurnal { step_s, .. } => u64::from(step_s.max(1)) * 1000,
            Generator::Bursty { .. } => 1000,
        };
        (t_ms / step_ms).saturating_add(1).saturating_mul(step_ms)
    }
}

/// Value noise in [0, 1] at `x` lattice units: linear between hashed lattice points.
fn noise(key: u64, x: u64, scale: u64) -> f64 {
    let (cell, frac) = (x / scale, (x % scale) as f64 / scale as f64);
    let at = |c: u64| (mix64(key ^ mix64(c ^ scale.rotate_left(48))) >> 11) as f64 / (1u64 << 53) as f64;
    at(cell) * (1.0 - frac) + at(cell + 1) * frac
}

/// The walk's share of its range at `step`: three octaves, weights 0.5, 0.3, 0.2.
fn walk_share(key: u64, step: u64) -> f64 {
    (0.5 * noise(key, step, 8) + 0.3 * noise(key, step, 64) + 0.2 * noise(key, step, 512)).clamp(0.0, 1.0)
}

/// The cascade's mass before `ms` (since the epoch): descends from the 2^32 s root, adding the
/// left half's mass whenever `ms` lies in the right half, then the second it falls in pro rata.
fn cascade_prefix(key: u64, per_second: u64, burst_permille: u16, ms: u64) -> u128 {
    let secs = (ms / 1000).min((1u64 << CASCADE_LEVELS) - 1);
    let mut mass = u128::from(per_second) << CASCADE_LEVELS;
    let mut acc = 0u128;
    // burst as a 16-bit fraction, so each split is integer multiplies and shifts (saves ~60 % of
    // a read against a u128 division per level, benches/generators.rs value/bursty).
    let burst_q16 = u64::from(burst_permille.min(1000)) * 65_536 / 1000;
    let half = 1u64 << 31;
    for level in (0..CASCADE_LEVELS).rev() {
        // The node at this level holding `secs` and its split share p ∈ [0, 2^32): one half
        // ± burst × a uniform draw.
        let node = secs >> (level + 1);
        let u = mix64(key ^ node.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(level) << 56)) >> 32;
        let p = if level >= BURST_LEVELS {
            half
        } else if u >= half {
            half + (((u - half) * burst_q16) >> 16)
        } else {
            half - (((half - u) * burst_q16) >> 16)
        };
        let left = (mass * u128::from(p)) >> 32;
        if (secs >> level) & 1 == 1 {
            acc += left;
            mass -= left;
        } else {
            mass = left;
        }
    }
    acc + mass * u128::from(ms % 1000) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn a_walk_stays_in_bounds_moves_in_small_steps_and_covers_its_range() {
        let g = Generator::Walk { min: -90, max: -30, step_s: 60, salt: 1 };
        let k = g.key(7, 3, &[1]);
        // 1_700_000_040_000 is a multiple of the 60 s step.
        let values: Vec<i128> = (0..2000).map(|i| g.value(k, 0, 1_700_000_040_000 + i * 60_000)).collect();
        assert!(values.iter().all(|v| (-90..=-30).contains(v)));
        let (lo, hi) = (values.iter().min().unwrap(), values.iter().max().unwrap());
        assert!(hi - lo > 25, "wanders over the range: {lo}..{hi}");
        let biggest = values.windows(2).map(|w| (w[1] - w[0]).abs()).max().unwrap();
        assert!(biggest <= 8, "neighbouring steps differ a little: {biggest}");
        assert_eq!(g.value(k, 0, 1_700_000_040_000 + 59_999), values[0], "constant within a step");
        assert_ne!(g.key(7, 3, &[1]), g.key(7, 4, &[1]), "per CPE");
        assert_ne!(g.key(7, 3, &[1]), g.key(8, 3, &[1]), "per seed");
    }

    #[test]
    fn a_diurnal_value_peaks_near_its_hour() {
        let g = Generator::Diurnal { min: 0, max: 1000, peak_hour: 20, noise_permille: 0, step_s: 60, salt: 0 };
        let k = g.key(1, 0, &[]);
        let day0 = 1_700_006_400_000 - 1_700_006_400_000 % DAY;
        let at = |h: u64| g.value(k, 0, day0 + h * 3_600_000);
        assert!(at(20) > 900 || at(21) > 900, "{} {}", at(20), at(21));
        assert!(at(8) < 100 || at(9) < 100, "{} {}", at(8), at(9));
        assert_eq!(at(20 + 24), at(20), "daily");
    }

    #[test]
    fn a_bursty_counter_never_goes_back_and_keeps_its_mean() {
        let g = Generator::Bursty { per_second: 125_000, burst_permille: 900, salt: 2 };
        let boot = 1_700_000_000_000u64;
        for cpe in 0..20 {
            let k = g.key(11, cpe, &[]);
            let mut last = 0;
            let mut per_minute = Vec::new();
            for m in 0..=1440u64 {
                let v = g.value(k, boot, boot + m * 60_000);
                assert!(v >= last, "never backwards");
                per_minute.push(v - last);
                last = v;
            }
            assert_eq!(g.value(k, boot, boot), 0, "zero at boot");
            let mean = last as f64 / 86_400.0;
            assert!((115_000.0..135_000.0).contains(&mean), "a day's mean near 125 kB/s: {mean}");
            let peak = *per_minute.iter().max().unwrap() as f64 / 60.0;
            assert!(peak > 2.0 * mean, "bursts well above the mean: {peak} vs {mean}");
            let ms = boot + 3_600_000;
            assert!(g.value(k, boot, ms + 1) >= g.value(k, boot, ms), "monotone within a second too");
        }
        let smooth = Generator::Bursty { per_second: 1000, burst_permille: 0, salt: 0 };
        assert_eq!(smooth.value(smooth.key(0, 0, &[]), 0, 10_000), 10_000, "no burst: exactly the mean");
    }

    #[test]
    fn changes_come_at_step_boundaries() {
        let g = Generator::Walk { min: 0, max: 10, step_s: 30, salt: 0 };
        assert_eq!(g.next_change_after(0), 30_000);
        assert_eq!(g.next_change_after(29_999), 30_000);
        assert_eq!(g.next_change_after(30_000), 60_000);
        assert_eq!(Generator::Bursty { per_second: 1, burst_permille: 0, salt: 0 }.next_change_after(1500), 2000);
    }
}
