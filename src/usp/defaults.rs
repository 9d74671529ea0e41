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
                let _ = dm.set_local(&format!("{row}.PeriodicNotifInterval"), &every.as_secs().max(1).to_string());
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
