//! `kiln reap [--dry-run]`: retention, as the factory's `retention` block says.

use std::path::Path;
use std::process::ExitCode;

use kiln_registry::ReapAction;

use crate::cli::{ValidateFormat, Who};
use crate::commands::registry;
use crate::factory_dir;

pub fn run(
    factory: Option<&Path>,
    dry_run: bool,
    who: &Who,
    format: ValidateFormat,
) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let mut reg = registry::open(factory)?;
    let actor = registry::actor(who)?;
    let out = kiln_pipeline::retention::reap(&f, &mut reg, &actor, dry_run)?;
    let (clouds, cloud_failures) = if dry_run {
        (Vec::new(), Vec::new())
    } else {
        remove_from_clouds(&f, &out.report.reaped)
    };
    let code = if cloud_failures.is_empty() {
        exit(&out)
    } else {
        ExitCode::FAILURE
    };
    if format == ValidateFormat::Json {
        let mut v = serde_json::to_value(&out)?;
        v["clouds"] = serde_json::json!({"deleted": clouds, "failed": cloud_failures});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(code);
    }
    let p = f.settings.retention;
    println!(
        "retention: keep the newest {} per bucket; nothing younger than {}; failed builds' artifacts after {}",
        p.keep_last,
        human(p.min_age_secs),
        human(p.failed_grace_secs)
    );
    let verb = if dry_run { "would reap" } else { "reaped" };
    if out.report.reaped.is_empty() {
        println!("nothing to reap");
    }
    for r in &out.report.reaped {
        let what = match r.action {
            ReapAction::Version => "version",
            ReapAction::FailedArtifacts => "failed version's artifacts",
        };
        println!(
            "  {verb:<11} {:<20} {:<28} {what} ({} artifact(s))",
            r.bucket,
            r.version,
            r.artifacts.len()
        );
        let published = r.artifacts.iter().filter(|a| a.platform != "file").count();
        if dry_run && published > 0 {
            println!("              and its {published} published cloud image(s)");
        }
    }
    for line in &clouds {
        println!("  {line}");
    }
    for line in &cloud_failures {
        println!("  could not delete from the cloud: {line}");
    }
    for k in &out.report.kept {
        println!(
            "  {:<11} {:<20} {:<28} {}",
            "kept",
            k.bucket,
            k.version,
            k.because.join("; ")
        );
    }
    if dry_run {
        println!(
            "{} local file(s) would be deleted; run without --dry-run to reap",
            out.report.files.len()
        );
    } else {
        println!("{} local file(s) deleted", out.files_deleted);
    }
    for l in &out.leftovers {
        println!("  could not delete {}: {}", l.path, l.error);
    }
    Ok(code)
}

/// Deletes the reaped versions' published images on every cloud kiln.hcl publishes to; returns
/// (lines done, failures). The registry has already marked them reaped: a failure is a cost
/// left behind in a cloud account, listed so an operator can remove it.
fn remove_from_clouds(
    f: &kiln_spec::Factory,
    reaped: &[kiln_registry::Reaped],
) -> (Vec<String>, Vec<String>) {
    let env = crate::cli::CloudEndpoints::from_env();
    let endpoints = kiln_publish::reap::Endpoints {
        aws: std::env::var("KILN_AWS_ENDPOINT_URL")
            .ok()
            .filter(|s| !s.is_empty()),
        azure: env.azure(),
        gcp: env.gcp(),
    };
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for target in &f.settings.publish {
        for r in reaped {
            match kiln_publish::reap::remove(
                target,
                &endpoints,
                &r.bucket,
                &r.version,
                &r.artifacts,
            ) {
                Ok(lines) => done.extend(lines),
                Err(e) => failed.push(format!("{} {}/{}: {e}", target.cloud, r.bucket, r.version)),
            }
        }
    }
    (done, failed)
}

/// Files that could not be deleted make the exit status 1 (the registry part is done).
fn exit(out: &kiln_pipeline::retention::ReapOutcome) -> ExitCode {
    if out.leftovers.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn human(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
