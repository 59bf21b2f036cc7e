//! `kiln check-plan` on the real Terraform plans in ../shared/fixtures/terraform: exit 0 when
//! every created or updated resource uses a live tracked image, 1 otherwise, with the reason per
//! resource; `kiln token` creates, lists (never the secret) and revokes.

mod common;

use std::path::PathBuf;

use common::{init_factory, kiln_in, ok};
use kiln_registry::{Actor, Artifact, Registry, Role};

fn fixture(name: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest
        .join("../../../shared/fixtures/terraform")
        .join(name);
    if shared.is_file() {
        return shared;
    }
    manifest
        .join("../kiln-server/tests/data/terraform")
        .join(name)
}

fn version(r: &mut Registry, fp: &str, ami: &str) -> String {
    let a = Actor::new("seed", Role::Admin);
    r.ensure_bucket(&a, "base").unwrap();
    let id = r
        .start_version(&a, "base", fp, &[], serde_json::json!({}))
        .unwrap();
    r.add_artifact(
        &a,
        &id,
        &Artifact {
            platform: "aws".into(),
            region: "us-east-1".into(),
            external_id: ami.into(),
            format: String::new(),
            size: 0,
            sha256: String::new(),
        },
    )
    .unwrap();
    r.complete(&a, &id).unwrap();
    id
}

#[test]
fn plans_pass_or_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let f = init_factory(dir.path());
    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        version(&mut r, "a", "ami-0a1b2c3d4e5f60718");
        version(&mut r, "b", "ami-0fedcba9876543210");
        let bad = version(&mut r, "c", "ami-0fedcba9876543299");
        r.revoke(
            &Actor::new("sec", Role::Security),
            &bad,
            "CVE-2099-0001",
            None,
            false,
        )
        .unwrap();
    }
    let create = fixture("plan-create.json");
    let update = fixture("plan-update.json");
    let create = create.to_str().unwrap();
    let update = update.to_str().unwrap();

    let o = kiln_in(&f, &["check-plan", create]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("FAIL terraform_data.untracked (create) input.image_id"),
        "{out}"
    );
    assert!(out.contains("failed: 1 of 3"), "{out}");

    let o = kiln_in(&f, &["check-plan", create, "--untracked", "warn"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let o = kiln_in(&f, &["check-plan", update, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["passed"], false);
    assert_eq!(j["usages"][0]["verdict"], "revoked");
    assert!(
        j["usages"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("CVE-2099-0001")
    );

    // Not a plan: a clear error, exit 1.
    let notplan = dir.path().join("x.json");
    std::fs::write(&notplan, "{\"a\": 1}").unwrap();
    let o = kiln_in(&f, &["check-plan", notplan.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("terraform show -json"));
}

#[test]
fn tokens_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let f = init_factory(dir.path());
    let secret = ok(&kiln_in(
        &f,
        &[
            "token",
            "create",
            "ci-main",
            "--role",
            "ci",
            "--expires",
            "30d",
        ],
    ));
    let secret = secret.trim();
    assert!(
        secret.starts_with("kiln_") && secret.len() == 69,
        "{secret}"
    );
    let list = ok(&kiln_in(&f, &["token", "list"]));
    assert!(
        list.contains("ci-main") && list.contains("expires"),
        "{list}"
    );
    assert!(!list.contains(&secret[5..]), "the secret is never listed");
    let bad = kiln_in(&f, &["token", "create", "x", "--role", "root"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("consumer"));
    ok(&kiln_in(&f, &["token", "revoke", "ci-main"]));
    let list = ok(&kiln_in(&f, &["token", "list"]));
    assert!(list.contains("revoked"), "{list}");
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    assert_eq!(r.authenticate(secret).unwrap(), None);
}

/// `kiln serve` answers on its port, prints where, and exits cleanly on Ctrl-C (SIGINT).
#[test]
fn serve_answers_then_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let f = init_factory(dir.path());
    let secret = ok(&kiln_in(
        &f,
        &["token", "create", "reader", "--role", "consumer"],
    ));
    let (mut child, _, url) = common::spawn_serve(&f);
    let body = std::process::Command::new("curl")
        .args([
            "-fsS",
            "-H",
            &format!("Authorization: Bearer {}", secret.trim()),
        ])
        .arg(format!("{url}/v1/buckets"))
        .output()
        .unwrap();
    assert!(
        body.status.success(),
        "{}",
        String::from_utf8_lossy(&body.stderr)
    );
    assert!(String::from_utf8_lossy(&body.stdout).contains("\"buckets\""));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "kiln serve exits 0 after Ctrl-C: {status}"
    );
}
