//! An image that cannot boot ends the test within the boot timeout, with the serial console's
//! last lines in the error, and leaves no QEMU process or VM directory behind.

use std::time::{Duration, Instant};

use kiln_test::{BootFirmware, DiskFormat, TestError, VmConfig};

fn qemu_processes_for(path: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.starts_with("qemu-system") && c.contains(path))
        .collect()
}

/// The two tests count VM directories; they must not overlap.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn vm_dirs(work: &std::path::Path) -> usize {
    std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("kiln-vm-"))
        .count()
}

#[test]
fn a_corrupt_image_times_out_with_the_serial_log_and_leaves_nothing_running() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("corrupt.raw");
    // A disk full of garbage: no partition table, nothing to boot.
    std::fs::write(&disk, vec![0x5a_u8; 16 << 20]).unwrap();
    // The VM's directory goes in a directory of this test's own, so other VMs on the machine
    // cannot confuse the count.
    let work = tempfile::tempdir().unwrap();
    let mut cfg = VmConfig::new(&disk, DiskFormat::Raw, BootFirmware::Uefi);
    cfg.work_dir = Some(work.path().to_path_buf());
    cfg.boot_timeout = Duration::from_secs(20);
    let started = Instant::now();
    let err = kiln_test::boot_probe(&cfg).expect_err("nothing to boot");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(40),
        "took {took:?} for a 20 s timeout"
    );
    let TestError::BootTimeout {
        secs,
        ref serial_tail,
        ..
    } = err
    else {
        panic!("expected a boot timeout, got: {err}")
    };
    assert_eq!(secs, 20);
    assert!(
        !serial_tail.trim().is_empty(),
        "the error carries the serial console's tail"
    );
    assert!(
        err.to_string().contains("did not answer within 20s"),
        "{err}"
    );
    assert!(
        qemu_processes_for(tmp.path().to_str().unwrap()).is_empty(),
        "QEMU left running"
    );
    assert_eq!(vm_dirs(work.path()), 0, "VM directory left behind");
}

#[test]
fn qemu_refusing_the_disk_is_reported_with_what_qemu_said() {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("not-really.qcow2");
    std::fs::write(&disk, b"this is not a qcow2 image").unwrap();
    let cfg = VmConfig::new(&disk, DiskFormat::Qcow2, BootFirmware::Bios);
    let err = kiln_test::boot_probe(&cfg).expect_err("qemu cannot open it");
    let msg = err.to_string();
    assert!(msg.contains("qcow2") || msg.contains("not-really"), "{msg}");
    assert!(qemu_processes_for(tmp.path().to_str().unwrap()).is_empty());
}
