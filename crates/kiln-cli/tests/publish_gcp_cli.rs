//! `kiln publish --target gcp`: the gce tar.gz goes to gcp-storage-emulator through a resumable
//! upload (the object read back equals the file), and the Compute Engine and Resource Manager
//! requests go to a recording stand-in whose bodies are checked: the image insert, the
//! image-user policy for exactly the map's projects, deprecation on revoke and back on restore.
//! Fault tests: kiln killed mid-upload resumes where the service stopped; the emulator killed
//! mid-upload leaves no artifact in the registry, and a re-run completes the publish.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{artifacts_on, init_factory, ok, stored_version};
use kiln_emulators::{Gcs, Recorder, Throttle};
use serde_json::json;

struct Clouds {
    gcs: Gcs,
    rec: Recorder,
    /// Uploads go through this when set (fault tests), else straight to the emulator.
    throttle: Option<Throttle>,
}

fn command(f: &Path, c: &Clouds, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("--factory")
        .arg(f)
        .args(args)
        .env(
            "KILN_GCP_STORAGE_URL",
            c.throttle.as_ref().map_or(&c.gcs.url, |t| &t.url),
        )
        .env("KILN_GCP_COMPUTE_URL", &c.rec.url)
        .env("KILN_GCP_RESOURCE_MANAGER_URL", &c.rec.url)
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "gcp-test-token")
        .env("KILN_ACTOR", "tester")
        .env_remove("KILN_ROLE");
    cmd
}

fn kiln(f: &Path, c: &Clouds, args: &[&str]) -> Output {
    command(f, c, args).output().unwrap()
}

/// A factory publishing to GCP, and a real gce tarball (old-GNU tar of a sparse disk.raw,
/// gzipped) of a disk with `random_mib` MiB of incompressible data.
fn setup(dir: &Path, random_mib: usize) -> (PathBuf, PathBuf) {
    let f = init_factory(dir);
    let mut hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    hcl.push_str("\npublish \"gcp\" {\n  regions        = [\"eu\"]\n  project        = \"acme-images\"\n  bucket         = \"kiln-uploads\"\n  default_branch = \"main\"\n  tags           = { team = \"platform\" }\n}\n");
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    std::fs::write(
        f.join("accounts.yaml"),
        "channels:\n  test:\n    gcp:\n      projects: [\"acme-test-images\"]\n  production:\n    gcp:\n      projects: [\"acme-prod-images\", \"acme-prod-batch\"]\n",
    )
    .unwrap();
    let work = dir.join("disk");
    std::fs::create_dir_all(&work).unwrap();
    let raw = std::fs::File::create(work.join("disk.raw")).unwrap();
    raw.set_len(64 << 20).unwrap();
    let mut w = std::io::BufWriter::new(&raw);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..random_mib * 1024 * 128 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        w.write_all(&seed.to_le_bytes()).unwrap();
    }
    drop(w);
    let tgz = dir.join("disk.tar.gz");
    let ok = Command::new("tar")
        .args(["--format=oldgnu", "--sparse", "-czf"])
        .arg(&tgz)
        .arg("-C")
        .arg(&work)
        .arg("disk.raw")
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar failed");
    (f, tgz)
}

fn start() -> Clouds {
    let c = Clouds {
        gcs: Gcs::start(),
        rec: Recorder::start(),
        throttle: None,
    };
    c.gcs.create_bucket("kiln-uploads");
    c
}

