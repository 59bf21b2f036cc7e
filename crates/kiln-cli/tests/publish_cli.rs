//! `kiln publish` to AWS against moto's server, checked from the other side with boto3 (a
//! different client than the one that published): the AMI exists in each configured region,
//! launch permissions equal what the account map gives the version's channels (and follow the
//! channels as they move), each channel's SSM parameter names the AMI, a re-run creates nothing,
//! and every fail-closed condition shares nothing and says why.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{Moto, init_factory};
use kiln_emulators::Throttle;
use kiln_registry::{Actor, Registry, Role};

fn publish(f: &Path, moto: &Moto, extra: &[&str]) -> Output {
    let mut args = vec!["publish", "base-debian12"];
    args.extend(extra);
    kiln_aws(f, moto, &args)
}

/// `kiln ARGS` with AWS pointed at moto.
fn kiln_aws(f: &Path, moto: &Moto, args: &[&str]) -> Output {
    aws_at(f, &moto.url, args).output().unwrap()
}

/// `kiln ARGS` with AWS at `url`, test credentials and a non-admin actor.
fn aws_at(f: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
    c.arg("--factory")
        .arg(f)
        .args(args)
        .env("KILN_AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("KILN_ACTOR", "tester")
        .env_remove("KILN_ROLE");
    c
}

/// A factory publishing to two regions, and one active, tested version of base-debian12 whose
/// raw disk is a sparse 16 MiB file with a little data; returns (factory, version id).
fn setup(dir: &Path, tested: bool) -> (std::path::PathBuf, String) {
    std::fs::create_dir_all(dir).unwrap();
    let f = init_factory(dir);
    let mut hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    hcl.push_str("\npublish \"aws\" {\n  regions = [\"us-east-1\", \"eu-west-1\"]\n  tags    = { team = \"platform\" }\n}\n");
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    let disk = dir.join("disk.raw");
    let file = std::fs::File::create(&disk).unwrap();
    file.set_len(16 << 20).unwrap();
    file.write_all_at(&[0xeb; 4096], 0).unwrap();
    file.write_all_at(b"kiln", 9 << 20).unwrap();
    drop(file);
    let id = common::stored_version_from(&f, &[("raw", &disk)], tested, "test", None);
    (f, id)
}

/// Puts a newer version on the `test` channel.
fn replace_on_test(r: &mut Registry, why: &str) {
    let a = Actor::new("ops", Role::Admin);
    let newer = r
        .start_version(&a, "base-debian12", "fp2", &[], serde_json::json!({}))
        .unwrap();
    r.complete(&a, &newer).unwrap();
    r.promote(&a, "base-debian12", &newer, "test", why).unwrap();
}

fn aws_artifacts(f: &Path, id: &str) -> Vec<(String, String)> {
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    r.version(id)
        .unwrap()
        .artifacts
        .into_iter()
        .filter(|a| a.platform == "aws")
        .map(|a| (a.region, a.external_id))
        .collect()
}

#[test]
fn publishes_shares_as_the_map_says_and_reruns_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (f, id) = setup(dir.path(), true);
    let moto = Moto::start();
    let o = publish(&f, &moto, &[&id]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let arts = aws_artifacts(&f, &id);
    assert_eq!(
        arts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["eu-west-1", "us-east-1"]
    );
    let (east, west) = (&arts[1].1, &arts[0].1);

    let seen = moto.query(&format!(
        "out = {{}}\nfor r, ami in (('us-east-1', '{east}'), ('eu-west-1', '{west}')):\n  perms = ec2(r).describe_image_attribute(ImageId=ami, Attribute='launchPermission')['LaunchPermissions']\n  img = ec2(r).describe_images(ImageIds=[ami])['Images'][0]\n  out[r] = dict(perms=sorted(p.get('UserId') or p.get('OrganizationalUnitArn') for p in perms), name=img['Name'], param=ssm(r).get_parameter(Name='/kiln/base-debian12/test')['Parameter']['Value'], tags={{t['Key']: t['Value'] for t in img.get('Tags', [])}})\nprint(json.dumps(out))"
    ));
    for (region, ami) in [("us-east-1", east), ("eu-west-1", west)] {
        let s = &seen[region];
        assert_eq!(
            s["perms"],
            serde_json::json!(["111111111111"]),
            "{region}: the test channel's accounts"
        );
        assert_eq!(
            &s["param"], ami,
            "{region}: /kiln/base-debian12/test names the AMI"
        );
        assert_eq!(s["tags"]["kiln:version"], id.as_str());
        assert_eq!(s["tags"]["team"], "platform");
        assert_eq!(s["tags"]["kiln:git-commit"], "abc123");
    }

    // Re-running creates nothing.
    let o = publish(&f, &moto, &[&id]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("already complete") && !out.contains(" created"),
        "{out}"
    );
    let counts = moto.query("print(json.dumps([len(ec2(r).describe_images(Owners=['self'])['Images']) for r in ('us-east-1', 'eu-west-1')]))");
    assert_eq!(counts, serde_json::json!([1, 1]));
    assert_eq!(aws_artifacts(&f, &id), arts);

    // Promoted to production as well: its accounts and OU are added; the test channel moves
    // away: its account is removed. Production's channel block adds a region and a tag.
    let hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    std::fs::write(
        f.join("kiln.hcl"),
        hcl.replace(
            "tags    = { team = \"platform\" }\n}",
            "tags    = { team = \"platform\" }\n  channel \"production\" {\n    regions = [\"ap-southeast-2\"]\n    tags    = { tier = \"prod\" }\n  }\n}",
        ),
    )
    .unwrap();
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    let a = Actor::new("ops", Role::Admin);
    r.promote(&a, "base-debian12", &id, "production", "go")
        .unwrap();
    replace_on_test(&mut r, "moved on");
    let o = publish(&f, &moto, &[&id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let perms = moto.query(&format!("print(json.dumps(sorted(p.get('UserId') or p.get('OrganizationalUnitArn') for p in ec2('us-east-1').describe_image_attribute(ImageId='{east}', Attribute='launchPermission')['LaunchPermissions'])))"));
    assert_eq!(
        perms,
        serde_json::json!([
            "222222222222",
            "333333333333",
            "arn:aws:organizations::222222222222:ou/o-exampleorg1/ou-ab12-cdef3456"
        ])
    );
    let regions: Vec<String> = aws_artifacts(&f, &id).into_iter().map(|a| a.0).collect();
    assert_eq!(regions, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
    let tier = moto.query("print(json.dumps([[{t['Key']: t['Value'] for t in i.get('Tags', [])}.get('tier') for i in ec2(r).describe_images(Owners=['self'])['Images']] for r in ('us-east-1', 'ap-southeast-2')]))");
    assert_eq!(
        tier,
        serde_json::json!([["prod"], ["prod"]]),
        "the copy in production's region, and the found AMI re-tagged"
    );

    // Revocation reaches AWS: no launch permission left in either region, the AMIs tagged;
    // restore gives the production accounts back.
    let perms_and_tag = |m: &Moto| {
        m.query(&format!(
            "print(json.dumps([[sorted(p.get('UserId') or p.get('OrganizationalUnitArn') for p in ec2(r).describe_image_attribute(ImageId=a, Attribute='launchPermission')['LaunchPermissions']), {{t['Key']: t['Value'] for t in ec2(r).describe_images(ImageIds=[a])['Images'][0].get('Tags', [])}}.get('kiln:revoked')] for r, a in (('us-east-1', '{east}'), ('eu-west-1', '{west}'))]))"
        ))
    };
    let o = kiln_aws(
        &f,
        &moto,
        &[
            "revoke",
            "base-debian12",
            &id,
            "--reason",
            "CVE-2099-0001",
            "--role",
            "security",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("aws us-east-1 {east}: +0 -3 launch permissions")),
        "{out}"
    );
    assert_eq!(
        perms_and_tag(&moto),
        serde_json::json!([[[], "CVE-2099-0001"], [[], "CVE-2099-0001"]])
    );
    // A revoked version is not published again.
    let o = publish(&f, &moto, &[&id]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("only active versions are published"));
    let o = kiln_aws(
        &f,
        &moto,
        &["restore", "base-debian12", &id, "--role", "security"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The revocation moved production off the version and a restore does not move it back: no
    // channel, no account — until it is promoted again, which shares it and moves the parameter.
    assert_eq!(
        perms_and_tag(&moto),
        serde_json::json!([[[], null], [[], null]]),
        "restored: the revoked tag is gone, and no channel means no account"
    );
    // The newer version on `test` had its own parameter value: point it elsewhere to see the
    // promotion move it back.
    moto.query("ssm('eu-west-1').put_parameter(Name='/kiln/base-debian12/test', Value='ami-0000000000000stale', Type='String', Overwrite=True)\nprint('null')");
    let o = kiln_aws(
        &f,
        &moto,
        &[
            "promote",
            "base-debian12",
            &id,
            "--to",
            "test",
            "--role",
            "platform",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("aws us-east-1 {east}: +1 -0")),
        "{out}"
    );
    let back = moto.query(&format!(
        "print(json.dumps([ec2('us-east-1').describe_image_attribute(ImageId='{east}', Attribute='launchPermission')['LaunchPermissions'], ssm('eu-west-1').get_parameter(Name='/kiln/base-debian12/test')['Parameter']['Value']]))"
    ));
    assert_eq!(
        back,
        serde_json::json!([[{"UserId": "111111111111"}], west])
    );
}

fn refused(f: &Path, moto: &Moto, id: &str, why: &str) {
    let o = publish(f, moto, &[id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "published although {why}");
    assert!(err.contains(why), "`{why}` not in: {err}");
    assert!(aws_artifacts(f, id).is_empty(), "an artifact was recorded");
    let n = moto.query("print(json.dumps(len(ec2('us-east-1').describe_snapshots(OwnerIds=['self'])['Snapshots'])))");
    assert_eq!(n, 0, "something reached the cloud although {why}");
}

#[test]
fn fails_closed_and_says_why() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();

    let (f, id) = setup(&dir.path().join("untested"), false);
    refused(&f, &moto, &id, "has no test report");

    let (f, id) = setup(&dir.path().join("empty"), true);
    std::fs::write(f.join("accounts.yaml"), "channels: {}\n").unwrap();
    refused(&f, &moto, &id, "lists no account");

    let (f, id) = setup(&dir.path().join("missing"), true);
    std::fs::remove_file(f.join("accounts.yaml")).unwrap();
    refused(&f, &moto, &id, "no accounts.yaml");

    // A map that does not parse is a definition error with its position.
    let (f, id) = setup(&dir.path().join("broken"), true);
    std::fs::write(
        f.join("accounts.yaml"),
        "channels:\n  test:\n    aws:\n      accounts: [\"12345\"]\n",
    )
    .unwrap();
    refused(&f, &moto, &id, "accounts.yaml:4:");

    let (f, id) = setup(&dir.path().join("branch"), true);
    let hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    std::fs::write(
        f.join("kiln.hcl"),
        hcl.replace(
            "tags    = { team = \"platform\" }",
            "default_branch = \"main\"",
        ),
    )
    .unwrap();
    refused(&f, &moto, &id, "limited to branch `main`");

    // Not on any channel: another version took its place.
    let (f, id) = setup(&dir.path().join("nochannel"), true);
    replace_on_test(
        &mut Registry::open(&f.join(".kiln/registry.db")).unwrap(),
        "replaced",
    );
    refused(&f, &moto, &id, "is on no channel");
}

#[test]
fn reap_deregisters_a_reaped_versions_amis_and_deletes_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (f, id) = setup(dir.path(), true);
    let hcl = std::fs::read_to_string(f.join("kiln.hcl"))
        .unwrap()
        .replace("keep_last    = 10", "keep_last    = 1")
        .replace("min_age      = \"7d\"", "min_age      = \"0s\"");
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    let moto = Moto::start();
    let o = publish(&f, &moto, &[&id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let arts = aws_artifacts(&f, &id);
    let count = |m: &Moto| {
        m.query("print(json.dumps([[len(ec2(r).describe_images(Owners=['self'])['Images']), len(ec2(r).describe_snapshots(OwnerIds=['self'])['Snapshots'])] for r in ('us-east-1', 'eu-west-1')]))")
    };
    // One AMI per region, each with its snapshot(s) (moto keeps the uploaded snapshot apart
    // from the one it registers the AMI with).
    let published = count(&moto);
    let published_ok = |c: &serde_json::Value| {
        c.as_array()
            .unwrap()
            .iter()
            .all(|r| r[0] == 1 && r[1].as_u64().unwrap() >= 1)
    };
    assert!(published_ok(&published), "{published}");

    // While the version is on `test` it is kept, and so are its AMIs.
    let o = kiln_aws(&f, &moto, &["reap", "--role", "platform"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(count(&moto), published);

    // A newer version takes the channel: the old one is reaped, in the registry and in AWS.
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    replace_on_test(&mut r, "newer");
    drop(r);
    let o = kiln_aws(&f, &moto, &["reap", "--role", "platform"]);
    let out = String::from_utf8_lossy(&o.stdout);
    // The test's raw disk lives outside the factory's store, so reap leaves it (and exits 1
    // for it); every cloud deletion succeeded.
    assert!(
        out.contains("reaped      base-debian12")
            && !out.contains("could not delete from the cloud"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (region, ami) in &arts {
        assert!(
            out.contains(&format!(
                "aws {region} {ami} deregistered, snapshot(s) snap-"
            )),
            "{out}"
        );
    }
    assert_eq!(count(&moto), serde_json::json!([[0, 0], [0, 0]]));
}

/// A tested version on `test` whose raw disk is `mib` MiB of random data (nothing to skip: the
/// upload takes long enough through a throttle to be interrupted); `seed` makes disks differ.
fn setup_random(
    dir: &Path,
    mib: usize,
    seed: u64,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (f, _) = setup(dir, true);
    let disk = dir.join("random.raw");
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&disk, &data).unwrap();
    let id = common::stored_version_from(&f, &[("raw", &disk)], true, "test", None);
    (f, disk, id)
}

/// Starts a publish through `throttle` and kills kiln (or moto) once 12 MiB went through;
/// returns the finished child's output.
fn interrupted(
    f: &Path,
    moto: &mut Moto,
    throttle: &Throttle,
    id: &str,
    kill_kiln: bool,
) -> Output {
    let mut child = aws_at(
        f,
        &throttle.url,
        &["publish", "base-debian12", id, "--parallel", "2"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    throttle.wait_past(throttle.forwarded(), 12 << 20, || true);
    if kill_kiln {
        child.kill().unwrap();
    } else {
        moto.kill();
    }
    child.wait_with_output().unwrap()
}

/// `kiln publish` again, which must succeed; its output.
fn rerun(f: &Path, moto: &Moto, id: &str) -> String {
    let o = kiln_aws(f, moto, &["publish", "base-debian12", id]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The `N resumed` figure of a publish's snapshot line.
fn resumed(out: &str) -> u64 {
    out.split(" resumed")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resume figure in {out}"))
}

/// The snapshot id of a publish's snapshot line (`snapshot snap-…: …`).
fn snapshot_of(out: &str) -> String {
    out.split("snapshot ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap_or_else(|| panic!("no snapshot line in {out}"))
        .to_string()
}

/// Reads every block of the EBS snapshot back and hashes the disk they make.
fn snapshot_sha256(moto: &Moto, snap: &str, size: u64) -> String {
    let back = moto.query(&format!(
        "import hashlib\nsnap = '{snap}'\ne = ebs('us-east-1')\nblocks = {{}}\ntoken = None\nwhile True:\n  page = e.list_snapshot_blocks(SnapshotId=snap, **({{'NextToken': token}} if token else {{}}))\n  for b in page['Blocks']:\n    blocks[b['BlockIndex']] = e.get_snapshot_block(SnapshotId=snap, BlockIndex=b['BlockIndex'], BlockToken=b['BlockToken'])['BlockData'].read()\n  token = page.get('NextToken')\n  if not token: break\nh = hashlib.sha256()\nsize = {size}\nfor i in range((size + 524287) // 524288):\n  h.update(blocks.get(i, bytes(524288))[: min(524288, size - i * 524288)])\nprint(json.dumps(h.hexdigest()))"
    ));
    back.as_str().unwrap().to_string()
}

#[test]
fn an_interrupted_upload_is_completed_by_a_rerun_and_never_recorded_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut moto = Moto::start();
    // Two blocks in flight, each connection at 3 MiB/s: 40 MiB take about seven seconds.
    let throttle = Throttle::start(moto.port, 3 << 20);

    // kiln dies mid-upload: nothing is recorded; the re-run finds the tagged snapshot, asks
    // which blocks it holds and sends only the others.
    let (f, disk, id) = setup_random(&dir.path().join("kiln-killed"), 40, 1);
    let o = interrupted(&f, &mut moto, &throttle, &id, true);
    assert!(!o.status.success());
    assert!(aws_artifacts(&f, &id).is_empty(), "recorded half done");
    let out = rerun(&f, &moto, &id);
    assert!(
        resumed(&out) >= 20,
        "12 MiB were sent before the kill: {out}"
    );
    assert_eq!(aws_artifacts(&f, &id).len(), 2);
    let size = std::fs::metadata(&disk).unwrap().len();
    assert_eq!(
        snapshot_sha256(&moto, &snapshot_of(&out), size),
        common::sha256_file(&disk),
        "the resumed snapshot is the disk"
    );

    // moto dies mid-upload (and forgets everything: it is in memory): the publish fails and
    // says so, nothing is recorded; against the restarted service a re-run starts over and
    // completes.
    let (f, disk, id) = setup_random(&dir.path().join("moto-killed"), 40, 2);
    let o = interrupted(&f, &mut moto, &throttle, &id, false);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cloud call failed"), "{err}");
    assert!(aws_artifacts(&f, &id).is_empty(), "recorded half done");
    let moto = Moto::start_on(moto.port);
    let out = rerun(&f, &moto, &id);
    assert_eq!(
        resumed(&out),
        0,
        "a new service holds nothing to resume: {out}"
    );
    assert_eq!(aws_artifacts(&f, &id).len(), 2);
    let size = std::fs::metadata(&disk).unwrap().len();
    assert_eq!(
        snapshot_sha256(&moto, &snapshot_of(&out), size),
        common::sha256_file(&disk)
    );
}
