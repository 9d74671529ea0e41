//! The shared parameter tree: one per profile, built once, read by every CPE.
//!
//! Nodes are *schema* nodes: a multi-instance table `Device.NAT.PortMapping.` has one `{i}` child
//! standing for all its instances, so `Device.NAT.PortMapping.3.Enable` is the node
//! `Device.NAT.PortMapping.{i}.Enable` at instance path `[3]` (a [`Loc`]). The profile's own
//! instances are recorded per table as default instance numbers, and their values as overrides
//! keyed by `Loc`. Each CPE keeps only a delta against this (see `model::delta`).
//!
//! Built by [`TreeBuilder`] from [`ParamDecl`]/[`ObjectDecl`] (the `config` module turns YAML and
//! CSV into those); does no I/O.

use std::collections::HashMap;

use smallvec::SmallVec;

use super::identity::{fnv1a, Template, TemplateError};
use super::types::{Constraint, ParamType};

/// The schema path of a concrete path: every instance number becomes `{i}`
/// (`Device.IP.Interface.1.IPv4Address.2.IPAddress` → `Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress`).
/// Other segments, the empty one after a trailing dot included, are kept.
pub fn schema_of(concrete: &str) -> String {
    concrete
        .split('.')
        .map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{i}" } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

/// Index of a schema node in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct NodeId(pub u32);

/// Instance numbers, one per `{i}` on the way from the root to a node.
pub type Inst = SmallVec<[u32; 3]>;

/// A concrete place in a CPE's data model: a schema node and its instance numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Loc {
    pub node: NodeId,
    pub inst: Inst,
}

impl Loc {
    /// A location with no instance numbers.
    pub fn plain(node: NodeId) -> Loc {
        Loc { node, inst: Inst::new() }
    }
}

/// What a schema node is.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A single-instance object (`Device.DeviceInfo.`).
    Object,
    /// A multi-instance table (`Device.NAT.PortMapping.`); its only child is the `{i}` node.
    Table(TableSpec),
    /// The `{i}` node standing for every instance of its parent table.
    Instance,
    /// A leaf parameter.
    Param(Box<ParamSpec>),
}

/// A table's settings and its profile-defined instances.
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    /// Whether the ACS may AddObject/DeleteObject here.
    pub writable: bool,
    /// AddObject beyond this many instances faults 9004.
    pub max_instances: Option<u32>,
    /// The profile's instance numbers, per parent instance path (sorted, unique).
    pub defaults: Vec<(Inst, Vec<u32>)>,
}

impl TableSpec {
    /// The profile-defined instances under `parent`.
    pub fn defaults_for(&self, parent: &[u32]) -> &[u32] {
        self.defaults.iter().find(|(p, _)| p.as_slice() == parent).map(|(_, v)| v.as_slice()).unwrap_or(&[])
    }
}

/// Notification attribute values (TR-069 §A.3.2.4): 0 off, 1 passive, 2 active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Notification {
    #[default]
    Off = 0,
    Passive = 1,
    Active = 2,
}

impl Notification {
    pub fn from_u8(v: u8) -> Option<Notification> {
        Some(match v {
            0 => Notification::Off,
            1 => Notification::Passive,
            2 => Notification::Active,
            _ => return None,
        })
    }
}

/// How a parameter treats requests for active notification (BBF `activeNotify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActiveNotify {
    /// Any notification may be set.
    #[default]
    Normal,
    /// Active notification is refused with 9009 (fast-changing values such as UpTime).
    CanDeny,
    /// Always active whatever the ACS asks (SoftwareVersion, ProvisioningCode).
    Forced,
}

/// Where a parameter's value comes from when nobody has set it.
#[derive(Debug, Clone)]
pub enum ValueSource {
    /// The same text for every CPE (kept raw and XML-escaped so rendering is a memcpy).
    Static { raw: Box<str>, escaped: Box<str> },
    /// Stamped per CPE from its index (`{serial}`, `{secret:12}`, …).
    Template(Template),
    /// Computed at read time.
    Dynamic(Dynamic),
}

