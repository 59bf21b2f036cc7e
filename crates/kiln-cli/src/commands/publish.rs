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

/// How a publish runs: from `kiln publish`'s flags, or from the environment in `kiln build`.
#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    pub dry_run: bool,
    pub endpoints: CloudEndpoints,
    pub aws_endpoint: Option<String>,
    /// No upload progress on stderr.
    pub quiet: bool,
}

/// One version published to one cloud: the report (for `--format json`) and the lines a person
/// reads.
#[derive(Debug)]
pub struct Published {
    pub json: serde_json::Value,
    pub lines: Vec<String>,
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
    let json = args.out.format == ValidateFormat::Json;
    let opts = Options {
        parallel: args.parallel,
        dry_run: args.dry_run,
        endpoints: args.endpoints.clone(),
        aws_endpoint: args.aws_endpoint_url.clone(),
        quiet: json,
    };
    let actor = registry::actor(&args.who)?;
    let done = publish_to(&mut r, &dir, &f, target, &args.bucket, &id, &opts, &actor)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&done.json)?);
    } else {
        if !args.dry_run {
            println!();
        }
        for l in &done.lines {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes `bucket`/`id` to `target`'s cloud: every check, the upload, the image, the sharing.
/// A refusal stays a [`kiln_publish::PublishError`] inside the error, for callers that tell an
/// ineligible version from a failure.
#[allow(
    clippy::too_many_arguments,
    reason = "the factory, registry and version, spelled out"
)]
pub fn publish_to(
    r: &mut kiln_registry::Registry,
    dir: &Path,
    f: &kiln_spec::Factory,
    target: &kiln_spec::model::PublishTarget,
    bucket: &str,
    id: &str,
    opts: &Options,
    actor: &kiln_registry::Actor,
) -> anyhow::Result<Published> {
    let v = r.version(id)?;
    let progress = progress_printer(opts.quiet);
    let regions = target.regions.join(", ");
    match target.cloud.as_str() {
        "azure" => {
            let disk = stored_file(&v, "vhd", dir, opts.dry_run)?;
            let req = kiln_publish::azure::publish::Request {
                target,
                accounts: f.accounts.as_ref(),
                endpoints: opts.endpoints.azure(),
                publisher: f.settings.name.as_str(),
                disk: &disk,
                parallel: opts.parallel,
                dry_run: opts.dry_run,
            };
            let rep = kiln_publish::azure::publish::publish(
                r,
                actor,
                bucket,
                id,
                &req,
                progress.as_ref(),
            )?;
            let who = who_line(&[&rep.subscriptions, &rep.tenants]);
            let mut lines = Vec::new();
            if rep.dry_run {
                lines.push(format!(
                    "would publish {}/{} (channels {}) to the gallery in {regions} and share the gallery with {who}",
                    rep.bucket,
                    rep.version,
                    rep.channels.join(", "),
                ));
            } else {
                if let Some(b) = &rep.blob {
                    lines.push(format!(
                        "blob {}: {} range(s) sent, {} all-zero skipped{} ({:.1}s)",
                        b.url,
                        b.ranges_sent,
                        b.ranges_zero,
                        if b.reused { ", already complete" } else { "" },
                        b.seconds
                    ));
                }
                if rep.definition_created {
                    lines.push(format!("image definition {} created", rep.bucket));
                }
                lines.push(format!(
                    "gallery version {} {} in {} (gallery shares +{} -{})",
                    rep.gallery_version.as_deref().unwrap_or_default(),
                    if rep.created { "created" } else { "found" },
                    rep.regions.join(", "),
                    rep.shares_added,
                    rep.shares_removed
                ));
                lines.push(format!("shared with {who}"));
            }
            Ok(Published {
                json: serde_json::to_value(&rep)?,
                lines,
            })
        }
        "gcp" => {
            let disk = stored_file(&v, "gce", dir, opts.dry_run)?;
            let req = kiln_publish::gcp::publish::Request {
                target,
                accounts: f.accounts.as_ref(),
                endpoints: opts.endpoints.gcp(),
                disk: &disk,
                dry_run: opts.dry_run,
            };
            let rep =
                kiln_publish::gcp::publish::publish(r, actor, bucket, id, &req, progress.as_ref())?;
            let mut lines = Vec::new();
            if rep.dry_run {
                lines.push(format!(
                    "would publish {}/{} (channels {}) as a GCP image stored in {} and share it with {}",
                    rep.bucket,
                    rep.version,
                    rep.channels.join(", "),
                    target.regions[0],
                    rep.projects.join(", ")
                ));
            } else {
                if let Some(o) = &rep.object {
                    lines.push(format!(
                        "object {}: {:.1} MB sent, {:.1} MB resumed{} ({:.1}s)",
                        o.uri,
                        o.bytes_sent as f64 / 1e6,
                        o.bytes_resumed as f64 / 1e6,
                        if o.reused { ", already complete" } else { "" },
                        o.seconds
                    ));
                }
                lines.push(format!(
                    "image {} {} (image users +{} -{})",
                    rep.image.as_deref().unwrap_or_default(),
                    if rep.created { "created" } else { "found" },
                    rep.members_added,
                    rep.members_removed
                ));
                lines.push(format!("shared with {}", rep.projects.join(", ")));
            }
            Ok(Published {
                json: serde_json::to_value(&rep)?,
                lines,
            })
        }
        _ => publish_aws(r, dir, target, f, opts, &v, actor, progress),
    }
}

