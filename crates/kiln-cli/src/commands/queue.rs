//! `kiln build --queue` and `kiln jobs`: the plan becomes jobs in the registry, each waiting for
//! the jobs of its parents in the same plan; `kiln worker` processes take it from there.

use std::path::Path;
use std::process::ExitCode;

use kiln_registry::NewJob;

use crate::cli::{BuildArgs, ValidateFormat};
use crate::commands::registry;

pub fn enqueue(factory: Option<&Path>, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let (graph, plan) = super::plan::compute(factory, &args.select)?;
    let planned: Vec<&str> = plan.iter().map(|(_, p)| p.image.as_str()).collect();
    let jobs: Vec<NewJob> = planned
        .iter()
        .map(|&image| {
            let i = graph
                .index_of(image)
                .expect("planned images are in the graph");
            NewJob {
                image: image.to_string(),
                depends_on: graph
                    .parents(i)
                    .iter()
                    .map(|&p| graph.name(p).to_string())
                    .filter(|p| planned.contains(&p.as_str()))
                    .collect(),
            }
        })
        .collect();
    if jobs.is_empty() {
        println!("nothing to build: no job queued");
        return Ok(ExitCode::SUCCESS);
    }
    let mut reg = registry::open(factory)?;
    let batch = reg.enqueue(&registry::actor(&args.who)?, &jobs)?;
    if args.format == ValidateFormat::Json {
        let out = serde_json::json!({
            "batch": batch,
            "jobs": jobs.iter().map(|j| serde_json::json!({"image": j.image, "depends_on": j.depends_on})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("queued batch {batch}: {} jobs", jobs.len());
        for j in &jobs {
            if j.depends_on.is_empty() {
                println!("  {}", j.image);
            } else {
                println!("  {} (after {})", j.image, j.depends_on.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn jobs(
    factory: Option<&Path>,
    batch: Option<&str>,
    format: ValidateFormat,
) -> anyhow::Result<ExitCode> {
    let jobs = registry::open(factory)?.jobs(batch)?;
    if format == ValidateFormat::Json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<8} {:<16} {:<8} {:<28} ERROR",
        "IMAGE", "STATUS", "WORKER", "ATTEMPTS", "VERSION"
    );
    for j in &jobs {
        println!(
            "{:<20} {:<8} {:<16} {:<8} {:<28} {}",
            j.image,
            j.status,
            j.worker.as_deref().unwrap_or("-"),
            j.attempts,
            j.version.as_deref().unwrap_or("-"),
            j.error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
