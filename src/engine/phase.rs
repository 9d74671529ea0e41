//! A run's phases on a timeline (k6 stages, Gatling injection profiles): what the fleet does
//! when, as pure functions of the time since the run started. The shards read it on their own
//! clock (no cross-shard coordination: every shard computes the same answer), the main thread
//! reads it for the progress line and the report.
//!
//! It owns the arithmetic (which phase is current, the interval multiplier at an instant, which
//! CPEs a wave picks and when), not the effects: `engine::shard` turns a wave's pick into a
//! reboot or a value change on the CPE's agenda. It reads no clock and does no I/O. A scenario
//! file (`crate::scenario`) is what builds a [`Timeline`].

use std::time::Duration;

/// What a phase does.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseKind {
    /// The fleet's first contacts (the plan's `Boot`); nothing else changes.
    Boot,
    /// Periodic informs at this interval multiplier from the phase's start.
    Periodic { multiplier: f64 },
    /// The interval multiplier moves from `from` to `to` over the phase, in [`RAMP_STEPS`] steps.
    Ramp { from: f64, to: f64 },
    /// Every CPE goes dark for the phase (no session starts; open ones finish) and powers on
    /// again at its end with `1 BOOT`, spread over `storm_spread` (zero: a storm).
    Outage { storm_spread: Duration },
    /// `share` (0..=1) of the CPEs power-cycle (`1 BOOT`), spread evenly over the phase.
    RebootWave { share: f64 },
    /// `share` of the CPEs change `parameter` to `value` locally, spread evenly over the phase; a
    /// parameter with active notification owes `4 VALUE CHANGE` at once (TR-069 A.3.3.1).
    ValueChangeWave { share: f64, parameter: String, value: String },
}

/// One phase: a name for lines and reports, how long it lasts and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    pub kind: PhaseKind,
}

/// Steps of a multiplier ramp: each re-plans every periodic Inform, so a ramp costs 20 passes
/// over the fleet, not one per tick.
pub const RAMP_STEPS: u32 = 20;

/// The phases of a run, back to back from its start. Empty: a run without phases.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub phases: Vec<Phase>,
}

/// The phase current at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseAt<'a> {
    /// Its index in the timeline (0-based).
    pub index: usize,
    pub name: &'a str,
    /// When it started and ends, in ms since the run's start.
    pub start_ms: u64,
    pub end_ms: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl Timeline {
    /// Where each phase starts, in ms since the run's start.
    fn start_ms(&self, index: usize) -> u64 {
        self.phases[..index].iter().fold(0u64, |t, p| t.saturating_add(ms(p.duration)))
    }

    /// The whole timeline's length (the run's duration when a scenario gives no other).
    pub fn total(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).fold(Duration::ZERO, Duration::saturating_add)
    }

    /// The phase current `elapsed_ms` after the start; `None` before none or after the last.
    pub fn at(&self, elapsed_ms: u64) -> Option<PhaseAt<'_>> {
        let mut start = 0u64;
        for (index, p) in self.phases.iter().enumerate() {
            let end = start.saturating_add(ms(p.duration));
            if elapsed_ms < end {
                return Some(PhaseAt { index, name: &p.name, start_ms: start, end_ms: end });
            }
            start = end;
        }
        None
    }

    /// The interval multiplier at `elapsed_ms` (`base` until a periodic or ramp phase sets one;
    /// it holds through later phases of other kinds).
    pub fn multiplier_at(&self, elapsed_ms: u64, base: f64) -> f64 {
        let mut m = base;
        let mut start = 0u64;
        for p in &self.phases {
            if elapsed_ms < start {
                break;
            }
            let len = ms(p.duration);
            match p.kind {
                PhaseKind::Periodic { multiplier } => m = multiplier,
                PhaseKind::Ramp { from, to } => {
                    // Stepped: step i of RAMP_STEPS holds from + (to-from)·i/(RAMP_STEPS-1).
                    let into = elapsed_ms.saturating_sub(start).min(len);
                    let step = if len == 0 {
                        RAMP_STEPS - 1
                    } else {
                        ((into as u128 * RAMP_STEPS as u128 / len as u128) as u32).min(RAMP_STEPS - 1)
                    };
                    m = from + (to - from) * step as f64 / (RAMP_STEPS - 1) as f64;
                }
                _ => {}
            }
            start = start.saturating_add(len);
        }
        m
    }

    /// The next instant after `elapsed_ms` at which the multiplier may change (a periodic phase's
    /// start or a ramp's next step), for the shard's wake-up; `None`: never again.
    pub fn next_multiplier_change(&self, elapsed_ms: u64) -> Option<u64> {
        let mut start = 0u64;
        for p in &self.phases {
            let len = ms(p.duration);
            match p.kind {
                PhaseKind::Periodic { .. } if start > elapsed_ms => return Some(start),
                PhaseKind::Ramp { .. } => {
                    for i in 0..RAMP_STEPS as u64 {
                        let t = start.saturating_add((len as u128 * i as u128 / RAMP_STEPS as u128) as u64);
                        if t > elapsed_ms {
                            return Some(t);
                        }
                    }
                }
                _ => {}
            }
            start = start.saturating_add(len);
        }
        None
    }

    /// The phases that act on CPEs at one instant or over their span (outages and waves), with
    /// their start in ms, in timeline order.
    pub fn events(&self) -> impl Iterator<Item = (usize, u64, &Phase)> {
        self.phases.iter().enumerate().map(move |(i, p)| (i, self.start_ms(i), p)).filter(|(_, _, p)| {
            matches!(p.kind, PhaseKind::Outage { .. } | PhaseKind::RebootWave { .. } | PhaseKind::ValueChangeWave { .. })
        })
    }
}

