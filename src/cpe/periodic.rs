//! The periodic Inform plan of one CPE (PROTOCOL.md §6, TR-069 A.3.2.1 PeriodicInform*): its
//! period and phase, from the CPE's own settings and how a run bends them. No clock, no I/O.

use std::time::Duration;

use crate::cpe::CpeState;
use crate::model::{Loc, Model, NodeId, ReadFor};
use crate::time::parse_datetime_ms;

/// How a run bends the profile's periodic informs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodicPlan {
    /// Period = PeriodicInformInterval × this (the horde hard-coded 1/1000). Finite, > 0.
    pub multiplier: f64,
    /// Used instead of the profile's PeriodicInformInterval until the ACS sets one; also turns
    /// periodic informs on unless the ACS turned them off.
    pub interval: Option<Duration>,
}

impl Default for PeriodicPlan {
    fn default() -> Self {
        PeriodicPlan { multiplier: 1.0, interval: None }
    }
}

/// A periodic schedule: informs at `phase_ms + n·period_ms` (ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    /// ≥ 1.
    pub period_ms: u64,
    /// In `0..period_ms`.
    pub phase_ms: u64,
}

fn value(model: &Model, cpe: &CpeState, node: NodeId) -> String {
    model.device(cpe.id, &cpe.delta, cpe.boot_at, cpe.boot_at).value_string(&Loc::plain(node), ReadFor::Local)
}

fn truthy(v: &str) -> bool {
    v == "true" || v == "1"
}

/// The CPE's periodic schedule, or `None` when periodic informs are off.
///
/// The period is PeriodicInformInterval (seconds, any unsignedInt) × the plan's multiplier,
/// saturating, at least 1 ms. The phase comes from PeriodicInformTime to the millisecond (any
/// date, before 1970 too); the Unknown Time (`0001-01-01T00:00:00Z`) or no such parameter gives a
/// per-CPE phase derived from the CPE's index and boot time.
pub fn plan(model: &Model, cpe: &CpeState, run: &PeriodicPlan) -> Option<Periodic> {
    let wk = &model.well_known;
    let set = |n: Option<NodeId>| n.and_then(|n| cpe.delta.value(&Loc::plain(n)));
    let enabled = match (set(wk.periodic_inform_enable), run.interval) {
        // Someone set it explicitly: that wins.
        (Some(v), _) => truthy(&v.value),
        (None, Some(_)) => true,
        (None, None) => wk.periodic_inform_enable.is_some_and(|n| truthy(&value(model, cpe, n))),
    };
    if !enabled {
        return None;
    }
    let interval_s: f64 = match (set(wk.periodic_inform_interval), run.interval) {
        (Some(v), _) => v.value.trim().parse::<u64>().ok()? as f64,
        (None, Some(d)) => d.as_secs_f64(),
        (None, None) => wk.periodic_inform_interval.and_then(|n| value(model, cpe, n).trim().parse::<u64>().ok())? as f64,
    };
    let ms = interval_s * run.multiplier * 1000.0;
    // NaN and non-positive products are off.
    if ms.is_nan() || ms <= 0.0 {
        return None;
    }
    // Float to integer casts saturate: any interval × any multiplier fits.
    let period_ms = (ms.round() as u64).max(1);
    let phase_ms = match wk.periodic_inform_time.map(|n| value(model, cpe, n)).and_then(|t| parse_datetime_ms(&t)) {
        // The Unknown Time (year 1) and earlier: the CPE picks its own phase.
        Some(t) if t > -62_135_596_800_000 => t.rem_euclid(period_ms as i64) as u64,
        _ => cpe.boot_at.0.wrapping_add(crate::model::identity::mix64(cpe.id.0 as u64) % period_ms) % period_ms,
    };
    Some(Periodic { period_ms, phase_ms })
}
