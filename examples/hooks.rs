//! A vendor CPE built on cpe-sim's extension hooks: it reports its uptime in every Inform, keeps
//! both Wi-Fi radios on one SSID, refuses an empty SSID, and answers the vendor RPC
//! `X_ACME_Ping`. Runs one bootstrap session against the embedded ACS:
//!
//! ```sh
//! cargo run --example hooks
//! ```

use std::sync::Arc;
use std::time::Duration;

use cpe_sim::acs::server::{AcsServer, AuthMode, ServerConfig};
use cpe_sim::acs::{AcsRpc, AcsScript};
use cpe_sim::config::load_profile;
use cpe_sim::cwmp::fault::FaultCode;
use cpe_sim::engine::{self, Outputs, Plan};
use cpe_sim::model::hooks::{CpeHooks, HookFault};
use cpe_sim::model::{Device, DeviceMut};
use cpe_sim::time::UnixMillis;
use cpe_sim::transport::tls::{client_config, TlsOptions};
use cpe_sim::transport::{TransportConfig, DEFAULT_MAX_BODY};

#[derive(Debug)]
struct AcmeGateway;

impl CpeHooks for AcmeGateway {
    fn inform_parameters(&self) -> Vec<String> {
        vec!["Device.DeviceInfo.UpTime".into()]
    }

    fn before_set(&self, _device: &Device<'_>, params: &[(&str, &str)]) -> Result<(), HookFault> {
        match params.iter().find(|(name, value)| name.ends_with(".SSID") && value.is_empty()) {
            Some((name, _)) => {
                Err(HookFault { code: FaultCode::InvalidParameterValue, detail: format!("{name}: an SSID cannot be empty") })
            }
            None => Ok(()),
        }
    }

    fn after_set(&self, device: &mut DeviceMut<'_>, params: &[(&str, &str)]) {
        // Band steering: the 5 GHz radio follows the 2.4 GHz SSID.
        if let Some((_, ssid)) = params.iter().find(|(name, _)| *name == "Device.WiFi.SSID.1.SSID") {
            let _ = device.set_local("Device.WiFi.SSID.2.SSID", ssid);
        }
    }

    fn vendor_rpc(&self, _device: &mut DeviceMut<'_>, method: &str) -> Option<String> {
        (method == "X_ACME_Ping").then(|| "<Result>pong</Result>".to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-tr181-gateway");
    let model = Arc::new(load_profile(&profile)?.with_hooks(Arc::new(AcmeGateway)).map_err(anyhow::Error::msg)?);
    let script = AcsScript {
        bootstrap_provisioning: false,
        every_session: vec![AcsRpc::from_spec("SPV Device.WiFi.SSID.1.SSID=acme-lab").map_err(anyhow::Error::msg)?],
        ..AcsScript::default()
    };
    let cfg = ServerConfig { script, credentials: None, auth_mode: AuthMode::Digest, tls: None, keep_alive: false, backlog: None };
    let acs = AcsServer::start(([127, 0, 0, 1], 0).into(), cfg).await?;
    let transport = TransportConfig {
        timeout: Duration::from_secs(10),
        max_body: DEFAULT_MAX_BODY,
        tls: client_config(&TlsOptions::default())?,
        credentials: None,
    };
    // One CPE, one-shot, on the engine; it blocks, so it runs beside this runtime's ACS.
    let mut plan = Plan::new(model.clone(), acs.url(), transport, 1);
    plan.return_states = true;
    let outcome = tokio::task::spawn_blocking(move || engine::run(plan, None, &Outputs::default(), Vec::new())).await??;
    acs.stop().await;
    let cpe = outcome.states.first().cloned().ok_or_else(|| anyhow::anyhow!("no CPE state came back"))?;
    let report = &outcome.total.outcomes;
    let report = (report.completed, report.failed_sessions());
    let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, UnixMillis::now());
    println!("sessions completed: {}, failed: {}", report.0, report.1);
    for name in ["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.2.SSID"] {
        println!("{name} = {}", dev.get(name).unwrap_or_default());
    }
    Ok(())
}
