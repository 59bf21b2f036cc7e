//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
