//! `kiln publish`: one version to one cloud (AWS, Azure or GCP), with upload progress in bytes
//! per second; and the reconciliation that follows a revoke, restore or promote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use kiln_publish::aws::Conn;
use kiln_publish::aws::publish::{self, Request};

use crate::cli::{CloudEndpoints, PublishArgs, ValidateFormat};
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

/// Prints upload progress on stderr, a line per second at most: bytes sent of the file's
/// size, and the rate.
fn progress_printer(quiet: bool) -> Arc<dyn Fn(u64, u64) + Send + Sync> {
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    Arc::new(move |done, total| {
        let secs = started.elapsed().as_secs();
        if quiet || last.swap(secs, Ordering::Relaxed) == secs {
            return;
        }
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001) / 1e6;
        #[allow(clippy::print_stderr, reason = "progress beside the report on stdout")]
        {
            eprint!(
                "\r    uploading: {:.1} MB sent (file {:.1} MB) at {rate:.1} MB/s",
                done as f64 / 1e6,
                total as f64 / 1e6
            );
            let _ = std::io::stderr().flush();
        }
    })
}

/// The stored file of `format` for the version, checked to be there unless nothing is uploaded.
fn stored_file(
    v: &kiln_registry::Version,
    format: &str,
    dir: &Path,
    dry_run: bool,
) -> anyhow::Result<PathBuf> {
    let path = v
        .artifacts
        .iter()
        .find(|a| a.platform == "file" && a.format == format)
        .map(|a| disk_path(&a.external_id, dir));
    if !dry_run
        && let Some(p) = &path
        && !p.is_file()
    {
        bail!(
            "the {format} file {} is gone from the store (reaped?): nothing to upload",
            p.display()
        );
    }
    Ok(path.unwrap_or_default())
}

