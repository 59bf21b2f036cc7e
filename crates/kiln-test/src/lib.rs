//! Kiln's test rig: boots a built image under QEMU (KVM when usable, TCG otherwise) on a
//! copy-on-write overlay, and talks to it through the QEMU guest agent over virtio-serial — no
//! SSH, no network.
//!
//! The VM guard ([`vm::Vm`]), the agent client ([`qga::Agent`]), the check runner (all of an
//! image's checks in one boot, file checks also offline on the built tree) and reports (table,
//! JSON, JUnit XML).

pub mod accel;
pub mod error;
pub mod facts;
pub mod qga;
pub mod report;
pub mod runner;
pub mod vm;

pub use accel::Accel;
pub use error::TestError;
pub use report::TestReport;
pub use runner::{CheckResult, SourcedCheck, Status};
pub use vm::{BootFirmware, DiskFormat, Vm, VmConfig};

/// Boots `cfg` once and runs every check in the guest; with `tree`, file checks also run on the
/// built tree (results marked "offline"). The VM is gone when this returns.
pub fn test_image(
    subject: &str,
    cfg: &VmConfig,
    checks: &[SourcedCheck],
    tree: Option<&std::path::Path>,
) -> Result<TestReport, TestError> {
    let mut results = match tree {
        Some(t) => runner::run_offline(t, checks),
        None => Vec::new(),
    };
    let mut vm = Vm::start(cfg)?;
    let mut agent = vm.wait_for_agent()?;
    let boot_seconds = vm.elapsed().as_secs_f64();
    results.extend(runner::run_in_guest(&mut agent, checks));
    let _ = agent.shutdown();
    Ok(TestReport {
        subject: subject.to_string(),
        accel: Some(vm.accel()),
        boot_seconds: Some(boot_seconds),
        results,
    })
}

/// What a boot probe found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    pub accel: Accel,
    /// Seconds from starting QEMU until the guest agent answered.
    pub seconds_to_agent: f64,
    /// `uname -r` in the guest.
    pub kernel: String,
}

/// Boots `cfg`, waits for the agent, asks the kernel version, shuts the VM down.
pub fn boot_probe(cfg: &VmConfig) -> Result<ProbeReport, TestError> {
    let mut vm = Vm::start(cfg)?;
    let mut agent = vm.wait_for_agent()?;
    let seconds_to_agent = vm.elapsed().as_secs_f64();
    let out = agent.exec("/bin/uname", &["-r"], std::time::Duration::from_secs(30))?;
    Ok(ProbeReport {
        accel: vm.accel(),
        seconds_to_agent,
        kernel: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    })
}
