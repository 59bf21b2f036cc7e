//! Upstream-update detection against a file mirror the test writes: two snapshots of a tiny
//! archive (suite, -updates, -security with Release files listing their Packages indices).
//! `kiln outdated` reports the newer packages (security marked) of the versions on channels, and
//! `kiln plan --upstream-updates` selects exactly the images that have updates, then their
//! descendants.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kiln_in as kiln, ok};
use kiln_registry::{Actor, Registry, Role};
use serde_json::{Value, json};
use sha2::Digest;

const ARCH_ALL: &str = "all";

/// Writes `dists/SUITE` under `root`: a Packages index (xz-compressed when `xz`) and a Release
/// file listing it with size and sha256, as a Debian archive does.
fn suite(root: &Path, name: &str, packages: &[(&str, &str, &str)], xz: bool) {
    let dir = root.join("dists").join(name);
    let bin = dir.join("main/binary-amd64");
    std::fs::create_dir_all(&bin).unwrap();
    let mut text = String::new();
    for (p, v, a) in packages {
        text.push_str(&format!(
            "Package: {p}\nVersion: {v}\nArchitecture: {a}\nMaintainer: nobody\nDescription: fixture\n long description\n\n"
        ));
    }
    for f in std::fs::read_dir(&bin).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let plain = bin.join("Packages");
    std::fs::write(&plain, &text).unwrap();
    let rel = if xz {
        assert!(Command::new("xz").arg(&plain).status().unwrap().success());
        "main/binary-amd64/Packages.xz"
    } else {
        "main/binary-amd64/Packages"
    };
    let bytes = std::fs::read(dir.join(rel)).unwrap();
    let release = format!(
        "Origin: Fixture\nSuite: {name}\nComponents: main\nArchitectures: amd64\nSHA256:\n {} {} {rel}\n",
        hex(&sha2::Sha256::digest(&bytes)),
        bytes.len()
    );
    std::fs::write(dir.join("Release"), release).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One snapshot of the archive: `main` packages go to bookworm, `updates` to bookworm-updates,
/// `security` to the security mirror.
fn snapshot(
    mirror: &Path,
    security: &Path,
    main: &[(&str, &str, &str)],
    updates: &[(&str, &str, &str)],
    sec: &[(&str, &str, &str)],
) {
    suite(mirror, "bookworm", main, true);
    suite(mirror, "bookworm-updates", updates, false);
    suite(security, "bookworm-security", sec, true);
}

const BASE_PACKAGES: &[(&str, &str, &str)] = &[
    ("libc6", "2.36-9+deb12u7", "amd64"),
    ("libssl3", "3.0.15-1~deb12u1", "amd64"),
    ("adduser", "3.134", ARCH_ALL),
    ("tzdata", "2024b-0+deb12u1", ARCH_ALL),
];

fn record(
    r: &mut Registry,
    bucket: &str,
    parents: &[String],
    extra: &[(&str, &str, &str)],
) -> String {
    let ci = Actor::new("ci", Role::Ci);
    let packages: Vec<Value> = BASE_PACKAGES
        .iter()
        .chain(extra)
        .map(|(n, v, a)| json!({"name": n, "version": v, "arch": a}))
        .collect();
    let v = r
        .start_version(
            &ci,
            bucket,
            "f00d",
            parents,
            json!({"parent_channel": "dev"}),
        )
        .unwrap();
    r.attach_report(
        &ci,
        &v,
        "manifest",
        &json!({"packages": packages, "apt_sources": []}),
    )
    .unwrap();
    r.complete(&ci, &v).unwrap();
    r.promote(&ci, bucket, &v, "dev", "test").unwrap();
    v
}

fn updates(report: &Value, bucket: &str) -> Vec<(String, String, bool)> {
    let v = report["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["bucket"] == bucket)
        .unwrap_or_else(|| panic!("{bucket} missing from {report:#}"));
    let mut out: Vec<_> = v["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["package"].as_str().unwrap().to_string(),
                u["available"].as_str().unwrap().to_string(),
                u["security"].as_bool().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn planned(f: &Path) -> Vec<Vec<(String, String)>> {
    let out = ok(&kiln(
        f,
        &["plan", "--upstream-updates", "--format", "json"],
    ));
    common::plan_waves(&serde_json::from_str(&out).unwrap())
}

#[test]
fn upstream_updates_from_a_two_snapshot_file_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());
    let mirror = tmp.path().join("mirror");
    let security = tmp.path().join("security");
    // Point the factory's source at the fixture archive.
    let hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    let hcl = hcl.replacen(
        "components = [\"main\"]",
        &format!(
            "components = [\"main\"]\n  mirror          = \"file://{}\"\n  security_mirror = \"file://{}\"",
            mirror.display(),
            security.display()
        ),
        1,
    );
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    ok(&kiln(&f, &["validate"]));

    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        let ci = Actor::new("ci", Role::Ci);
        r.create_bucket(&ci, "base-debian12", "").unwrap();
        r.create_bucket(&ci, "app-web", "").unwrap();
        let base = record(&mut r, "base-debian12", &[], &[]);
        record(
            &mut r,
            "app-web",
            &[base],
            &[("nginx", "1.22.1-9", "amd64")],
        );
    }

    // Snapshot 1: the archive has exactly what was installed, plus unrelated packages, an older
    // backport-style version (`~` sorts first) and the same package for another architecture.
    let main1 = [
        ("libc6", "2.36-9+deb12u7", "amd64"),
        ("libc6", "2.36-9+deb12u9", "i386"),
        ("libssl3", "3.0.15-1~deb12u1", "amd64"),
        ("adduser", "3.134", ARCH_ALL),
        ("tzdata", "2024b-0+deb12u1", ARCH_ALL),
        ("nginx", "1.22.1-9", "amd64"),
        ("curl", "7.88.1-10+deb12u8", "amd64"),
    ];
    snapshot(
        &mirror,
        &security,
        &main1,
        &[("adduser", "3.134~bpo12+1", ARCH_ALL)],
        &[],
    );
    let report: Value =
        serde_json::from_str(&ok(&kiln(&f, &["outdated", "--format", "json"]))).unwrap();
    assert_eq!(updates(&report, "base-debian12"), []);
    assert_eq!(updates(&report, "app-web"), []);
    assert!(planned(&f).is_empty(), "nothing to rebuild on snapshot 1");

    // Snapshot 2: a point release (tzdata in -updates) and security updates of libc6 and
    // libssl3; nginx unchanged. Both images carry the base's packages.
    let sec2 = [
        ("libc6", "2.36-9+deb12u8", "amd64"),
        ("libssl3", "3.0.16-1~deb12u1", "amd64"),
    ];
    snapshot(
        &mirror,
        &security,
        &main1,
        &[("tzdata", "2025a-0+deb12u1", ARCH_ALL)],
        &sec2,
    );
    let out = kiln(&f, &["outdated", "--format", "json"]);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    let want = vec![
        ("libc6".to_string(), "2.36-9+deb12u8".to_string(), true),
        ("libssl3".into(), "3.0.16-1~deb12u1".into(), true),
        ("tzdata".into(), "2025a-0+deb12u1".into(), false),
    ];
    assert_eq!(updates(&report, "base-debian12"), want);
    assert_eq!(updates(&report, "app-web"), want);
    let text = ok(&kiln(&f, &["outdated"]));
    assert!(text.contains("3 update(s), 2 security"), "{text}");
    assert!(
        text.contains("libssl3:amd64")
            && text
                .contains("3.0.15-1~deb12u1 -> 3.0.16-1~deb12u1 (bookworm-security)  [security]"),
        "{text}"
    );
    let plan = planned(&f);
    assert_eq!(plan.len(), 2, "{plan:?}");
    assert_eq!(plan[0][0].0, "base-debian12");
    assert!(
        plan[0][0].1.contains("3 package update(s), 2 security"),
        "{plan:?}"
    );
    assert_eq!(plan[1][0].0, "app-web");

    // Snapshot 2b: only the child's own package moved: only the child is rebuilt.
    snapshot(
        &mirror,
        &security,
        &main1,
        &[],
        &[("nginx", "1.22.1-9+deb12u1", "amd64")],
    );
    let plan = planned(&f);
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].len(), 1);
    assert_eq!(plan[0][0].0, "app-web");
    assert!(
        plan[0][0]
            .1
            .starts_with("upstream: 1 package update(s), 1 security"),
        "{plan:?}"
    );

    // A mirror caught mid-sync (the index no longer matches its Release file) is an error that
    // says so, not a silent "up to date".
    let idx = security.join("dists/bookworm-security/main/binary-amd64/Packages.xz");
    std::fs::write(&idx, b"truncated").unwrap();
    let out = kiln(&f, &["outdated"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("but the Release file says"), "{err}");
}
