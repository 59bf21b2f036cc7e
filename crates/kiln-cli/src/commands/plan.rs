use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_plan::{ImageGraph, PlanOptions, Reason, changes, render};

use crate::cli::{PlanArgs, PlanFormat, SelectArgs};
use crate::commands::registry;
use crate::factory_dir;

/// The plan for a selection, and the graph it was made from (`kiln plan`, `kiln build --queue`).
pub fn compute(
    factory: Option<&Path>,
    select: &SelectArgs,
) -> anyhow::Result<(ImageGraph, kiln_plan::Plan)> {
    let (dir, f) = factory_dir::open(factory)?;
    let graph = ImageGraph::from_factory(&f).context("building the image graph")?;

    let seeds: Vec<(usize, Reason)> = if select.outdated || select.upstream_updates {
        let mut reg = registry::open(factory)?;
        let selection = super::selection(select)?;
        kiln_pipeline::seeds(&f, &graph, &mut reg, &selection)?
    } else if let Some(rev) = &select.since {
        let ch = kiln_plan::changes_since(&dir, rev)?;
        tracing::info!(files = ch.paths.len(), rev, "changed files");
        changes::seeds(&f, &graph, &ch)
    } else if select.all {
        (0..graph.len()).map(|i| (i, Reason::Requested)).collect()
    } else if !select.images.is_empty() {
        let mut seeds = Vec::new();
        let mut unknown = Vec::new();
        for name in &select.images {
            match graph.index_of(name) {
                Some(i) => seeds.push((i, Reason::Requested)),
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<&str> = (0..graph.len()).map(|i| graph.name(i)).collect();
            bail!(
                "unknown image{} {}; the factory has: {}",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                known.join(", ")
            );
        }
        seeds
    } else {
        bail!("{}", super::NOTHING_SELECTED);
    };

    let opts = PlanOptions {
        cascade: !select.no_cascade,
        max_parallel: select.max_parallel,
    };
    let plan = kiln_plan::plan(&graph, &seeds, opts);
    Ok((graph, plan))
}

pub fn run(factory: Option<&Path>, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let (_, plan) = compute(factory, &args.select)?;
    let out = match args.format {
        PlanFormat::Text => render::text(&plan),
        PlanFormat::Json => render::json(&plan) + "\n",
        PlanFormat::GithubMatrix => render::github_matrix(&plan),
        PlanFormat::GitlabPipeline => render::gitlab_pipeline(&plan),
    };
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