impl ValueSource {
    /// A static value.
    pub fn fixed(raw: &str) -> ValueSource {
        ValueSource::Static { raw: raw.into(), escaped: crate::cwmp::xml::escape_to_string(raw).into() }
    }
}

/// Values computed from the clock and the CPE's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    /// Seconds since the CPE (re)booted.
    Uptime,
    /// A counter that grows by this much per second of uptime (bytes, packets, …).
    Counter { per_second: u64 },
    /// The CPE's current time as a dateTime.
    CurrentTime,
    /// The number of instances of a table (`…NumberOfEntries`).
    EntryCount(NodeId),
    /// A random walk, a daily sine or a bursty counter (`model::generators`).
    Generated(super::generators::Generator),
}

/// Everything the tree knows about one parameter.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub ty: ParamType,
    pub writable: bool,
    pub default: ValueSource,
    pub notification: Notification,
    pub active_notify: ActiveNotify,
    /// Sent in every Inform (BBF `forcedInform`).
    pub forced_inform: bool,
    /// Write-only (passwords, keys): reads back empty to the ACS.
    pub secret: bool,
    pub constraint: Option<Box<Constraint>>,
}

/// One node of the tree.
#[derive(Debug, Clone)]
pub struct Node {
    /// The path segment: `DeviceInfo`, `PortMapping`, or `{i}` for instance nodes.
    pub name: Box<str>,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    pub kind: NodeKind,
}

