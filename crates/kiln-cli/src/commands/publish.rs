//! `kiln publish`: one version to one cloud, with upload progress in bytes per second.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use kiln_publish::aws::Conn;
use kiln_publish::aws::publish::{self, Request};

use crate::cli::{PublishArgs, ValidateFormat};
use crate::commands::registry;
use crate::factory_dir;

/// The raw disk's path: as recorded, or relative to the factory when recorded relative.
fn disk_path(recorded: &str, factory: &Path) -> PathBuf {
    let p = PathBuf::from(recorded);
    if p.is_absolute() || p.exists() {
        p
    } else {
        factory.join(p)
    }
}

pub fn run(factory: Option<&Path>, args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let (dir, f) = factory_dir::open(factory)?;
    let target = f
        .settings
        .publish
        .iter()
        .find(|t| t.cloud == args.target)
        .with_context(|| {
            format!(
                "kiln.hcl has no publish \"{}\" block: add one with the regions to publish to",
                args.target
            )
        })?;
    let mut r = registry::open(factory)?;
    let id = registry::resolve(&mut r, &args.bucket, &args.version_id)?;
    let v = r.version(&id)?;
    let raw = v
        .artifacts
        .iter()
        .find(|a| a.platform == "file" && a.format == "raw")
        .map(|a| disk_path(&a.external_id, &dir));
    let disk = raw.clone().unwrap_or_default();
    if !args.dry_run
        && let Some(p) = &raw
        && !p.is_file()
    {
        bail!(
            "the raw disk {} is gone from the store (reaped?): nothing to upload",
            p.display()
        );
    }
    let req = Request {
        target,
        accounts: f.accounts.as_ref(),
        conn: Conn {
            region: target.regions[0].clone(),
            endpoint: args.aws_endpoint_url.clone(),
            static_credentials: None,
        },
        disk: &disk,
        parallel: args.parallel,
        dry_run: args.dry_run,
    };
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let quiet = args.out.format == ValidateFormat::Json;
    let progress: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(move |done, total| {
        // A line per second at most: bytes sent, of the disk's size, and the rate.
        let secs = started.elapsed().as_secs();
        if quiet || last.swap(secs, Ordering::Relaxed) == secs {
            return;
        }
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001) / 1e6;
        #[allow(clippy::print_stderr, reason = "progress beside the report on stdout")]
        {
            eprint!(
                "\r    uploading: {:.1} MB sent (disk {:.1} MB) at {rate:.1} MB/s",
                done as f64 / 1e6,
                total as f64 / 1e6
            );
            let _ = std::io::stderr().flush();
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(publish::publish(
        &mut r,
        &registry::actor(&args.who)?,
        &args.bucket,
        &id,
        &req,
        progress,
    ))?;
    if args.out.format == ValidateFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let who: Vec<&str> = report
        .accounts
        .iter()
        .chain(&report.organizations)
        .chain(&report.organizational_units)
        .map(String::as_str)
        .collect();
    if report.dry_run {
        println!(
            "would publish {}/{} (channels {}) to {} and share it with {}",
            report.bucket,
            report.version,
            report.channels.join(", "),
            target.regions.join(", "),
            who.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = &report.snapshot {
        println!(
            "\nsnapshot {}: {} block(s) sent, {} all-zero skipped, {} resumed{} ({:.1}s)",
            s.id,
            s.blocks_sent,
            s.blocks_zero,
            s.blocks_resumed,
            if s.reused { ", already complete" } else { "" },
            s.seconds
        );
    }
    for i in &report.images {
        println!(
            "{:<14} {} {} (+{} -{} launch permissions)",
            i.region,
            i.ami,
            if i.created { "created" } else { "found" },
            i.permissions_added,
            i.permissions_removed
        );
    }
    for p in &report.parameters {
        println!("parameter {p}");
    }
    println!("shared with {}", who.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// After a revocation or a restore: brings the AMIs of every affected version in line (launch
/// permissions pulled or given back, tags, deprecation). Only when kiln.hcl publishes to AWS and
/// a version has AMIs; the endpoint override comes from `KILN_AWS_ENDPOINT_URL`.
/// Returns one line per AMI touched.
pub fn reconcile_after(factory: Option<&Path>, versions: &[String]) -> anyhow::Result<Vec<String>> {
    let (_, f) = factory_dir::open(factory)?;
    let Some(target) = f.settings.publish.iter().find(|t| t.cloud == "aws") else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    let mut r = registry::open(factory)?;
    let conn = Conn {
        region: target.regions[0].clone(),
        endpoint: std::env::var("KILN_AWS_ENDPOINT_URL")
            .ok()
            .filter(|s| !s.is_empty()),
        static_credentials: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut failed = Vec::new();
    for id in versions {
        let has_amis = r.version(id)?.artifacts.iter().any(|a| a.platform == "aws");
        if !has_amis {
            continue;
        }
        match rt.block_on(publish::reconcile(&mut r, f.accounts.as_ref(), &conn, id)) {
            Ok(done) => {
                for (region, ami, added, removed, note) in &done.images {
                    lines.push(format!(
                        "  aws {region} {ami}: +{added} -{removed} launch permissions{}",
                        note.as_deref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ));
                }
            }
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "the registry is updated, but AWS is not yet: {}; re-run `kiln publish BUCKET VERSION` for each",
            failed.join("; ")
        );
    }
    Ok(lines)
}
