//! The bootstrap stage: a Debian tree from mmdebstrap, with the image's packages and what a
//! bootable, testable image needs.
//!
//! Its key covers the apt sources, the digests of their `InRelease` files (so a mirror update is a
//! new input, and an unchanged mirror is a cache hit) and the package list.

use std::path::Path;

use crate::archive;
use crate::cmd::Task;
use crate::error::Result;
use crate::hash::{KeyHasher, hex};
use crate::hostsrc::AptSource;

/// Installed in every image: a kernel and initramfs, systemd as init, the QEMU guest agent (the
/// test rig talks to it instead of SSH), and the tools the checks and seal rely on.
pub const BOOT_PACKAGES: &[&str] = &[
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "procps",
    "e2fsprogs",
    "zstd",
    "qemu-guest-agent",
    // GRUB for both firmwares, whatever the image's boot mode: the bootstrap then serves UEFI,
    // BIOS and hybrid images alike (one cached tree instead of three), for ~3 MiB.
    "grub-efi-amd64-bin",
    "grub-pc-bin",
];

/// GRUB's platform modules, per boot mode: installed in the image so the boot chain can be
/// rebuilt from inside it.
pub fn grub_packages(boot: kiln_spec::BootMode) -> &'static [&'static str] {
    use kiln_spec::BootMode::*;
    match boot {
        Uefi => &["grub-efi-amd64-bin"],
        Bios => &["grub-pc-bin"],
        Hybrid => &["grub-efi-amd64-bin", "grub-pc-bin"],
    }
}

#[derive(Debug, Clone)]
pub struct BootstrapInputs {
    pub suite: String,
    pub architecture: String,
    pub sources: Vec<AptSource>,
    /// Sorted and de-duplicated.
    pub packages: Vec<String>,
    /// (suite, sha256 of its InRelease) for every source.
    pub release_digests: Vec<(String, String)>,
}

impl BootstrapInputs {
    pub fn key(&self) -> String {
        let mut h = KeyHasher::new("bootstrap/1");
        h.field("suite", &self.suite)
            .field("arch", &self.architecture)
            .field("variant", "minbase");
        for s in &self.sources {
            h.field("source", s.line());
        }
        for (suite, d) in &self.release_digests {
            h.field("release", format!("{suite} {d}"));
        }
        for p in &self.packages {
            h.field("package", p);
        }
        h.finish()
    }
}

/// The sha256 of each source's InRelease (Release if unsigned), fetched from the mirror.
pub fn release_digests(sources: &[AptSource]) -> Result<Vec<(String, String)>> {
    use sha2::Digest;
    sources
        .iter()
        .map(|s| {
            Ok((
                s.suite.clone(),
                hex(&sha2::Sha256::digest(archive::fetch_release(s)?)),
            ))
        })
        .collect()
}

/// Runs mmdebstrap into `out/tree`. It runs in its own mount and pid namespace so the mounts it
/// makes inside the tree cannot outlive it, even if Kiln is killed.
pub fn run(inputs: &BootstrapInputs, out: &Path) -> Result<()> {
    let tree = out.join("tree");
    let mut t = Task::new(format!("bootstrap Debian {}", inputs.suite), "unshare")
        .args(crate::chroot::NAMESPACE_ARGS)
        .arg("mmdebstrap")
        .args([
            "--mode=root",
            "--format=directory",
            "--variant=minbase",
            "--quiet",
            "--dpkgopt=force-unsafe-io",
            "--aptopt=Acquire::Check-Valid-Until \"false\"",
            "--aptopt=APT::Install-Recommends \"false\"",
        ])
        .arg(format!("--architectures={}", inputs.architecture));
    // The hook fetches eatmydata into the tree for the bootstrap and removes it afterwards:
    // dpkg's fsyncs are most of bootstrap time and worthless for a tree we are about to pack.
    if Path::new("/usr/share/mmdebstrap/hooks/eatmydata").is_dir() {
        t = t.arg("--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata");
    }
    t = t
        .arg(format!("--include={}", inputs.packages.join(",")))
        .arg(&inputs.suite)
        .arg(&tree);
    for s in &inputs.sources {
        t = t.arg(s.line());
    }
    t.run()?;
    Ok(())
}
