//! The Debian security tracker's JSON export: `{SOURCE: {CVE: {"description", "releases":
//! {CODENAME: {"status", "fixed_version", "urgency", …}}}}}`. `resolved` with fixed_version `"0"`
//! means the release was never affected; `open` (and `undetermined`) means no fix in that
//! release yet.

use serde_json::Value;

use super::{Affected, Range, Severity, debian_ecosystem};

/// Every (source, CVE, release) of a known Debian release, plus how many were skipped (unknown
/// release codenames or unreadable entries).
pub fn parse(v: &Value) -> Result<(Vec<Affected>, usize), String> {
    let top = v
        .as_object()
        .ok_or("the tracker JSON is not an object of source packages")?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (source, cves) in top {
        let Some(cves) = cves.as_object() else {
            skipped += 1;
            continue;
        };
        for (cve, entry) in cves {
            let Some(releases) = entry["releases"].as_object() else {
                skipped += 1;
                continue;
            };
            let summary = entry["description"].as_str().unwrap_or("").to_string();
            for (codename, r) in releases {
                let Some(ecosystem) = debian_ecosystem(codename) else {
                    skipped += 1;
                    continue;
                };
                let status = r["status"].as_str().unwrap_or("");
                let fixed = r["fixed_version"].as_str();
                let (ranges, not_affected) = match (status, fixed) {
                    ("resolved", Some("0")) => (Vec::new(), true),
                    ("resolved", Some(f)) => (
                        vec![Range {
                            introduced: "0".into(),
                            fixed: Some(f.to_string()),
                            last_affected: None,
                        }],
                        false,
                    ),
                    ("open" | "undetermined", _) => (Vec::new(), false),
                    _ => {
                        skipped += 1;
                        continue;
                    }
                };
                out.push(Affected {
                    origin: "debian-tracker".into(),
                    record: cve.clone(),
                    ecosystem,
                    package: source.clone(),
                    vulns: vec![cve.clone()],
                    ranges,
                    not_affected,
                    severity: Severity::from_word(r["urgency"].as_str().unwrap_or("")),
                    summary: summary.clone(),
                    modified: String::new(),
                });
            }
        }
    }
    Ok((out, skipped))
}
