//! Every broken fixture under `tests/broken/` is the fixture base factory (`_base`) with some files
//! replaced. Loading it must fail, and:
//! - the `PATH:LINE:COL` of the errors must equal the case's hand-written `EXPECT` file (when it
//!   has one), so positions are asserted independently of the snapshot;
//! - the whole rendered message (with caret snippet) must match its insta snapshot.

use std::path::{Path, PathBuf};

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else if entry.file_name() != "EXPECT" {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "_base")
        .collect();
    v.sort();
    v
}

fn materialise(case: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let base = case.parent().unwrap().join("_base");
    copy_tree(&base, tmp.path());
    copy_tree(case, tmp.path());
    tmp
}

#[test]
fn the_fixture_base_is_valid() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/_base");
    let loaded = kiln_spec::load_factory(&base);
    assert!(
        loaded.factory.is_some(),
        "{}",
        loaded.diagnostics.render(Path::new(""))
    );
}

#[test]
fn every_broken_fixture_fails_at_the_expected_place() {
    let cases = cases();
    assert!(cases.len() >= 15, "only {} broken fixtures", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let tmp = materialise(&case);
        let loaded = kiln_spec::load_factory(tmp.path());
        assert!(loaded.factory.is_none(), "{name}: loaded without errors");
        assert!(loaded.diagnostics.has_errors(), "{name}: no error reported");
        let rendered = loaded.diagnostics.render(Path::new(""));

        if let Ok(expect) = std::fs::read_to_string(case.join("EXPECT")) {
            let mut want: Vec<&str> = expect.lines().filter(|l| !l.is_empty()).collect();
            let mut got: Vec<String> = rendered
                .lines()
                .filter_map(|l| l.split_once(": error: ").map(|(pos, _)| pos.to_string()))
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{name}: error positions differ:\n{rendered}");
        }
        insta::assert_snapshot!(name, rendered);
    }
}
