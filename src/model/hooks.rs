//! Extension hooks: how a library user changes what simulated CPEs do without forking the crate.
//!
//! Implement [`CpeHooks`] (every method has a default that keeps the standard behaviour) and
//! attach it with [`crate::model::Model::with_hooks`] before building the Inform template and
//! starting CPEs. The hooks are shared by every CPE of the model and called on the session path,
//! so they must be cheap and must not block. The CLI uses [`StandardCpe`]; `examples/hooks.rs`
//! shows a vendor CPE.

use crate::cwmp::fault::FaultCode;
use crate::model::{Device, DeviceMut};

/// A CWMP fault a hook answers with instead of the standard answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFault {
    pub code: FaultCode,
    pub detail: String,
}

/// What a simulated CPE does beyond the standard, at fixed points of a session.
pub trait CpeHooks: Send + Sync + std::fmt::Debug {
    /// Full parameter names sent in every Inform besides the profile's forced ones (each must be a
    /// parameter of the profile; read once, when the hooks are attached).
    fn inform_parameters(&self) -> Vec<String> {
        Vec::new()
    }

    /// Before any ACS request is answered. `Some(fault)` answers it with that fault instead
    /// (e.g. a CPE that refuses Reboot while "busy").
    fn on_request(&self, _device: &Device<'_>, _method: &str) -> Option<HookFault> {
        None
    }

    /// Before a SetParameterValues is applied, with its (name, value) pairs. `Err` refuses the
    /// whole request with that fault and changes nothing.
    ///
    /// # Errors
    /// The fault to answer with.
    fn before_set(&self, _device: &Device<'_>, _params: &[(&str, &str)]) -> Result<(), HookFault> {
        Ok(())
    }

    /// After a SetParameterValues was applied: may change further values (e.g. a derived
    /// parameter) through `device`.
    fn after_set(&self, _device: &mut DeviceMut<'_>, _params: &[(&str, &str)]) {}

    /// A method the CPE does not implement (a vendor RPC such as `X_ACME_Ping`): `Some(xml)`
    /// answers `<cwmp:{method}Response>{xml}</cwmp:{method}Response>`; `None` answers Fault 9000.
    fn vendor_rpc(&self, _device: &mut DeviceMut<'_>, _method: &str) -> Option<String> {
        None
    }
}

/// The standard CPE: every hook keeps the default behaviour.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardCpe;

impl CpeHooks for StandardCpe {}
