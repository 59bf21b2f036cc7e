//! The command-line contract (DESIGN.md §4). Help text here is the reference documentation.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln — a golden image factory: define, plan, build, test, scan, record, publish, serve.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Factory directory (default: the nearest parent of the current directory holding kiln.hcl).
    #[arg(long, global = true, env = "KILN_FACTORY", value_name = "DIR")]
    pub factory: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). KILN_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a working factory: a hardened base-debian12 and a child app-web, with checks.
    Init {
        /// Directory to create (must not already hold a factory).
        dir: PathBuf,
    },
    /// Check every definition file; errors are printed as PATH:LINE:COL: error: MESSAGE.
    Validate {
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// List the images that must be built, why, and in which order (waves, batches).
    Plan(PlanArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Images to build (plus their descendants unless --no-cascade).
    #[arg(value_name = "IMAGE", conflicts_with_all = ["all", "since"])]
    pub images: Vec<String>,
    /// Every image of the factory.
    #[arg(long, conflicts_with = "since")]
    pub all: bool,
    /// Images whose directory changed since this git revision (or whose source changed in
    /// kiln.hcl), plus their descendants.
    #[arg(long, value_name = "REV")]
    pub since: Option<String>,
    /// Do not add the descendants of the selected images.
    #[arg(long)]
    pub no_cascade: bool,
    /// Split each wave into batches of at most N images, built one batch after another.
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<NonZeroUsize>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Waves and reasons, for people.
    Text,
    /// `{"waves":[[{"image":…,"reason":…}],…]}`
    Json,
    /// `$GITHUB_OUTPUT` lines: batches=N, matrix=…, batch_K=…
    GithubMatrix,
    /// A GitLab child-pipeline YAML, one stage per batch.
    GitlabPipeline,
}
