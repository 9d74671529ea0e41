//! One CPE's data model as the ACS sees it (the shared tree seen through the CPE's delta), and the
//! semantics of the parameter RPCs on it (TR-069 §A.3.2, PROTOCOL.md §7.1).
//!
//! [`Device`] reads (path resolution with instance wildcards, subtree walks, value rendering);
//! [`DeviceMut`] validates and applies writes all-or-nothing. Neither renders envelopes: the
//! `session` module calls these and the `cwmp::rpc` renderers. No I/O, no clock.

use bytes::BytesMut;
use smallvec::SmallVec;

use super::delta::{Delta, InstanceEntry, Source};
use super::identity::DeviceId;
use super::tree::{ActiveNotify, Dynamic, Inst, Loc, Node, NodeId, NodeKind, Notification, ParamTree, ValueSource};
use super::types::{check_value, ValueError};
use super::Model;
use crate::cwmp::fault::FaultCode;
use crate::cwmp::xml::escape_into;
use crate::time::{format_datetime, UnixMillis};

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Param(Loc),
    Object(Loc),
}

/// Who is reading: the ACS never sees secrets; the local API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFor {
    Acs,
    Local,
}

/// Which simulator-relevant settings a write touched, so the caller can re-arm timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeSet(pub u16);

impl ChangeSet {
    pub const PERIODIC_INFORM: ChangeSet = ChangeSet(1);
    pub const ACS_URL: ChangeSet = ChangeSet(1 << 1);
    pub const ACS_CREDENTIALS: ChangeSet = ChangeSet(1 << 2);
    pub const CONNECTION_REQUEST: ChangeSet = ChangeSet(1 << 3);
    pub const RETRY_POLICY: ChangeSet = ChangeSet(1 << 4);
    pub const INSTANCES: ChangeSet = ChangeSet(1 << 5);
    pub const ATTRIBUTES: ChangeSet = ChangeSet(1 << 6);

    pub fn contains(self, other: ChangeSet) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn insert(&mut self, other: ChangeSet) {
        self.0 |= other.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A failed SetParameterValues: the 9003 wrapper's per-parameter entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpvFault {
    pub code: FaultCode,
    pub params: Vec<(String, FaultCode)>,
}

/// One SetParameterValues entry as parsed.
pub struct SpvEntry<'e> {
    pub name: &'e str,
    pub value: &'e str,
    pub xsi_type: Option<&'e str>,
}

/// One SetParameterAttributes entry as parsed.
pub struct SpaEntry<'e> {
    pub name: &'e str,
    pub notification: Option<u8>,
    /// `Some(list)` when AccessListChange is true.
    pub access_list: Option<&'e [std::borrow::Cow<'e, str>]>,
}

/// A read-only view of one CPE.
#[derive(Clone, Copy)]
pub struct Device<'a> {
    pub model: &'a Model,
    pub id: DeviceId,
    pub delta: &'a Delta,
    pub boot_at: UnixMillis,
    pub now: UnixMillis,
}

