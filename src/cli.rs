//! The command line: clap-derive data only; `main.rs` turns it into a run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A TR-069 (CWMP) CPE simulator and ACS load generator.
///
/// Without --acs-url, one CPE runs a full bootstrap session against an ACS embedded in this
/// process (a GenieACS-like script: discover the tree, read it, provision it) and prints the
/// exchange.
#[derive(Debug, Parser)]
#[command(name = "cpe-sim", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags of a run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Device profile: a YAML file or a directory holding profile.yaml
    /// [default: the built-in example-tr181-gateway]
    #[arg(long, env = "CPE_SIM_PROFILE")]
    pub profile: Option<PathBuf>,

    /// ACS URL to inform. Omit it to use the embedded in-process ACS.
    #[arg(long, env = "CPE_SIM_ACS_URL")]
    pub acs_url: Option<String>,

    /// Log level: error, warn, info, debug (debug logs every SOAP body), trace
    #[arg(long, default_value = "info", env = "CPE_SIM_LOG_LEVEL")]
    pub log_level: String,

    /// Which CPE of the fleet to be (stamps serial, MAC and credentials: cpe-N)
    #[arg(long, default_value_t = 0)]
    pub cpe_index: u32,

    /// cwmp namespace to speak (cwmp-1-0 … cwmp-1-4), overriding the profile
    #[arg(long)]
    pub cwmp_version: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a profile and print what it defines
    Check {
        /// Profile file or directory
        #[arg(long)]
        profile: PathBuf,
        /// Print this CPE's Inform as it would be sent
        #[arg(long, default_value_t = 0)]
        cpe_index: u32,
    },
}