fn who_line(items: &[&[String]]) -> String {
    items
        .iter()
        .flat_map(|x| x.iter())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
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
    let actor = registry::actor(&args.who)?;
    let json = args.out.format == ValidateFormat::Json;
    let progress = progress_printer(json);
    match target.cloud.as_str() {
        "azure" => {
            let disk = stored_file(&v, "vhd", &dir, args.dry_run)?;
            let req = kiln_publish::azure::publish::Request {
                target,
                accounts: f.accounts.as_ref(),
                endpoints: args.endpoints.azure(),
                publisher: f.settings.name.as_str(),
                disk: &disk,
                parallel: args.parallel,
                dry_run: args.dry_run,
            };
            let rep = kiln_publish::azure::publish::publish(
                &mut r,
                &actor,
                &args.bucket,
                &id,
                &req,
                progress.as_ref(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else if rep.dry_run {
                println!(
                    "would publish {}/{} (channels {}) to the gallery in {} and share the gallery with {}",
                    rep.bucket,
                    rep.version,
                    rep.channels.join(", "),
                    rep.regions.join(", "),
                    who_line(&[&rep.subscriptions, &rep.tenants])
                );
            } else {
                if let Some(b) = &rep.blob {
                    println!(
                        "\nblob {}: {} range(s) sent, {} all-zero skipped{} ({:.1}s)",
                        b.url,
                        b.ranges_sent,
                        b.ranges_zero,
                        if b.reused { ", already complete" } else { "" },
                        b.seconds
                    );
                }
                if rep.definition_created {
                    println!("image definition {} created", rep.bucket);
                }
                println!(
                    "gallery version {} {} in {} (gallery shares +{} -{})",
                    rep.gallery_version.as_deref().unwrap_or_default(),
                    if rep.created { "created" } else { "found" },
                    rep.regions.join(", "),
                    rep.shares_added,
                    rep.shares_removed
                );
                println!(
                    "shared with {}",
                    who_line(&[&rep.subscriptions, &rep.tenants])
                );
            }
        }
        "gcp" => {
            let disk = stored_file(&v, "gce", &dir, args.dry_run)?;
            let req = kiln_publish::gcp::publish::Request {
                target,
                accounts: f.accounts.as_ref(),
                endpoints: args.endpoints.gcp(),
                disk: &disk,
                dry_run: args.dry_run,
            };
            let rep = kiln_publish::gcp::publish::publish(
                &mut r,
                &actor,
                &args.bucket,
                &id,
                &req,
                progress.as_ref(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else if rep.dry_run {
                println!(
                    "would publish {}/{} (channels {}) as a GCP image stored in {} and share it with {}",
                    rep.bucket,
                    rep.version,
                    rep.channels.join(", "),
                    target.regions[0],
                    rep.projects.join(", ")
                );
            } else {
                if let Some(o) = &rep.object {
                    println!(
                        "\nobject {}: {:.1} MB sent, {:.1} MB resumed{} ({:.1}s)",
                        o.uri,
                        o.bytes_sent as f64 / 1e6,
                        o.bytes_resumed as f64 / 1e6,
                        if o.reused { ", already complete" } else { "" },
                        o.seconds
                    );
                }
                println!(
                    "image {} {} (image users +{} -{})",
                    rep.image.as_deref().unwrap_or_default(),
                    if rep.created { "created" } else { "found" },
                    rep.members_added,
                    rep.members_removed
                );
                println!("shared with {}", rep.projects.join(", "));
            }
        }
        _ => run_aws(&mut r, &dir, target, &f, args, &v, &id, progress)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments, reason = "one call site, the run above")]
fn run_aws(
    r: &mut kiln_registry::Registry,
    dir: &Path,
    target: &kiln_spec::model::PublishTarget,
    f: &kiln_spec::Factory,
    args: &PublishArgs,
    v: &kiln_registry::Version,
    id: &str,
    progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
) -> anyhow::Result<()> {
    let disk = stored_file(v, "raw", dir, args.dry_run)?;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = rt.block_on(publish::publish(
        r,
        &registry::actor(&args.who)?,
        &args.bucket,
        id,
        &req,
        progress,
    ))?;
    if args.out.format == ValidateFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let who = who_line(&[
        &report.accounts,
        &report.organizations,
        &report.organizational_units,
    ]);
    if report.dry_run {
        println!(
            "would publish {}/{} (channels {}) to {} and share it with {who}",
            report.bucket,
            report.version,
            report.channels.join(", "),
            target.regions.join(", "),
        );
        return Ok(());
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
    println!("shared with {who}");
    Ok(())
}

/// After a revocation, a restore or a promotion: brings every affected version's published
/// images in line with the registry on each cloud kiln.hcl publishes to (AWS launch permissions,
/// tags, deprecation and SSM parameters; the Azure version's place in `latest`; the GCP image's
/// users and deprecation). Endpoint overrides come from the environment
/// (`KILN_AWS_ENDPOINT_URL`, `KILN_AZURE_MANAGEMENT_URL`, `KILN_GCP_COMPUTE_URL`, …).
/// Returns one line per image touched.
pub fn reconcile_after(factory: Option<&Path>, versions: &[String]) -> anyhow::Result<Vec<String>> {
    let (_, f) = factory_dir::open(factory)?;
    if f.settings.publish.is_empty() {
        return Ok(Vec::new());
    }
    let endpoints = CloudEndpoints::from_env();
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let mut r = registry::open(factory)?;
    for target in &f.settings.publish {
        for id in versions {
            let published = r
                .version(id)?
                .artifacts
                .iter()
                .any(|a| a.platform == target.cloud);
            if !published {
                continue;
            }
            let done = match target.cloud.as_str() {
                "azure" => kiln_publish::azure::publish::reconcile(&mut r, &endpoints.azure(), id),
                "gcp" => kiln_publish::gcp::publish::reconcile(
                    &mut r,
                    target,
                    f.accounts.as_ref(),
                    &endpoints.gcp(),
                    id,
                ),
                _ => reconcile_aws(&mut r, target, f.accounts.as_ref(), id),
            };
            match done {
                Ok(l) => lines.extend(l),
                Err(e) => failed.push(format!("{} {id}: {e}", target.cloud)),
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "the registry is updated, but the clouds are not yet: {}; re-run `kiln publish BUCKET VERSION --target CLOUD` for each",
            failed.join("; ")
        );
    }
    Ok(lines)
}

fn reconcile_aws(
    r: &mut kiln_registry::Registry,
    target: &kiln_spec::model::PublishTarget,
    accounts: Option<&kiln_spec::AccountMap>,
    id: &str,
) -> Result<Vec<String>, kiln_publish::PublishError> {
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
        .map_err(|e| kiln_publish::PublishError::Io(format!("async runtime: {e}")))?;
    let done = rt.block_on(publish::reconcile(r, accounts, &conn, id))?;
    Ok(done
        .images
        .iter()
        .map(|(region, ami, added, removed, note)| {
            format!(
                "  aws {region} {ami}: +{added} -{removed} launch permissions{}",
                note.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect())
}
