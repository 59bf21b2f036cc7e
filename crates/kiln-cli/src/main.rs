//! `kiln`: parses the command line, sets up logging and hands over to one command module.
//! Everything that is not argument handling or printing lives in the library crates.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod factory_dir;
mod init_files;
mod progress;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // anyhow's alternate Display prints the whole cause chain on one line.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            // 128 + SIGINT, as shells report a command stopped by Ctrl-C.
            if kiln_build::cmd::interrupted() {
                ExitCode::from(130)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("KILN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
