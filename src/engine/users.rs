//! Which CPE of a shard has a given ConnectionRequestUsername: a UDP Connection Request (TR-069
//! Annex G.2.2) names its CPE only by `un`, not by a URL path as an HTTP one does.
//!
//! A shard builds its index on its first UDP Connection Request (a run without a UDP listener
//! never has one), from every CPE's username as it is then (profile template or what the ACS set),
//! and adds a CPE's new username when a session or a local change touched its Connection Request
//! settings. Keys are 64-bit FNV-1a hashes of the username (16 bytes a CPE, not the text), so
//! a hit is only a candidate: the shard compares the CPE's real username before answering. An
//! old username stays in the index until the next rebuild (when it holds twice the CPEs).

use std::collections::HashMap;

use crate::model::identity::fnv1a;

/// Username hash → local CPE index.
#[derive(Debug, Default)]
pub struct UserIndex {
    by_hash: HashMap<u64, u32>,
}

impl UserIndex {
    /// An index of `usernames` (local index, username); empty usernames are left out (a CPE
    /// without credentials cannot be woken by UDP: the signature needs its password anyway).
    pub fn build<'a>(usernames: impl Iterator<Item = (u32, &'a str)>) -> UserIndex {
        let mut ix = UserIndex::default();
        for (k, user) in usernames {
            ix.insert(user, k);
        }
        ix
    }

    /// Records that CPE `k` now has `username`.
    pub fn insert(&mut self, username: &str, k: u32) {
        if !username.is_empty() {
            self.by_hash.insert(fnv1a(username), k);
        }
    }

    /// The CPE that had `username` when it was recorded (compare its username before trusting it).
    pub fn candidate(&self, username: &str) -> Option<u32> {
        self.by_hash.get(&fnv1a(username)).copied()
    }

    /// Whether old usernames have piled up (more than twice `cpes` entries): time to rebuild.
    pub fn is_oversized(&self, cpes: usize) -> bool {
        self.by_hash.len() > cpes.saturating_mul(2).saturating_add(1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_candidates_and_grows_only_with_changes() {
        let mut ix = UserIndex::build([(0, "alice"), (1, "bob"), (2, "")].into_iter());
        assert_eq!((ix.candidate("alice"), ix.candidate("bob"), ix.candidate("")), (Some(0), Some(1), None));
        ix.insert("carol", 0);
        assert_eq!(ix.candidate("carol"), Some(0));
        assert_eq!(ix.candidate("alice"), Some(0), "a stale entry stays until a rebuild; the owner checks");
        assert!(!ix.is_oversized(2));
        for i in 0..1030 {
            ix.insert(&format!("u{i}"), 1);
        }
        assert!(ix.is_oversized(2));
    }
}
