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
