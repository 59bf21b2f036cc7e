//! Matching an SBOM against the index. Debian advisories name source packages, so Debian
//! packages match by `Source:` name and source version (a binNMU's binary version differs);
//! other families match by binary name (and Alpine also by origin). Each (package, vulnerability)
//! gets one verdict: the worst any record gives, in the order vulnerable > open > fixed >
//! not affected.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::{Affected, Severity, VulnDb};
use crate::ScanError;
use crate::os::Family;
use crate::sbom::{Kind, Sbom};
use crate::version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The data says this release was never affected.
    NotAffected,
    /// The installed version already has the fix.
    Fixed,
    /// Affected and no fixed version exists yet: reported apart, a rebuild cannot help.
    Open,
    /// A newer version fixes it: a rebuild on current packages would.
    Vulnerable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotAffected => "not-affected",
            Verdict::Fixed => "fixed",
            Verdict::Open => "open",
            Verdict::Vulnerable => "vulnerable",
        }
    }
}

/// One vulnerability's verdict for one (source) package of the image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub vulnerability: String,
    /// The package name the data uses (Debian: the source package).
    pub package: String,
    pub installed: String,
    /// The version that fixes it, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    pub verdict: Verdict,
    pub severity: Severity,
    /// Advisory records that speak for it (DSA-…, or the CVE itself in the tracker).
    pub advisories: Vec<String>,
    /// The installed binary packages it concerns.
    pub binaries: Vec<String>,
    pub summary: String,
}

/// What one record says about one installed version.
fn judge(kind: Kind, installed: &str, a: &Affected) -> Option<(Verdict, Option<String>)> {
    if a.not_affected {
        return Some((Verdict::NotAffected, None));
    }
    if a.ranges.is_empty() {
        return Some((Verdict::Open, None));
    }
    let cmp = |x: &str, y: &str| version::compare(kind, x, y);
    let mut best: Option<(Verdict, Option<String>)> = None;
    for r in &a.ranges {
        let after_intro = r.introduced == "0" || cmp(installed, &r.introduced)? != Ordering::Less;
        let v = if !after_intro {
            (Verdict::NotAffected, None)
        } else if let Some(f) = &r.fixed {
            if cmp(installed, f)? == Ordering::Less {
                (Verdict::Vulnerable, Some(f.clone()))
            } else {
                (Verdict::Fixed, Some(f.clone()))
            }
        } else if let Some(l) = &r.last_affected {
            if cmp(installed, l)? != Ordering::Greater {
                (Verdict::Open, None)
            } else {
                (Verdict::NotAffected, None)
            }
        } else {
            (Verdict::Open, None)
        };
        if best.as_ref().is_none_or(|b| v.0 > b.0) {
            best = Some(v);
        }
    }
    best
}

/// The verdicts for one image, and which of the index's ecosystems spoke for it.
#[derive(Debug, Clone, Default)]
pub struct Matches {
    /// Sorted by package then vulnerability.
    pub findings: Vec<Finding>,
    /// The index's ecosystems that apply to the image's release. Empty means the index knows
    /// nothing about this release, so "no findings" proves nothing.
    pub ecosystems: Vec<String>,
}

