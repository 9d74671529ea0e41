//! Active notification of generated values (TR-069 §3.2.1, PROTOCOL.md §9): when a parameter
//! whose value a generator computes (`model::generators`) has active notification, the CPE
//! informs `4 VALUE CHANGE` when its value changes, but not sooner than
//! `ManagementServer.DefaultActiveNotificationThrottle` seconds after the last session.
//!
//! Nothing is stored per CPE: values are functions of seed and time, so at the end of each
//! session [`plan`] finds, from the value each parameter has now, the first time (after the
//! throttle) at which one differs, and the agenda keeps that one deferred wake-up. Sans-IO, no
//! clock: the caller passes `now`.

use smallvec::SmallVec;

use crate::model::tree::{Dynamic, ValueSource};
use crate::model::{Loc, Model, Notification, ReadFor};

use super::CpeState;

/// How many change boundaries of one parameter are looked at before giving up until the next
/// session (a walk that stays put this long is not worth a timer).
const LOOK_AHEAD: u32 = 64;

/// The next active value change of `cpe` after a session that ended at `now` (ms): when it is
/// due and which parameters it reports; `None` when the CPE has no generated parameter with
/// active notification (or none changes within [`LOOK_AHEAD`] steps).
pub fn plan(model: &Model, cpe: &CpeState, now: u64) -> Option<(u64, Box<[Loc]>)> {
    if model.generated.is_empty() {
        return None;
    }
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, crate::time::UnixMillis(now));
    // Most CPEs have no generated parameter an ACS made active: nothing to plan, nothing read.
    let active = active_generated(model, &dev, cpe);
    if active.is_empty() {
        return None;
    }
    let throttle_ms = model
        .well_known
        .default_active_notification_throttle
        .and_then(|n| dev.value_string(&Loc::plain(n), ReadFor::Local).parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(1000);
    let earliest = now.saturating_add(throttle_ms.max(1));
    let mut best: Option<u64> = None;
    let mut found: SmallVec<[(Loc, u64); 4]> = SmallVec::new();
    for (loc, g, key) in active {
        let before = g.value(key, cpe.boot_at.0, now);
        let mut t = earliest;
        for _ in 0..LOOK_AHEAD {
            if g.value(key, cpe.boot_at.0, t) != before {
                found.push((loc.clone(), t));
                best = Some(best.map_or(t, |b| b.min(t)));
                break;
            }
            t = g.next_change_after(t);
        }
    }
    let due = best?;
    let locs: Box<[Loc]> = found.into_iter().filter(|(_, t)| *t == due).map(|(l, _)| l).collect();
    Some((due, locs))
}

/// A session starts at `now` for another reason while a value change planned at `since` is
/// still throttled: the generated values with active notification that changed since then ride
/// along at once (PROTOCOL.md §9: the throttle holds only sessions the notification alone
/// starts). Marks them changed and owes `4 VALUE CHANGE`; returns how many.
pub fn carry_pending(model: &Model, cpe: &mut CpeState, since: u64, now: u64) -> usize {
    let mut changed: SmallVec<[Loc; 4]> = SmallVec::new();
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, crate::time::UnixMillis(now));
    for (loc, g, key) in active_generated(model, &dev, cpe) {
        if g.value(key, cpe.boot_at.0, since) != g.value(key, cpe.boot_at.0, now) {
            changed.push(loc.clone());
        }
    }
    let n = changed.len();
    for loc in changed {
        cpe.delta.mark_changed(loc);
    }
    if n > 0 {
        cpe.events.add(crate::cwmp::rpc::inform::EventCode::ValueChange);
    }
    n
}

/// The generated parameters of `cpe` (whose data model `dev` is) with active notification that
/// nobody set: (loc, generator, draw key).
fn active_generated<'m>(
    model: &'m Model,
    dev: &crate::model::Device<'_>,
    cpe: &CpeState,
) -> SmallVec<[(&'m Loc, crate::model::generators::Generator, u64); 4]> {
    let mut out = SmallVec::new();
    for loc in &model.generated {
        if dev.notification(loc) != Notification::Active || cpe.delta.value(loc).is_some() {
            continue;
        }
        if let Some(ValueSource::Dynamic(Dynamic::Generated(g))) = model.tree.node(loc.node).param().map(|p| &p.default) {
            out.push((loc, *g, g.key(model.identity.seed, cpe.id.0, &loc.inst)));
        }
    }
    out
}
