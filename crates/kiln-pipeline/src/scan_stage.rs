//! The scan stage of a build: the finished tree's SBOM (CycloneDX and SPDX files beside the
//! artifacts), vulnerabilities against the factory's offline index, secrets and hygiene. The
//! report is stored with the version and the channel policies (`max_severity`,
//! `forbid_secrets`) read its summary.

use std::path::Path;

use kiln_build::{BuildOutput, Progress, StageEvent};
use kiln_scan::sbom::{DocMeta, cyclonedx, spdx};
use kiln_scan::vuln::VulnDb;
use kiln_scan::{ScanError, ScanReport};
use serde_json::{Value, json};

/// Where a factory keeps its vulnerability index (`kiln vulndb import` fills it).
pub const VULNDB_FILE: &str = ".kiln/vulndb.sqlite";

/// What the stage produced: the report and the two SBOM documents.
#[derive(Debug)]
pub struct ScanOutput {
    pub report: ScanReport,
    pub cyclonedx: Value,
    pub spdx: Value,
}

impl ScanOutput {
    /// The report the registry keeps: everything but the SBOM itself (kept as its own report).
    pub fn registry_report(&self) -> Value {
        let r = &self.report;
        json!({
            "summary": r.summary,
            "os": r.sbom.os,
            "vulnerabilities": r.vulnerabilities,
            "secrets": r.secrets.findings,
            "files_scanned": r.secrets.files,
            "bytes_scanned": r.secrets.bytes,
            "seconds": r.seconds,
        })
    }
}

pub fn scan_stage(
    factory_dir: &Path,
    out: &BuildOutput,
    version: &str,
    progress: &dyn Progress,
) -> Result<ScanOutput, ScanError> {
    let image = &out.manifest.image;
    progress.event(
        image,
        "scan",
        StageEvent::Start("SBOM, vulnerabilities, secrets"),
    );
    let db_path = factory_dir.join(VULNDB_FILE);
    let db = if db_path.exists() {
        Some(VulnDb::open_existing(&db_path)?)
    } else {
        progress.event(
            image,
            "scan",
            StageEvent::Note(
                "no vulnerability data (kiln vulndb import): vulnerabilities not matched",
            ),
        );
        None
    };
    let report = kiln_scan::scan_tree(&out.tree, image, db.as_ref())?;
    let meta = DocMeta {
        name: image.clone(),
        version: version.to_string(),
        created: out.manifest.built_at.clone(),
        sha256: out
            .manifest
            .artifacts
            .iter()
            .find(|a| a.format.as_str() == "raw")
            .map(|a| a.sha256.clone()),
    };
    let cdx = cyclonedx::document(&report.sbom, &meta);
    let spdx = spdx::document(&report.sbom, &meta);
    let write = |name: &str, v: &Value| {
        let _ = std::fs::write(
            out.dir.join(name),
            serde_json::to_vec_pretty(v).unwrap_or_default(),
        );
    };
    write("sbom.cdx.json", &cdx);
    write("sbom.spdx.json", &spdx);
    write("scan.sarif", &report.to_sarif());
    let _ = std::fs::write(out.dir.join("scan-report.txt"), report.to_text());
    let s = &report.summary;
    progress.event(
        image,
        "scan",
        StageEvent::Note(&format!(
            "{} packages; {} vulnerable, {} open{}; {} secret(s), {} hygiene finding(s)",
            s.packages,
            s.vulnerable,
            s.open,
            s.max_severity
                .map(|m| format!(" (worst {})", m.as_str()))
                .unwrap_or_default(),
            s.secrets,
            s.hygiene
        )),
    );
    Ok(ScanOutput {
        report,
        cyclonedx: cdx,
        spdx,
    })
}
