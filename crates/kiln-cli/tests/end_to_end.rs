//! The whole flow on the example factory, through the `kiln` binary, as a platform team runs it
//! (needs root: it really builds and boots):
//! 1. `kiln build --all`: base and child built, booted and checked, recorded, promoted to dev;
//! 2. a hardening change committed → `kiln plan --since` and `kiln build --since` rebuild the base
//!    and then the child, on the new base;
//! 3. another base change built alone and promoted (automatically, to dev, the channel the child
//!    tracks) → `kiln outdated` reports the child → `kiln build --outdated` rebuilds it on the
//!    new base, and nothing is out of date any more;
//! 4. the first (booted and tested) base is promoted to `test`; its AMI gains the test channel's
//!    account and a re-run of `kiln publish` creates nothing.
//!
//! The factory publishes to AWS's stand-in (moto) and its map gives `dev` an account: step 1's
//! publish stage shares both tested versions, whose snapshots read back bit for bit; steps 2 and
//! 3 build untested versions, which are not published, and the versions they push off `dev`
//! lose its account and its SSM parameter.
//!
//! The child tracks `dev` here (the example's tracks `production`, which needs a scan report and
//! an approval). Steps 2 and 3 skip the boot test: step 1 covers it and the rest is pipeline.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Moto, cache_dir, ok};
use kiln_registry::{Registry, Status};
use serde_json::Value;

