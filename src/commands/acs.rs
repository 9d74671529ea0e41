//! `cpe-sim acs`: the embedded ACS as a server until SIGINT/SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use tracing::info;

use super::{credentials, shutdown_signal};
use crate::acs::server::{AcsServer, AuthMode, ServerConfig};
use crate::acs::{AcsRpc, AcsScript, PushedTo};
use crate::cli::AcsArgs;

/// Serves the embedded ACS as `args` say until SIGINT/SIGTERM.
pub async fn serve(args: AcsArgs) -> anyhow::Result<ExitCode> {
    let mut every_session = Vec::new();
    for spec in &args.push {
        every_session.push(AcsRpc::from_spec(spec).map_err(anyhow::Error::msg).context("--push")?);
    }
    let auth_mode = match args.auth.as_str() {
        "digest" => AuthMode::Digest,
        "basic" => AuthMode::Basic,
        other => anyhow::bail!("--auth `{other}`: use digest or basic"),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(crate::transport::tls::server_config(cert, key, args.tls_client_ca.as_deref())?),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let cfg = ServerConfig {
        script: AcsScript {
            bootstrap_provisioning: !args.no_provisioning,
            every_session,
            push_once: (args.push_mode == "once").then(PushedTo::default),
            ..AcsScript::default()
        },
        credentials: credentials(args.acs_username, args.acs_password, "acs")?,
        auth_mode,
        tls,
        keep_alive: args.keep_alive,
        backlog: Some(args.backlog),
    };
    let server = AcsServer::start(args.bind, cfg).await.with_context(|| format!("binding {}", args.bind))?;
    info!(backlog = args.backlog, push_mode = %args.push_mode, "embedded ACS listening at {} (Ctrl-C to stop)", server.url());
    let mut shutdown = shutdown_signal();
    let _ = shutdown.changed().await;
    let stats = server.stats();
    info!(
        sessions_started = stats.sessions_started,
        sessions_completed = stats.sessions_completed,
        auth_challenges = stats.auth_challenges,
        bad_requests = stats.bad_requests,
        "embedded ACS stopped"
    );
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}
