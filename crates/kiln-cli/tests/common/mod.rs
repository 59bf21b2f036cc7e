//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stage cache the builder's tests share (see crates/kiln-build/tests/common).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kiln/test-stages"))
}

/// `kiln init DIR/f`: a fresh copy of the example factory; returns its path.
pub fn init_factory(dir: &Path) -> PathBuf {
    let ok = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        .args(["init", "f"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kiln init failed");
    dir.join("f")
}

/// (image, parent) of the images [`ten_image_factory`] adds to the example's two.
pub const MORE_IMAGES: [(&str, &str); 8] = [
    ("svc-a", "base-debian12"),
    ("svc-b", "base-debian12"),
    ("a1", "app-web"),
    ("a2", "app-web"),
    ("b1", "svc-a"),
    ("b2", "svc-a"),
    ("c1", "svc-b"),
    ("c2", "svc-b"),
];

/// The example factory grown to ten images in three levels (base; app-web, svc-a, svc-b; six
/// grandchildren), with its registry at `registry_url` when given.
pub fn ten_image_factory(dir: &Path, registry_url: Option<&str>) -> PathBuf {
    let f = init_factory(dir);
    if let Some(url) = registry_url {
        let hcl = std::fs::read_to_string(f.join("kiln.hcl"))
            .unwrap()
            .replace(
                "registry { url = \"sqlite://.kiln/registry.db\" }",
                &format!("registry {{ url = \"{url}\" }}"),
            );
        std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    }
    for (image, parent) in MORE_IMAGES {
        std::fs::create_dir_all(f.join("images").join(image)).unwrap();
        std::fs::write(
            f.join("images").join(image).join("image.kiln.hcl"),
            format!("image \"{image}\" {{\n  from    = image.{parent}\n  channel = \"dev\"\n}}\n"),
        )
        .unwrap();
    }
    f
}

/// The parent of an image of [`ten_image_factory`].
pub fn parent_in_ten(image: &str) -> Option<&'static str> {
    match image {
        "base-debian12" => None,
        "app-web" => Some("base-debian12"),
        _ => MORE_IMAGES
            .iter()
            .find(|(i, _)| *i == image)
            .map(|(_, p)| *p),
    }
}

/// `kiln serve` on a free loopback port: the child, the line it printed first, and its url.
pub fn spawn_serve(factory: &Path) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(factory)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, line, url)
}

/// `kiln --factory FACTORY ARGS…` as actor `tester` (no role from the environment).
pub fn kiln_in(factory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(factory)
        .args(args)
        .env("KILN_ACTOR", "tester")
        .env_remove("KILN_ROLE")
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded (else both streams in the panic).
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The waves of a `kiln plan --format json`: `(image, reason)` per image.
pub fn plan_waves(plan: &serde_json::Value) -> Vec<Vec<(String, String)>> {
    plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["image"].as_str().unwrap().to_string(),
                        i["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

#[allow(unused_imports, reason = "only the publish tests use them")]
pub use kiln_emulators::{Moto, PUBLISH_VENV};

/// The hex sha256 of a file.
pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(p).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Records an active version of base-debian12 with `files` (format, path) as its stored
/// artifacts, a passing test report when `tested`, built from branch `main`, and puts it on
/// `channel`; returns its id.
pub fn stored_version(f: &Path, files: &[(&str, &Path)], tested: bool, channel: &str) -> String {
    stored_version_from(f, files, tested, channel, Some("main"))
}

/// [`stored_version`] built from `branch` (`None`: not a git checkout).
pub fn stored_version_from(
    f: &Path,
    files: &[(&str, &Path)],
    tested: bool,
    channel: &str,
    branch: Option<&str>,
) -> String {
    use kiln_registry::{Actor, Artifact, Registry, Role};
    let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
    let a = Actor::new("build", Role::Admin);
    r.ensure_bucket(&a, "base-debian12").unwrap();
    let id = r
        .start_version(
            &a,
            "base-debian12",
            "fp",
            &[],
            serde_json::json!({"boot": "uefi", "git_commit": "abc123", "git_branch": branch}),
        )
        .unwrap();
    for (format, path) in files {
        r.add_artifact(
            &a,
            &id,
            &Artifact {
                platform: "file".into(),
                region: String::new(),
                external_id: path.display().to_string(),
                format: (*format).into(),
                size: std::fs::metadata(path).unwrap().len(),
                sha256: sha256_file(path),
            },
        )
        .unwrap();
    }
    if tested {
        r.attach_report(
            &a,
            &id,
            "test",
            &serde_json::json!({"results": [{"id": "c1", "status": "pass"}]}),
        )
        .unwrap();
    }
    r.complete(&a, &id).unwrap();
    r.promote(&a, "base-debian12", &id, channel, "qa").unwrap();
    id
}

/// The (region, external id) of the version's artifacts on `platform`.
pub fn artifacts_on(f: &Path, id: &str, platform: &str) -> Vec<(String, String)> {
    let mut r = kiln_registry::Registry::open(&f.join(".kiln/registry.db")).unwrap();
    r.version(id)
        .unwrap()
        .artifacts
        .into_iter()
        .filter(|a| a.platform == platform)
        .map(|a| (a.region, a.external_id))
        .collect()
}
