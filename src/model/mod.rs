//! The data model: a profile's shared parameter tree plus one small delta per CPE.
//!
//! - [`tree`]: the schema tree built once per profile and shared read-only.
//! - [`delta`]: what one CPE changed (values, instances, attributes).
//! - [`device`]: a CPE's view (tree + delta + identity + clock) and the RPC semantics on it
//!   (GetParameterValues, SetParameterValues, AddObject, …).
//! - [`identity`]: per-CPE stamping of serials, MACs and secrets from the CPE index.
//! - [`types`]: parameter types and value checks.
//! - [`diagnostics`]: the simulated network TR-143 diagnostics measure (profile settings).
//! - [`generators`]: random walks, daily sines and bursty counters from seed and time.
//! - [`firmware`]: the SoftwareVersion a downloaded firmware image installs.
//!
//! No I/O and no clock: callers pass `now`. Built from declarations by `config`.

pub mod delta;
pub mod device;
pub mod diagnostics;
pub mod firmware;
pub mod generators;
pub mod hooks;
pub mod identity;
pub mod tree;
pub mod types;

pub use delta::{Delta, Source};
pub use device::{ChangeSet, Device, DeviceMut, ReadFor, Target};
pub use identity::{DeviceId, Identity, Template};
pub use tree::{Loc, NodeId, NodeKind, Notification, ParamTree};
pub use types::ParamType;

use tree::{Inst, ValueSource};

/// The well-known parameters the simulator itself reads or writes, resolved once.
#[derive(Debug, Clone, Default)]
pub struct WellKnown {
    pub manufacturer: Option<NodeId>,
    pub oui: Option<NodeId>,
    pub product_class: Option<NodeId>,
    pub serial_number: Option<NodeId>,
    pub software_version: Option<NodeId>,
    pub acs_url: Option<NodeId>,
    pub acs_username: Option<NodeId>,
    pub acs_password: Option<NodeId>,
    pub periodic_inform_enable: Option<NodeId>,
    pub periodic_inform_interval: Option<NodeId>,
    pub periodic_inform_time: Option<NodeId>,
    pub parameter_key: Option<NodeId>,
    pub connection_request_url: Option<NodeId>,
    pub connection_request_username: Option<NodeId>,
    pub connection_request_password: Option<NodeId>,
    pub retry_minimum_wait_interval: Option<NodeId>,
    pub retry_interval_multiplier: Option<NodeId>,
    pub instance_wildcards_supported: Option<NodeId>,
    pub default_active_notification_throttle: Option<NodeId>,
}

impl WellKnown {
    fn resolve(tree: &ParamTree) -> WellKnown {
        let root = tree.root_name().to_string();
        let at = |rel: &str| tree.by_schema_path(&format!("{root}.{rel}"));
        WellKnown {
            manufacturer: at("DeviceInfo.Manufacturer"),
            oui: at("DeviceInfo.ManufacturerOUI"),
            product_class: at("DeviceInfo.ProductClass"),
            serial_number: at("DeviceInfo.SerialNumber"),
            software_version: at("DeviceInfo.SoftwareVersion"),
            acs_url: at("ManagementServer.URL"),
            acs_username: at("ManagementServer.Username"),
            acs_password: at("ManagementServer.Password"),
            periodic_inform_enable: at("ManagementServer.PeriodicInformEnable"),
            periodic_inform_interval: at("ManagementServer.PeriodicInformInterval"),
            periodic_inform_time: at("ManagementServer.PeriodicInformTime"),
            parameter_key: at("ManagementServer.ParameterKey"),
            connection_request_url: at("ManagementServer.ConnectionRequestURL"),
            connection_request_username: at("ManagementServer.ConnectionRequestUsername"),
            connection_request_password: at("ManagementServer.ConnectionRequestPassword"),
            retry_minimum_wait_interval: at("ManagementServer.CWMPRetryMinimumWaitInterval"),
            retry_interval_multiplier: at("ManagementServer.CWMPRetryIntervalMultiplier"),
            instance_wildcards_supported: at("ManagementServer.InstanceWildcardsSupported"),
            default_active_notification_throttle: at("ManagementServer.DefaultActiveNotificationThrottle"),
        }
    }
}

