//! The registry commands against a registry seeded through the library (recording builds into
//! it is the pipeline's job): versions, show, ancestry, promote, channel history and rollback,
//! revoke (reaching the child), restore, audit verify (and a tampered row caught).

mod common;

use common::{kiln_in as kiln, ok};

use kiln_registry::{Actor, Registry, Role};
use serde_json::{Value, json};

#[test]
fn registry_commands_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());
    let (b1, b2, w1) = {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        let ci = Actor::new("ci", Role::Ci);
        r.create_bucket(&ci, "base-debian12", "").unwrap();
        r.create_bucket(&ci, "app-web", "").unwrap();
        let mut mk = |bucket: &str, parents: &[String]| {
            let v = r
                .start_version(
                    &ci,
                    bucket,
                    "f00d",
                    parents,
                    json!({"parent_channel": "dev"}),
                )
                .unwrap();
            r.complete(&ci, &v).unwrap();
            v
        };
        let b1 = mk("base-debian12", &[]);
        let b2 = mk("base-debian12", &[]);
        let w1 = mk("app-web", std::slice::from_ref(&b2));
        (b1, b2, w1)
    };

    let out = ok(&kiln(
        &f,
        &["versions", "base-debian12", "--format", "json"],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], b2.as_str());

    // production's policy (tests, scan, approval) refuses, listing every unmet rule.
    let o = kiln(&f, &["promote", "base-debian12", &b1, "--to", "production"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("may not enter production")
            && err.contains("require_tests")
            && err.contains("require_approval"),
        "{err}"
    );
    ok(&kiln(
        &f,
        &[
            "promote",
            "base-debian12",
            &b1,
            "--to",
            "dev",
            "--reason",
            "first",
        ],
    ));
    // A unique prefix is enough.
    ok(&kiln(
        &f,
        &["promote", "base-debian12", &b2[..20], "--to", "dev"],
    ));
    ok(&kiln(&f, &["promote", "app-web", &w1, "--to", "dev"]));
    let hist = ok(&kiln(
        &f,
        &[
            "channel",
            "history",
            "base-debian12",
            "dev",
            "--format",
            "json",
        ],
    ));
    let h: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 2);
    assert_eq!(h[1]["author"], "tester");

    let o = kiln(
        &f,
        &[
            "revoke",
            "base-debian12",
            &b2,
            "--reason",
            "CVE-2026-1234",
            "--role",
            "platform",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("may not revoke"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = ok(&kiln(
        &f,
        &[
            "revoke",
            "base-debian12",
            &b2,
            "--reason",
            "CVE-2026-1234",
            "--role",
            "security",
        ],
    ));
    assert!(out.contains("revoked 2 versions"), "{out}");
    let shown: Value = serde_json::from_str(&ok(&kiln(
        &f,
        &["show", "app-web", &w1, "--format", "json"],
    )))
    .unwrap();
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revocation"]["inherited_from"], b2.as_str());
    let versions = ok(&kiln(&f, &["versions", "base-debian12"]));
    let line = versions.lines().find(|l| l.starts_with(&b1)).unwrap();
    assert!(
        line.contains("dev"),
        "production rolled back to {b1}: {versions}"
    );

    let anc = ok(&kiln(&f, &["ancestry", "app-web", "--format", "json"]));
    let a: Value = serde_json::from_str(&anc).unwrap();
    assert_eq!(a[0]["parents"][0], b2.as_str());

    ok(&kiln(
        &f,
        &["restore", "base-debian12", &b2, "--role", "security"],
    ));
    let shown: Value = serde_json::from_str(&ok(&kiln(
        &f,
        &["show", "app-web", &w1, "--format", "json"],
    )))
    .unwrap();
    assert_eq!(shown["status"], "active");

    let out = ok(&kiln(&f, &["audit", "verify"]));
    assert!(out.starts_with("audit log intact: "), "{out}");
    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        r.execute_unchecked("UPDATE audit SET detail = '{\"reason\":\"nothing to see\"}' WHERE action = 'version.revoke'").unwrap();
    }
    let o = kiln(&f, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("audit log broken at entry")
            && err.contains("version.revoke base-debian12/")
            && err.contains("was edited"),
        "{err}"
    );
}
