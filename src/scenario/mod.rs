//! Scenario files (`cpe-sim run scenario.yaml`): a capacity test as a story, in one YAML file —
//! fleets of several profiles, ACS endpoints and how CPEs map to them, source addresses, phases
//! on a timeline, thresholds and run settings.
//!
//! It owns reading and checking the file, not the rules of a run: the file's run settings are
//! written into the same `RunArgs` the flags fill (a flag given on the command line or in the
//! environment wins), and `plan::validate` then checks those as it checks flags (a refused value
//! the file gave is reported as the file's, by [`Scenario::explain`]). What only a
//! file can say (fleets, endpoints, sources, phases) is checked here, and every error names the
//! file, the line, the key and what is allowed, before anything starts. The result, a
//! [`Scenario`], is what `commands::run` builds the engine's `Plan` from.
//!
//! - [`schema`]: the YAML schema and the per-value checks.

pub mod schema;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::RunArgs;
use crate::engine::phase::{Phase, PhaseKind, Timeline};
use crate::engine::route::{Mapping, Routes};
use crate::model::tree::Notification;
use crate::model::{DeviceId, Model};
use crate::stats::timeline::MAX_PHASES;
use schema::{PhaseYamlKind, PushModeYaml, ScenarioFile};

/// Fleets whose serials are checked one by one for collisions (beyond, disjoint index ranges
/// and templates that contain `{index}` are the guarantee).
const SERIAL_CHECK_LIMIT: u64 = 1_000_000;

/// A scenario file that cannot be run: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line (and column) of the key, when known.
    pub line: Option<(usize, usize)>,
    /// The key path, e.g. `phases[2].reboot_wave.share`.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scenario {}", self.file.display())?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ScenarioError {}

/// The embedded ACS a scenario asks for (when it gives no endpoints).
#[derive(Debug, Clone, Default)]
pub struct EmbeddedAcs {
    /// Listen backlog; `None`: the default.
    pub backlog: Option<u32>,
    /// RPCs to push, in `--push` form.
    pub push: Vec<String>,
    /// Push once per CPE (true) or in every session.
    pub push_once: bool,
}

/// A fleet, resolved: its model (identity overridden) and how many CPEs it has.
pub struct FleetSpec {
    pub name: String,
    pub model: Model,
    pub cpes: u32,
}

/// A checked scenario, ready to become the engine's plan.
pub struct Scenario {
    pub file: PathBuf,
    /// The run settings the file gave (and no flag overrode), for [`Scenario::explain`].
    pub settings: Vec<FileSetting>,
    pub name: String,
    /// In rank order; empty: the run's `--profile` for every CPE.
    pub fleets: Vec<FleetSpec>,
    pub routes: Routes,
    pub timeline: Timeline,
    pub embedded_acs: EmbeddedAcs,
}

/// A run setting the file filled in: which flag it stands for, and where the file says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    /// The flag `plan::validate` names, e.g. `--max-connections`.
    pub flag: String,
    /// The key in the file, e.g. `run.max-connections`.
    pub key: String,
    /// 1-based line and column of the key, when found.
    pub line: Option<(usize, usize)>,
}

impl Scenario {
    /// A flag refused by `plan::validate` whose value came from this file, as the file's error:
    /// `scenario FILE:LINE:COL: key `run.shards`: `0` must be 1 … 65535`. `None`: the flag was
    /// given (command line or environment) or is not one the file sets.
    pub fn explain(&self, e: &crate::plan::UsageError) -> Option<ScenarioError> {
        let s = self.settings.iter().find(|s| s.flag == e.flag)?;
        // The value as the flag's error shows it: none when there is none, a password hidden.
        let reason = match e.shown_value() {
            Some(v) => format!("`{v}` {}", e.rule),
            None => e.rule.clone(),
        };
        Some(ScenarioError { file: self.file.clone(), line: s.line, key: Some(s.key.clone()), reason })
    }
}

/// Which flags were given on the command line or in the environment (by clap id, e.g.
/// `max_connections`): those win over the file.
pub type Given<'a> = &'a dyn Fn(&str) -> bool;