/// Why a tree cannot serve as a device model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("the profile has no `{0}`: an Inform's DeviceId needs it (GenieACS rejects Informs without OUI and SerialNumber)")]
    MissingDeviceInfo(&'static str),
    #[error("identity.oui `{0}` must be exactly six hex digits")]
    BadOui(String),
    #[error("identity.serial: {0}")]
    SerialTemplate(String),
}

/// A compiled profile: everything CPEs of one kind share.
#[derive(Debug, Clone)]
pub struct Model {
    /// The profile's name (for logs and reports).
    pub name: String,
    pub tree: ParamTree,
    pub identity: Identity,
    /// The cwmp namespace URN the CPE speaks (`urn:dslforum-org:cwmp-1-0` by default).
    pub cwmp_urn: Box<str>,
    pub well_known: WellKnown,
    /// Parameters sent in every Inform, in tree order.
    pub forced: Vec<Loc>,
    /// Parameters whose values a generator computes and that can notify actively (not
    /// `active_notify: can_deny`), at the profile's instances (tree order): `cpe::notify` plans
    /// their value changes.
    pub generated: Vec<Loc>,
    /// Ask the ACS for its methods (CPE-originated GetRPCMethods) after a BOOTSTRAP Inform.
    pub get_rpc_methods_on_bootstrap: bool,
    /// How Connection Requests to these CPEs authenticate.
    pub connection_request_auth: ConnRequestAuth,
    /// What these CPEs do beyond the standard (library users; the CLI uses the standard).
    pub hooks: std::sync::Arc<dyn crate::model::hooks::CpeHooks>,
    /// The run's ACS credentials (`--acs-username/--acs-password`) are published as
    /// ManagementServer.Username/Password's defaults, so every CPE has credentials.
    pub acs_credentials_from_run: bool,
    /// What a downloaded "1 Firmware Upgrade Image" installs (the profile's `firmware:`).
    pub firmware: firmware::FirmwareRule,
    /// The simulated network TR-143 diagnostics measure (the profile's `diagnostics:`).
    pub diagnostics: diagnostics::DiagnosticsSettings,
}

/// How a CPE checks an ACS's Connection Request (PROTOCOL.md §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnRequestAuth {
    /// HTTP Digest (MD5, qop=auth) with ConnectionRequestUsername/Password: the standard.
    #[default]
    Digest,
    /// HTTP Basic with the same credentials.
    Basic,
    /// No authentication (easycwmp's behaviour without credentials).
    None,
}