/// Whether a wave of `share` picks the CPE of rank `rank` (0-based) of `cpes`: exactly
/// ⌊cpes·share⌋ CPEs are picked: those whose shuffled rank (`rank·P + salt mod cpes`, P a prime
/// that does not divide `cpes`: a permutation) is below that count, so the picks fall on every
/// shard's stride and over the whole wave, and waves with different `salt`s pick different CPEs.
pub fn picks(share: f64, rank: u32, cpes: u32, salt: u64) -> bool {
    if rank >= cpes {
        return false;
    }
    let share = share.clamp(0.0, 1.0);
    let p = [1_000_003u64, 998_244_353, 2_147_483_647].into_iter().find(|p| cpes as u64 % p != 0).unwrap_or(1);
    let r = (rank as u64 * (p % cpes as u64) + salt % cpes as u64) % cpes as u64;
    r < (cpes as f64 * share).floor() as u64
}

/// `path` under the data model root `root`: a value-change wave names its parameter once
/// (`Device.DeviceInfo.ProvisioningCode`) and a TR-098 fleet changes
/// `InternetGatewayDevice.DeviceInfo.ProvisioningCode`.
pub fn under_root<'p>(path: &'p str, root: &str) -> std::borrow::Cow<'p, str> {
    match path.split_once('.') {
        Some((r, rest)) if r != root => std::borrow::Cow::Owned(format!("{root}.{rest}")),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// When the CPE of rank `rank` is reached by a wave of `duration` (ms after the wave's start):
/// ranks spread evenly over the wave.
pub fn wave_offset_ms(duration: Duration, rank: u32, cpes: u32) -> u64 {
    (ms(duration) as u128 * rank as u128 / cpes.max(1) as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, secs: u64, kind: PhaseKind) -> Phase {
        Phase { name: name.into(), duration: Duration::from_secs(secs), kind }
    }

    fn timeline() -> Timeline {
        Timeline {
            phases: vec![
                phase("boot", 10, PhaseKind::Boot),
                phase("steady", 20, PhaseKind::Periodic { multiplier: 0.5 }),
                phase("outage", 5, PhaseKind::Outage { storm_spread: Duration::ZERO }),
                phase("ramp", 20, PhaseKind::Ramp { from: 1.0, to: 0.05 }),
            ],
        }
    }

    #[test]
    fn current_phase_by_elapsed_time() {
        let t = timeline();
        assert_eq!(t.at(0).map(|p| (p.index, p.name)), Some((0, "boot")));
        assert_eq!(t.at(9_999).map(|p| p.index), Some(0));
        assert_eq!(t.at(10_000).map(|p| (p.index, p.start_ms, p.end_ms)), Some((1, 10_000, 30_000)));
        assert_eq!(t.at(30_000).map(|p| p.name), Some("outage"));
        assert_eq!(t.at(55_000), None);
        assert_eq!(t.total(), Duration::from_secs(55));
    }

    #[test]
    fn multiplier_holds_and_ramps_in_steps() {
        let t = timeline();
        assert_eq!(t.multiplier_at(5_000, 1.0), 1.0);
        assert_eq!(t.multiplier_at(10_000, 1.0), 0.5);
        // Held through the outage.
        assert_eq!(t.multiplier_at(32_000, 1.0), 0.5);
        assert_eq!(t.multiplier_at(35_000, 1.0), 1.0);
        assert!((t.multiplier_at(54_999, 1.0) - 0.05).abs() < 1e-9);
        assert!((t.multiplier_at(99_000, 1.0) - 0.05).abs() < 1e-9);
        let mid = t.multiplier_at(45_000, 1.0);
        assert!(mid < 1.0 && mid > 0.05, "{mid}");
        assert_eq!(t.next_multiplier_change(0), Some(10_000));
        assert_eq!(t.next_multiplier_change(10_000), Some(35_000));
        assert_eq!(t.next_multiplier_change(35_000), Some(36_000));
        assert_eq!(t.next_multiplier_change(54_000), None);
    }

    #[test]
    fn waves_pick_exactly_their_share_spread_over_ranks() {
        for (share, cpes) in [(0.25, 200u32), (0.3, 1000), (1.0, 7), (0.0, 50), (0.5, 1)] {
            for salt in [0, 3] {
                let picked = (0..cpes).filter(|&r| picks(share, r, cpes, salt)).count();
                assert_eq!(picked, (cpes as f64 * share).floor() as usize, "{share} of {cpes}");
            }
        }
        // Both halves of a two-shard stride get their part.
        let even = (0..100).step_by(2).filter(|&r| picks(0.5, r, 100, 0)).count();
        assert!(even > 10 && even < 40, "{even}");
        assert!((0..100).any(|r| picks(0.2, r, 100, 0) != picks(0.2, r, 100, 1)));
        assert!(!picks(1.0, 100, 100, 0));
        assert_eq!(wave_offset_ms(Duration::from_secs(10), 50, 100), 5_000);
        assert_eq!(wave_offset_ms(Duration::from_secs(10), 0, 100), 0);
    }

    #[test]
    fn a_wave_parameter_under_each_root() {
        assert_eq!(under_root("Device.DeviceInfo.ProvisioningCode", "Device"), "Device.DeviceInfo.ProvisioningCode");
        assert_eq!(
            under_root("Device.DeviceInfo.ProvisioningCode", "InternetGatewayDevice"),
            "InternetGatewayDevice.DeviceInfo.ProvisioningCode"
        );
    }

    #[test]
    fn events_are_outages_and_waves_with_their_starts() {
        let t = timeline();
        let e: Vec<_> = t.events().map(|(i, s, p)| (i, s, p.name.as_str())).collect();
        assert_eq!(e, vec![(2, 30_000, "outage")]);
    }
}