impl Node {
    pub fn param(&self) -> Option<&ParamSpec> {
        match &self.kind {
            NodeKind::Param(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        !matches!(self.kind, NodeKind::Param(_))
    }
}

/// The whole shared tree.
#[derive(Debug, Clone)]
pub struct ParamTree {
    nodes: Vec<Node>,
    /// Values of profile-defined instances that differ from the schema default.
    overrides: HashMap<Loc, ValueSource>,
    /// Schema path (`Device.NAT.PortMapping.{i}.Enable`, objects with a trailing `.`) → node.
    by_schema_path: HashMap<Box<str>, NodeId>,
}

impl ParamTree {
    /// The root object (`Device.` or `InternetGatewayDevice.`).
    pub const ROOT: NodeId = NodeId(0);

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The root object's name without the dot (`Device`).
    pub fn root_name(&self) -> &str {
        &self.node(Self::ROOT).name
    }

    /// The child of `parent` named `name`. Children lists are short; a scan beats hashing here.
    pub fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        self.node(parent).children.iter().copied().find(|&c| &*self.node(c).name == name)
    }

    /// Looks a node up by schema path (`{i}` for instances). Not for the hot path.
    pub fn by_schema_path(&self, path: &str) -> Option<NodeId> {
        self.by_schema_path.get(path).copied()
    }

    /// Replaces a parameter's default value (start-up only: e.g. the Connection Request URL the
    /// listener publishes, as a per-CPE template).
    /// Marks a parameter secret (write-only: read back empty, never logged).
    pub fn set_secret(&mut self, node: NodeId) {
        if let NodeKind::Param(spec) = &mut self.nodes[node.0 as usize].kind {
            spec.secret = true;
        }
    }

    /// Sets a parameter's notification as if the ACS had set it for every CPE with
    /// SetParameterAttributes (a scenario's `notify_active`).
    pub fn set_notification(&mut self, node: NodeId, notification: Notification) {
        if let NodeKind::Param(spec) = &mut self.nodes[node.0 as usize].kind {
            spec.notification = notification;
        }
    }

    pub fn set_default(&mut self, node: NodeId, source: ValueSource) {
        if let NodeKind::Param(spec) = &mut self.nodes[node.0 as usize].kind {
            spec.default = source;
        }
    }

    /// The value a profile instance overrides, if any.
    pub fn override_for(&self, loc: &Loc) -> Option<&ValueSource> {
        if loc.inst.is_empty() {
            return None;
        }
        self.overrides.get(loc)
    }

    /// Number of `{i}` nodes from the root down to `id` inclusive.
    pub fn instance_depth(&self, id: NodeId) -> usize {
        let mut depth = 0;
        let mut cur = Some(id);
        while let Some(n) = cur {
            let node = self.node(n);
            if matches!(node.kind, NodeKind::Instance) {
                depth += 1;
            }
            cur = node.parent;
        }
        depth
    }

    /// Every node id in creation order (parents before children).
    pub fn ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    /// Writes the concrete path of `loc` (objects end with `.`).
    pub fn write_path(&self, loc: &Loc, out: &mut impl Extend<u8>) {
        let mut chain: SmallVec<[NodeId; 16]> = SmallVec::new();
        let mut cur = Some(loc.node);
        while let Some(n) = cur {
            chain.push(n);
            cur = self.node(n).parent;
        }
        let mut inst = loc.inst.iter();
        let mut num = itoa::Buffer::new();
        for (i, &n) in chain.iter().rev().enumerate() {
            if i > 0 {
                out.extend([b'.']);
            }
            let node = self.node(n);
            if matches!(node.kind, NodeKind::Instance) {
                let v = inst.next().copied().unwrap_or(0);
                out.extend(num.format(v).bytes());
            } else {
                out.extend(node.name.bytes());
            }
        }
        if self.node(loc.node).is_object() {
            out.extend([b'.']);
        }
    }

    /// The concrete path of `loc` as a `String` (logs, faults, tests).
    pub fn path_string(&self, loc: &Loc) -> String {
        let mut v = Vec::new();
        self.write_path(loc, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }
}

/// One parameter as a profile declares it (YAML entry or CSV row), before the tree is built.
#[derive(Debug, Clone, Default)]
pub struct ParamDecl {
    /// Full path; instance segments are numbers (`SSID.1.SSID`) or `{i}` (schema for new instances).
    pub path: String,
    pub ty: Option<ParamType>,
    pub writable: Option<bool>,
    /// The value text, possibly with identity placeholders.
    pub value: Option<String>,
    pub dynamic: Option<DynamicDecl>,
    pub notification: Option<Notification>,
    pub active_notify: Option<ActiveNotify>,
    pub forced_inform: Option<bool>,
    pub secret: Option<bool>,
    pub constraint: Option<Constraint>,
    /// The value is what a real device reported (an imported data model): kept as it is even
    /// when it does not fit the type (an empty dateTime, a boolean `2`), as that is the answer
    /// the device gives. Values the ACS or a profile sets are still checked.
    pub reported: bool,
}

/// A dynamic value as declared (table paths not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicDecl {
    Uptime,
    Counter { per_second: u64 },
    CurrentTime,
    EntryCount { table: String },
    Generated(super::generators::Generator),
}

/// One object as a profile declares it.
#[derive(Debug, Clone, Default)]
pub struct ObjectDecl {
    /// The object path ending with `.`; for a table, `Device.NAT.PortMapping.`.
    pub path: String,
    /// For tables: whether the ACS may add and delete instances.
    pub writable: Option<bool>,
    pub max_instances: Option<u32>,
}

/// Why a declaration does not fit into the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("path `{0}` is not a valid parameter path (expected Root.Object.Name, no empty segments)")]
    BadPath(String),
    #[error("path `{path}` does not start with the profile's root `{root}.`")]
    WrongRoot { path: String, root: String },
    #[error("`{0}` is declared both as an object and as a parameter")]
    ObjectParamClash(String),
    #[error("`{path}` conflicts with an earlier declaration of the same parameter: {what}")]
    Conflict { path: String, what: &'static str },
    #[error("`{path}`: {source}")]
    Template { path: String, source: TemplateError },
    #[error("`{path}`: value `{value}` {reason}")]
    BadDefault { path: String, value: String, reason: String },
    #[error("`{path}`: entry count refers to `{table}`, which is not a table of this profile")]
    NotATable { path: String, table: String },
    #[error("`{0}` is forced into every Inform but lies under a table the ACS may delete from")]
    ForcedInDeletable(String),
    #[error("the profile declares no parameters")]
    Empty,
}

impl TreeError {
    /// The message without the path, for a caller whose own message already names it (a profile
    /// key, a CSV row): the path is said once.
    pub fn reason(&self) -> String {
        match self {
            TreeError::Conflict { what, .. } => format!("conflicts with an earlier declaration of the same parameter: {what}"),
            TreeError::Template { source, .. } => source.to_string(),
            TreeError::BadDefault { value, reason, .. } => format!("value `{value}` {reason}"),
            TreeError::NotATable { table, .. } => format!("entry count refers to `{table}`, which is not a table of this profile"),
            TreeError::ObjectParamClash(_) => "is declared both as an object and as a parameter".into(),
            other => other.to_string(),
        }
    }
}

/// Builds a [`ParamTree`] from declarations.
pub struct TreeBuilder {
    root: String,
    nodes: Vec<Node>,
    overrides: HashMap<Loc, ValueSource>,
    by_schema_path: HashMap<Box<str>, NodeId>,
    /// Entry counts to resolve once every table exists: (param, table path).
    pending_counts: Vec<(NodeId, String, String)>,
}

enum Seg<'a> {
    Name(&'a str),
    Number(u32),
    Placeholder,
}

fn segments(path: &str) -> Option<Vec<Seg<'_>>> {
    let body = path.strip_suffix('.').unwrap_or(path);
    let mut out = Vec::new();
    for s in body.split('.') {
        if s.is_empty() {
            return None;
        }
        out.push(if s == "{i}" || s == "*" {
            Seg::Placeholder
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            Seg::Number(s.parse().ok().filter(|&n| n > 0)?)
        } else if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Seg::Name(s)
        } else {
            return None;
        });
    }
    Some(out)
}