#[test]
fn publishes_an_image_shares_it_with_the_maps_projects_and_follows_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let (f, tgz) = setup(dir.path(), 1);
    let id = stored_version(&f, &[("gce", &tgz)], true, "production");
    let c = start();

    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "gcp"],
    ));
    let object = format!("base-debian12/{id}.tar.gz");
    assert!(
        out.contains(&format!("object gs://kiln-uploads/{object}")),
        "{out}"
    );
    assert!(
        c.gcs.download("kiln-uploads", &object) == std::fs::read(&tgz).unwrap(),
        "the object differs from the tar.gz"
    );

    // The image: from the object, UEFI-compatible, stored in the block's location, labelled.
    let inserts = c
        .rec
        .matching("POST", "/compute/v1/projects/acme-images/global/images");
    assert_eq!(inserts.len(), 1);
    let b = &inserts[0]["body"];
    let name = format!("base-debian12-{}", id.to_lowercase());
    assert_eq!(b["name"], name.as_str());
    assert_eq!(b["family"], "base-debian12");
    assert_eq!(
        b["rawDisk"],
        json!({"source": format!("https://storage.googleapis.com/kiln-uploads/{object}")})
    );
    assert!(
        b["guestOsFeatures"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "UEFI_COMPATIBLE"})),
        "{b}"
    );
    assert_eq!(b["storageLocations"], json!(["eu"]));
    assert_eq!(b["architecture"], "X86_64");
    assert_eq!(b["labels"]["kiln-version"], id.to_lowercase().as_str());
    assert_eq!(b["labels"]["team"], "platform");
    assert_eq!(inserts[0]["authorization"], "Bearer gcp-test-token");

    // The image-user role for exactly the production projects, resolved to their numbers.
    let crm: Vec<String> = c
        .rec
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/v3/projects/"))
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        crm,
        [
            "/v3/projects/acme-prod-images",
            "/v3/projects/acme-prod-batch"
        ]
    );
    let image_user = |policy: &serde_json::Value| -> Vec<String> {
        policy["bindings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["role"] == "roles/compute.imageUser")
            .flat_map(|b| b["members"].as_array().unwrap().clone())
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    };
    let sets = c
        .rec
        .matching("POST", &format!("/images/{name}/setIamPolicy"));
    assert_eq!(sets.len(), 1);
    let members = image_user(&sets[0]["body"]["policy"]);
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| {
        m.strip_prefix("principalSet://cloudresourcemanager.googleapis.com/projects/")
            .and_then(|r| r.strip_suffix("/type/ServiceAccount"))
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    }));

    // Recorded once, by self-link.
    assert_eq!(
        artifacts_on(&f, &id, "gcp"),
        [(
            "eu".to_string(),
            format!(
                "https://compute.googleapis.com/compute/v1/projects/acme-images/global/images/{name}"
            )
        )]
    );

    // A re-run sends nothing and creates nothing.
    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "gcp"],
    ));
    assert!(
        out.contains("already complete") && out.contains(" found "),
        "{out}"
    );
    assert_eq!(
        c.rec.matching("POST", "/global/images").len(),
        1,
        "a second image insert"
    );
    assert_eq!(c.rec.matching("POST", "/setIamPolicy").len(), 1);

    // Revocation: no image user left, the image deprecated; restore makes it active again,
    // and a promotion gives the channel's project the role back.
    let out = ok(&kiln(
        &f,
        &c,
        &[
            "revoke",
            "base-debian12",
            &id,
            "--reason",
            "CVE-2099-0003",
            "--role",
            "security",
        ],
    ));
    assert!(
        out.contains(&format!("gcp {name}: +0 -2 image users, DEPRECATED")),
        "{out}"
    );
    let sets = c.rec.matching("POST", "/setIamPolicy");
    assert!(image_user(&sets.last().unwrap()["body"]["policy"]).is_empty());
    let dep = c.rec.matching("POST", &format!("/images/{name}/deprecate"));
    assert_eq!(dep.len(), 1);
    assert_eq!(dep[0]["body"], json!({"state": "DEPRECATED"}));

    ok(&kiln(
        &f,
        &c,
        &["restore", "base-debian12", &id, "--role", "security"],
    ));
    let dep = c.rec.matching("POST", &format!("/images/{name}/deprecate"));
    assert_eq!(dep.last().unwrap()["body"], json!({"state": "ACTIVE"}));
    let out = ok(&kiln(
        &f,
        &c,
        &[
            "promote",
            "base-debian12",
            &id,
            "--to",
            "test",
            "--role",
            "platform",
        ],
    ));
    assert!(
        out.contains(&format!("gcp {name}: +1 -0 image users, ACTIVE")),
        "{out}"
    );
}

/// Starts a publish through the throttle and kills kiln (or the emulator) once 20 MiB of the
/// upload went through; returns the finished child's output.
fn interrupted(f: &Path, c: &mut Clouds, tgz: &Path, id: &str, kill_kiln: bool) -> Output {
    let mut child = command(f, c, &["publish", "base-debian12", id, "--target", "gcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session = PathBuf::from(format!("{}.gcs-session", tgz.display()));
    let throttle = c.throttle.as_ref().expect("a throttle");
    throttle.wait_past(throttle.forwarded(), 20 << 20, || session.exists());
    if kill_kiln {
        child.kill().unwrap();
    } else {
        c.gcs.kill();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_interrupted_upload_is_completed_by_a_rerun_and_never_recorded_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let (f, tgz) = setup(dir.path(), 48);
    let id = stored_version(&f, &[("gce", &tgz)], true, "production");
    let mut c = start();
    // 48 MB at 24 MB/s: two seconds to interrupt it in.
    c.throttle = Some(Throttle::start(c.gcs.port, 24 << 20));
    let object = format!("base-debian12/{id}.tar.gz");

    // kiln itself dies mid-upload: the re-run asks the session how far it got and sends the rest.
    let o = interrupted(&f, &mut c, &tgz, &id, true);
    assert!(!o.status.success());
    assert!(artifacts_on(&f, &id, "gcp").is_empty());
    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "gcp"],
    ));
    let resumed: f64 = out
        .split(" MB resumed")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no resume figure in {out}"));
    assert!(resumed > 0.0, "nothing was resumed: {out}");
    assert!(c.gcs.download("kiln-uploads", &object) == std::fs::read(&tgz).unwrap());
    assert_eq!(artifacts_on(&f, &id, "gcp").len(), 1);

    // The storage service dies mid-upload (and loses everything: it is in memory): the publish
    // fails, the registry shows no artifact, and a re-run against the restarted service
    // completes it from the start.
    let dir2 = tempfile::tempdir().unwrap();
    let (f2, tgz2) = setup(dir2.path(), 48);
    let id2 = stored_version(&f2, &[("gce", &tgz2)], true, "production");
    let o = interrupted(&f2, &mut c, &tgz2, &id2, false);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("re-run to resume") || err.contains("gs://kiln-uploads"),
        "{err}"
    );
    assert!(
        artifacts_on(&f2, &id2, "gcp").is_empty(),
        "recorded half done"
    );
    c.gcs = Gcs::start_on(c.gcs.port);
    c.gcs.create_bucket("kiln-uploads");
    ok(&kiln(
        &f2,
        &c,
        &["publish", "base-debian12", &id2, "--target", "gcp"],
    ));
    let object2 = format!("base-debian12/{id2}.tar.gz");
    assert!(c.gcs.download("kiln-uploads", &object2) == std::fs::read(&tgz2).unwrap());
    assert_eq!(artifacts_on(&f2, &id2, "gcp").len(), 1);
}