/// Reads `path`, scales its times by `time_scale` (durations × scale, interval multipliers ×
/// scale: 0.01 runs a 10-minute story in 6 s), writes its run settings into `args` where no flag
/// was `given`, and checks what only a file can say (profiles of the fleets are loaded here).
///
/// # Errors
/// [`ScenarioError`] naming the file, line, key and the allowed values.
pub fn prepare(path: &Path, time_scale: f64, args: &mut RunArgs, given: Given<'_>) -> Result<Scenario, ScenarioError> {
    let err =
        |line: Option<(usize, usize)>, key: Option<String>, reason: String| ScenarioError { file: path.to_path_buf(), line, key, reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(None, None, format!("cannot be read: {e}")))?;
    let doc: ScenarioFile = serde_norway::from_str(&text).map_err(|e| {
        let line = e.location().map(|l| (l.line(), l.column()));
        let msg = e.to_string();
        // serde_norway writes "path: reason at line L column C": key and line go to their fields.
        let msg = match msg.rfind(" at line ") {
            Some(i) if line.is_some() => msg[..i].to_string(),
            _ => msg,
        };
        match msg.split_once(": ") {
            Some((key, reason)) if !key.contains(' ') => {
                // A value check names its field first ("share `1.5` must …"): the key gets it too.
                let field = reason
                    .split_once(" `")
                    .map(|(f, _)| f)
                    .filter(|f| ["share", "oui", "serial", "rate", "backlog", "duration"].contains(f));
                let key = match field {
                    Some(f) if !key.ends_with(f) => format!("{key}.{f}"),
                    _ => key.to_string(),
                };
                err(line, Some(key), reason.to_string())
            }
            _ => err(line, None, msg),
        }
    })?;
    let at = |section: &str, i: usize| item_line(&text, section, i);
    if doc.phases.len() > MAX_PHASES {
        let reason = format!("at most {MAX_PHASES} phases (each keeps its own latency histograms); this file lists {}", doc.phases.len());
        return Err(err(at("phases", MAX_PHASES).or_else(|| key_line(&text, "phases")), Some("phases".into()), reason));
    }
    let scale = |d: Duration| d.mul_f64(time_scale);

    // Run settings: the file's, unless a flag says otherwise.
    let r = &doc.run;
    let mut settings = Vec::new();
    // A setting taken from the file: the flag it stands for, and its section and key there.
    let mut from_file = |flag: &str, section: &str, key: &str| {
        settings.push(FileSetting { flag: flag.into(), line: section_key_line(&text, section, key), key: format!("{section}.{key}") });
    };
    macro_rules! setting {
        ($field:ident, $value:expr) => {
            if let Some(v) = $value {
                if !given(stringify!($field)) {
                    args.$field = v;
                    let name = stringify!($field).replace('_', "-");
                    from_file(&format!("--{name}"), "run", &name);
                }
            }
        };
    }
    setting!(timeout, r.timeout);
    setting!(max_connections, r.max_connections);
    setting!(
        connection_mode,
        r.connection_mode.map(|m| match m {
            schema::ConnectionModeYaml::Pooled => "pooled".to_string(),
            schema::ConnectionModeYaml::PerSession => "per-session".to_string(),
        })
    );
    setting!(interval_multiplier, r.interval_multiplier);
    setting!(drain_timeout, r.drain_timeout);
    setting!(progress_interval, r.progress_interval);
    setting!(first_index, r.first_index);
    setting!(inform_interval, r.inform_interval.map(Some));
    setting!(shards, r.shards.map(Some));
    setting!(acs_username, r.acs_username.clone().map(Some));
    setting!(acs_password, r.acs_password.clone().map(Some));
    if doc.fleets.iter().all(|f| f.share.is_some()) {
        setting!(cpes, r.cpes);
    }
    if let Some(u) = &doc.usp {
        // `usp:` makes the run TR-369 Agents; what only drives CWMP's engine is refused by name.
        if given("protocol") && args.protocol != "usp" {
            return Err(err(
                key_line(&text, "usp"),
                Some("usp".into()),
                format!("runs USP Agents, but --protocol {} was given", args.protocol),
            ));
        }
        for (key, set) in [
            ("acs", doc.acs.is_some()),
            ("embedded_acs", doc.embedded_acs.is_some()),
            ("fleets", !doc.fleets.is_empty()),
            ("sources", !doc.sources.is_empty()),
        ] {
            if set {
                let reason = format!("is for CWMP runs; a scenario with `usp:` runs USP Agents (run:, usp:, a boot phase and thresholds: apply): remove `{key}` or `usp`");
                return Err(err(key_line(&text, key), Some(key.into()), reason));
            }
        }
        // The Agents' boot (spread or rate) is a boot phase's, as for CPEs; the other phases
        // drive CWMP's engine.
        if let Some(i) = doc.phases.iter().position(|p| !matches!(p.kind, PhaseYamlKind::Boot { .. })) {
            let kind = doc.phases[i].kind.name();
            let reason = format!("a {kind} phase is for CWMP runs; a scenario with `usp:` takes only a boot phase");
            return Err(err(at("phases", i), Some(format!("phases[{i}].{kind}")), reason));
        }
        args.protocol = "usp".into();
        macro_rules! usp_setting {
            ($field:ident, $key:literal, $value:expr) => {
                if let Some(v) = $value {
                    if !given(stringify!($field)) {
                        args.$field = v;
                        from_file(&format!("--{}", stringify!($field).replace('_', "-")), "usp", $key);
                    }
                }
            };
        }
        usp_setting!(usp_url, "url", u.url.clone().map(Some));
        usp_setting!(controller_id, "controller-id", u.controller_id.clone().map(Some));
        usp_setting!(usp_endpoint_id, "endpoint-id", u.endpoint_id.clone());
        usp_setting!(mqtt_version, "mqtt-version", u.mqtt_version.map(|v| v.flag_value().to_string()));
        usp_setting!(mqtt_username, "mqtt-username", u.mqtt_username.clone().map(Some));
        usp_setting!(mqtt_password, "mqtt-password", u.mqtt_password.clone().map(Some));
        usp_setting!(mqtt_keep_alive, "mqtt-keep-alive", u.mqtt_keep_alive);
    }
    for (i, t) in doc.thresholds.iter().enumerate() {
        // A USP run's rules name the USP report's figures (as plan::validate parses them).
        let parsed = crate::stats::threshold::Threshold::parse_for(&args.protocol, t);
        if let Err(e) = parsed {
            return Err(err(at("thresholds", i).or_else(|| key_line(&text, "thresholds")), Some(format!("thresholds[{i}]")), e));
        }
    }
    if !given("thresholds") {
        args.thresholds = doc.thresholds.clone();
    }
    if let Some(acs) = &doc.acs {
        if !given("acs_url") {
            args.acs_url = acs.endpoints.first().cloned();
        }
    }

    // The embedded ACS runs only without endpoints: its settings beside them would be ignored.
    if doc.acs.is_some() && doc.embedded_acs.is_some() {
        return Err(err(
            key_line(&text, "embedded_acs"),
            Some("embedded_acs".into()),
            "configures the embedded ACS, which does not run when acs.endpoints is given; remove one of embedded_acs and acs".into(),
        ));
    }

    // Fleets: every count or every share.
    let counts = doc.fleets.iter().filter(|f| f.count.is_some()).count();
    let shares = doc.fleets.iter().filter(|f| f.share.is_some()).count();
    for (i, f) in doc.fleets.iter().enumerate() {
        if f.count.is_some() == f.share.is_some() {
            return Err(err(
                at("fleets", i),
                Some(format!("fleets[{i}]")),
                "give exactly one of count (CPEs) or share (0 < share ≤ 1)".into(),
            ));
        }
        if doc.fleets[..i].iter().any(|g| g.name == f.name) {
            return Err(err(
                at("fleets", i),
                Some(format!("fleets[{i}].name")),
                format!("`{}` names two fleets; fleet names are unique", f.name),
            ));
        }
    }
    if counts > 0 && shares > 0 {
        return Err(err(at("fleets", 0), Some("fleets".into()), "give every fleet a count, or every fleet a share (not a mix)".into()));
    }
    let sizes: Vec<u32> = if counts > 0 {
        let total = doc.fleets.iter().try_fold(0u32, |t, f| t.checked_add(f.count.unwrap_or(0)));
        let Some(total) = total else {
            return Err(err(at("fleets", 0), Some("fleets".into()), format!("the counts add up to more than {}", u32::MAX)));
        };
        if given("cpes") && args.cpes != total {
            return Err(err(
                at("fleets", 0),
                Some("fleets".into()),
                format!("--cpes {} differs from the fleets' counts ({total}); give the fleets shares to size them with --cpes", args.cpes),
            ));
        }
        args.cpes = total;
        doc.fleets.iter().map(|f| f.count.unwrap_or(0)).collect()
    } else if shares > 0 {
        let sum: f64 = doc.fleets.iter().filter_map(|f| f.share).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(err(at("fleets", 0), Some("fleets".into()), format!("the shares add up to {sum}; they must add up to 1")));
        }
        // Each fleet its share, rounded down; the last takes what rounding left.
        let mut sizes: Vec<u32> = doc.fleets.iter().map(|f| (args.cpes as f64 * f.share.unwrap_or(0.0)).floor() as u32).collect();
        let rest = args.cpes.saturating_sub(sizes.iter().sum());
        if let Some(last) = sizes.last_mut() {
            *last += rest;
        }
        sizes
    } else {
        Vec::new()
    };
    // Phases: a boot phase (first, if any) sets the boot; the rest run on the engine's timeline.
    let mut phases = Vec::new();
    for (i, p) in doc.phases.iter().enumerate() {
        // Unnamed phases are named after their kind (numbered when the kind recurs).
        let kind = p.kind.name();
        let name = p.name.clone().unwrap_or_else(|| match doc.phases.iter().filter(|q| q.kind.name() == kind).count() {
            1 => kind.to_string(),
            _ => format!("{kind}-{}", i + 1),
        });
        match &p.kind {
            PhaseYamlKind::Boot { spread, rate } => {
                if i != 0 {
                    return Err(err(at("phases", i), Some(format!("phases[{i}].boot")), "the boot phase must come first".into()));
                }
                if !given("boot_spread") && !given("boot_rate") {
                    if let Some(s) = spread {
                        args.boot_spread = scale(*s);
                        args.boot_rate = None;
                    }
                    if let Some(r) = rate {
                        args.boot_rate = Some(r / time_scale);
                    }
                }
                // The boot phase lasts as long as the boot does (its last CPE's first contact).
                let lasts = match args.boot_rate {
                    Some(r) => Duration::try_from_secs_f64(args.cpes.saturating_sub(1) as f64 / r).unwrap_or(crate::plan::MAX_DURATION),
                    None => args.boot_spread,
                };
                phases.push(Phase { name, duration: lasts, kind: PhaseKind::Boot });
            }
            PhaseYamlKind::Engine { kind, duration } => {
                let kind = match kind.clone() {
                    PhaseKind::Periodic { multiplier } => PhaseKind::Periodic { multiplier: multiplier * time_scale },
                    PhaseKind::Ramp { from, to } => PhaseKind::Ramp { from: from * time_scale, to: to * time_scale },
                    PhaseKind::Outage { storm_spread } => PhaseKind::Outage { storm_spread: scale(storm_spread) },
                    k => k,
                };
                phases.push(Phase { name, duration: scale(*duration), kind });
            }
        }
    }
    let timeline = Timeline { phases };
    if !given("interval_multiplier") {
        args.interval_multiplier *= time_scale;
    }
    // A story runs as long as its timeline unless it says otherwise; one that only boots is
    // one-shot (it ends when every CPE has booted, not when the last boot is due).
    let only_boot = timeline.phases.iter().all(|p| matches!(p.kind, PhaseKind::Boot));
    if !given("duration") {
        match (r.duration, timeline.total()) {
            (Some(d), _) => {
                args.duration = Some(scale(d));
                from_file("--duration", "run", "duration");
            }
            (None, t) if !t.is_zero() && !only_boot => args.duration = Some(t),
            _ => {}
        }
    }
    if timeline.phases.iter().any(|p| !matches!(p.kind, PhaseKind::Boot)) && args.duration.is_none() {
        return Err(err(at("phases", 0), Some("phases".into()), "phases need a run that lasts: give run.duration".into()));
    }

    let dir = path.parent().unwrap_or(Path::new("."));
    let mut fleets = Vec::new();
    for (i, (f, cpes)) in doc.fleets.iter().zip(sizes).enumerate() {
        let key = |k: &str| Some(format!("fleets[{i}].{k}"));
        if cpes == 0 {
            return Err(err(at("fleets", i), key("share"), format!("fleet `{}` gets no CPE of {}", f.name, args.cpes)));
        }
        let profile = f.profile.as_ref().map(|p| dir.join(p));
        let mut model =
            crate::config::load_or_builtin(profile.as_deref()).map_err(|e| err(at("fleets", i), key("profile"), e.to_string()))?;
        // --cwmp-version applies to every fleet (plan::validate checks its value).
        if let Some(minor) = args.cwmp_version.as_deref().and_then(crate::cwmp::envelope::urn_minor) {
            model.cwmp_urn = crate::cwmp::envelope::URNS[minor as usize].into();
        }
        if let Some(oui) = &f.oui {
            model.identity.oui = oui.as_str().into();
        }
        if let Some(s) = &f.serial {
            model.identity.serial =
                crate::model::identity::Template::compile(s, 0).map_err(|e| err(at("fleets", i), key("serial"), e.to_string()))?;
        }
        for p in &f.notify_active {
            let node = model
                .tree
                .by_schema_path(p)
                .or_else(|| model.tree.by_schema_path(&crate::model::tree::schema_of(p)))
                .filter(|n| model.tree.node(*n).param().is_some());
            let Some(node) = node else {
                return Err(err(at("fleets", i), key("notify_active"), format!("`{p}` is not a parameter of profile {}", model.name)));
            };
            if model.tree.node(node).param().is_some_and(|s| s.active_notify == crate::model::tree::ActiveNotify::CanDeny) {
                return Err(err(
                    at("fleets", i),
                    key("notify_active"),
                    format!("`{p}` refuses active notification (active_notify: can_deny)"),
                ));
            }
            model.tree.set_notification(node, Notification::Active);
        }
        fleets.push(FleetSpec { name: f.name.clone(), model, cpes });
    }
    check_serials(&fleets, args.first_index).map_err(|reason| err(at("fleets", 0), Some("fleets".into()), reason))?;
    // Value-change waves name a parameter every fleet has.
    for (i, p) in doc.phases.iter().enumerate() {
        if let PhaseYamlKind::Engine { kind: PhaseKind::ValueChangeWave { parameter, .. }, .. } = &p.kind {
            let single;
            let models: Vec<(&str, &Model)> = if fleets.is_empty() {
                single = crate::config::load_or_builtin(args.profile.as_deref())
                    .map_err(|e| err(None, Some("--profile".into()), e.to_string()))?;
                vec![("default", &single)]
            } else {
                fleets.iter().map(|f| (f.name.as_str(), &f.model)).collect()
            };
            for (fleet, model) in models {
                let parameter = crate::engine::phase::under_root(parameter, model.tree.root_name());
                let known =
                    model.tree.by_schema_path(&parameter).or_else(|| model.tree.by_schema_path(&crate::model::tree::schema_of(&parameter)));
                if known.is_none_or(|n| model.tree.node(n).param().is_none()) {
                    return Err(err(
                        at("phases", i),
                        Some(format!("phases[{i}].value_change_wave.parameter")),
                        format!("`{parameter}` is not a parameter of fleet `{fleet}` (profile {})", model.name),
                    ));
                }
            }
        }
    }

    let (endpoints, mapping) = match &doc.acs {
        Some(a) if !given("acs_url") => (a.endpoints.clone(), Mapping::from(a.mapping)),
        _ => (Vec::new(), Mapping::RoundRobin),
    };
    if endpoints.len() * doc.sources.len().max(1) > u16::MAX as usize {
        return Err(err(
            None,
            Some("sources".into()),
            format!("{} endpoints × {} sources is more than {} routes", endpoints.len(), doc.sources.len(), u16::MAX),
        ));
    }
    for ip in &doc.sources {
        if !bindable(*ip) {
            return Err(err(None, Some("sources".into()), format!("{ip} is not an address of this host (it cannot be bound)")));
        }
    }
    let default_acs = schema::EmbeddedAcsYaml::default();
    let e = doc.embedded_acs.as_ref().unwrap_or(&default_acs);
    Ok(Scenario {
        file: path.to_path_buf(),
        settings,
        name: doc.name.clone().unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario").to_string()),
        fleets,
        routes: Routes { endpoints, mapping, sources: doc.sources.clone() },
        timeline,
        embedded_acs: EmbeddedAcs { backlog: e.backlog, push: e.push.clone(), push_once: e.push_mode == PushModeYaml::Once },
    })
}

