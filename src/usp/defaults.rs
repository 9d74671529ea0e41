//! An Agent's factory-default USP configuration, as real Agents ship one (obuspa reads a
//! factory-reset file of parameter values): the run's Controller as
//! `Device.LocalAgent.Controller.1` (EndpointID, Enable, PeriodicNotifInterval from
//! `--inform-interval`), subscribed to `Device.Boot!` and `Device.LocalAgent.Periodic!` with
//! NotifRetry on. A Controller may change or delete these like any other instance; they live in
//! the CPE's delta (so they survive `--state-dir`) and FactoryReset() writes them again.

use std::time::Duration;

use crate::cpe::CpeState;
use crate::model::Model;
use crate::time::UnixMillis;

/// The ID of the factory-default Boot! subscription.
pub const BOOT_ID: &str = "cpe-sim-boot";
/// The ID of the factory-default Periodic! subscription.
pub const PERIODIC_ID: &str = "cpe-sim-periodic";

/// What the factory defaults depend on in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factory {
    /// The run's Controller endpoint ID.
    pub controller_id: String,
    /// `--inform-interval`: the Controller's PeriodicNotifInterval (whole seconds, at least 1);
    /// without it the profile's default stays.
    pub periodic: Option<Duration>,
}

/// Writes the factory defaults into `cpe`'s delta (a fresh or just reset CPE). Tables the profile
/// lacks are skipped: without `LocalAgent.Controller.` the subscriptions have an empty Recipient
/// (the Agent's own Controller); without `LocalAgent.Subscription.` there are none, and the
/// Agent sends no Notify.
pub fn apply(model: &Model, cpe: &mut CpeState, factory: &Factory, now: UnixMillis) {
    let root = model.tree.root_name().to_string();
    // The new instances, whose Alias is then picked by the unique-key rule (`keys::pick_alias`).
    let mut added = Vec::new();
    let mut dm = cpe.device_mut(model, now);
    let controllers = format!("{root}.{}", super::subscription::CONTROLLERS);
    let recipient = match dm.add_object(&controllers, "") {
        Ok(n) => {
            let row = format!("{controllers}{n}");
            added.push(format!("{row}."));
            let _ = dm.set_local(&format!("{row}.EndpointID"), &factory.controller_id);
            let _ = dm.set_local(&format!("{row}.Enable"), "true");
            if let Some(every) = factory.periodic {
                let _ = dm.set_local(&format!("{row}.PeriodicNotifInterval"), &interval_secs(every).to_string());
            }
            row
        }
        Err(_) => String::new(),
    };
    let subscriptions = format!("{root}.{}", super::subscription::TABLE);
    for (id, reference) in [(BOOT_ID, format!("{root}.Boot!")), (PERIODIC_ID, format!("{root}.LocalAgent.Periodic!"))] {
        let Ok(n) = dm.add_object(&subscriptions, "") else { break };
        let row = format!("{subscriptions}{n}.");
        added.push(row.clone());
        for (name, value) in [
            ("ID", id),
            ("Recipient", &recipient),
            ("NotifType", "Event"),
            ("ReferenceList", &reference),
            ("NotifRetry", "true"),
            ("Persistent", "true"),
            ("Enable", "true"),
        ] {
            let _ = dm.set_local(&format!("{row}{name}"), value);
        }
    }
    for inst in added {
        super::keys::pick_alias(model, cpe, &inst, now);
    }
}

/// `--inform-interval` (`factory.periodic`) written again into the run Controller's
/// `PeriodicNotifInterval` of a resumed Agent: the run's flag is the setting it powers on with
/// (a Controller's Set lasts until the next start with `--inform-interval`). Nothing without the
/// flag or the row.
pub fn apply_interval(model: &Model, cpe: &mut CpeState, factory: &Factory, now: UnixMillis) {
    let Some(every) = factory.periodic else { return };
    let row = {
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        super::subscription::controller_row(&dev, &factory.controller_id)
    };
    if let Some(row) = row {
        let _ = cpe.device_mut(model, now).set_local(&format!("{row}.PeriodicNotifInterval"), &interval_secs(every).to_string());
    }
}

/// `PeriodicNotifInterval` (whole seconds, ≥ 1, TR-181) for a `--inform-interval` of `every`.
pub fn interval_secs(every: Duration) -> u64 {
    every.as_secs().max(1)
}

/// The `Periodic!` period of an Agent's data model `dev` for the run's Controller
/// `controller_id` (with `--inform-interval` `every`): zero (off) while that Controller's row is
/// disabled, else [`periodic_period`] of its `PeriodicNotifInterval`.
pub fn periodic_for(dev: &crate::model::Device<'_>, controller_id: &str, every: Duration) -> Duration {
    // The row is looked up once (this runs after every change of the data model).
    let Some(row) = super::subscription::controller_row(dev, controller_id) else { return every };
    match dev.get(&format!("{row}.Enable")).as_deref() {
        Some("false") => Duration::ZERO,
        Some("true") => periodic_period(super::subscription::row_interval(dev, &row), every),
        _ => every,
    }
}

/// The `Periodic!` period: the Controller's `PeriodicNotifInterval` (`interval`, as read from
/// the data model), except while it still holds the factory default written for `every`
/// (`--inform-interval`), when `every` itself counts, to the millisecond.
pub fn periodic_period(interval: Option<Duration>, every: Duration) -> Duration {
    match interval {
        Some(i) if i != Duration::from_secs(interval_secs(every)) => i,
        _ => every,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_the_controllers_unless_it_is_the_factory_default() {
        let every = Duration::from_millis(60_250);
        assert_eq!(interval_secs(every), 60);
        assert_eq!(interval_secs(Duration::from_millis(300)), 1, "never 0");
        assert_eq!(periodic_period(Some(Duration::from_secs(60)), every), every, "the factory value keeps the milliseconds");
        assert_eq!(periodic_period(Some(Duration::from_secs(10)), every), Duration::from_secs(10), "a Controller's Set counts");
        assert_eq!(periodic_period(None, every), every);
    }

    // Defaults written over a resumed delta pick Aliases by the unique-key rule: one a Controller
    // already gave another instance is not given again.
    #[test]
    fn defaults_never_duplicate_an_alias() {
        let model =
            crate::config::load_profile(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-tr181-gateway")).unwrap();
        let now = UnixMillis(1_800_000_000_000);
        let mut cpe = CpeState::new(crate::model::DeviceId(0), now);
        let mut dm = cpe.device_mut(&model, now);
        let n = dm.add_object("Device.LocalAgent.Subscription.", "").unwrap();
        dm.set_local(&format!("Device.LocalAgent.Subscription.{n}.Alias"), &format!("cpe-{}", n + 1)).unwrap();
        apply(&model, &mut cpe, &Factory { controller_id: "self::c".into(), periodic: None }, now);
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        let aliases: Vec<String> =
            (n..n + 3).map(|i| dev.get(&format!("Device.LocalAgent.Subscription.{i}.Alias")).unwrap_or_default()).collect();
        let mut unique = aliases.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{aliases:?}");
        assert!(aliases.iter().all(|a| !a.is_empty()), "{aliases:?}");
    }
}
