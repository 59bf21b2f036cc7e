use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_pipeline::{Outcome, RunOptions};

use crate::cli::{BuildArgs, ValidateFormat};
use crate::commands::{publish_stage, registry};
use crate::factory_dir;
use crate::progress::Terminal;

/// `quiet` (`-q`) silences stage progress; errors and the final summary still print.
pub fn run(factory: Option<&Path>, args: &BuildArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    if args.queue {
        return super::queue::enqueue(factory, args);
    }
    let (_, f) = factory_dir::open(factory)?;
    if !is_root() {
        bail!(
            "kiln build needs root: it bootstraps with mmdebstrap and provisions in mount namespaces"
        );
    }
    // Ctrl-C: running commands are stopped and every guard cleans up before exit.
    let _ = ctrlc::set_handler(|| {
        kiln_build::cmd::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let selection = super::selection(&args.select)?;
    let mut reg = registry::open(factory)?;
    let opts = RunOptions {
        selection,
        cascade: !args.select.no_cascade,
        max_parallel: args.select.max_parallel,
        test: !args.no_test,
        fail_fast: args.fail_fast,
        cache_dir: args.cache.cache_dir.clone(),
        actor: registry::actor(&args.who)?,
    };
    // Webhooks are delivered from a thread of their own while the build runs.
    let notifier = kiln_publish::notify::Background::start(
        registry::location(factory)?,
        f.settings.name.as_str().to_string(),
        f.settings.webhooks.clone(),
        crate::commands::notify::AFTER_CHANGE,
    );
    let before = super::publish::channel_map(&mut reg)?;
    let progress = Terminal::new(quiet);
    let results = kiln_pipeline::run(&f, &mut reg, &opts, &progress);
    drop(progress);
    let json = args.format == ValidateFormat::Json;
    let published = match &results {
        Ok(results) if !args.no_publish && !kiln_build::cmd::interrupted() => {
            let say = |l: &str| {
                if quiet {
                } else if json {
                    #[allow(clippy::print_stderr, reason = "progress beside the JSON on stdout")]
                    {
                        eprintln!("{l}");
                    }
                } else {
                    println!("{l}");
                }
            };
            publish_stage::run(factory, &f, &mut reg, &opts.actor, results, &before, &say)?
        }
        _ => Vec::new(),
    };
    if let Some(n) = notifier {
        n.finish();
    }
    let results = results.context("running the pipeline")?;
    if json {
        let mut out = serde_json::to_value(&results)?;
        for item in out.as_array_mut().into_iter().flatten() {
            let mine: Vec<_> = published
                .iter()
                .filter(|e| item["image"] == e.image.as_str())
                .collect();
            if !mine.is_empty() {
                item["published"] = serde_json::to_value(mine)?;
            }
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("\n{:<20} {:<8} {:<28} RESULT", "IMAGE", "", "VERSION");
        for r in &results {
            let (word, version, detail) = match &r.outcome {
                Outcome::Built {
                    version,
                    promoted_to: Some(c),
                    ..
                } => ("built", version.as_str(), format!("promoted to {c}")),
                Outcome::Built {
                    version,
                    not_promoted,
                    ..
                } => (
                    "built",
                    version.as_str(),
                    format!("not promoted: {}", not_promoted.join("; ")),
                ),
                Outcome::Reused { version } => (
                    "current",
                    version.as_str(),
                    "up to date (same fingerprint)".to_string(),
                ),
                Outcome::Failed { version, error } => (
                    "FAILED",
                    version.as_deref().unwrap_or("-"),
                    first_line(error),
                ),
                Outcome::Skipped { because } => ("skipped", "-", because.clone()),
            };
            println!("{:<20} {:<8} {:<28} {}", r.image, word, version, detail);
        }
        for e in published.iter().filter(|e| e.result != "published") {
            println!(
                "{:<20} {:<8} {:<28} {}",
                e.image,
                e.cloud,
                e.result,
                first_line(&e.detail)
            );
        }
        for r in &results {
            if let Outcome::Failed { error, .. } = &r.outcome {
                println!("\n{} failed:\n{error}", r.image);
            }
        }
    }
    let publish_failed = published.iter().filter(|e| e.result == "failed").count();
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skipped { .. }))
        .count();
    if kiln_build::cmd::interrupted() {
        bail!("interrupted");
    }
    if failed + skipped > 0 {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("error: {failed} image(s) failed, {skipped} skipped");
        }
        return Ok(ExitCode::from(1));
    }
    if publish_failed > 0 {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "error: built and recorded, but {publish_failed} publish step(s) failed: re-run `kiln publish BUCKET VERSION --target CLOUD`"
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(120).collect()
}

pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