impl TreeBuilder {
    /// Starts a tree whose root object is `root` (`Device` or `InternetGatewayDevice`).
    pub fn new(root: &str) -> TreeBuilder {
        let root = root.trim_end_matches('.').to_string();
        let mut b = TreeBuilder {
            root: root.clone(),
            nodes: Vec::new(),
            overrides: HashMap::new(),
            by_schema_path: HashMap::new(),
            pending_counts: Vec::new(),
        };
        b.nodes.push(Node { name: root.as_str().into(), parent: None, children: Vec::new(), kind: NodeKind::Object });
        b.by_schema_path.insert(format!("{root}.").into(), ParamTree::ROOT);
        b
    }

    fn schema_path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(id);
        while let Some(n) = cur {
            parts.push(&*self.nodes[n.0 as usize].name);
            cur = self.nodes[n.0 as usize].parent;
        }
        parts.reverse();
        let mut s = parts.join(".");
        if !matches!(self.nodes[id.0 as usize].kind, NodeKind::Param(_)) {
            s.push('.');
        }
        s
    }

    fn add_child(&mut self, parent: NodeId, name: &str, kind: NodeKind) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node { name: name.into(), parent: Some(parent), children: Vec::new(), kind });
        self.nodes[parent.0 as usize].children.push(id);
        let path = self.schema_path(id);
        self.by_schema_path.insert(path.into(), id);
        id
    }

    fn find_child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        self.nodes[parent.0 as usize].children.iter().copied().find(|&c| &*self.nodes[c.0 as usize].name == name)
    }

    /// Walks/creates the object chain for `segs`, returning the node reached and the instance path.
    fn object_chain(&mut self, path: &str, segs: &[Seg<'_>]) -> Result<(NodeId, Inst), TreeError> {
        let mut cur = ParamTree::ROOT;
        let mut inst = Inst::new();
        for seg in segs {
            match seg {
                Seg::Name(name) => {
                    if matches!(self.nodes[cur.0 as usize].kind, NodeKind::Table(_)) {
                        return Err(TreeError::BadPath(path.to_string()));
                    }
                    cur = match self.find_child(cur, name) {
                        Some(c) if !self.nodes[c.0 as usize].is_object() => return Err(TreeError::ObjectParamClash(path.to_string())),
                        Some(c) => c,
                        None => self.add_child(cur, name, NodeKind::Object),
                    };
                }
                Seg::Number(_) | Seg::Placeholder => {
                    // The object holding instances is a table.
                    let node = &mut self.nodes[cur.0 as usize];
                    match node.kind {
                        NodeKind::Object if cur != ParamTree::ROOT && node.children.is_empty() => {
                            node.kind = NodeKind::Table(TableSpec::default());
                        }
                        NodeKind::Table(_) => {}
                        _ => return Err(TreeError::BadPath(path.to_string())),
                    }
                    if let (Seg::Number(n), NodeKind::Table(t)) = (seg, &mut node.kind) {
                        match t.defaults.iter_mut().find(|(p, _)| *p == inst) {
                            Some((_, list)) => {
                                if let Err(pos) = list.binary_search(n) {
                                    list.insert(pos, *n);
                                }
                            }
                            None => t.defaults.push((inst.clone(), vec![*n])),
                        }
                    }
                    cur = match self.find_child(cur, "{i}") {
                        Some(c) => c,
                        None => self.add_child(cur, "{i}", NodeKind::Instance),
                    };
                    if let Seg::Number(n) = seg {
                        inst.push(*n);
                    } else {
                        inst.push(0);
                    }
                }
            }
        }
        Ok((cur, inst))
    }

    fn split_root<'p>(&self, path: &'p str) -> Result<Vec<Seg<'p>>, TreeError> {
        let segs = segments(path).ok_or_else(|| TreeError::BadPath(path.to_string()))?;
        match segs.first() {
            Some(Seg::Name(r)) if *r == self.root => Ok(segs.into_iter().skip(1).collect()),
            _ => Err(TreeError::WrongRoot { path: path.to_string(), root: self.root.clone() }),
        }
    }

    /// Adds an object declaration (a table's writability, or an object with no parameters yet).
    pub fn object(&mut self, decl: &ObjectDecl) -> Result<(), TreeError> {
        let segs = self.split_root(&decl.path)?;
        let (id, _) = self.object_chain(&decl.path, &segs)?;
        let node = &mut self.nodes[id.0 as usize];
        if decl.writable.is_some() || decl.max_instances.is_some() {
            if let NodeKind::Object = node.kind {
                if node.children.is_empty() {
                    node.kind = NodeKind::Table(TableSpec::default());
                }
            }
            let NodeKind::Table(t) = &mut node.kind else {
                return Err(TreeError::Conflict { path: decl.path.clone(), what: "writable/max_instances only apply to tables" });
            };
            if let Some(w) = decl.writable {
                t.writable = w;
            }
            if decl.max_instances.is_some() {
                t.max_instances = decl.max_instances;
            }
        }
        Ok(())
    }

    /// Adds a parameter declaration. The first declaration of a schema node fixes its type and
    /// flags; later ones (other instances) may only repeat them and give instance values.
    pub fn param(&mut self, decl: &ParamDecl) -> Result<(), TreeError> {
        let path = decl.path.as_str();
        if path.ends_with('.') {
            return self.object(&ObjectDecl { path: decl.path.clone(), writable: decl.writable, max_instances: None });
        }
        let segs = self.split_root(path)?;
        let Some((Seg::Name(leaf), objs)) = segs.split_last() else {
            return Err(TreeError::BadPath(path.to_string()));
        };
        let (parent, inst) = self.object_chain(path, objs)?;
        if matches!(self.nodes[parent.0 as usize].kind, NodeKind::Table(_)) {
            return Err(TreeError::BadPath(path.to_string()));
        }
        let concrete = !inst.is_empty() && !inst.contains(&0);
        let salt = fnv1a(path);
        let source = self.value_source(decl, salt)?;
        let existing = self.find_child(parent, leaf);
        let id = match existing {
            Some(id) => {
                let node = &self.nodes[id.0 as usize];
                let NodeKind::Param(spec) = &node.kind else {
                    return Err(TreeError::ObjectParamClash(path.to_string()));
                };
                // A real device may report one instance's parameter with another type or
                // writability than the others: the first declaration sets the schema's.
                if decl.ty.is_some_and(|t| t != spec.ty) && !decl.reported {
                    return Err(TreeError::Conflict { path: path.to_string(), what: "a different type" });
                }
                if decl.writable.is_some_and(|w| w != spec.writable) && !decl.reported {
                    return Err(TreeError::Conflict { path: path.to_string(), what: "a different writable flag" });
                }
                // A later declaration (a profile's YAML over an imported device) may refine the
                // attributes; its value is then checked against them.
                if let NodeKind::Param(spec) = &mut self.nodes[id.0 as usize].kind {
                    if let Some(c) = &decl.constraint {
                        spec.constraint = Some(Box::new(c.clone()));
                    }
                    if let Some(n) = decl.notification {
                        spec.notification = n;
                    }
                    if let Some(a) = decl.active_notify {
                        spec.active_notify = a;
                    }
                    if let Some(f) = decl.forced_inform {
                        spec.forced_inform = f;
                    }
                    if let Some(s) = decl.secret {
                        spec.secret = s;
                    }
                }
                id
            }
            None => {
                let ty = decl.ty.unwrap_or(ParamType::String);
                let default = match (&source, concrete) {
                    (Some(s), false) | (Some(s @ ValueSource::Dynamic(_)), true) => s.clone(),
                    _ => ValueSource::fixed(ty.zero_value()),
                };
                let spec = ParamSpec {
                    ty,
                    writable: decl.writable.unwrap_or(false),
                    default,
                    notification: decl.notification.unwrap_or_default(),
                    active_notify: decl.active_notify.unwrap_or_default(),
                    forced_inform: decl.forced_inform.unwrap_or(false),
                    secret: decl.secret.unwrap_or(false),
                    constraint: decl.constraint.clone().map(Box::new),
                };
                self.add_child(parent, leaf, NodeKind::Param(Box::new(spec)))
            }
        };
        if let Some(src) = source {
            if let ValueSource::Static { raw, .. } = &src {
                if !decl.reported {
                    self.check_default(id, path, raw)?;
                }
            }
            // Dynamic values are computed per instance, so they always live at schema level.
            let dynamic = matches!(src, ValueSource::Dynamic(_));
            if concrete && !dynamic {
                self.overrides.insert(Loc { node: id, inst }, src);
            } else if existing.is_some() || dynamic {
                let NodeKind::Param(spec) = &mut self.nodes[id.0 as usize].kind else { unreachable!() };
                spec.default = src;
            }
        }
        if let Some(DynamicDecl::EntryCount { table }) = &decl.dynamic {
            self.pending_counts.push((id, path.to_string(), table.clone()));
        }
        Ok(())
    }

    fn value_source(&self, decl: &ParamDecl, salt: u64) -> Result<Option<ValueSource>, TreeError> {
        if let Some(d) = &decl.dynamic {
            return Ok(Some(ValueSource::Dynamic(match d {
                DynamicDecl::Uptime => Dynamic::Uptime,
                DynamicDecl::Counter { per_second } => Dynamic::Counter { per_second: *per_second },
                DynamicDecl::CurrentTime => Dynamic::CurrentTime,
                DynamicDecl::Generated(g) => Dynamic::Generated(g.salted(salt as u32)),
                // Resolved in `finish`, once every table exists.
                DynamicDecl::EntryCount { .. } => Dynamic::EntryCount(ParamTree::ROOT),
            })));
        }
        let Some(text) = &decl.value else { return Ok(None) };
        let t = Template::compile(text, salt).map_err(|source| TreeError::Template { path: decl.path.clone(), source })?;
        Ok(Some(match t.literal() {
            Some(lit) => ValueSource::fixed(lit),
            None => ValueSource::Template(t),
        }))
    }

    fn check_default(&self, id: NodeId, path: &str, raw: &str) -> Result<(), TreeError> {
        let NodeKind::Param(spec) = &self.nodes[id.0 as usize].kind else { return Ok(()) };
        match super::types::value_problem(spec.ty, spec.constraint.as_deref(), raw) {
            None => Ok(()),
            Some(reason) => Err(TreeError::BadDefault { path: path.to_string(), value: raw.to_string(), reason }),
        }
    }

    /// Resolves cross-references and checks whole-tree rules.
    ///
    /// # Errors
    /// An entry count naming no table, a forced-inform parameter under a deletable table, or an
    /// empty tree.
    pub fn finish(mut self) -> Result<ParamTree, TreeError> {
        if self.nodes.len() <= 1 {
            return Err(TreeError::Empty);
        }
        for (id, path, table) in std::mem::take(&mut self.pending_counts) {
            // Entry counts may name a table inside a numbered instance: look it up by schema path.
            let schema = schema_of(table.trim_end_matches('.')) + ".";
            let found =
                self.by_schema_path.get(schema.as_str()).copied().filter(|t| matches!(self.nodes[t.0 as usize].kind, NodeKind::Table(_)));
            let Some(t) = found else {
                return Err(TreeError::NotATable { path, table });
            };
            if let NodeKind::Param(spec) = &mut self.nodes[id.0 as usize].kind {
                spec.default = ValueSource::Dynamic(Dynamic::EntryCount(t));
                if spec.ty == ParamType::String {
                    spec.ty = ParamType::UnsignedInt;
                }
            }
        }
        for i in 0..self.nodes.len() {
            let id = NodeId(i as u32);
            let forced = matches!(&self.nodes[i].kind, NodeKind::Param(p) if p.forced_inform);
            if forced && self.under_writable_table(id) {
                return Err(TreeError::ForcedInDeletable(self.schema_path(id)));
            }
        }
        Ok(ParamTree { nodes: self.nodes, overrides: self.overrides, by_schema_path: self.by_schema_path })
    }

    fn under_writable_table(&self, id: NodeId) -> bool {
        let mut cur = self.nodes[id.0 as usize].parent;
        while let Some(n) = cur {
            if let NodeKind::Table(t) = &self.nodes[n.0 as usize].kind {
                if t.writable {
                    return true;
                }
            }
            cur = self.nodes[n.0 as usize].parent;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(path: &str, value: &str) -> ParamDecl {
        ParamDecl { path: path.into(), value: Some(value.into()), ..Default::default() }
    }

    #[test]
    fn builds_tables_from_numbered_paths() {
        let mut b = TreeBuilder::new("Device");
        b.param(&decl("Device.WiFi.SSID.1.SSID", "home")).unwrap();
        b.param(&decl("Device.WiFi.SSID.2.SSID", "guest")).unwrap();
        b.param(&decl("Device.DeviceInfo.Manufacturer", "Acme")).unwrap();
        let t = b.finish().unwrap();
        let table = t.by_schema_path("Device.WiFi.SSID.").unwrap();
        let NodeKind::Table(spec) = &t.node(table).kind else { panic!("not a table") };
        assert_eq!(spec.defaults_for(&[]), &[1, 2]);
        let ssid = t.by_schema_path("Device.WiFi.SSID.{i}.SSID").unwrap();
        let loc = Loc { node: ssid, inst: smallvec::smallvec![2] };
        assert_eq!(t.path_string(&loc), "Device.WiFi.SSID.2.SSID");
        assert!(matches!(t.override_for(&loc), Some(ValueSource::Static { raw, .. }) if &**raw == "guest"));
    }

    #[test]
    fn rejects_bad_declarations() {
        let mut b = TreeBuilder::new("Device");
        assert!(matches!(b.param(&decl("InternetGatewayDevice.X", "1")), Err(TreeError::WrongRoot { .. })));
        assert!(matches!(b.param(&decl("Device..X", "1")), Err(TreeError::BadPath(_))));
        b.param(&ParamDecl { path: "Device.A.B".into(), ty: Some(ParamType::Boolean), ..Default::default() }).unwrap();
        assert!(matches!(b.param(&decl("Device.A.B.C", "1")), Err(TreeError::ObjectParamClash(_))));
        let bad = ParamDecl { path: "Device.A.N".into(), ty: Some(ParamType::UnsignedInt), value: Some("x".into()), ..Default::default() };
        assert!(matches!(b.param(&bad), Err(TreeError::BadDefault { .. })));
    }
}
