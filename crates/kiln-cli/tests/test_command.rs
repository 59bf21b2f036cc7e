//! `kiln test ARTIFACT --checks FILE…` as a user runs it: bad check files are refused before
//! booting, with their position; a failing check makes the exit status 1 and shows in JUnit XML.
//! Needs root (it builds the example image through the shared stage cache, then boots it).

mod common;

use common::cache_dir;

use std::process::Command;

#[test]
fn kiln_test_reports_failures_in_junit_and_refuses_bad_check_files() {
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());

    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, "checks:\n  - id: x\n    comand: true\n").unwrap();
    let o = Command::new(kiln)
        .args(["test", "/nonexistent.raw", "--checks"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:3:5: error: unknown key `comand`"),
        "{err}"
    );

    let o = Command::new(kiln)
        .args(["build", "base-debian12", "--no-test", "--factory"])
        .arg(&f)
        .env("KILN_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let raw = f.join(".kiln/artifacts/base-debian12/latest/disk.raw");

    let checks = tmp.path().join("mixed.yaml");
    std::fs::write(
        &checks,
        "checks:\n  - id: kernel-is-debian\n    command: uname -v\n    expect_stdout_contains: Debian\n  - id: expects-the-impossible\n    description: fails on purpose\n    command: \"echo no\"\n    expect_stdout_matches: \"^yes$\"\n",
    )
    .unwrap();
    let junit = tmp.path().join("junit.xml");
    let o = Command::new(kiln)
        .arg("test")
        .arg(&raw)
        .arg("--checks")
        .arg(&checks)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("PASS   kernel-is-debian"), "{out}");
    assert!(out.contains("FAIL   expects-the-impossible"), "{out}");
    assert!(
        out.contains("failed:   stdout does not match /^yes$/"),
        "{out}"
    );
    assert!(out.contains("| no"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase classname=\"guest/")
            && xml.contains("name=\"expects-the-impossible\""),
        "{xml}"
    );
}