/// moto's address, for every kiln run of the test.
static MOTO: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn kiln(f: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(f)
        .args(args)
        .env("KILN_AWS_ENDPOINT_URL", MOTO.get().expect("moto started"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("KILN_CACHE_DIR", cache_dir())
        .env("KILN_ACTOR", "ci-e2e")
        .env("KILN_ROLE", "ci")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn git(f: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(f)
        .args([
            "-c",
            "user.name=e2e",
            "-c",
            "user.email=e2e@example.invalid",
        ])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// `(image, result, version)` of a `kiln build --format json`.
fn results(v: &Value) -> Vec<(String, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["image"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn harden(f: &Path, line: &str) {
    let p = f.join("images/base-debian12/harden.sh");
    let mut s = std::fs::read_to_string(&p).unwrap();
    s.push_str(&format!("{line}\n"));
    std::fs::write(&p, s).unwrap();
    git(f, &["commit", "-qam", line]);
}

/// The image names of each wave of a plan.
fn waves(v: &Value) -> Vec<Vec<String>> {
    common::plan_waves(v)
        .into_iter()
        .map(|w| w.into_iter().map(|(image, _)| image).collect())
        .collect()
}

#[test]
fn build_change_rebuild_promote_cascade() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());
    let hcl = f.join("images/app-web/image.kiln.hcl");
    let text = std::fs::read_to_string(&hcl).unwrap();
    std::fs::write(
        &hcl,
        text.replace("channel     = \"production\"", "channel     = \"dev\""),
    )
    .unwrap();
    std::fs::write(f.join(".gitignore"), ".kiln/\n").unwrap();
    let moto = Moto::start();
    MOTO.set(moto.url.clone()).unwrap();
    let mut hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    hcl.push_str("\npublish \"aws\" {\n  regions = [\"us-east-1\"]\n}\n");
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    let map = std::fs::read_to_string(f.join("accounts.yaml")).unwrap();
    std::fs::write(
        f.join("accounts.yaml"),
        map.replace(
            "channels:\n",
            "channels:\n  dev:\n    aws:\n      accounts: [\"444444444444\"]\n",
        ),
    )
    .unwrap();
    git(&f, &["init", "-q"]);
    git(&f, &["add", "."]);
    git(&f, &["commit", "-qm", "factory"]);

    // 1. Everything, with boot tests, published.
    let built = json(&kiln(&f, &["build", "--all", "--format", "json"]));
    let first = results(&built);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(
        (first[0].0.as_str(), first[0].1.as_str()),
        ("base-debian12", "built")
    );
    assert_eq!(
        (first[1].0.as_str(), first[1].1.as_str()),
        ("app-web", "built")
    );
    let (v1, w1) = (first[0].2.clone(), first[1].2.clone());
    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        for (bucket, v) in [("base-debian12", &v1), ("app-web", &w1)] {
            let ver = r.version(v).unwrap();
            assert_eq!(ver.status, Status::Active);
            let formats: Vec<&str> = ver.artifacts.iter().map(|a| a.format.as_str()).collect();
            assert!(
                formats.contains(&"raw") && formats.contains(&"qcow2"),
                "{formats:?}"
            );
            for a in ver.artifacts.iter().filter(|a| a.platform == "file") {
                assert!(
                    Path::new(&a.external_id).exists(),
                    "{} missing",
                    a.external_id
                );
            }
            let test = r.report(v, "test").unwrap().expect("test report recorded");
            let checks = test["results"].as_array().expect("check results");
            assert!(!checks.is_empty(), "{bucket}: {test}");
            assert!(
                checks.iter().all(|c| c["status"] == "pass"),
                "{bucket}: {test}"
            );
            assert!(
                test["boot_seconds"].as_f64().is_some(),
                "{bucket} was booted"
            );
            assert!(r.report(v, "manifest").unwrap().is_some());
            assert_eq!(
                r.channel(bucket, "dev").unwrap().as_deref(),
                Some(v.as_str())
            );
        }
        assert_eq!(r.version(&w1).unwrap().parents, std::slice::from_ref(&v1));
    }
    for (i, v) in [&v1, &w1].into_iter().enumerate() {
        let p = &built[i]["published"][0];
        assert_eq!(
            (&p["cloud"], &p["result"]),
            (&"aws".into(), &"published".into()),
            "{p:#}"
        );
        snapshot_is_the_disk(&f, &moto, v, &p["report"]);
    }
    let ami1 = ami_of(&f, &v1);
    assert_eq!(shared(&moto, &ami1), serde_json::json!(["444444444444"]));
    assert_eq!(
        parameter(&moto, "/kiln/base-debian12/dev"),
        serde_json::json!(ami1)
    );
    let versions = ok(&kiln(&f, &["versions", "base-debian12"]));
    assert!(versions.contains(&v1), "{versions}");
    let ancestry = ok(&kiln(&f, &["ancestry", "app-web"]));
    assert!(
        ancestry.contains(&v1) && ancestry.contains(&w1),
        "{ancestry}"
    );

    // 2. A hardening change: the plan and the build take base, then the child.
    harden(&f, "install -d /etc/kiln && echo e2e-1 > /etc/kiln/e2e");
    let plan = json(&kiln(
        &f,
        &["plan", "--since", "HEAD~1", "--format", "json"],
    ));
    assert_eq!(waves(&plan), [["base-debian12"], ["app-web"]]);
    let second_json = json(&kiln(
        &f,
        &[
            "build",
            "--since",
            "HEAD~1",
            "--no-test",
            "--format",
            "json",
        ],
    ));
    let second = results(&second_json);
    let names: Vec<(&str, &str)> = second
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    assert_eq!(names, [("base-debian12", "built"), ("app-web", "built")]);
    let (v2, w2) = (second[0].2.clone(), second[1].2.clone());
    // Untested: not published; the versions it displaced from dev lose dev's account and the
    // parameter that named them.
    let status: Vec<&Value> = second_json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["published"][0]["result"])
        .collect();
    assert_eq!(
        status,
        [&Value::from("not published"), &Value::from("not published")]
    );
    assert_eq!(shared(&moto, &ami1), serde_json::json!([]));
    assert_eq!(parameter(&moto, "/kiln/base-debian12/dev"), Value::Null);
    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        assert_ne!(
            r.version(&v2).unwrap().fingerprint,
            r.version(&v1).unwrap().fingerprint
        );
        assert_eq!(r.version(&w2).unwrap().parents, std::slice::from_ref(&v2));
    }

    // 3. The base alone; its promotion to dev leaves the child behind; --outdated catches up.
    harden(&f, "echo e2e-2 >> /etc/kiln/e2e");
    let third = results(&json(&kiln(
        &f,
        &[
            "build",
            "base-debian12",
            "--no-cascade",
            "--no-test",
            "--no-publish",
            "--format",
            "json",
        ],
    )));
    assert_eq!(third.len(), 1);
    let v3 = third[0].2.clone();
    let outdated = json(&kiln(&f, &["outdated", "--format", "json"]));
    let children = outdated["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{outdated:#}");
    assert_eq!(children[0]["child"], w2.as_str());
    assert_eq!(children[0]["now"], v3.as_str());
    let plan = json(&kiln(&f, &["plan", "--outdated", "--format", "json"]));
    assert_eq!(waves(&plan), [["app-web"]]);
    let fourth = results(&json(&kiln(
        &f,
        &["build", "--outdated", "--no-test", "--format", "json"],
    )));
    assert_eq!(fourth.len(), 1);
    assert_eq!(
        (fourth[0].0.as_str(), fourth[0].1.as_str()),
        ("app-web", "built")
    );
    let w3 = fourth[0].2.clone();
    {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        assert_eq!(r.version(&w3).unwrap().parents, std::slice::from_ref(&v3));
        assert_eq!(
            r.channel("app-web", "dev").unwrap().as_deref(),
            Some(w3.as_str())
        );
    }
    let outdated = json(&kiln(&f, &["outdated", "--format", "json"]));
    assert!(
        outdated["children"].as_array().unwrap().is_empty(),
        "{outdated:#}"
    );
    // Nothing left to do: a second --outdated builds nothing.
    let nothing = json(&kiln(
        &f,
        &["build", "--outdated", "--no-test", "--format", "json"],
    ));
    assert!(nothing.as_array().unwrap().is_empty(), "{nothing}");
    // 4. The first tested base goes to `test`: its AMI gains the test channel's account (and
    // the test parameter names it); publishing it again creates nothing.
    ok(&kiln(
        &f,
        &["promote", "base-debian12", &v1, "--to", "test"],
    ));
    assert_eq!(shared(&moto, &ami1), serde_json::json!(["111111111111"]));
    assert_eq!(
        parameter(&moto, "/kiln/base-debian12/test"),
        serde_json::json!(ami1)
    );
    let again = json(&kiln(
        &f,
        &["publish", "base-debian12", &v1, "--format", "json"],
    ));
    assert_eq!(again["images"][0]["created"], false, "{again:#}");
    assert_eq!(again["images"][0]["ami"], ami1.as_str());
    ok(&kiln(&f, &["audit", "verify"]));
}

/// The version's AMI (us-east-1), as recorded.
fn ami_of(f: &Path, version: &str) -> String {
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    let aws: Vec<_> = r
        .version(version)
        .unwrap()
        .artifacts
        .into_iter()
        .filter(|a| a.platform == "aws")
        .collect();
    assert_eq!(aws.len(), 1, "{aws:?}");
    assert!(aws[0].external_id.starts_with("ami-"));
    aws[0].external_id.clone()
}

/// The accounts the AMI is shared with, sorted, as moto tells boto3.
fn shared(moto: &Moto, ami: &str) -> Value {
    moto.query(&format!("print(json.dumps(sorted(p['UserId'] for p in ec2('us-east-1').describe_image_attribute(ImageId='{ami}', Attribute='launchPermission')['LaunchPermissions'])))"))
}

/// An SSM parameter's value, or null when there is none.
fn parameter(moto: &Moto, name: &str) -> Value {
    moto.query(&format!("try:\n  print(json.dumps(ssm('us-east-1').get_parameter(Name='{name}')['Parameter']['Value']))\nexcept ssm('us-east-1').exceptions.ParameterNotFound:\n  print('null')"))
}

/// The snapshot the build's publish stage sent (its `report`), read back block by block with
/// boto3's GetSnapshotBlock, is the version's raw disk bit for bit, and most of it was skipped
/// as all-zero.
fn snapshot_is_the_disk(f: &Path, moto: &Moto, version: &str, report: &Value) {
    let snap = report["snapshot"]["id"].as_str().unwrap().to_string();
    let skipped = report["snapshot"]["blocks_zero"].as_u64().unwrap();
    let sent = report["snapshot"]["blocks_sent"].as_u64().unwrap();
    assert!(sent > 0 && skipped > sent, "a mostly empty disk: {report}");
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    let raw = r
        .version(version)
        .unwrap()
        .artifacts
        .into_iter()
        .find(|a| a.format == "raw")
        .unwrap();
    let back = moto.query(&format!(
        "import hashlib\nebs = boto3.client('ebs', region_name='us-east-1', **kw)\nsize = {size}\nblocks = {{}}\ntoken = None\nwhile True:\n  page = ebs.list_snapshot_blocks(SnapshotId='{snap}', **({{'NextToken': token}} if token else {{}}))\n  for b in page['Blocks']:\n    blocks[b['BlockIndex']] = ebs.get_snapshot_block(SnapshotId='{snap}', BlockIndex=b['BlockIndex'], BlockToken=b['BlockToken'])['BlockData'].read()\n  token = page.get('NextToken')\n  if not token: break\nh = hashlib.sha256()\nzero = bytes(524288)\nfor i in range((size + 524287) // 524288):\n  h.update(blocks.get(i, zero)[: min(524288, size - i * 524288)])\nprint(json.dumps(dict(sha256=h.hexdigest(), blocks=len(blocks))))",
        size = raw.size
    ));
    assert_eq!(
        back["sha256"],
        raw.sha256.as_str(),
        "reassembled from the snapshot"
    );
    assert_eq!(back["blocks"].as_u64(), Some(sent));
    println!(
        "published {version}: {sent} blocks sent, {skipped} all-zero skipped; read back sha256 {}",
        raw.sha256
    );
}