#[allow(clippy::too_many_arguments, reason = "one call site, publish_to above")]
fn publish_aws(
    r: &mut kiln_registry::Registry,
    dir: &Path,
    target: &kiln_spec::model::PublishTarget,
    f: &kiln_spec::Factory,
    opts: &Options,
    v: &kiln_registry::Version,
    actor: &kiln_registry::Actor,
    progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
) -> anyhow::Result<Published> {
    let disk = stored_file(v, "raw", dir, opts.dry_run)?;
    let req = Request {
        target,
        accounts: f.accounts.as_ref(),
        conn: Conn {
            region: target.regions[0].clone(),
            endpoint: opts.aws_endpoint.clone(),
            static_credentials: None,
        },
        disk: &disk,
        parallel: opts.parallel,
        dry_run: opts.dry_run,
    };
    let report =
        runtime()?.block_on(publish::publish(r, actor, &v.bucket, &v.id, &req, progress))?;
    let who = who_line(&[
        &report.accounts,
        &report.organizations,
        &report.organizational_units,
    ]);
    let mut lines = Vec::new();
    if report.dry_run {
        lines.push(format!(
            "would publish {}/{} (channels {}) to {} and share it with {who}",
            report.bucket,
            report.version,
            report.channels.join(", "),
            target.regions.join(", "),
        ));
    } else {
        if let Some(s) = &report.snapshot {
            lines.push(format!(
                "snapshot {}: {} block(s) sent, {} all-zero skipped, {} resumed{} ({:.1}s)",
                s.id,
                s.blocks_sent,
                s.blocks_zero,
                s.blocks_resumed,
                if s.reused { ", already complete" } else { "" },
                s.seconds
            ));
        }
        for i in &report.images {
            lines.push(format!(
                "{:<14} {} {} (+{} -{} launch permissions)",
                i.region,
                i.ami,
                if i.created { "created" } else { "found" },
                i.permissions_added,
                i.permissions_removed
            ));
        }
        for p in &report.parameters {
            lines.push(format!("parameter {p}"));
        }
        lines.push(format!("shared with {who}"));
    }
    Ok(Published {
        json: serde_json::to_value(&report)?,
        lines,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Which version each channel of each bucket names (`latest` included).
pub type Channels = std::collections::BTreeMap<(String, String), String>;

pub fn channel_map(r: &mut kiln_registry::Registry) -> anyhow::Result<Channels> {
    let mut out = Channels::new();
    for bucket in r.buckets()? {
        for c in r.channels(&bucket)? {
            if let Some(v) = c.version {
                out.insert((bucket.clone(), c.name), v);
            }
        }
    }
    Ok(out)
}

/// Every version that joined or left a channel between `before` and `after`: the ones whose
/// sharing may have to change in the clouds.
pub fn moved(before: &Channels, after: &Channels) -> Vec<String> {
    let mut out: Vec<String> = before
        .iter()
        .chain(after.iter())
        .filter(|(k, v)| before.get(*k) != after.get(*k) && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    out.sort();
    out.dedup();
    out
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
    let mut lines: Vec<String> = done
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
        .collect();
    for p in &done.parameters_dropped {
        lines.push(format!(
            "  aws parameter {p} deleted (its channel left {id})"
        ));
    }
    Ok(lines)
}
