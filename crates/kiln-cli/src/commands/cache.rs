use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use kiln_build::cache::StageCache;
use kiln_build::seal::human_bytes;

use crate::cli::CacheCommand;

pub fn run(cmd: CacheCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CacheCommand::Ls { cache } => {
            let c = StageCache::open(&cache.cache_dir).context("opening the stage cache")?;
            let entries = c.list()?;
            let total: u64 = entries.iter().map(|(m, _)| m.bytes).sum();
            println!(
                "{:<14} {:<16} {:<22} {:>10} {:>10}",
                "KEY", "STAGE", "IMAGE", "SIZE", "LAST USED"
            );
            for (m, used) in &entries {
                println!(
                    "{:<14} {:<16} {:<22} {:>10} {:>10}",
                    &m.key[..12],
                    m.kind,
                    m.image,
                    human_bytes(m.bytes),
                    ago(*used)
                );
            }
            println!(
                "{} stage{}, {}",
                entries.len(),
                if entries.len() == 1 { "" } else { "s" },
                human_bytes(total)
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Prune {
            cache,
            older_than,
            max_size,
            all,
            dry_run,
        } => {
            let c = StageCache::open(&cache.cache_dir).context("opening the stage cache")?;
            let age = match (&older_than, all) {
                (_, true) => Some(Duration::ZERO),
                (Some(a), _) => Some(parse_age(a)?),
                (None, false) => None,
            };
            let size = max_size
                .as_deref()
                .map(|s| s.parse::<kiln_spec::ByteSize>().map(|b| b.bytes()))
                .transpose()
                .context("--max-size")?;
            if age.is_none() && size.is_none() {
                bail!("say what to prune: --older-than AGE, --max-size SIZE or --all");
            }
            let removed = c.prune(age, size, dry_run)?;
            let bytes: u64 = removed.iter().map(|m| m.bytes).sum();
            for m in &removed {
                println!(
                    "{} {} {} ({})",
                    if dry_run { "would remove" } else { "removed" },
                    &m.key[..12],
                    m.kind,
                    m.image
                );
            }
            println!(
                "{} {} stage{}, {}",
                if dry_run { "would remove" } else { "removed" },
                removed.len(),
                if removed.len() == 1 { "" } else { "s" },
                human_bytes(bytes)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn parse_age(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("invalid age `{s}`: write e.g. 7d, 12h, 30m"))?;
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => bail!("invalid age `{s}`: the unit must be d, h, m or s"),
    };
    Ok(Duration::from_secs(n * secs))
}

fn ago(t: SystemTime) -> String {
    let s = SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs());
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}
