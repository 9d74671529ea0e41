//! Slices: one process's disjoint part of a fleet, so N processes (machines, or the pods of a
//! Kubernetes Indexed Job) together simulate the whole fleet once.
//!
//! A slice is `K/N` (0 ≤ K < N): `--slice K/N`, or `JOB_COMPLETION_INDEX=K` (what Kubernetes sets
//! in each pod of an Indexed Job) with `--slices N`. Slice K of a fleet of `count` CPEs starting at
//! index `first` is the contiguous range `first + ⌊K·count/N⌋ .. first + ⌊(K+1)·count/N⌋`: the N
//! ranges are disjoint, cover the fleet, and differ in size by at most one CPE. Serials, MACs and
//! credentials are stamped from the CPE index, so disjoint ranges mean disjoint identities.
//! A pool of source addresses is cut the same way.
//!
//! Pure: no I/O (`plan` reads [`JOB_COMPLETION_INDEX`] from the environment).

use std::fmt;
use std::ops::Range;

/// The environment variable Kubernetes sets to the pod's index in an Indexed Job.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// Most slices a run may be cut into (a Kubernetes Indexed Job allows up to 100,000 completions).
pub const MAX_SLICES: u32 = 100_000;

/// Slice `index` of `count` (0 ≤ index < count ≤ [`MAX_SLICES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: u32,
    pub count: u32,
}

/// Why a slice was refused: the text after the flag's name in a usage error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceError(pub String);

impl fmt::Display for SliceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SliceError {}

impl Slice {
    /// The whole fleet: slice 0 of 1.
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// A slice, checked: `count` in 1 ..= [`MAX_SLICES`], `index` below `count`.
    ///
    /// # Errors
    /// A [`SliceError`] saying which bound was broken.
    pub fn new(index: u32, count: u32) -> Result<Slice, SliceError> {
        if count == 0 || count > MAX_SLICES {
            return Err(SliceError(format!("the number of slices must be 1 … {MAX_SLICES}")));
        }
        if index >= count {
            return Err(SliceError(format!("the slice index must be 0 … {} (indices count from 0)", count - 1)));
        }
        Ok(Slice { index, count })
    }

    /// Parses `K/N`, e.g. `0/4` … `3/4`.
    ///
    /// # Errors
    /// A [`SliceError`] for anything but two whole numbers around a `/` within bounds.
    pub fn parse(s: &str) -> Result<Slice, SliceError> {
        let bad = || SliceError("must be K/N with whole numbers 0 ≤ K < N, e.g. 0/4".to_string());
        let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse::<u32>().map_err(|_| bad())?;
        let n = n.trim().parse::<u32>().map_err(|_| bad())?;
        Slice::new(k, n)
    }

