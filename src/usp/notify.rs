//! Notify messages an Agent sends (TR-369 §"Notifications and Subscription Mechanism"): the
//! `Boot!` and `Periodic!` events, ValueChange, ObjectCreation/ObjectDeletion and
//! OperationComplete, each for one subscription (its ID, and `send_resp` = its NotifRetry: a
//! NotifyResp is asked for only when the Notify is to be retried). Which subscriptions an event
//! reaches is [`super::subscription`]'s decision.

use std::collections::HashMap;

use rusp_lib::usp::mod_Notify::mod_OperationComplete::{self, OneOfoperation_resp};
use rusp_lib::usp::mod_Notify::{Event, ObjectCreation, ObjectDeletion, OneOfnotification, OperationComplete, ValueChange};
use rusp_lib::usp::Notify;

use super::operate::Accepted;
use crate::model::device::ReadFor;
use crate::model::Device;

/// Why the Agent (re)booted: TR-181 `Device.Boot!` Cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootCause {
    LocalReboot,
    RemoteReboot,
    RemoteFactoryReset,
}

impl BootCause {
    fn as_str(self) -> &'static str {
        match self {
            BootCause::LocalReboot => "LocalReboot",
            BootCause::RemoteReboot => "RemoteReboot",
            BootCause::RemoteFactoryReset => "RemoteFactoryReset",
        }
    }
}

fn event(subscription_id: String, send_resp: bool, obj_path: String, name: &str, params: HashMap<String, String>) -> Notify {
    Notify { subscription_id, send_resp, notification: OneOfnotification::event(Event { obj_path, event_name: name.into(), params }) }
}

/// TR-181 `Device.Boot!`: CommandKey, Cause, FirmwareUpdated and ParameterMap (a JSON object of
/// the profile's forced-inform parameters, as a BootParameter subscription would list them).
pub fn boot(dev: &Device<'_>, cause: BootCause, command_key: &str, subscription_id: String, send_resp: bool) -> Notify {
    let tree = &dev.model.tree;
    let mut map = serde_json::Map::new();
    for loc in &dev.model.forced {
        map.insert(tree.path_string(loc), serde_json::Value::String(dev.value_string(loc, ReadFor::Acs)));
    }
    let params = HashMap::from([
        ("CommandKey".to_string(), command_key.to_string()),
        ("Cause".to_string(), cause.as_str().to_string()),
        ("FirmwareUpdated".to_string(), "false".to_string()),
        ("ParameterMap".to_string(), serde_json::Value::Object(map).to_string()),
    ]);
    event(subscription_id, send_resp, format!("{}.", tree.root_name()), "Boot!", params)
}

/// TR-181 `Device.LocalAgent.Periodic!`.
pub fn periodic(root: &str, subscription_id: String, send_resp: bool) -> Notify {
    event(subscription_id, send_resp, format!("{root}.LocalAgent."), "Periodic!", HashMap::new())
}

/// A parameter's new value, for the subscription `subscription_id` that asked for it.
pub fn value_change(subscription_id: String, send_resp: bool, param_path: String, param_value: String) -> Notify {
    Notify { subscription_id, send_resp, notification: OneOfnotification::value_change(ValueChange { param_path, param_value }) }
}

/// An instance created (by an Add).
pub fn object_creation(subscription_id: String, send_resp: bool, obj_path: String, unique_keys: HashMap<String, String>) -> Notify {
    Notify { subscription_id, send_resp, notification: OneOfnotification::obj_creation(ObjectCreation { obj_path, unique_keys }) }
}

/// An instance deleted.
pub fn object_deletion(subscription_id: String, send_resp: bool, obj_path: String) -> Notify {
    Notify { subscription_id, send_resp, notification: OneOfnotification::obj_deletion(ObjectDeletion { obj_path }) }
}

/// An asynchronous command finished, with its output arguments.
pub fn operation_complete(subscription_id: String, send_resp: bool, accepted: &Accepted, output: HashMap<String, String>) -> Notify {
    let (obj_path, command_name) = match accepted.path.rfind('.') {
        Some(i) => (accepted.path[..=i].to_string(), accepted.path[i + 1..].to_string()),
        None => (String::new(), accepted.path.clone()),
    };
    Notify {
        subscription_id,
        send_resp,
        notification: OneOfnotification::oper_complete(OperationComplete {
            obj_path,
            command_name,
            command_key: accepted.command_key.clone(),
            operation_resp: OneOfoperation_resp::req_output_args(mod_OperationComplete::OutputArgs { output_args: output }),
        }),
    }
}
