#![allow(clippy::print_stderr)] // notes go to stderr so stdout stays the report
//! `kiln scan` and `kiln vulndb`: the scanner by hand, on any image tree or disk image.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_scan::Sbom;
use kiln_scan::sbom::{DocMeta, cyclonedx, spdx};
use kiln_scan::vuln::VulnDb;

use crate::cli::{ScanArgs, ScanFormat, VulnDbPath, VulndbCommand};
use crate::factory_dir;

/// `--vulndb`, else the factory's `.kiln/vulndb.sqlite`; `None` outside a factory.
fn db_path(factory: Option<&Path>, db: &VulnDbPath) -> Option<PathBuf> {
    db.vulndb.clone().or_else(|| {
        factory_dir::locate(factory)
            .ok()
            .map(|f| f.join(kiln_pipeline::scan_stage::VULNDB_FILE))
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The vulnerability index `kiln scan` matches against; `None` (with a note) when there is none.
fn open_db(factory: Option<&Path>, args: &ScanArgs) -> anyhow::Result<Option<VulnDb>> {
    Ok(match db_path(factory, &args.db) {
        Some(p) if p.exists() => Some(VulnDb::open_existing(&p)?),
        Some(p) if args.db.vulndb.is_some() => {
            bail!(
                "{} does not exist: import data with `kiln vulndb import PATH --vulndb {}`",
                p.display(),
                p.display()
            )
        }
        _ => {
            eprintln!(
                "note: no vulnerability data (import some with `kiln vulndb import`): vulnerabilities are not matched"
            );
            None
        }
    })
}

pub fn run(factory: Option<&Path>, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    if !args.path.exists() {
        bail!("{} does not exist", args.path.display());
    }
    // An SBOM document needs the package database only: no secret walk, no vulnerability index.
    let sbom_only = matches!(args.format, ScanFormat::Cyclonedx | ScanFormat::Spdx);
    // Opened before any extraction, so a wrong --vulndb fails at once.
    let db = if sbom_only {
        None
    } else {
        open_db(factory, args)?
    };
    let extracted;
    let (root, sha256) = if args.path.is_dir() {
        (args.path.clone(), None)
    } else {
        eprintln!(
            "extracting the root filesystem of {} ...",
            args.path.display()
        );
        extracted = kiln_scan::disk::extract(&args.path)?;
        // Only the SBOM documents carry the disk's digest; hashing gigabytes is not free.
        let digest = sbom_only
            .then(|| kiln_build::hash::sha256_file(&args.path).ok())
            .flatten();
        (extracted.root(), digest)
    };
    let target = args.path.display().to_string();
    let meta = DocMeta {
        name: args.name.clone().unwrap_or_else(|| {
            args.path
                .file_name()
                .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned())
        }),
        version: args.image_version.clone(),
        created: kiln_scan::sbom::timestamp(now()),
        sha256,
    };
    let text = if sbom_only {
        let sbom = Sbom::of_tree(&root).with_context(|| format!("reading the SBOM of {target}"))?;
        let doc = match args.format {
            ScanFormat::Spdx => spdx::document(&sbom, &meta),
            _ => cyclonedx::document(&sbom, &meta),
        };
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        let report = kiln_scan::scan_tree(&root, &target, db.as_ref())
            .with_context(|| format!("scanning {target}"))?;
        match args.format {
            ScanFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
            ScanFormat::Sarif => serde_json::to_string_pretty(&report.to_sarif())? + "\n",
            _ => report.to_text(),
        }
    };
    match &args.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn vulndb(factory: Option<&Path>, command: VulndbCommand) -> anyhow::Result<ExitCode> {
    match command {
        VulndbCommand::Import { paths, db } => {
            let path = db_path(factory, &db)
                .context("no factory here: pass --vulndb FILE to say where the index lives")?;
            let mut vdb = VulnDb::open(&path)?;
            for p in &paths {
                let c = vdb
                    .import(p, now())
                    .with_context(|| format!("importing {}", p.display()))?;
                println!(
                    "{}: {} file(s): {} added, {} updated, {} unchanged, {} skipped",
                    p.display(),
                    c.files,
                    c.added,
                    c.updated,
                    c.unchanged,
                    c.skipped
                );
            }
            println!("index: {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        VulndbCommand::Status { db } => {
            let path = db_path(factory, &db)
                .context("no factory here: pass --vulndb FILE to say where the index lives")?;
            let vdb = VulnDb::open_existing(&path)?;
            println!("{}", path.display());
            for (eco, n) in vdb.stats()? {
                println!("  {eco:<40} {n} record(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