    /// The slice from `JOB_COMPLETION_INDEX` (as read from the environment) and `slices` (N).
    /// `Ok(None)` when the variable is unset or empty.
    ///
    /// # Errors
    /// A [`SliceError`] when the variable is not a whole number, when N is missing, or when the
    /// index is not below N.
    pub fn from_job_index(value: Option<&str>, slices: Option<u32>) -> Result<Option<Slice>, SliceError> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
        let index = v.parse::<u32>().map_err(|_| SliceError(format!("{JOB_COMPLETION_INDEX}={v:?} is not a whole number")))?;
        let Some(count) = slices else {
            return Err(SliceError(format!("{JOB_COMPLETION_INDEX}={index} needs --slices N (the Job's completions)")));
        };
        Slice::new(index, count).map(Some)
    }

    /// This slice's part of the index range `first .. first + total` (empty when `total` is
    /// smaller than the number of slices and this slice gets none).
    pub fn of(self, first: u32, total: u32) -> Range<u32> {
        let cut = |k: u32| (u64::from(total) * u64::from(k) / u64::from(self.count)) as u32;
        first + cut(self.index)..first + cut(self.index + 1)
    }

    /// This slice's part of `items` (a pool of source addresses, say), by the same rule.
    pub fn of_items<T>(self, items: &[T]) -> &[T] {
        let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let r = self.of(0, total);
        &items[r.start as usize..r.end as usize]
    }

    /// This slice's share of a fleet-wide rate (`--boot-rate`, CPEs per second): `rate` × the
    /// slice's `part` of `whole` CPEs, so N slices together boot at the rate asked for, not N
    /// times it (`whole` 0: the rate unchanged).
    pub fn rate_share(rate: f64, part: u32, whole: u32) -> f64 {
        if whole == 0 {
            return rate;
        }
        rate * f64::from(part) / f64::from(whole)
    }

    /// Whether this is the whole fleet (`0/1`).
    pub fn is_whole(self) -> bool {
        self.count == 1
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Slice::parse("2/4"), Ok(Slice { index: 2, count: 4 }));
        assert_eq!(Slice::parse(" 0 / 1 "), Ok(Slice::WHOLE));
        for bad in ["", "3", "4/4", "5/4", "0/0", "-1/4", "a/b", "1/2/3", "1.5/4", "0/100001"] {
            assert!(Slice::parse(bad).is_err(), "{bad}");
        }
        assert!(Slice::parse("4/4").unwrap_err().0.contains("0 … 3"));
    }

    #[test]
    fn job_index_needs_slices_and_a_number() {
        assert_eq!(Slice::from_job_index(None, Some(4)), Ok(None));
        assert_eq!(Slice::from_job_index(Some(""), None), Ok(None));
        assert_eq!(Slice::from_job_index(Some("3"), Some(4)), Ok(Some(Slice { index: 3, count: 4 })));
        assert!(Slice::from_job_index(Some("3"), None).unwrap_err().0.contains("--slices"));
        assert!(Slice::from_job_index(Some("4"), Some(4)).is_err());
        assert!(Slice::from_job_index(Some("x"), Some(4)).unwrap_err().0.contains("not a whole number"));
    }

    #[test]
    fn sizes_differ_by_at_most_one() {
        let sizes: Vec<u32> = (0..3).map(|k| Slice::new(k, 3).unwrap().of(10, 10).len() as u32).collect();
        assert_eq!(sizes.iter().sum::<u32>(), 10);
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        assert_eq!(Slice::new(0, 3).unwrap().of(10, 10), 10..13);
        assert_eq!(Slice::new(2, 3).unwrap().of(10, 10), 16..20);
    }

    #[test]
    fn slices_share_a_fleet_wide_rate() {
        // 40 CPEs at 10/s in two slices of 20: each boots at 5/s, together 10/s.
        assert_eq!(Slice::rate_share(10.0, 20, 40), 5.0);
        let parts: f64 = (0..3).map(|k| Slice::rate_share(9.0, Slice::new(k, 3).unwrap().of(0, 31).len() as u32, 31)).sum();
        assert!((parts - 9.0).abs() < 1e-9, "{parts}");
        assert_eq!(Slice::rate_share(7.0, 0, 0), 7.0);
    }

    #[test]
    fn huge_fleets_do_not_overflow() {
        let last = Slice::new(99_999, 100_000).unwrap().of(0, u32::MAX);
        assert_eq!(last.end, u32::MAX);
    }

    proptest! {
        /// The slices of a fleet are disjoint, in order, and cover it exactly.
        #[test]
        fn slices_partition_the_fleet(first in 0u32..1000, total in 0u32..100_000, n in 1u32..300) {
            let mut next = first;
            for k in 0..n {
                let r = Slice::new(k, n).unwrap().of(first, total);
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end >= r.start);
                next = r.end;
            }
            prop_assert_eq!(next, first + total);
        }

        #[test]
        fn item_slices_partition_the_items(len in 0usize..500, n in 1u32..40) {
            let items: Vec<usize> = (0..len).collect();
            let joined: Vec<usize> = (0..n).flat_map(|k| Slice::new(k, n).unwrap().of_items(&items).to_vec()).collect();
            prop_assert_eq!(joined, items);
        }
    }
}
