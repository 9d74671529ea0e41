//! The `cpe-sim` binary: parse the flags, check them into a plan (usage errors exit 2 before
//! anything starts), set up logging, run the subcommand, map its outcome to the exit code
//! (0 ok, 1 runtime failure, 2 usage or profile error, 99 a breached threshold).

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use cpe_sim::cli::{Args, Command, ReportCommand};
use cpe_sim::commands;
use cpe_sim::console;
use cpe_sim::plan::{self, SweepFlags};
use cpe_sim::scenario;
use tracing::error;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before anything opens a descriptor: a closed stderr must not become a socket's number.
    console::guard_std_fds();
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A scenario file fills the flags not given (on the command line or in the environment); the
    // result is checked below like any flags.
    let scenario = match &mut args.command {
        Some(Command::Run(r)) => {
            let sub = matches.subcommand_matches("run");
            let given = |id: &str| {
                sub.and_then(|m| m.value_source(id)).is_some_and(|s| matches!(s, ValueSource::CommandLine | ValueSource::EnvVariable))
            };
            let prepared = plan::check_scenario_flags(r.time_scale, r.acs_backlog)
                .map_err(|e| e.to_string())
                .and_then(|()| scenario::prepare(&r.scenario, r.time_scale, &mut r.run, &given).map_err(|e| e.to_string()));
            match prepared {
                Ok(s) => Some(s),
                Err(e) => {
                    console::err_line(&format!("error: {e}"));
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    // Every flag of a run or sweep is checked before any runtime, listener or ACS starts.
    let checked = match validate_flags(&args) {
        Ok(c) => c,
        Err(e) => {
            // A value the scenario file gave is the file's error (file, line, key), by the same rule.
            let e = scenario.as_ref().and_then(|s| s.explain(&e)).map_or_else(|| e.to_string(), |s| s.to_string());
            console::err_line(&format!("error: {e}"));
            return ExitCode::from(2);
        }
    };
    let level = match &args.command {
        Some(Command::Acs(a)) => &a.log_level,
        Some(Command::Sweep(s)) => &s.run.log_level,
        Some(Command::Run(r)) => &r.run.log_level,
        _ => &args.run.log_level,
    };
    let Ok(level) = level.parse::<tracing::Level>() else {
        console::err_line(&format!("error: --log-level `{level}` is not one of error, warn, info, debug, trace"));
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A failed log write is reported with eprintln!, which panics on a broken stderr pipe.
        .log_internal_errors(false)
        .init();
    let result = match args.command {
        Some(Command::Check { profile, cpe_index }) => commands::check::check(&profile, cpe_index),
        Some(Command::Acs(a)) => commands::runtime().and_then(|rt| rt.block_on(commands::acs::serve(*a))),
        Some(Command::Sweep(s)) => {
            commands::run::run(&s.run, checked, Some((&s.multipliers, s.step_duration, s.sweep_json.as_deref())), None)
        }
        Some(Command::Run(r)) => {
            let story = scenario.map(|s| commands::run::Story { scenario: s, acs_backlog: r.acs_backlog });
            commands::run::run(&r.run, checked, None, story)
        }
        Some(Command::Report(ReportCommand::Merge { files, report_json })) => commands::report::merge(&files, report_json.as_deref()),
        None => commands::run::run(&args.run, checked, None, None),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            // A runtime failure (1) is typed as one; any other error was found before anything started (2).
            ExitCode::from(commands::exit_code(&e))
        }
    }
}

/// The flags of a run (`cpe-sim`) or a sweep, validated (what they parse to, once); other
/// subcommands check their own.
fn validate_flags(args: &Args) -> Result<Option<plan::Checked>, plan::UsageError> {
    match &args.command {
        None => plan::validate(&args.run, None).map(Some),
        Some(Command::Run(r)) => plan::validate(&r.run, None).map(Some),
        Some(Command::Sweep(s)) => {
            let sweep = SweepFlags { multipliers: &s.multipliers, step_duration: s.step_duration, sweep_json: s.sweep_json.as_deref() };
            plan::validate(&s.run, Some(sweep)).map(Some)
        }
        Some(_) => Ok(None),
    }
}