impl<'a> Device<'a> {
    fn tree(&self) -> &'a ParamTree {
        &self.model.tree
    }

    /// The instance numbers of `table` under `parent`, ascending.
    pub fn instances(&self, table: NodeId, parent: &[u32]) -> SmallVec<[u32; 8]> {
        let NodeKind::Table(spec) = &self.tree().node(table).kind else { return SmallVec::new() };
        let mut v: SmallVec<[u32; 8]> =
            spec.defaults_for(parent).iter().copied().filter(|&n| !self.delta.is_deleted(table, parent, n)).collect();
        v.extend(self.delta.added(table, parent));
        v.sort_unstable();
        v
    }

    fn instance_exists(&self, table: NodeId, parent: &[u32], n: u32) -> bool {
        let NodeKind::Table(spec) = &self.tree().node(table).kind else { return false };
        (spec.defaults_for(parent).contains(&n) && !self.delta.is_deleted(table, parent, n))
            || self.delta.added(table, parent).any(|a| a == n)
    }

    /// Whether `*` may stand for instance numbers (`ManagementServer.InstanceWildcardsSupported`).
    pub fn wildcards_supported(&self) -> bool {
        self.model.well_known.instance_wildcards_supported.is_some_and(|n| self.bool_value(&Loc::plain(n)))
    }

    fn bool_value(&self, loc: &Loc) -> bool {
        let mut out = BytesMut::new();
        self.write_value(loc, ReadFor::Local, false, &mut out);
        matches!(&out[..], b"true" | b"1")
    }

    /// Resolves a path the ACS sent to every place it names.
    ///
    /// `""` names the root object; a path ending in `.` names an object; `*` in an instance
    /// position (when supported) names every instance.
    ///
    /// # Errors
    /// 9005 when the path does not exist (a wildcard matching nothing is not an error).
    pub fn resolve(&self, path: &str) -> Result<SmallVec<[Target; 1]>, FaultCode> {
        let tree = self.tree();
        if path.is_empty() {
            return Ok(smallvec::smallvec![Target::Object(Loc::plain(ParamTree::ROOT))]);
        }
        let (body, is_object) = match path.strip_suffix('.') {
            Some(b) => (b, true),
            None => (path, false),
        };
        let mut segs = body.split('.');
        if segs.next() != Some(tree.root_name()) {
            return Err(FaultCode::InvalidParameterName);
        }
        let mut node = ParamTree::ROOT;
        let mut insts: SmallVec<[Inst; 1]> = smallvec::smallvec![Inst::new()];
        let mut wild = false;
        for seg in segs {
            match &tree.node(node).kind {
                NodeKind::Table(_) => {
                    let inode = tree.child(node, "{i}").ok_or(FaultCode::InvalidParameterName)?;
                    let mut next: SmallVec<[Inst; 1]> = SmallVec::new();
                    if seg == "*" {
                        if !self.wildcards_supported() {
                            return Err(FaultCode::InvalidParameterName);
                        }
                        wild = true;
                        for inst in &insts {
                            for n in self.instances(node, inst) {
                                let mut i = inst.clone();
                                i.push(n);
                                next.push(i);
                            }
                        }
                    } else {
                        let n = parse_instance(seg).ok_or(FaultCode::InvalidParameterName)?;
                        for inst in &insts {
                            if self.instance_exists(node, inst, n) {
                                let mut i = inst.clone();
                                i.push(n);
                                next.push(i);
                            }
                        }
                        if next.is_empty() && !wild {
                            return Err(FaultCode::InvalidParameterName);
                        }
                    }
                    insts = next;
                    node = inode;
                }
                NodeKind::Param(_) => return Err(FaultCode::InvalidParameterName),
                NodeKind::Object | NodeKind::Instance => {
                    if seg == "{i}" {
                        return Err(FaultCode::InvalidParameterName);
                    }
                    node = tree.child(node, seg).ok_or(FaultCode::InvalidParameterName)?;
                }
            }
        }
        if tree.node(node).is_object() != is_object {
            return Err(FaultCode::InvalidParameterName);
        }
        Ok(insts
            .into_iter()
            .map(|inst| {
                let loc = Loc { node, inst };
                if is_object {
                    Target::Object(loc)
                } else {
                    Target::Param(loc)
                }
            })
            .collect())
    }

    /// Calls `f` for every object and parameter strictly below the object `obj`, in tree order
    /// (objects before their contents).
    pub fn walk_below(&self, obj: &Loc, f: &mut dyn FnMut(&Loc, &Node)) {
        let tree = self.tree();
        let mut inst = obj.inst.clone();
        match tree.node(obj.node).kind {
            NodeKind::Table(_) => self.walk_instances(obj.node, &mut inst, f),
            _ => self.walk_children(obj.node, &mut inst, f),
        }
    }

    fn walk_instances(&self, table: NodeId, inst: &mut Inst, f: &mut dyn FnMut(&Loc, &Node)) {
        let tree = self.tree();
        let Some(inode) = tree.child(table, "{i}") else { return };
        for n in self.instances(table, inst) {
            inst.push(n);
            f(&Loc { node: inode, inst: inst.clone() }, tree.node(inode));
            self.walk_children(inode, inst, f);
            inst.pop();
        }
    }

    fn walk_children(&self, node: NodeId, inst: &mut Inst, f: &mut dyn FnMut(&Loc, &Node)) {
        let tree = self.tree();
        for &c in &tree.node(node).children {
            let child = tree.node(c);
            f(&Loc { node: c, inst: inst.clone() }, child);
            match child.kind {
                NodeKind::Object => self.walk_children(c, inst, f),
                NodeKind::Table(_) => self.walk_instances(c, inst, f),
                NodeKind::Instance | NodeKind::Param(_) => {}
            }
        }
    }

    /// Writes the current value of the parameter at `loc` (XML-escaped when `xml`).
    /// Secrets read back empty to the ACS (PROTOCOL.md §7.1 GetParameterValues).
    pub fn write_value(&self, loc: &Loc, who: ReadFor, xml: bool, out: &mut BytesMut) {
        let Some(spec) = self.tree().node(loc.node).param() else { return };
        if spec.secret && who == ReadFor::Acs {
            return;
        }
        if let Some(v) = self.delta.value(loc) {
            if xml {
                escape_into(out, &v.value);
            } else {
                out.extend_from_slice(v.value.as_bytes());
            }
            return;
        }
        let source = self.tree().override_for(loc).unwrap_or(&spec.default);
        self.write_source(source, loc, xml, out);
    }

    fn write_source(&self, source: &ValueSource, loc: &Loc, xml: bool, out: &mut BytesMut) {
        match source {
            ValueSource::Static { raw, escaped } => out.extend_from_slice(if xml { escaped } else { raw }.as_bytes()),
            ValueSource::Template(t) => t.write(&self.model.identity, self.id, xml, out),
            ValueSource::Dynamic(d) => {
                let uptime = self.now.since(self.boot_at);
                let mut num = itoa::Buffer::new();
                let text: &str = match *d {
                    Dynamic::Uptime => num.format(uptime.as_secs()),
                    Dynamic::Counter { per_second } => num.format((uptime.as_millis() as u64).saturating_mul(per_second) / 1000),
                    Dynamic::CurrentTime => {
                        out.extend_from_slice(&format_datetime(self.now));
                        return;
                    }
                    Dynamic::Generated(g) => {
                        let key = g.key(self.model.identity.seed, self.id.0, &loc.inst);
                        let v = g.value(key, self.boot_at.0, self.now.0);
                        let mut b = itoa::Buffer::new();
                        out.extend_from_slice(b.format(v).as_bytes());
                        return;
                    }
                    Dynamic::EntryCount(table) => {
                        let depth = self.tree().instance_depth(table);
                        let parent = &loc.inst[..depth.min(loc.inst.len())];
                        num.format(self.instances(table, parent).len())
                    }
                };
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    /// The value at `loc` as a `String` (not for the hot path).
    pub fn value_string(&self, loc: &Loc, who: ReadFor) -> String {
        let mut out = BytesMut::new();
        self.write_value(loc, who, false, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The value of the parameter at a concrete `path`, as the CPE itself sees it.
    pub fn get(&self, path: &str) -> Option<String> {
        match self.resolve(path).ok()?.as_slice() {
            [Target::Param(loc)] => Some(self.value_string(loc, ReadFor::Local)),
            _ => None,
        }
    }

    /// Where a value came from (`cpe` for profile defaults and local changes, `acs` for SPV).
    pub fn source(&self, loc: &Loc) -> Source {
        self.delta.value(loc).map_or(Source::Cpe, |v| v.source)
    }

    /// The notification attribute in force at `loc`.
    pub fn notification(&self, loc: &Loc) -> Notification {
        let Some(spec) = self.tree().node(loc.node).param() else { return Notification::Off };
        if spec.active_notify == ActiveNotify::Forced {
            return Notification::Active;
        }
        self.delta.attr(loc).and_then(|a| a.notification).unwrap_or(spec.notification)
    }

    /// Whether `Subscriber` is in the AccessList at `loc`.
    pub fn subscriber_access(&self, loc: &Loc) -> bool {
        self.delta.attr(loc).and_then(|a| a.subscriber_access).unwrap_or(false)
    }

    /// Whether the object or parameter at `loc` is writable as GetParameterNames reports it:
    /// a table when instances may be added, an instance when it may be deleted.
    pub fn writable(&self, loc: &Loc) -> bool {
        let tree = self.tree();
        let node = tree.node(loc.node);
        match &node.kind {
            NodeKind::Param(p) => p.writable,
            NodeKind::Table(t) => t.writable,
            NodeKind::Instance => node.parent.is_some_and(|p| matches!(&tree.node(p).kind, NodeKind::Table(t) if t.writable)),
            NodeKind::Object => false,
        }
    }

    /// GetParameterValues: every parameter the names denote, in request order.
    ///
    /// # Errors
    /// 9005 for any unknown name (the whole call fails, PROTOCOL.md §7.1).
    pub fn gpv_targets<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<Loc>, (FaultCode, usize)> {
        let mut out = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            for t in self.resolve(name.as_ref()).map_err(|f| (f, i))? {
                match t {
                    Target::Param(loc) => out.push(loc),
                    Target::Object(obj) => self.walk_below(&obj, &mut |loc, node| {
                        if !node.is_object() {
                            out.push(loc.clone());
                        }
                    }),
                }
            }
        }
        Ok(out)
    }

    /// GetParameterNames: (location, writable) pairs per TR-069 §A.3.2.3 and PROTOCOL.md §7.1.
    ///
    /// # Errors
    /// 9005 for an unknown path; 9003 for a parameter name with `NextLevel` true.
    pub fn gpn(&self, path: &str, next_level: bool) -> Result<Vec<(Loc, bool)>, FaultCode> {
        let mut out = Vec::new();
        if path.is_empty() && next_level {
            let root = Loc::plain(ParamTree::ROOT);
            out.push((root, false));
            return Ok(out);
        }
        for t in self.resolve(path)? {
            match t {
                Target::Param(loc) => {
                    if next_level {
                        return Err(FaultCode::InvalidArguments);
                    }
                    let w = self.writable(&loc);
                    out.push((loc, w));
                }
                Target::Object(obj) => {
                    if next_level {
                        let depth = obj.inst.len();
                        let obj_node = obj.node;
                        let is_table = matches!(self.tree().node(obj_node).kind, NodeKind::Table(_));
                        self.walk_below(&obj, &mut |loc, node| {
                            let direct = if is_table {
                                matches!(node.kind, NodeKind::Instance) && loc.inst.len() == depth + 1
                            } else {
                                node.parent == Some(obj_node) && loc.inst.len() == depth
                            };
                            if direct {
                                out.push((loc.clone(), self.writable(loc)));
                            }
                        });
                    } else {
                        let w = self.writable(&obj);
                        out.push((obj.clone(), w));
                        self.walk_below(&obj, &mut |loc, _| out.push((loc.clone(), self.writable(loc))));
                    }
                }
            }
        }
        Ok(out)
    }

    /// GetParameterAttributes: every parameter the names denote.
    ///
    /// # Errors
    /// 9005 for an unknown name.
    pub fn gpa_targets<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<Loc>, (FaultCode, usize)> {
        self.gpv_targets(names)
    }
}

fn parse_instance(seg: &str) -> Option<u32> {
    if seg.is_empty() || seg.len() > 10 || !seg.bytes().all(|b| b.is_ascii_digit()) || seg.starts_with('0') {
        return None;
    }
    seg.parse().ok()
}

/// A writable view of one CPE.
pub struct DeviceMut<'a> {
    pub model: &'a Model,
    pub id: DeviceId,
    pub delta: &'a mut Delta,
    pub boot_at: UnixMillis,
    pub now: UnixMillis,
}

impl<'a> DeviceMut<'a> {
    /// A read-only view of the same CPE.
    pub fn view(&self) -> Device<'_> {
        Device { model: self.model, id: self.id, delta: self.delta, boot_at: self.boot_at, now: self.now }
    }

    fn changes_for(&self, node: NodeId) -> ChangeSet {
        let wk = &self.model.well_known;
        let is = |n: Option<NodeId>| n == Some(node);
        if is(wk.periodic_inform_enable) || is(wk.periodic_inform_interval) || is(wk.periodic_inform_time) {
            ChangeSet::PERIODIC_INFORM
        } else if is(wk.acs_url) {
            ChangeSet::ACS_URL
        } else if is(wk.acs_username) || is(wk.acs_password) {
            ChangeSet::ACS_CREDENTIALS
        } else if is(wk.connection_request_username) || is(wk.connection_request_password) || is(wk.connection_request_url) {
            ChangeSet::CONNECTION_REQUEST
        } else if is(wk.retry_minimum_wait_interval) || is(wk.retry_interval_multiplier) {
            ChangeSet::RETRY_POLICY
        } else {
            ChangeSet::default()
        }
    }

    fn set_parameter_key(&mut self, key: &str) {
        if let Some(node) = self.model.well_known.parameter_key {
            self.delta.set_value(Loc::plain(node), key, Source::Acs);
        }
    }

    /// SetParameterValues: validates every entry, then applies all or nothing and sets the
    /// ParameterKey (TR-069 §A.3.2.1, PROTOCOL.md §7.1).
    ///
    /// # Errors
    /// 9003 with one entry per bad parameter (9005 unknown, 9006 wrong type, 9007 bad value,
    /// 9008 read-only); 9003 alone for a duplicated name.
    pub fn spv(&mut self, entries: &[SpvEntry<'_>], parameter_key: &str) -> Result<ChangeSet, SpvFault> {
        let mut faults = Vec::new();
        let mut plan: Vec<(Loc, std::borrow::Cow<'_, str>)> = Vec::with_capacity(entries.len());
        {
            let view = self.view();
            for e in entries {
                let loc = match view.resolve(e.name).as_deref() {
                    Ok([Target::Param(loc)]) if !e.name.contains('*') => loc.clone(),
                    _ => {
                        faults.push((e.name.to_string(), FaultCode::InvalidParameterName));
                        continue;
                    }
                };
                if plan.iter().any(|(l, _)| *l == loc) {
                    return Err(SpvFault { code: FaultCode::InvalidArguments, params: Vec::new() });
                }
                let Some(spec) = self.model.tree.node(loc.node).param() else { continue };
                if !spec.writable {
                    faults.push((e.name.to_string(), FaultCode::NonWritableParameter));
                    continue;
                }
                match check_value(spec.ty, spec.constraint.as_deref(), e.xsi_type, e.value) {
                    Ok(v) => plan.push((loc, v)),
                    Err(ValueError::WrongType) => faults.push((e.name.to_string(), FaultCode::InvalidParameterType)),
                    Err(ValueError::BadValue) => faults.push((e.name.to_string(), FaultCode::InvalidParameterValue)),
                }
            }
        }
        if !faults.is_empty() {
            return Err(SpvFault { code: FaultCode::InvalidArguments, params: faults });
        }
        // Only a different value is a change: writing the value in use of a setting the
        // simulator acts on (the ACS URL, periodic informs, credentials, …) changes nothing and
        // is not stored, so that a run's own URL is not pinned in the CPE's delta.
        let mut changes = ChangeSet::default();
        for (loc, value) in plan {
            let setting = self.changes_for(loc.node);
            if !setting.is_empty() && self.view().value_string(&loc, ReadFor::Local) == value {
                continue;
            }
            changes.insert(setting);
            self.delta.set_value(loc, &value, Source::Acs);
        }
        self.set_parameter_key(parameter_key);
        Ok(changes)
    }

    /// SetParameterAttributes, all or nothing (TR-069 §A.3.2.4).
    ///
    /// # Errors
    /// 9005 unknown name, 9009 active notification refused, 9003 a notification value out of range.
    pub fn spa(&mut self, entries: &[SpaEntry<'_>]) -> Result<(), FaultCode> {
        let mut plan: Vec<(Loc, Option<Notification>, Option<bool>)> = Vec::new();
        {
            let view = self.view();
            for e in entries {
                let notification = match e.notification {
                    None => None,
                    Some(v @ 0..=2) => Notification::from_u8(v),
                    Some(3..=6) => return Err(FaultCode::NotificationRejected),
                    Some(_) => return Err(FaultCode::InvalidArguments),
                };
                let access = e.access_list.map(|l| l.iter().any(|s| s.as_ref() == "Subscriber"));
                let mut locs = Vec::new();
                for t in view.resolve(e.name)? {
                    match t {
                        Target::Param(loc) => locs.push(loc),
                        Target::Object(obj) => view.walk_below(&obj, &mut |loc, node| {
                            if !node.is_object() {
                                locs.push(loc.clone());
                            }
                        }),
                    }
                }
                for loc in locs {
                    let spec = self.model.tree.node(loc.node).param().expect("walk yields params");
                    let n = match (notification, spec.active_notify) {
                        (Some(Notification::Active), ActiveNotify::CanDeny) => return Err(FaultCode::NotificationRejected),
                        // Forced-active parameters stay active whatever is asked (BBF `forceEnabled`).
                        (_, ActiveNotify::Forced) => None,
                        (n, _) => n,
                    };
                    plan.push((loc, n, access));
                }
            }
        }
        for (loc, n, access) in plan {
            let attr = self.delta.attr_mut(&loc);
            if n.is_some() {
                attr.notification = n;
            }
            if access.is_some() {
                attr.subscriber_access = access;
            }
        }
        Ok(())
    }

    /// AddObject: a fresh instance with default children, numbered above every number this table
    /// has ever used (TR-069 §A.3.2.6).
    ///
    /// # Errors
    /// 9005 not a table path, 9001 the table is not writable, 9004 the table is full.
    pub fn add_object(&mut self, path: &str, parameter_key: &str) -> Result<u32, FaultCode> {
        let table = match self.view().resolve(path)?.as_slice() {
            [Target::Object(loc)] if !path.contains('*') => loc.clone(),
            _ => return Err(FaultCode::InvalidParameterName),
        };
        let NodeKind::Table(spec) = &self.model.tree.node(table.node).kind else {
            return Err(FaultCode::InvalidParameterName);
        };
        if !spec.writable {
            return Err(FaultCode::RequestDenied);
        }
        let existing = self.view().instances(table.node, &table.inst);
        if spec.max_instances.is_some_and(|max| existing.len() as u32 >= max) {
            return Err(FaultCode::ResourcesExceeded);
        }
        let highest_default = spec.defaults_for(&table.inst).last().copied().unwrap_or(0);
        let high = self.delta.high_water(table.node, &table.inst).max(highest_default).max(existing.last().copied().unwrap_or(0));
        let number = high.checked_add(1).ok_or(FaultCode::ResourcesExceeded)?;
        let d = self.delta.inner_mut();
        d.added.push(InstanceEntry { table: table.node, parent: table.inst.clone(), number, source: Source::Acs });
        self.delta.set_high_water(table.node, &table.inst, number);
        self.set_parameter_key(parameter_key);
        Ok(number)
    }

    /// DeleteObject: removes an instance and everything under it (TR-069 §A.3.2.7).
    ///
    /// # Errors
    /// 9005 not an existing instance, 9001 the table is not writable.
    pub fn delete_object(&mut self, path: &str, parameter_key: &str) -> Result<(), FaultCode> {
        let inst_loc = match self.view().resolve(path)?.as_slice() {
            [Target::Object(loc)] if !path.contains('*') => loc.clone(),
            _ => return Err(FaultCode::InvalidParameterName),
        };
        let tree = &self.model.tree;
        if !matches!(tree.node(inst_loc.node).kind, NodeKind::Instance) {
            return Err(FaultCode::InvalidParameterName);
        }
        let table = tree.node(inst_loc.node).parent.expect("instance nodes have a table parent");
        if !matches!(&tree.node(table).kind, NodeKind::Table(t) if t.writable) {
            return Err(FaultCode::RequestDenied);
        }
        let (number, parent) = inst_loc.inst.split_last().expect("instance loc has a number");
        let (number, parent): (u32, Inst) = (*number, parent.into());
        let is_under = |loc: &Loc| -> bool {
            loc.inst.len() >= inst_loc.inst.len()
                && loc.inst[..inst_loc.inst.len()] == inst_loc.inst[..]
                && is_descendant(tree, loc.node, inst_loc.node)
        };
        // A table lies in the deleted subtree when its schema node is below the instance node
        // and its parent instance path starts with the deleted instance's: the same numbers
        // under a sibling table (`D.1.B.` beside `A.1.B.`) are another subtree.
        let table_under = |t: NodeId, p: &Inst| -> bool {
            p.len() >= inst_loc.inst.len() && p[..inst_loc.inst.len()] == inst_loc.inst[..] && is_descendant(tree, t, inst_loc.node)
        };
        let d = self.delta.inner_mut();
        d.values.retain(|v| !is_under(&v.loc));
        d.attrs.retain(|a| !is_under(&a.loc));
        d.changed.retain(|l| !is_under(l));
        let before = d.added.len();
        d.added.retain(|e| !(e.table == table && e.parent == parent && e.number == number));
        let was_added = d.added.len() != before;
        // Everything recorded inside the subtree goes with it: its instances, the profile
        // instances it deleted, and its numbering (the deleted number is never reused, so no
        // instance path through it can come back).
        d.added.retain(|e| !table_under(e.table, &e.parent));
        d.deleted.retain(|e| !table_under(e.table, &e.parent));
        d.high_water.retain(|(t, p, _)| !table_under(*t, p));
        if !was_added {
            d.deleted.push(InstanceEntry { table, parent: parent.clone(), number, source: Source::Acs });
        }
        self.delta.set_high_water(table, &parent, number);
        self.set_parameter_key(parameter_key);
        Ok(())
    }

    /// Changes a value locally (the CPE side: a user, a firmware change, the local API).
    ///
    /// # Returns
    /// The notification in force for the parameter, so the caller can start a `4 VALUE CHANGE`
    /// session (active) or let it ride along with the next Inform (passive).
    ///
    /// # Errors
    /// 9005 unknown, 9006/9007 a value that does not fit the type.
    pub fn set_local(&mut self, path: &str, value: &str) -> Result<Notification, FaultCode> {
        let loc = match self.view().resolve(path)?.as_slice() {
            [Target::Param(loc)] => loc.clone(),
            _ => return Err(FaultCode::InvalidParameterName),
        };
        let spec = self.model.tree.node(loc.node).param().expect("resolved a param");
        let canonical = check_value(spec.ty, spec.constraint.as_deref(), None, value).map_err(|e| match e {
            ValueError::WrongType => FaultCode::InvalidParameterType,
            ValueError::BadValue => FaultCode::InvalidParameterValue,
        })?;
        let notification = self.view().notification(&loc);
        self.delta.set_value(loc.clone(), &canonical, Source::Cpe);
        if notification != Notification::Off {
            self.delta.mark_changed(loc);
        }
        Ok(notification)
    }
}

fn is_descendant(tree: &ParamTree, node: NodeId, ancestor: NodeId) -> bool {
    let mut cur = Some(node);
    while let Some(n) = cur {
        if n == ancestor {
            return true;
        }
        cur = tree.node(n).parent;
    }
    false
}