/// Every verdict for the image's packages. Records whose versions do not parse are skipped (and
/// logged).
pub fn match_sbom(sbom: &Sbom, db: &VulnDb) -> Result<Matches, ScanError> {
    let wanted = sbom.os.osv_ecosystems();
    let ecosystems: Vec<String> = db
        .stats()?
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| wanted.iter().any(|w| w.matches(e)))
        .collect();
    let family = sbom.os.family();
    // (name the data uses, installed version) → binaries
    let mut subjects: BTreeMap<(String, String, Kind), Vec<String>> = BTreeMap::new();
    for p in &sbom.packages {
        let mut names = vec![];
        match family {
            Family::Debian => names.push((p.source.clone(), p.source_version.clone())),
            Family::Alpine => {
                names.push((p.name.clone(), p.full_version()));
                names.push((p.source.clone(), p.full_version()));
            }
            _ => names.push((p.name.clone(), p.full_version())),
        }
        names.dedup();
        for (n, v) in names {
            subjects
                .entry((n, v, p.kind))
                .or_default()
                .push(p.name.clone());
        }
    }
    if ecosystems.is_empty() {
        tracing::warn!(os = %sbom.os.distro(), "the vulnerability index has no data for this release: nothing matched");
        return Ok(Matches::default());
    }
    let mut out = Vec::new();
    for ((name, installed, kind), mut binaries) in subjects {
        binaries.sort();
        binaries.dedup();
        let mut per_vuln: BTreeMap<String, Finding> = BTreeMap::new();
        let mut records = Vec::new();
        for e in &ecosystems {
            records.extend(db.affecting(e, &name)?);
        }
        for a in records {
            let Some((verdict, fixed)) = judge(kind, &installed, &a) else {
                tracing::warn!(record = %a.record, package = %name, "unparseable version in record: skipped");
                continue;
            };
            for vuln in &a.vulns {
                let f = per_vuln.entry(vuln.clone()).or_insert_with(|| Finding {
                    vulnerability: vuln.clone(),
                    package: name.clone(),
                    installed: installed.clone(),
                    fixed_version: None,
                    verdict: Verdict::NotAffected,
                    severity: Severity::Unknown,
                    advisories: Vec::new(),
                    binaries: binaries.clone(),
                    summary: String::new(),
                });
                if !f.advisories.contains(&a.record) {
                    f.advisories.push(a.record.clone());
                }
                f.severity = f.severity.max(a.severity);
                if f.summary.is_empty() {
                    f.summary = a.summary.clone();
                }
                let replace = verdict > f.verdict
                    || (verdict == f.verdict
                        && verdict == Verdict::Vulnerable
                        && fixed
                            .as_deref()
                            .zip(f.fixed_version.as_deref())
                            .is_some_and(|(x, y)| {
                                version::compare(kind, x, y) == Some(Ordering::Less)
                            }));
                if replace || (f.fixed_version.is_none() && verdict == f.verdict) {
                    f.verdict = verdict;
                    f.fixed_version = fixed.clone();
                }
            }
        }
        out.extend(per_vuln.into_values());
    }
    Ok(Matches {
        findings: out,
        ecosystems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::Range;

    fn rec(ranges: Vec<Range>) -> Affected {
        Affected {
            origin: "osv".into(),
            record: "X".into(),
            ecosystem: "Debian:12".into(),
            package: "p".into(),
            vulns: vec!["CVE-1".into()],
            ranges,
            not_affected: false,
            severity: Severity::High,
            summary: String::new(),
            modified: String::new(),
        }
    }

    #[test]
    fn ranges() {
        let r = |i: &str, f: Option<&str>, l: Option<&str>| Range {
            introduced: i.into(),
            fixed: f.map(Into::into),
            last_affected: l.map(Into::into),
        };
        let a = rec(vec![r("0", Some("1.2-1"), None)]);
        assert_eq!(
            judge(Kind::Deb, "1.1-1", &a).unwrap().0,
            Verdict::Vulnerable
        );
        assert_eq!(judge(Kind::Deb, "1.2-1", &a).unwrap().0, Verdict::Fixed);
        assert_eq!(
            judge(Kind::Deb, "1.2-1~deb12u1", &a).unwrap().0,
            Verdict::Vulnerable
        );
        let b = rec(vec![r("2.0", Some("2.5"), None)]);
        assert_eq!(judge(Kind::Deb, "1.9", &b).unwrap().0, Verdict::NotAffected);
        let c = rec(vec![r("0", None, Some("3.0"))]);
        assert_eq!(judge(Kind::Deb, "3.0", &c).unwrap().0, Verdict::Open);
        assert_eq!(judge(Kind::Deb, "3.1", &c).unwrap().0, Verdict::NotAffected);
        assert_eq!(
            judge(Kind::Deb, "1.0", &rec(vec![])).unwrap().0,
            Verdict::Open
        );
    }
}
