//! The run id: 16 hex digits that every output of one run carries (the text and JSON reports,
//! the interval log's header, the HTML report, `/metrics`), so `report merge` can refuse the same
//! run given twice. Made once per run from the wall clock, the process id and the standard
//! library's per-process random hash keys; it is a label, not a secret.

use std::hash::{BuildHasher, Hasher};

/// One run's id (`RunId::fresh()`), shown as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RunId(pub u64);

impl RunId {
    /// A fresh id, different for every run (and every call).
    pub fn fresh() -> RunId {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        RunId(h.finish())
    }

    /// Parses the 16-hex-digit form.
    pub fn parse(s: &str) -> Option<RunId> {
        (s.len() == 16).then(|| u64::from_str_radix(s, 16).ok()).flatten().map(RunId)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_round_trip() {
        let (a, b) = (RunId::fresh(), RunId::fresh());
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 16);
        assert_eq!(RunId::parse(&a.to_string()), Some(a));
        assert_eq!(RunId::parse("xyz"), None);
        assert_eq!(RunId::parse("00000000000000zz"), None);
    }
}
