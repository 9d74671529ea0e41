//! The subcommands of the binary, each a function from its flags to an exit code: `run` (one
//! CPE or a fleet, and sweeps), `acs` (the embedded ACS as a server), `check` (a profile) and
//! `report` (merging interval logs); and what they share (profiles, transport settings).
//!
//! Exit codes: 0 ok, 1 a runtime failure, 2 a usage or profile error, 99 a breached threshold.
//! A command's `Err` is a usage, profile or file error (2) unless it is a [`RuntimeFailure`] (1).

pub mod acs;
pub mod check;
pub mod report;
pub mod run;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::RunArgs;
use crate::cwmp::envelope::{urn_minor, URNS};
use crate::model::Model;
use crate::transport::tls::{client_config, TlsOptions};
use crate::transport::{Credentials, TransportConfig};

/// A failure after a run started (the embedded Controller's broker cannot be reached, a stop
/// signal while it connects): the binary exits **1** for it. Every other error a command returns
/// is found before anything starts (a usage, profile or file error) and exits **2**; see
/// [`exit_code`]. Displays as the error it wraps (`{:#}`: with its causes).
#[derive(Debug)]
pub struct RuntimeFailure(pub anyhow::Error);

impl std::fmt::Display for RuntimeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for RuntimeFailure {}

impl RuntimeFailure {
    /// `e` as a runtime failure, in an `anyhow::Error` (for `?`).
    pub fn wrap(e: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(RuntimeFailure(e))
    }
}

/// The exit code of a command that failed with `e`: 1 if a [`RuntimeFailure`] is anywhere in its
/// chain (context added on the way up does not hide it), else 2.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<RuntimeFailure>()) {
        1
    } else {
        2
    }
}

/// A current-thread runtime for a subcommand.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// A watch that turns true on SIGINT or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        info!("signal received: finishing the open session, then stopping");
        let _ = tx.send(true);
    });
    rx
}

pub fn load(path: Option<&std::path::Path>, cwmp_version: Option<&str>) -> anyhow::Result<Model> {
    let mut model = crate::config::load_or_builtin(path)?;
    if let Some(v) = cwmp_version {
        let minor = urn_minor(v).with_context(|| format!("--cwmp-version `{v}` is not cwmp-1-0 … cwmp-1-4"))?;
        model.cwmp_urn = URNS[minor as usize].into();
    }
    Ok(model)
}

pub fn credentials(user: Option<String>, pass: Option<String>, what: &str) -> anyhow::Result<Option<Credentials>> {
    match (user, pass) {
        (None, None) => Ok(None),
        (Some(username), password) => Ok(Some(Credentials { username, password: password.unwrap_or_default() })),
        (None, Some(_)) => anyhow::bail!("{what}: --acs-password needs --acs-username"),
    }
}

pub fn transport_config(args: &RunArgs) -> anyhow::Result<TransportConfig> {
    if args.tls_skip_verify {
        warn!("--tls-skip-verify=true: the ACS's certificate is NOT verified; anyone on the path can impersonate it. Use only for local tests.");
    }
    let tls = client_config(&TlsOptions {
        ca_cert_file: args.ca_cert_file.clone(),
        skip_verify: args.tls_skip_verify,
        client_cert: args.client_cert.clone(),
        client_key: args.client_key.clone(),
        no_system_roots: false,
    })?;
    Ok(TransportConfig {
        timeout: args.timeout,
        max_body: args.max_body,
        tls,
        credentials: credentials(args.acs_username.clone(), args.acs_password.clone(), "run")?,
    })
}
