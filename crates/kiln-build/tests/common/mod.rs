//! Shared by the builder's integration tests: a private copy of the example factory, the
//! persistent stage cache, and the leak checks every test ends with.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_build::{BuildOptions, Builder, Silent};

/// The stage cache shared by test runs (CI keeps it between runs, so the Debian bootstrap is
/// done once per mirror state and every later run proves the cache works).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kiln/test-stages"))
}

/// Tests in one binary run on parallel threads; the leak checks need them one at a time.
/// Returns the guard that holds the others back (poisoning from a failed test is ignored).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        .unwrap();
    assert_eq!(
        uid, "0",
        "the builder's integration tests need root (mmdebstrap, namespaces)"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A private copy of `examples/factory`, edited by `edit` (paths relative to the factory).
pub fn example_factory(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/factory"),
        t.path(),
    );
    edit(t.path());
    t
}

pub fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

pub fn load(root: &Path) -> kiln_spec::Factory {
    let l = kiln_spec::load_factory(root);
    l.factory
        .unwrap_or_else(|| panic!("{}", l.diagnostics.render(root)))
}

pub fn build(root: &Path, image: &str) -> Result<kiln_build::BuildOutput, kiln_build::BuildError> {
    let f = load(root);
    let opts = BuildOptions {
        cache_dir: cache_dir(),
        etc_apt: "/etc/apt".into(),
    };
    let mut b = Builder::new(&f, &opts, &Silent)?;
    b.build(image)
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// sha256 by coreutils, not by the code under test.
pub fn sha256sum(p: &Path) -> String {
    run(Command::new("sha256sum").arg(p))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Nothing the builder made may outlive it: no mounts under the cache, no work directories, no
/// process still using a path in the cache.
pub fn assert_nothing_left_behind() {
    let cache = cache_dir();
    let mounts = kiln_build::chroot::mounts_under(&cache);
    assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    let tmp: Vec<_> = std::fs::read_dir(cache.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Other test binaries do not run concurrently with this one; anything here is ours.
    assert!(tmp.is_empty(), "work directories left behind: {tmp:?}");
    let needle = cache.to_string_lossy().into_owned();
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && e.file_name().to_string_lossy().parse::<u32>().is_ok() {
            procs.push(cmdline);
        }
    }
    assert!(procs.is_empty(), "processes left behind: {procs:?}");
}
