//! One module per subcommand; each returns the process exit code.

use std::process::ExitCode;

use anyhow::bail;
use kiln_pipeline::Selection;

use crate::cli::{Cli, Command, SelectArgs};

mod build;
mod cache;
mod init;
pub(crate) mod notify;
mod outdated;
mod plan;
mod publish;
mod publish_stage;
mod queue;
mod reap;
pub(crate) mod registry;
mod scan;
mod serve;
mod test;
mod validate;
mod worker;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let factory = cli.global.factory.as_deref();
    match cli.command {
        Command::Init { dir } => init::run(&dir),
        Command::Validate { format } => validate::run(factory, format),
        Command::Plan(args) => plan::run(factory, &args),
        Command::Build(args) => build::run(factory, &args, cli.global.quiet),
        Command::Cache { command } => cache::run(command),
        Command::Outdated { out } => outdated::run(factory, out.format),
        Command::Reap { dry_run, who, out } => {
            let code = reap::run(factory, dry_run, &who, out.format);
            notify::after_change(factory);
            code
        }
        Command::Notify { command } => notify::run(factory, command),
        Command::Test(args) => test::run(&args),
        Command::Scan(args) => scan::run(factory, &args),
        Command::Vulndb { command } => scan::vulndb(factory, command),
        Command::Serve(args) => serve::run(factory, &args),
        Command::Worker(args) => worker::run(factory, &args),
        Command::Jobs { batch, out } => queue::jobs(factory, batch.as_deref(), out.format),
        Command::Token { command } => serve::token(factory, command),
        Command::CheckPlan(args) => serve::check_plan(factory, &args),
        Command::Publish(args) => publish::run(factory, &args),
        other => {
            let changes = matches!(
                other,
                Command::Promote { .. }
                    | Command::Revoke { .. }
                    | Command::Restore { .. }
                    | Command::Approve { .. }
                    | Command::Channel { .. }
            );
            let code = registry::run(factory, other);
            if changes {
                notify::after_change(factory);
            }
            code
        }
    }
}

pub(crate) const NOTHING_SELECTED: &str =
    "nothing selected: give image names, --all, --since REV, --outdated or --upstream-updates";

/// The pipeline's selection from the command line's (clap keeps them mutually exclusive).
pub(crate) fn selection(a: &SelectArgs) -> anyhow::Result<Selection> {
    Ok(if a.outdated {
        Selection::Outdated
    } else if a.upstream_updates {
        Selection::UpstreamUpdates
    } else if a.all {
        Selection::All
    } else if let Some(rev) = &a.since {
        Selection::Since(rev.clone())
    } else if !a.images.is_empty() {
        Selection::Images(a.images.clone())
    } else {
        bail!("{NOTHING_SELECTED}");
    })
}
