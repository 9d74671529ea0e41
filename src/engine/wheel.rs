//! A hierarchical timing wheel for one shard: 6 levels of 64 slots, 1 ms per tick at level 0, so
//! timers up to 64^6 ms (about 2.2 years) ahead. Entries are small records in one preallocated
//! slab (a CPE index, a deadline, a generation), linked through indices per slot; nothing is
//! boxed per timer. Each level keeps a 64-bit occupancy mask so the next event is found with
//! `trailing_zeros`, and an entry cascades at most once per level.
//!
//! The layout follows tokio's `runtime/time/wheel`: an entry sits at the level of the highest
//! 6-bit digit in which its deadline differs from `now`.

/// Slots per level.
const SLOTS: usize = 64;
/// Levels.
const LEVELS: usize = 6;
/// No entry (end of a list).
const NIL: u32 = u32::MAX;

/// A timer that expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub id: u32,
    /// The tick it was due at (for scheduler-lag measurement).
    pub deadline: u64,
}

/// A handle to cancel a timer; stale handles are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

impl TimerHandle {
    /// A handle to no timer.
    pub const NONE: TimerHandle = TimerHandle { index: NIL, generation: 0 };
}

/// How far ahead a deadline may be (2^32 ms, about 50 days): later ones are clamped to this and
/// fire early, and their owner re-arms them (a stale timer does nothing). The wheel itself
/// reaches 2^36 ms.
pub const MAX_AHEAD: u64 = 1 << 32;

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: u64,
    next: u32,
    id: u32,
    generation: u32,
    cancelled: bool,
}

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    now: u64,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    entries: Vec<Entry>,
    free: u32,
    len: usize,
}

