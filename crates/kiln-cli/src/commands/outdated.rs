//! `kiln outdated`: what the archive has updated since the versions on channels were built, and
//! which children their parent's channel has left behind. Changes nothing; `kiln build
//! --upstream-updates` / `--outdated` act on it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::ValidateFormat;
use crate::commands::registry;
use crate::factory_dir;

pub fn run(factory: Option<&Path>, format: ValidateFormat) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let mut reg = registry::open(factory)?;
    let upstream = kiln_pipeline::upstream::check(&f, &mut reg, Path::new("/etc/apt"))
        .context("comparing recorded package sets with the archive")?;
    let children = kiln_pipeline::outdated_children(&mut reg)?;
    if format == ValidateFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "upstream": upstream,
                "children": children,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Upstream updates (versions on channels vs the archive now):");
    if upstream.is_empty() {
        println!("  no version is on a channel yet");
    }
    for v in &upstream {
        let what = if v.updates.is_empty() {
            "up to date".to_string()
        } else {
            format!(
                "{} update(s), {} security",
                v.updates.len(),
                v.security_count()
            )
        };
        println!(
            "  {:<20} {:<28} {:<22} {what}",
            v.bucket,
            v.version,
            v.channels.join(",")
        );
        // Security updates first: they are why this command exists.
        let mut ups: Vec<_> = v.updates.iter().collect();
        ups.sort_by_key(|u| (!u.security, u.package.clone()));
        for u in ups {
            println!(
                "      {:<32} {} -> {} ({}){}",
                format!("{}:{}", u.package, u.arch),
                u.installed,
                u.available,
                u.suite,
                if u.security { "  [security]" } else { "" }
            );
        }
    }
    println!("\nOut-of-date children (built on a parent version their channel moved away from):");
    if children.is_empty() {
        println!("  none");
    }
    for o in &children {
        println!(
            "  {:<20} {:<28} built on {} {}; {}/{} is now {}",
            o.child_bucket,
            o.child,
            o.parent_bucket,
            o.parent,
            o.parent_bucket,
            o.channel,
            o.now.as_deref().unwrap_or("empty")
        );
    }
    Ok(ExitCode::SUCCESS)
}
