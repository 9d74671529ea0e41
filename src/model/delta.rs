//! One CPE's changes against the shared tree: values set by the ACS or locally, instances added
//! and deleted, attributes, pending value-change notifications.
//!
//! Empty until the first change, and then one boxed allocation: an untouched CPE costs 8 bytes
//! here. Entries are found by linear scan; a CPE rarely carries more than a few dozen changes, and
//! a scan over a short `Vec` beats hashing at that size.

use super::tree::{Inst, Loc, NodeId, Notification};

/// Who set a value: the CPE itself (locally, or the profile) or the ACS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    Cpe,
    Acs,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cpe => "cpe",
            Source::Acs => "acs",
        }
    }
}

/// A value someone set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValueEntry {
    pub loc: Loc,
    pub value: Box<str>,
    pub source: Source,
}

/// An instance of `table` under parent instance path `parent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceEntry {
    pub table: NodeId,
    pub parent: Inst,
    pub number: u32,
    pub source: Source,
}

/// Attributes the ACS set on one parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttrEntry {
    pub loc: Loc,
    pub notification: Option<Notification>,
    /// Whether `Subscriber` is in the AccessList (the only defined entry).
    pub subscriber_access: Option<bool>,
}

/// The changes themselves (boxed inside [`Delta`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeltaInner {
    pub values: Vec<ValueEntry>,
    pub added: Vec<InstanceEntry>,
    pub deleted: Vec<InstanceEntry>,
    /// Highest instance number ever used per (table, parent), so numbers are never reused.
    pub high_water: Vec<(NodeId, Inst, u32)>,
    pub attrs: Vec<AttrEntry>,
    /// Notified parameters changed by the CPE and not yet reported in an Inform.
    pub changed: Vec<Loc>,
}

/// A CPE's delta: `None` until the first change.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Delta(Option<Box<DeltaInner>>);

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The changes, if any.
    pub fn inner(&self) -> Option<&DeltaInner> {
        self.0.as_deref()
    }

    /// The changes, allocating the box on first write.
    pub fn inner_mut(&mut self) -> &mut DeltaInner {
        self.0.get_or_insert_with(Default::default)
    }

    /// Drops every change (factory reset).
    pub fn clear(&mut self) {
        self.0 = None;
    }

    pub fn value(&self, loc: &Loc) -> Option<&ValueEntry> {
        self.inner()?.values.iter().find(|v| v.loc == *loc)
    }

    pub fn set_value(&mut self, loc: Loc, value: &str, source: Source) {
        let d = self.inner_mut();
        match d.values.iter_mut().find(|v| v.loc == loc) {
            Some(v) => {
                v.value = value.into();
                v.source = source;
            }
            None => d.values.push(ValueEntry { loc, value: value.into(), source }),
        }
    }

    pub fn attr(&self, loc: &Loc) -> Option<&AttrEntry> {
        self.inner()?.attrs.iter().find(|a| a.loc == *loc)
    }

    pub fn attr_mut(&mut self, loc: &Loc) -> &mut AttrEntry {
        let d = self.inner_mut();
        let pos = match d.attrs.iter().position(|a| a.loc == *loc) {
            Some(p) => p,
            None => {
                d.attrs.push(AttrEntry { loc: loc.clone(), notification: None, subscriber_access: None });
                d.attrs.len() - 1
            }
        };
        &mut d.attrs[pos]
    }

    pub fn is_deleted(&self, table: NodeId, parent: &[u32], number: u32) -> bool {
        self.inner().is_some_and(|d| d.deleted.iter().any(|e| e.table == table && e.number == number && e.parent.as_slice() == parent))
    }

    /// Instances added under (table, parent).
    pub fn added<'s>(&'s self, table: NodeId, parent: &'s [u32]) -> impl Iterator<Item = u32> + 's {
        self.inner()
            .into_iter()
            .flat_map(|d| d.added.iter())
            .filter(move |e| e.table == table && e.parent.as_slice() == parent)
            .map(|e| e.number)
    }

    pub fn high_water(&self, table: NodeId, parent: &[u32]) -> u32 {
        self.inner().and_then(|d| d.high_water.iter().find(|(t, p, _)| *t == table && p.as_slice() == parent)).map_or(0, |(_, _, n)| *n)
    }

    pub fn set_high_water(&mut self, table: NodeId, parent: &[u32], n: u32) {
        let d = self.inner_mut();
        match d.high_water.iter_mut().find(|(t, p, _)| *t == table && p.as_slice() == parent) {
            Some(e) => e.2 = e.2.max(n),
            None => d.high_water.push((table, parent.into(), n)),
        }
    }

    /// Records a changed notified parameter once.
    pub fn mark_changed(&mut self, loc: Loc) {
        let d = self.inner_mut();
        if !d.changed.contains(&loc) {
            d.changed.push(loc);
        }
    }

    /// Pending value-change parameters.
    pub fn changed(&self) -> &[Loc] {
        self.inner().map_or(&[], |d| d.changed.as_slice())
    }

    /// Forgets pending value changes (they were delivered).
    pub fn clear_changed(&mut self, delivered: usize) {
        if let Some(d) = self.0.as_deref_mut() {
            let n = delivered.min(d.changed.len());
            d.changed.drain(..n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_until_written() {
        let mut d = Delta::default();
        assert!(d.is_empty());
        assert_eq!(std::mem::size_of::<Delta>(), 8);
        let loc = Loc::plain(NodeId(3));
        d.set_value(loc.clone(), "a", Source::Acs);
        d.set_value(loc.clone(), "b", Source::Cpe);
        let v = d.value(&loc).unwrap();
        assert_eq!((&*v.value, v.source), ("b", Source::Cpe));
        assert_eq!(d.inner().unwrap().values.len(), 1);
        d.clear();
        assert!(d.is_empty());
    }
}
