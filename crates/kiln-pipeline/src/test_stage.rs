//! The test stage of a build: the image's file checks on the built tree, then one boot (UEFI
//! first for hybrid images) in which every check runs through the guest agent; a hybrid image also
//! proves it boots with BIOS. Reports go next to the artifacts (test-report.json, junit.xml,
//! test-report.txt, serial.log).

use std::time::{Duration, Instant};

use kiln_build::{BuildOutput, Progress, StageEvent};
use kiln_spec::{BootMode, Factory};
use kiln_test::{BootFirmware, DiskFormat, SourcedCheck, TestError, TestReport, VmConfig};

fn fw_name(fw: BootFirmware) -> &'static str {
    if fw == BootFirmware::Uefi {
        "UEFI"
    } else {
        "BIOS"
    }
}

/// Runs the image's checks. A report with failures is `Ok` (the caller decides); not booting is
/// an error.
pub fn test_stage(
    f: &Factory,
    out: &BuildOutput,
    progress: &dyn Progress,
) -> Result<TestReport, TestError> {
    let image = &out.manifest.image;
    let Some(img) = f.image(image) else {
        return Err(TestError::Agent(format!(
            "image {image} is not in the factory"
        )));
    };
    let checks: Vec<SourcedCheck> = img
        .check_files
        .iter()
        .flat_map(|cf| {
            let file = img.dir.join(cf.path.as_path()).display().to_string();
            cf.checks.iter().map(move |c| SourcedCheck {
                file: file.clone(),
                check: c.clone(),
            })
        })
        .collect();
    let firmwares: &[BootFirmware] = match img.disk.boot {
        BootMode::Uefi => &[BootFirmware::Uefi],
        BootMode::Bios => &[BootFirmware::Bios],
        BootMode::Hybrid => &[BootFirmware::Uefi, BootFirmware::Bios],
    };
    let (disk, format) = if out.dir.join("disk.raw").exists() {
        (out.dir.join("disk.raw"), DiskFormat::Raw)
    } else {
        (out.dir.join("disk.qcow2"), DiskFormat::Qcow2)
    };
    let accel = kiln_test::Accel::detect();
    let first = firmwares[0];
    let stage = format!("test ({})", fw_name(first));
    progress.event(
        image,
        &stage,
        StageEvent::Start(&format!("{} checks, one boot under {accel}", checks.len())),
    );
    let started = Instant::now();
    let mut cfg = VmConfig::new(&disk, format, first);
    cfg.keep_serial_log = Some(out.dir.join("serial.log"));
    let report = match kiln_test::test_image(image, &cfg, &checks, Some(&out.tree)) {
        Ok(r) => r,
        Err(e) => {
            progress.event(image, &stage, StageEvent::Failed);
            return Err(e);
        }
    };
    let write = |name: &str, text: String| {
        let _ = std::fs::write(out.dir.join(name), text);
    };
    write("test-report.json", report.to_json());
    write("junit.xml", report.to_junit());
    write("test-report.txt", report.to_text());
    if !report.passed() {
        progress.event(image, &stage, StageEvent::Failed);
        progress.event(image, &stage, StageEvent::Note(&report.to_text()));
        return Ok(report);
    }
    progress.event(image, &stage, StageEvent::Done(started.elapsed()));
    progress.event(
        image,
        &stage,
        StageEvent::Note(&format!(
            "{} checks passed ({} results: file checks run in the guest and on the tree); booted in {:.1}s; report {}",
            checks.len(),
            report.results.len(),
            report.boot_seconds.unwrap_or_default(),
            out.dir.join("test-report.txt").display()
        )),
    );
    for fw in &firmwares[1..] {
        let stage = format!("boot test ({})", fw_name(*fw));
        progress.event(
            image,
            &stage,
            StageEvent::Start("until the guest agent answers"),
        );
        match kiln_test::boot_probe(&VmConfig::new(&disk, format, *fw)) {
            Ok(r) => progress.event(
                image,
                &stage,
                StageEvent::Done(Duration::from_secs_f64(r.seconds_to_agent)),
            ),
            Err(e) => {
                progress.event(image, &stage, StageEvent::Failed);
                return Err(e);
            }
        }
    }
    Ok(report)
}
