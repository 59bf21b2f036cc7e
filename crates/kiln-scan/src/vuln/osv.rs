//! OSV records (ossf/osv-schema): `affected[].package{ecosystem,name}` with `ranges[]` of type
//! ECOSYSTEM whose `events` open (`introduced`) and close (`fixed`, `last_affected`) affected
//! spans, in order. A record's vulnerability ids are its `upstream`/`aliases` CVEs when it has
//! them (a DSA speaks for its CVEs), else its own id.

use serde_json::Value;

use super::severity::cvss3_base_score;
use super::{Affected, Range, Severity};

/// The affected packages of one OSV record; ranges of other types (GIT, SEMVER) are skipped.
pub fn parse(v: &Value) -> Result<Vec<Affected>, String> {
    let id = v["id"].as_str().ok_or("an OSV record without an id")?;
    let mut vulns: Vec<String> = ["upstream", "aliases"]
        .iter()
        .flat_map(|k| v[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|x| x.as_str().map(str::to_string))
        .filter(|x| x.starts_with("CVE-"))
        .collect();
    vulns.sort();
    vulns.dedup();
    if vulns.is_empty() {
        vulns.push(id.to_string());
    }
    let severity = record_severity(v);
    let summary = v["summary"]
        .as_str()
        .or(v["details"].as_str())
        .unwrap_or("")
        .to_string();
    let modified = v["modified"].as_str().unwrap_or("").to_string();
    let mut out = Vec::new();
    for a in v["affected"].as_array().into_iter().flatten() {
        let (Some(eco), Some(name)) = (
            a["package"]["ecosystem"].as_str(),
            a["package"]["name"].as_str(),
        ) else {
            continue;
        };
        let mut ranges = Vec::new();
        for r in a["ranges"].as_array().into_iter().flatten() {
            if r["type"].as_str() != Some("ECOSYSTEM") {
                continue;
            }
            let mut open: Option<String> = None;
            for e in r["events"].as_array().into_iter().flatten() {
                if let Some(i) = e["introduced"].as_str() {
                    if let Some(prev) = open.take() {
                        ranges.push(Range {
                            introduced: prev,
                            fixed: None,
                            last_affected: None,
                        });
                    }
                    open = Some(i.to_string());
                } else if let Some(f) = e["fixed"].as_str() {
                    ranges.push(Range {
                        introduced: open.take().unwrap_or_else(|| "0".into()),
                        fixed: Some(f.to_string()),
                        last_affected: None,
                    });
                } else if let Some(l) = e["last_affected"].as_str() {
                    ranges.push(Range {
                        introduced: open.take().unwrap_or_else(|| "0".into()),
                        fixed: None,
                        last_affected: Some(l.to_string()),
                    });
                }
            }
            if let Some(i) = open {
                ranges.push(Range {
                    introduced: i,
                    fixed: None,
                    last_affected: None,
                });
            }
        }
        let package_severity = a["ecosystem_specific"]["urgency"]
            .as_str()
            .or(a["ecosystem_specific"]["severity"].as_str())
            .or(a["database_specific"]["severity"].as_str())
            .map(Severity::from_word)
            .filter(|s| *s != Severity::Unknown);
        if ranges.is_empty() {
            // Only explicit version lists (git-based ecosystems): nothing to compare here.
            continue;
        }
        out.push(Affected {
            origin: "osv".into(),
            record: id.to_string(),
            ecosystem: eco.to_string(),
            package: name.to_string(),
            vulns: vulns.clone(),
            ranges,
            not_affected: false,
            severity: package_severity.unwrap_or(severity),
            summary: summary.clone(),
            modified: modified.clone(),
        });
    }
    Ok(out)
}

/// The record's own severity: the highest CVSS v3 score it carries, else a severity word.
fn record_severity(v: &Value) -> Severity {
    let scored = v["severity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["score"].as_str())
        .filter_map(cvss3_base_score)
        .map(Severity::from_score)
        .max();
    scored
        .or_else(|| {
            v["database_specific"]["severity"]
                .as_str()
                .map(Severity::from_word)
        })
        .unwrap_or(Severity::Unknown)
}