/// Serials never collide: every serial of every fleet (indices from `first`) is distinct, checked
/// one by one up to [`SERIAL_CHECK_LIMIT`] CPEs.
fn check_serials(fleets: &[FleetSpec], first: u32) -> Result<(), String> {
    let total: u64 = fleets.iter().map(|f| f.cpes as u64).sum();
    if fleets.len() < 2 || total > SERIAL_CHECK_LIMIT {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(total as usize);
    let mut index = first;
    for f in fleets {
        for _ in 0..f.cpes {
            let s = f.model.identity.serial.to_string_for(&f.model.identity, DeviceId(index));
            if !seen.insert(s.clone()) {
                return Err(format!(
                    "serial number `{s}` of fleet `{}` (cpe-{index}) is also another CPE's; give the fleets their own oui or serial",
                    f.name
                ));
            }
            index = index.wrapping_add(1);
        }
    }
    Ok(())
}

/// The line and column of item `i` of the top-level list `section` (`fleets:`, `phases:`).
fn item_line(text: &str, section: &str, i: usize) -> Option<(usize, usize)> {
    let mut lines = text.lines().enumerate().skip_while(|(_, l)| l.trim_end() != format!("{section}:"));
    lines.next()?;
    let mut n = 0;
    let mut indent = None;
    for (no, l) in lines {
        if !l.starts_with([' ', '-', '\t']) && !l.trim().is_empty() && !l.starts_with('#') {
            return None;
        }
        let trimmed = l.trim_start();
        if trimmed.starts_with("- ") || trimmed == "-" {
            let at = l.len() - trimmed.len();
            if *indent.get_or_insert(at) == at {
                if n == i {
                    return Some((no + 1, at + 1));
                }
                n += 1;
            }
        }
    }
    None
}

/// The line and column of `key` in the top-level `section:` (`run:`, `usp:`; block or flow style).
fn section_key_line(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let start = text.lines().position(|l| l.starts_with(&format!("{section}:")))?;
    for (no, l) in text.lines().enumerate().skip(start) {
        if no > start && !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty() {
            return None;
        }
        let from = if no == start { section.len() + 1 } else { 0 };
        let mut at = from;
        while let Some(i) = l.get(at..).and_then(|rest| rest.find(&format!("{key}:"))) {
            let col = at + i;
            if col == 0 || l[..col].ends_with([' ', '\t', '{', ',']) {
                return Some((no + 1, col + 1));
            }
            at = col + key.len();
        }
    }
    None
}

/// The line of the top-level key `key`.
fn key_line(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().position(|l| l.starts_with(&format!("{key}:"))).map(|i| (i + 1, 1))
}

/// Whether `ip` can be bound on this host (a source address the host does not have fails every
/// connect with `EADDRNOTAVAIL`).
pub fn bindable(ip: IpAddr) -> bool {
    std::net::TcpListener::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_of_a_section_by_line() {
        let text = "name: x\nfleets:\n  - name: a\n    count: 1\n  - name: b\nphases:\n  - outage: {duration: 1s}\n";
        assert_eq!(item_line(text, "fleets", 0), Some((3, 3)));
        assert_eq!(item_line(text, "fleets", 1), Some((5, 3)));
        assert_eq!(item_line(text, "fleets", 2), None);
        assert_eq!(item_line(text, "phases", 0), Some((7, 3)));
        let run = "name: x\nrun:\n  timeout: 1s\n  # shards: 2\n  max-connections: 0\nphases: []\nshards: 1\n";
        assert_eq!(section_key_line(run, "run", "timeout"), Some((3, 3)));
        assert_eq!(section_key_line(run, "run", "max-connections"), Some((5, 3)));
        assert_eq!(section_key_line(run, "run", "connections"), None);
        assert_eq!(section_key_line("run: {cpes: 1, shards: 0}\n", "run", "shards"), Some((1, 16)));
        assert_eq!(section_key_line("usp: {url: x}\nrun: {url: y}\n", "usp", "url"), Some((1, 7)));
        assert_eq!(
            crate::model::tree::schema_of("Device.IP.Interface.1.IPv4Address.2.IPAddress"),
            "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress"
        );
    }
}
