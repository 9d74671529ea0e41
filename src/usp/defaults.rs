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
    let mut dm = cpe.device_mut(model, now);
    let controllers = format!("{root}.{}", super::subscription::CONTROLLERS);
    let recipient = match dm.add_object(&controllers, "") {
        Ok(n) => {
            let row = format!("{controllers}{n}");
            let _ = dm.set_local(&format!("{row}.EndpointID"), &factory.controller_id);
            let _ = dm.set_local(&format!("{row}.Enable"), "true");
            let _ = dm.set_local(&format!("{row}.Alias"), &format!("cpe-{n}"));
            if let Some(every) = factory.periodic {
                let _ = dm.set_local(&format!("{row}.PeriodicNotifInterval"), &interval_secs(every).to_string());
            }
            row
        }
        Err(_) => String::new(),
    };
    let subscriptions = format!("{root}.{}", super::subscription::TABLE);
    for (id, reference) in [(BOOT_ID, format!("{root}.Boot!")), (PERIODIC_ID, format!("{root}.LocalAgent.Periodic!"))] {
        let Ok(n) = dm.add_object(&subscriptions, "") else { return };
        let row = format!("{subscriptions}{n}.");
        for (name, value) in [
            ("Alias", format!("cpe-{n}").as_str()),
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
}

/// `PeriodicNotifInterval` (whole seconds, ≥ 1, TR-181) for a `--inform-interval` of `every`.
pub fn interval_secs(every: Duration) -> u64 {
    every.as_secs().max(1)
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
}
