//! One module per subcommand; each returns the process exit code.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

mod build;
mod cache;
mod init;
mod plan;
pub(crate) mod registry;
mod test;
mod validate;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let factory = cli.global.factory.as_deref();
    match cli.command {
        Command::Init { dir } => init::run(&dir),
        Command::Validate { format } => validate::run(factory, format),
        Command::Plan(args) => plan::run(factory, &args),
        Command::Build(args) => build::run(factory, &args),
        Command::Cache { command } => cache::run(command),
        Command::Test(args) => test::run(&args),
        other => registry::run(factory, other),
    }
}
