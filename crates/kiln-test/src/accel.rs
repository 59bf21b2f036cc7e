//! KVM or TCG. `/dev/kvm` can exist and still be unusable (a paravirtual KVM module that runs
//! stock kernels far slower than emulation), so KVM is used only when the hardware modules
//! `kvm_intel` or `kvm_amd` are loaded and `/dev/kvm` opens.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG (software emulation)",
        })
    }
}

impl Accel {
    pub fn detect() -> Accel {
        let hw = ["kvm_intel", "kvm_amd"]
            .iter()
            .any(|m| Path::new("/sys/module").join(m).exists());
        let usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if hw && usable { Accel::Kvm } else { Accel::Tcg }
    }

    pub fn qemu_args(self) -> Vec<String> {
        match self {
            Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            Accel::Tcg => vec![
                "-accel".into(),
                "tcg,thread=multi".into(),
                "-cpu".into(),
                "max".into(),
            ],
        }
    }
}
