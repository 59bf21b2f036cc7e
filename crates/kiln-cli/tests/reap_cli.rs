//! `kiln reap` on a factory whose store holds real files: the dry run deletes nothing and says
//! what it would do and why the rest is kept; the real run deletes exactly the unprotected
//! version's files (and its build directory), the failed build's artifacts, audits each, and
//! refuses to touch a file outside the store.

mod common;

use std::path::{Path, PathBuf};

use common::{kiln_in as kiln, ok};
use kiln_registry::{Actor, Artifact, Registry, Role, Status};
use serde_json::{Value, json};

/// A build directory in the store with a disk and its logs, like the builder leaves.
fn build_dir(store: &Path, image: &str, key: &str) -> PathBuf {
    let d = store.join(image).join(key);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["disk.raw", "disk.qcow2", "manifest.json", "serial.log"] {
        std::fs::write(d.join(f), f).unwrap();
    }
    d
}

fn version(r: &mut Registry, bucket: &str, parents: &[String], dir: &Path, fail: bool) -> String {
    let ci = Actor::new("ci", Role::Ci);
    let v = r
        .start_version(&ci, bucket, "fp", parents, json!({}))
        .unwrap();
    for fmt in ["raw", "qcow2"] {
        let a = Artifact {
            platform: "file".into(),
            region: "local".into(),
            external_id: dir.join(format!("disk.{fmt}")).display().to_string(),
            format: fmt.into(),
            size: 3,
            sha256: "00".into(),
        };
        r.add_artifact(&ci, &v, &a).unwrap();
    }
    if fail {
        r.fail(&ci, &v, "checks failed").unwrap();
    } else {
        r.complete(&ci, &v).unwrap();
    }
    v
}

#[test]
fn reap_deletes_only_what_retention_allows() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());
    let hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    let start = hcl.find("retention {").unwrap();
    let end = start + hcl[start..].find('}').unwrap() + 1;
    let hcl = format!(
        "{}retention {{\n  keep_last    = 1\n  min_age      = \"0s\"\n  failed_grace = \"0s\"\n}}{}",
        &hcl[..start],
        &hcl[end..]
    );
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    let store = f.join(".kiln/artifacts");
    let (k1, k2, k3, k4, kw) = (
        build_dir(&store, "base-debian12", "k1"),
        build_dir(&store, "base-debian12", "k2"),
        build_dir(&store, "base-debian12", "k3"),
        build_dir(&store, "base-debian12", "k4"),
        build_dir(&store, "app-web", "kw"),
    );
    let (v1, v2, v3, failed, w1) = {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        let admin = Actor::new("root", Role::Admin);
        r.create_bucket(&admin, "base-debian12", "").unwrap();
        r.create_bucket(&admin, "app-web", "").unwrap();
        let v1 = version(&mut r, "base-debian12", &[], &k1, false);
        let v2 = version(&mut r, "base-debian12", &[], &k2, false);
        let w1 = version(&mut r, "app-web", std::slice::from_ref(&v2), &kw, false);
        let v3 = version(&mut r, "base-debian12", &[], &k3, false);
        let failed = version(&mut r, "base-debian12", &[], &k4, true);
        r.promote(&admin, "base-debian12", &v3, "dev", "t").unwrap();
        (v1, v2, v3, failed, w1)
    };
    std::thread::sleep(std::time::Duration::from_millis(5));

    let dry = ok(&kiln(&f, &["reap", "--dry-run"]));
    assert!(
        dry.contains(&format!("would reap  base-debian12        {v1}")),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("ancestor of live version app-web/{w1}")),
        "{dry}"
    );
    assert!(dry.contains("4 local file(s) would be deleted"), "{dry}");
    assert!(
        k1.join("disk.raw").exists() && k4.join("disk.raw").exists(),
        "dry run deleted files"
    );

    let out: Value = serde_json::from_str(&ok(&kiln(&f, &["reap", "--format", "json"]))).unwrap();
    let reaped: Vec<(&str, &str)> = out["reaped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reaped.len(), 2, "{out:#}");
    assert!(reaped.contains(&(v1.as_str(), "version")));
    assert!(reaped.contains(&(failed.as_str(), "failed_artifacts")));
    assert_eq!(out["files_deleted"], 4);
    // The reaped build's directory is gone with its logs; everything protected is untouched.
    assert!(!k1.exists() && !k4.exists());
    for d in [&k2, &k3, &kw] {
        assert!(d.join("disk.raw").exists() && d.join("serial.log").exists());
    }

    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    assert_eq!(r.version(&v1).unwrap().status, Status::Reaped);
    assert!(r.version(&v1).unwrap().artifacts.is_empty());
    assert_eq!(r.version(&failed).unwrap().status, Status::Failed);
    assert_eq!(r.version(&v2).unwrap().status, Status::Active);
    assert_eq!(r.version(&v3).unwrap().artifacts.len(), 2);
    let audited = r
        .audit_entries()
        .unwrap()
        .iter()
        .filter(|e| {
            ["version.reap", "version.reap_artifacts"].contains(&e.action.as_str())
                && e.actor == "tester"
        })
        .count();
    assert_eq!(audited, 2);
    ok(&kiln(&f, &["audit", "verify"]));
    let show = ok(&kiln(&f, &["show", "base-debian12", &v1]));
    assert!(show.contains("reaped"), "{show}");

    // Nothing left to reap: a second run changes nothing.
    let again = ok(&kiln(&f, &["reap"]));
    assert!(again.contains("nothing to reap"), "{again}");

    // An artifact path outside the store is never deleted, whatever the registry says.
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("disk.raw"), "x").unwrap();
    std::fs::write(outside.join("disk.qcow2"), "x").unwrap();
    {
        let admin = Actor::new("root", Role::Admin);
        version(&mut r, "base-debian12", &[], &outside, false);
        let newest = version(&mut r, "base-debian12", &[], &k3, false);
        r.promote(&admin, "base-debian12", &newest, "dev", "t")
            .unwrap();
    }
    drop(r);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let o = kiln(&f, &["reap"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("outside the factory's artifact store; left in place"),
        "{text}"
    );
    assert!(outside.join("disk.raw").exists());
}