impl Wheel {
    /// An empty wheel at tick `now`, with room for `capacity` timers before it grows.
    pub fn new(now: u64, capacity: usize) -> Wheel {
        Wheel { now, heads: [[NIL; SLOTS]; LEVELS], occupied: [0; LEVELS], entries: Vec::with_capacity(capacity), free: NIL, len: 0 }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Live timers (cancelled ones count until they are reached).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick a timer at `deadline` is filed at: not before now, not beyond [`MAX_AHEAD`].
    pub fn clamp(&self, deadline: u64) -> u64 {
        deadline.clamp(self.now, self.now.saturating_add(MAX_AHEAD))
    }

    /// The (clamped) deadline of a pending timer; `None` once it fired or was cancelled.
    pub fn deadline(&self, h: TimerHandle) -> Option<u64> {
        match self.entries.get(h.index as usize) {
            Some(e) if e.generation == h.generation && !e.cancelled && e.deadline != u64::MAX => Some(e.deadline),
            _ => None,
        }
    }

    /// Adds a timer for CPE `id` at tick `deadline`, [clamped](Wheel::clamp) (a past deadline
    /// fires on the next advance; one beyond the horizon fires early).
    pub fn insert(&mut self, deadline: u64, id: u32) -> TimerHandle {
        let entry = Entry { deadline: self.clamp(deadline), next: NIL, id, generation: 0, cancelled: false };
        let index = if self.free != NIL {
            let i = self.free;
            let slot = &mut self.entries[i as usize];
            self.free = slot.next;
            let generation = slot.generation.wrapping_add(1);
            *slot = Entry { generation, ..entry };
            i
        } else {
            self.entries.push(entry);
            (self.entries.len() - 1) as u32
        };
        self.link(index);
        self.len += 1;
        TimerHandle { index, generation: self.entries[index as usize].generation }
    }

    /// Cancels a timer; it will not fire. Returns false if it already fired or was cancelled.
    pub fn cancel(&mut self, h: TimerHandle) -> bool {
        match self.entries.get_mut(h.index as usize) {
            Some(e) if e.generation == h.generation && !e.cancelled && e.deadline != u64::MAX => {
                e.cancelled = true;
                true
            }
            _ => false,
        }
    }

    fn level_for(&self, deadline: u64) -> usize {
        let masked = (self.now ^ deadline) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros() as usize;
        (significant / 6).min(LEVELS - 1)
    }

    fn link(&mut self, index: u32) {
        let deadline = self.entries[index as usize].deadline;
        let level = self.level_for(deadline);
        let slot = ((deadline >> (6 * level)) & (SLOTS as u64 - 1)) as usize;
        self.entries[index as usize].next = self.heads[level][slot];
        self.heads[level][slot] = index;
        self.occupied[level] |= 1 << slot;
    }

    fn release(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        e.deadline = u64::MAX;
        e.next = self.free;
        self.free = index;
        self.len -= 1;
    }

    /// The next tick at which something happens (an expiry or a cascade), if any.
    pub fn next_event(&self) -> Option<u64> {
        for level in 0..LEVELS {
            let cur = ((self.now >> (6 * level)) & (SLOTS as u64 - 1)) as u32;
            // Level 0 fires at the current slot too; higher levels only hold later digits.
            let from = if level == 0 { cur } else { cur + 1 };
            if from as usize >= SLOTS {
                continue;
            }
            let mask = self.occupied[level] & (u64::MAX << from);
            if mask != 0 {
                let slot = mask.trailing_zeros() as u64;
                let block = 6 * (level as u64 + 1);
                let high = if block >= 64 { 0 } else { (self.now >> block) << block };
                return Some(high | (slot << (6 * level)));
            }
        }
        None
    }

    /// Moves time to `to`, appending every timer due by then (in deadline order) to `out`.
    pub fn advance(&mut self, to: u64, out: &mut Vec<Expired>) {
        while let Some(t) = self.next_event() {
            if t > to {
                break;
            }
            self.now = self.now.max(t);
            // Take the slot this event belongs to: the lowest level whose slot at `now` is
            // occupied (level 0 expires, higher levels cascade down).
            for level in 0..LEVELS {
                let slot = ((self.now >> (6 * level)) & (SLOTS as u64 - 1)) as usize;
                if self.occupied[level] & (1 << slot) == 0 {
                    continue;
                }
                let mut i = std::mem::replace(&mut self.heads[level][slot], NIL);
                self.occupied[level] &= !(1 << slot);
                while i != NIL {
                    let next = self.entries[i as usize].next;
                    let e = self.entries[i as usize];
                    if e.cancelled {
                        self.release(i);
                    } else if e.deadline <= self.now {
                        out.push(Expired { id: e.id, deadline: e.deadline });
                        self.release(i);
                    } else {
                        self.link(i);
                    }
                    i = next;
                }
                break;
            }
        }
        self.now = self.now.max(to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(w: &mut Wheel, to: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        w.advance(to, &mut out);
        out.into_iter().map(|e| (e.deadline, e.id)).collect()
    }

    #[test]
    fn deadlines_beyond_the_horizon_are_clamped_and_fire_early() {
        let mut w = Wheel::new(5, 4);
        let h = w.insert(u64::MAX - 1, 1);
        assert_eq!(w.deadline(h), Some(5 + MAX_AHEAD));
        let mut out = Vec::new();
        w.advance(5 + MAX_AHEAD, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(w.deadline(h), None);
        assert_eq!(w.deadline(TimerHandle::NONE), None);
    }

    #[test]
    fn levels_follow_the_highest_differing_digit() {
        let w = Wheel::new(0, 0);
        assert_eq!(w.level_for(0), 0);
        assert_eq!(w.level_for(63), 0);
        assert_eq!(w.level_for(64), 1);
        assert_eq!(w.level_for(4095), 1);
        assert_eq!(w.level_for(4096), 2);
        assert_eq!(w.level_for(1 << 36), 5);
        assert_eq!(w.level_for(u64::MAX / 2), 5);
    }

    #[test]
    fn expires_in_deadline_order_across_cascades() {
        let mut w = Wheel::new(1000, 16);
        let deadlines = [1000u64, 1001, 1063, 1064, 1100, 5000, 70_000, 300_000, 5_000_000, 1_000_000_000];
        for (i, d) in deadlines.iter().enumerate().rev() {
            w.insert(*d, i as u32);
        }
        let got = drain(&mut w, 2_000_000_000);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), deadlines);
        assert!(w.is_empty());
    }

    #[test]
    fn nothing_fires_early_and_partial_advances_work() {
        let mut w = Wheel::new(0, 0);
        w.insert(150, 1);
        w.insert(10_000, 2);
        assert!(drain(&mut w, 149).is_empty());
        assert_eq!(drain(&mut w, 150), vec![(150, 1)]);
        assert!(drain(&mut w, 9_999).is_empty());
        assert_eq!(w.now(), 9_999);
        assert_eq!(drain(&mut w, 20_000), vec![(10_000, 2)]);
    }

    #[test]
    fn past_deadlines_fire_on_the_next_advance() {
        let mut w = Wheel::new(500, 0);
        w.insert(10, 7);
        assert_eq!(drain(&mut w, 500), vec![(500, 7)]);
    }

    #[test]
    fn cancelled_timers_do_not_fire_and_slots_are_reused() {
        let mut w = Wheel::new(0, 0);
        let a = w.insert(100, 1);
        w.insert(100, 2);
        assert!(w.cancel(a));
        assert!(!w.cancel(a));
        assert_eq!(drain(&mut w, 200), vec![(100, 2)]);
        assert!(!w.cancel(a), "stale handle");
        let b = w.insert(300, 3);
        assert!(b.index <= 1, "freed entries are reused");
        assert_eq!(drain(&mut w, 300), vec![(300, 3)]);
    }

    #[test]
    fn many_timers_far_future_and_next_event() {
        let mut w = Wheel::new(0, 100_000);
        for i in 0..100_000u32 {
            w.insert((i as u64 * 7_919) % 3_600_000, i);
        }
        assert_eq!(w.next_event(), Some(0));
        let mut out = Vec::new();
        let mut last = 0;
        let mut t = 0;
        while t < 3_600_000 {
            t += 1000;
            out.clear();
            w.advance(t, &mut out);
            for e in &out {
                assert!(e.deadline >= last && e.deadline <= t);
                last = e.deadline;
            }
        }
        assert!(w.is_empty());
    }
}
