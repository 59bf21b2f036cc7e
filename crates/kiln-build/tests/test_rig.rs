//! The test rig end to end: the example base image passes its whole CIS pack in one boot; a
//! deliberately weakened copy (root login over SSH, ASLR off, world-readable shadow) fails
//! exactly those checks, with output that says why; the image is unchanged by being tested.

mod common;

use std::path::Path;

use common::*;
use kiln_spec::Format;
use kiln_test::{BootFirmware, DiskFormat, SourcedCheck, Status, VmConfig};

fn pack(root: &Path) -> Vec<SourcedCheck> {
    let f = load(root);
    let img = f.image("base-debian12").unwrap();
    img.check_files
        .iter()
        .flat_map(|cf| {
            cf.checks.iter().map(|c| SourcedCheck {
                file: cf.path.as_path().display().to_string(),
                check: c.clone(),
            })
        })
        .collect()
}

fn raw_only(root: &Path) {
    replace_in(
        &root.join("images/base-debian12/image.kiln.hcl"),
        r#"formats = ["raw", "qcow2", "vhd", "vmdk"]"#,
        r#"formats = ["raw"]"#,
    );
}

#[test]
fn the_base_passes_its_pack_and_a_weakened_copy_fails_exactly_the_weakened_checks() {
    let _one_at_a_time = exclusive();
    require_root();

    let good = example_factory(raw_only);
    let out = build(good.path(), "base-debian12").expect("the base image builds");
    let raw = out.artifact_path(Format::Raw).unwrap();
    let before = sha256sum(&raw);
    let checks = pack(good.path());
    assert!(
        checks.len() >= 40,
        "the CIS pack has {} checks",
        checks.len()
    );
    let cfg = VmConfig::new(&raw, DiskFormat::Raw, BootFirmware::Uefi);
    let report =
        kiln_test::test_image("base-debian12", &cfg, &checks, Some(&out.tree)).expect("boots");
    assert!(report.passed(), "{}", report.to_text());
    let in_guest = report.results.iter().filter(|r| r.place == "guest").count();
    assert_eq!(in_guest, checks.len(), "every check ran in the one boot");
    assert!(
        report.results.iter().any(|r| r.place == "offline"),
        "file checks also ran offline"
    );
    assert_eq!(sha256sum(&raw), before, "testing must not change the image");
    let junit = report.to_junit();
    assert!(junit.contains(&format!(
        "tests=\"{}\" failures=\"0\" errors=\"0\"",
        report.results.len()
    )));

    let weak = example_factory(|root| {
        raw_only(root);
        let dir = root.join("images/base-debian12");
        replace_in(
            &dir.join("files/sshd-hardening.conf"),
            "PermitRootLogin no",
            "PermitRootLogin yes",
        );
        replace_in(
            &dir.join("harden.sh"),
            "kernel.randomize_va_space = 2",
            "kernel.randomize_va_space = 0",
        );
        let mut text = std::fs::read_to_string(dir.join("harden.sh")).unwrap();
        text.push_str("chmod 0644 /etc/shadow\n");
        std::fs::write(dir.join("harden.sh"), text).unwrap();
    });
    let wout = build(weak.path(), "base-debian12").expect("the weakened image builds");
    let wraw = wout.artifact_path(Format::Raw).unwrap();
    let cfg = VmConfig::new(&wraw, DiskFormat::Raw, BootFirmware::Uefi);
    let report = kiln_test::test_image("weakened", &cfg, &pack(weak.path()), Some(&wout.tree))
        .expect("boots");
    let mut failed: Vec<(String, &str)> = report
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .map(|r| (r.id.clone(), r.place))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("1.5.1-aslr-enabled".to_string(), "guest"),
            ("5.2.7-ssh-permitrootlogin".to_string(), "guest"),
            ("6.1.5-shadow-perms".to_string(), "guest"),
            ("6.1.5-shadow-perms".to_string(), "offline"),
        ],
        "{}",
        report.to_text()
    );
    let text = report.to_text();
    assert!(
        text.contains("--- 5.2.7-ssh-permitrootlogin (guest"),
        "{text}"
    );
    assert!(
        text.contains("| permitrootlogin yes"),
        "actual stdout is shown: {text}"
    );
    assert!(text.contains("stdout does not match /^2$/"), "{text}");
    assert!(
        text.contains("mode is 0644, expected at most 0640 (extra bits 0004)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "weakened: {} passed, 4 failed, 0 errors",
            report.results.len() - 4
        )),
        "{text}"
    );
    let junit = report.to_junit();
    assert!(junit.contains("failures=\"4\""), "{junit}");

    assert_nothing_left_behind();
}
