//! USP's all-or-nothing rule for Set, Add and Delete (TR-369 §"allow_partial"): which copy of
//! the CPE's delta a failed object restores. Without `allow_partial` a failure undoes the whole
//! request, so one copy is taken before it; with `allow_partial` a failure undoes only its own
//! object, so a copy is taken before each object. Never both.

use crate::cpe::CpeState;
use crate::model::Delta;

/// The delta to go back to when an object of the request fails.
pub struct Rollback {
    allow_partial: bool,
    saved: Option<Delta>,
}

impl Rollback {
    /// Before the request's first object.
    pub fn new(cpe: &CpeState, allow_partial: bool) -> Rollback {
        Rollback { allow_partial, saved: (!allow_partial).then(|| cpe.delta.clone()) }
    }

    /// Before each object (a copy only with `allow_partial`).
    pub fn before_object(&mut self, cpe: &CpeState) {
        if self.allow_partial {
            self.saved = Some(cpe.delta.clone());
        }
    }

    /// An object failed: the request's changes are undone (without `allow_partial`) or the
    /// object's (with it).
    pub fn undo(&mut self, cpe: &mut CpeState) {
        if let Some(d) = self.saved.take() {
            cpe.delta = d;
        }
    }
}
