//! Kiln's test rig: boots a built image under QEMU (KVM when usable, TCG otherwise) on a
//! copy-on-write overlay, and talks to it through the QEMU guest agent over virtio-serial — no
//! SSH, no network.
//!
//! So far: the VM guard ([`vm::Vm`]), the agent client ([`qga::Agent`]) and a boot probe. Running
//! check files against a booted image comes with the test-rig work.

pub mod accel;
pub mod error;
pub mod qga;
pub mod vm;

pub use accel::Accel;
pub use error::TestError;
pub use vm::{BootFirmware, DiskFormat, Vm, VmConfig};

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