impl Model {
    /// Bundles a tree with its identity, checks the Inform's needs and resolves well-known nodes.
    ///
    /// # Errors
    /// [`ModelError`] when DeviceInfo lacks what an Inform's DeviceId needs or the OUI is bad.
    pub fn new(name: &str, tree: ParamTree, identity: Identity, cwmp_urn: &str) -> Result<Model, ModelError> {
        if identity.oui.len() != 6 || !identity.oui.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ModelError::BadOui(identity.oui.to_string()));
        }
        if identity.serial.uses_serial() {
            return Err(ModelError::SerialTemplate("`{serial}` cannot refer to itself".into()));
        }
        let mut tree = tree;
        let well_known = WellKnown::resolve(&tree);
        // The passwords the simulator uses as credentials are secret whatever the profile says:
        // an ACS never reads them back, and no log shows them.
        for node in [well_known.acs_password, well_known.connection_request_password].into_iter().flatten() {
            tree.set_secret(node);
        }
        let need = [
            (well_known.manufacturer, "DeviceInfo.Manufacturer"),
            (well_known.oui, "DeviceInfo.ManufacturerOUI"),
            (well_known.product_class, "DeviceInfo.ProductClass"),
            (well_known.serial_number, "DeviceInfo.SerialNumber"),
        ];
        for (node, what) in need {
            if node.is_none() {
                return Err(ModelError::MissingDeviceInfo(what));
            }
        }
        let mut forced = Vec::new();
        for id in tree.ids() {
            if tree.node(id).param().is_some_and(|p| p.forced_inform) {
                default_instances(&tree, id, &mut |inst| forced.push(Loc { node: id, inst }));
            }
        }
        let mut generated = Vec::new();
        for id in tree.ids() {
            // Only those that can ever notify actively (active by default, or an ACS may make
            // them so): the rest never start a session, so a fleet pays nothing for them.
            let notifies = |p: &tree::ParamSpec| p.notification == Notification::Active || p.active_notify != tree::ActiveNotify::CanDeny;
            if tree.node(id).param().is_some_and(|p| matches!(p.default, ValueSource::Dynamic(tree::Dynamic::Generated(_))) && notifies(p))
            {
                default_instances(&tree, id, &mut |inst| generated.push(Loc { node: id, inst }));
            }
        }
        Ok(Model {
            name: name.to_string(),
            tree,
            identity,
            cwmp_urn: cwmp_urn.into(),
            well_known,
            forced,
            generated,
            get_rpc_methods_on_bootstrap: false,
            connection_request_auth: ConnRequestAuth::Digest,
            hooks: std::sync::Arc::new(crate::model::hooks::StandardCpe),
            acs_credentials_from_run: false,
            firmware: firmware::FirmwareRule::default(),
            diagnostics: diagnostics::DiagnosticsSettings::default(),
        })
    }

    /// Attaches extension hooks, adding their Inform parameters to the forced ones. Build the
    /// Inform template after this.
    ///
    /// # Errors
    /// An Inform parameter the profile does not have.
    pub fn with_hooks(mut self, hooks: std::sync::Arc<dyn crate::model::hooks::CpeHooks>) -> Result<Model, String> {
        let empty = Delta::default();
        let dev = self.device(DeviceId(0), &empty, crate::time::UnixMillis(0), crate::time::UnixMillis(0));
        let mut extra = Vec::new();
        for name in hooks.inform_parameters() {
            match dev.resolve(&name).as_deref() {
                Ok([device::Target::Param(loc)]) => extra.push(loc.clone()),
                _ => return Err(format!("hook Inform parameter `{name}` is not a parameter of profile `{}`", self.name)),
            }
        }
        for loc in extra {
            if !self.forced.contains(&loc) {
                self.forced.push(loc);
            }
        }
        self.hooks = hooks;
        Ok(self)
    }

    /// A read-only view of CPE `id` with `delta`, booted at `boot_at`, at time `now`.
    pub fn device<'a>(
        &'a self,
        id: DeviceId,
        delta: &'a Delta,
        boot_at: crate::time::UnixMillis,
        now: crate::time::UnixMillis,
    ) -> Device<'a> {
        Device { model: self, id, delta, boot_at, now }
    }

    /// Makes `url` (the URL the run informs) the default of ManagementServer.URL, so that every
    /// CPE reads back the URL in use at no per-CPE cost; a CPE the ACS moved keeps its own value
    /// in its delta. Returns whether the default changed (start-up only).
    pub fn publish_acs_url(&mut self, url: &str) -> bool {
        let Some(node) = self.well_known.acs_url.filter(|_| !self.publishes_acs_url(url)) else { return false };
        self.tree.set_default(node, ValueSource::fixed(url));
        true
    }

    /// Whether ManagementServer.URL's default is `url` already (or the profile has no URL).
    pub fn publishes_acs_url(&self, url: &str) -> bool {
        let Some(spec) = self.well_known.acs_url.and_then(|n| self.tree.node(n).param()) else { return true };
        matches!(&spec.default, ValueSource::Static { raw, .. } if &**raw == url)
    }

    /// The URL CPE `delta` informs when the ACS set one of its own (ManagementServer.URL in
    /// its delta), else `None`: it informs the run's.
    pub fn own_acs_url<'d>(&self, delta: &'d Delta) -> Option<&'d str> {
        let node = self.well_known.acs_url?;
        delta.value(&Loc::plain(node)).map(|v| &*v.value).filter(|v| !v.is_empty())
    }

    /// Makes the run's ACS credentials (`--acs-username/--acs-password`) the defaults of
    /// ManagementServer.Username/Password for every CPE, in place of the profile's templates; a
    /// CPE whose ACS set its own keeps them in its delta. Returns whether a default changed.
    pub fn publish_acs_credentials(&mut self, username: &str, password: &str) -> bool {
        self.acs_credentials_from_run = true;
        let mut changed = false;
        for (node, value) in [(self.well_known.acs_username, username), (self.well_known.acs_password, password)] {
            let Some(node) = node else { continue };
            let same =
                self.tree.node(node).param().is_some_and(|p| matches!(&p.default, ValueSource::Static { raw, .. } if &**raw == value));
            if !same {
                self.tree.set_default(node, ValueSource::fixed(value));
                changed = true;
            }
        }
        changed
    }

    /// The ACS credentials of a CPE (ManagementServer.Username/Password: the profile's
    /// templates, the run's `--acs-username/--acs-password`, or what its ACS set), or `None`
    /// when it has none: an empty Username, or the profile's Username with an empty Password
    /// that neither the run nor the ACS set. Allocates only when there are credentials.
    pub fn acs_credentials(&self, id: DeviceId, delta: &Delta) -> Option<(String, String)> {
        let user = self.well_known.acs_username?;
        let pass = self.well_known.acs_password;
        let set_by_acs = |n: Option<NodeId>| n.is_some_and(|n| delta.value(&Loc::plain(n)).is_some());
        let no_default_password = pass
            .and_then(|n| self.tree.node(n).param())
            .is_none_or(|p| matches!(&p.default, ValueSource::Static { raw, .. } if raw.is_empty()));
        if !self.acs_credentials_from_run && !set_by_acs(Some(user)) && !set_by_acs(pass) && no_default_password {
            return None;
        }
        let dev = self.device(id, delta, crate::time::UnixMillis(0), crate::time::UnixMillis(0));
        let username = dev.value_string(&Loc::plain(user), ReadFor::Local);
        if username.is_empty() {
            return None;
        }
        Some((username, pass.map(|n| dev.value_string(&Loc::plain(n), ReadFor::Local)).unwrap_or_default()))
    }

    /// The Connection Request credentials of a CPE (the profile's, or what the ACS set).
    pub fn connection_request_credentials(&self, id: DeviceId, delta: &Delta) -> (String, String) {
        let dev = self.device(id, delta, crate::time::UnixMillis(0), crate::time::UnixMillis(0));
        let get = |n: Option<NodeId>| n.map(|n| dev.value_string(&Loc::plain(n), ReadFor::Local)).unwrap_or_default();
        (get(self.well_known.connection_request_username), get(self.well_known.connection_request_password))
    }
}

/// Calls `f` with every instance path at which `node` exists in the profile's defaults.
fn default_instances(tree: &ParamTree, node: NodeId, f: &mut dyn FnMut(Inst)) {
    let mut tables = Vec::new();
    let mut cur = tree.node(node).parent;
    while let Some(n) = cur {
        if let NodeKind::Table(_) = tree.node(n).kind {
            tables.push(n);
        }
        cur = tree.node(n).parent;
    }
    tables.reverse();
    fn rec(tree: &ParamTree, tables: &[NodeId], inst: &mut Inst, f: &mut dyn FnMut(Inst)) {
        let Some((&t, rest)) = tables.split_first() else {
            f(inst.clone());
            return;
        };
        let NodeKind::Table(spec) = &tree.node(t).kind else { return };
        for &n in spec.defaults_for(inst) {
            inst.push(n);
            rec(tree, rest, inst, f);
            inst.pop();
        }
    }
    rec(tree, &tables, &mut Inst::new(), f);
}
