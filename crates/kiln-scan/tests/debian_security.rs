//! Matching against real Debian security data (../shared/fixtures/debian-security): tracker
//! records and DSA advisories as OSV, a bookworm dpkg status with a binNMU, and the verdicts
//! computed independently with `dpkg --compare-versions` (expected.tsv).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_scan::Sbom;
use kiln_scan::vuln::{Verdict, VulnDb, match_sbom};

/// ../shared/fixtures/debian-security beside the project (the maintained copy), else the copy
/// vendored in kiln-scan's tests for clones that have no ../shared beside them.
fn fixtures() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../../shared/fixtures/debian-security");
    if shared.join("expected.tsv").is_file() {
        return shared;
    }
    manifest.join("tests/data/debian-security")
}

/// (source, cve) → (installed, fixed_version, verdict)
fn expected() -> BTreeMap<(String, String), (String, String, String)> {
    let text = std::fs::read_to_string(fixtures().join("expected.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                (f[0].to_string(), f[2].to_string()),
                (f[1].to_string(), f[3].to_string(), f[4].to_string()),
            )
        })
        .collect()
}

#[test]
fn tracker_verdicts_equal_dpkg_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = VulnDb::open(&dir.path().join("vulndb.sqlite")).unwrap();
    let c = db.import(&fixtures().join("tracker.json"), 0).unwrap();
    let want = expected();
    assert_eq!(
        c.added,
        want.len(),
        "one record per (source, CVE) of bookworm: {c:?}"
    );

    let sbom = Sbom::of_tree(&fixtures().join("rootfs")).unwrap();
    let matched = match_sbom(&sbom, &db).unwrap();
    assert_eq!(matched.ecosystems, ["Debian:12"]);
    let found = matched.findings;
    let got: BTreeMap<(String, String), (String, String, String)> = found
        .iter()
        .map(|f| {
            let fixed = match f.verdict {
                Verdict::NotAffected => "0".to_string(),
                _ => f.fixed_version.clone().unwrap_or_default(),
            };
            (
                (f.package.clone(), f.vulnerability.clone()),
                (f.installed.clone(), fixed, f.verdict.as_str().to_string()),
            )
        })
        .collect();
    assert_eq!(got, want);
    let counts = |v: Verdict| found.iter().filter(|f| f.verdict == v).count();
    println!(
        "vulnerable {} open {} fixed {} not-affected {}",
        counts(Verdict::Vulnerable),
        counts(Verdict::Open),
        counts(Verdict::Fixed),
        counts(Verdict::NotAffected)
    );

    // Importing the same data again changes nothing and says so.
    let again = db.import(&fixtures().join("tracker.json"), 1).unwrap();
    assert_eq!(
        (again.added, again.updated, again.unchanged),
        (0, 0, want.len())
    );
}

#[test]
fn osv_advisories_match_bookworm_ranges_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = VulnDb::open(&dir.path().join("vulndb.sqlite")).unwrap();
    let c = db.import(&fixtures().join("osv"), 0).unwrap();
    assert_eq!(c.files, 13);
    let sbom = Sbom::of_tree(&fixtures().join("rootfs")).unwrap();
    let found = match_sbom(&sbom, &db).unwrap().findings;
    assert!(!found.is_empty());
    let want = expected();
    for f in &found {
        // Every DSA CVE is in the tracker data; a Debian:11 range would give a bullseye fixed
        // version (…+deb11u…) and a different verdict.
        let Some((installed, fixed, verdict)) =
            want.get(&(f.package.clone(), f.vulnerability.clone()))
        else {
            // An advisory without CVE ids is reported under its own id; check its verdict
            // with dpkg itself.
            assert!(f.vulnerability.starts_with("DSA-"), "{f:?}");
            let fixed = f.fixed_version.as_deref().unwrap();
            assert!(!fixed.contains("deb11"), "a Debian:11 range matched: {f:?}");
            let older = std::process::Command::new("dpkg")
                .args(["--compare-versions", &f.installed, "lt", fixed])
                .status()
                .unwrap()
                .success();
            let want = if older {
                Verdict::Vulnerable
            } else {
                Verdict::Fixed
            };
            assert_eq!(f.verdict, want, "{f:?}");
            continue;
        };
        assert_eq!(&f.installed, installed);
        assert_eq!(f.fixed_version.as_deref(), Some(fixed.as_str()), "{f:?}");
        assert_eq!(f.verdict.as_str(), verdict, "{f:?}");
        assert!(f.advisories.iter().all(|a| a.starts_with("DSA-")));
    }
    // The binNMU: its binary version differs from the source version the data names.
    let status = std::fs::read_to_string(fixtures().join("rootfs/var/lib/dpkg/status")).unwrap();
    assert!(status.contains("+b"), "the fixture holds a binNMU");
}
