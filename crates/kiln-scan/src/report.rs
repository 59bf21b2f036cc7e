//! One scan of one image: SBOM, vulnerability verdicts, secrets; and its renderings (text, JSON,
//! SARIF). The pipeline stores the JSON with the version and policies read its `summary`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::ScanError;
use crate::sbom::Sbom;
use crate::secrets::{Category, Scanner, SecretReport};
use crate::vuln::{Finding, Matches, Severity, Verdict, VulnDb, match_sbom};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub packages: usize,
    /// Vulnerabilities a newer package version fixes.
    pub vulnerable: usize,
    /// Vulnerabilities with no fix yet.
    pub open: usize,
    /// Vulnerable and open counts by severity.
    pub by_severity: BTreeMap<&'static str, usize>,
    /// The highest severity among vulnerable and open findings with a known severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_severity: Option<Severity>,
    pub secrets: usize,
    pub hygiene: usize,
    /// Whether the index held data for this image's release (without it, no vulnerability can
    /// be found, so zero findings prove nothing).
    pub vulnerability_data: bool,
    /// The index's ecosystems the image was matched against (`Debian:12`, …).
    pub ecosystems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub target: String,
    pub summary: Summary,
    pub sbom: Sbom,
    /// Vulnerable and open findings, worst first.
    pub vulnerabilities: Vec<Finding>,
    pub secrets: SecretReport,
    pub seconds: f64,
}

/// Scans the tree at `root` (`target` names it in reports).
pub fn scan_tree(root: &Path, target: &str, db: Option<&VulnDb>) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let sbom = Sbom::of_tree(root)?;
    let matches = match db {
        Some(db) => match_sbom(&sbom, db)?,
        None => Matches::default(),
    };
    let mut vulnerabilities: Vec<Finding> = matches
        .findings
        .into_iter()
        .filter(|f| matches!(f.verdict, Verdict::Vulnerable | Verdict::Open))
        .collect();
    vulnerabilities.sort_by(|a, b| {
        (b.verdict, b.severity, &a.package, &a.vulnerability).cmp(&(
            a.verdict,
            a.severity,
            &b.package,
            &b.vulnerability,
        ))
    });
    let secrets = Scanner::new().scan_tree(root);
    let mut by_severity = BTreeMap::new();
    for f in &vulnerabilities {
        *by_severity.entry(f.severity.as_str()).or_insert(0) += 1;
    }
    let summary = Summary {
        packages: sbom.packages.len(),
        vulnerable: vulnerabilities
            .iter()
            .filter(|f| f.verdict == Verdict::Vulnerable)
            .count(),
        open: vulnerabilities
            .iter()
            .filter(|f| f.verdict == Verdict::Open)
            .count(),
        by_severity,
        max_severity: vulnerabilities
            .iter()
            .map(|f| f.severity)
            .filter(|s| *s != Severity::Unknown)
            .max(),
        secrets: secrets
            .findings
            .iter()
            .filter(|f| f.category == Category::Secret)
            .count(),
        hygiene: secrets
            .findings
            .iter()
            .filter(|f| f.category == Category::Hygiene)
            .count(),
        vulnerability_data: !matches.ecosystems.is_empty(),
        ecosystems: matches.ecosystems,
    };
    Ok(ScanReport {
        target: target.to_string(),
        summary,
        sbom,
        vulnerabilities,
        secrets,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl ScanReport {
    pub fn to_text(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "{}: {} {} packages; {} vulnerable, {} open{}; {} secret(s), {} hygiene finding(s) ({:.1}s)\n",
            self.target,
            self.sbom
                .os
                .pretty_name
                .clone()
                .unwrap_or_else(|| self.sbom.os.distro()),
            s.packages,
            s.vulnerable,
            s.open,
            if s.vulnerability_data {
                ""
            } else {
                " (no vulnerability data for this release: run `kiln vulndb import`)"
            },
            s.secrets,
            s.hygiene,
            self.seconds
        );
        for f in &self.vulnerabilities {
            out.push_str(&format!(
                "  {:<10} {:<10} {:<18} {:<24} {} {}\n",
                f.verdict.as_str(),
                f.severity.as_str(),
                f.vulnerability,
                f.package,
                f.installed,
                f.fixed_version
                    .as_deref()
                    .map(|v| format!("→ {v}"))
                    .unwrap_or_default()
            ));
        }
        for f in &self.secrets.findings {
            let at = f.line.map(|l| format!(":{l}")).unwrap_or_default();
            out.push_str(&format!(
                "  {:<10} {:<26} {}{at}  {}\n",
                format!("{:?}", f.category).to_lowercase(),
                f.rule,
                f.path,
                f.excerpt
            ));
        }
        out
    }

    /// SARIF 2.1.0: one result per secret finding and per vulnerable or open package.
    pub fn to_sarif(&self) -> Value {
        let mut rules: BTreeMap<String, Value> = BTreeMap::new();
        let mut results = Vec::new();
        for f in &self.secrets.findings {
            rules.entry(f.rule.to_string()).or_insert_with(
                || json!({"id": f.rule, "shortDescription": {"text": f.description}}),
            );
            let mut region = json!({});
            if let Some(l) = f.line {
                region["startLine"] = json!(l);
            }
            if let Some(o) = f.offset {
                region["byteOffset"] = json!(o);
            }
            let mut location = json!({"artifactLocation": {"uri": f.path.trim_start_matches('/')}});
            // SARIF wants a region to say something: a whole-file finding has none.
            if region != json!({}) {
                location["region"] = region;
            }
            results.push(json!({
                "ruleId": f.rule,
                "level": if f.category == Category::Secret { "error" } else { "warning" },
                "message": {"text": format!("{}: {}", f.description, f.excerpt)},
                "locations": [{"physicalLocation": location}],
            }));
        }
        for f in &self.vulnerabilities {
            rules.entry(f.vulnerability.clone()).or_insert_with(|| json!({"id": f.vulnerability, "shortDescription": {"text": if f.summary.is_empty() { f.vulnerability.clone() } else { f.summary.clone() }}}));
            let level = match f.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium | Severity::Unknown => "warning",
                _ => "note",
            };
            let fix = f
                .fixed_version
                .as_deref()
                .map(|v| format!(", fixed in {v}"))
                .unwrap_or_else(|| ", no fix yet".into());
            results.push(json!({
                "ruleId": f.vulnerability,
                "level": level,
                "message": {"text": format!("{} {} ({}) is {}{fix}; severity {}", f.package, f.installed, f.binaries.join(", "), f.verdict.as_str(), f.severity.as_str())},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": self.sbom.database}}}],
            }));
        }
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "kiln", "version": env!("CARGO_PKG_VERSION"), "rules": rules.into_values().collect::<Vec<_>>()}},
                "results": results,
            }],
        })
    }
}
