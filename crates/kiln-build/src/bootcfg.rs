//! The boot chain, installed inside the image so it survives kernel upgrades there.
//!
//! GRUB's core images are built by the image's own `grub-mkimage` (so core and modules always
//! match), with the root partition as prefix; its modules are copied to `/boot/grub/PLATFORM`
//! as grub-install would; `/boot/grub/grub.cfg` boots Debian's `/vmlinuz` and `/initrd.img`
//! symlinks, which the kernel packages repoint at every upgrade, so a new kernel installed in a
//! running instance boots next time with no help from Kiln. The disk stage only copies the
//! finished core images into place.

use std::path::Path;

use kiln_spec::BootMode;

use crate::chroot::{Session, write_mode};
use crate::cmd::Task;
use crate::error::{BuildError, Result};
use crate::layout::Layout;

pub const EFI_CORE: &str = "boot/grub/x86_64-efi/core.efi";
pub const BIOS_CORE: &str = "boot/grub/i386-pc/core.img";
pub const BIOS_BOOT_IMG: &str = "usr/lib/grub/i386-pc/boot.img";

/// Kernel command line: serial console last, so /dev/console (and the test rig's log) is ttyS0;
/// clouds (AWS, Azure, GCE) read their serial logs from it too.
const CMDLINE: &str = "ro console=tty0 console=ttyS0,115200n8";

pub fn grub_cfg(layout: &Layout) -> String {
    format!(
        "# Written by Kiln. /vmlinuz and /initrd.img are kept pointing at the newest kernel by\n\
         # Debian's kernel packages, so kernel upgrades inside the image need no change here.\n\
         set default=0\n\
         set timeout=1\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         menuentry 'Debian GNU/Linux' {{\n\
         \x20 linux /vmlinuz root=UUID={uuid} {CMDLINE}\n\
         \x20 initrd /initrd.img\n\
         }}\n\
         menuentry 'Debian GNU/Linux (previous kernel)' {{\n\
         \x20 linux /vmlinuz.old root=UUID={uuid} {CMDLINE}\n\
         \x20 initrd /initrd.img.old\n\
         }}\n",
        uuid = layout.root_fs_uuid
    )
}

fn platforms(boot: BootMode) -> &'static [&'static str] {
    match boot {
        BootMode::Uefi => &["x86_64-efi"],
        BootMode::Bios => &["i386-pc"],
        BootMode::Hybrid => &["x86_64-efi", "i386-pc"],
    }
}

/// Writes fstab and grub.cfg, copies GRUB's modules and builds its core images in `tree`.
pub fn install(session: &Session, tree: &Path, boot: BootMode, layout: &Layout) -> Result<()> {
    let fstab = format!(
        "# Written by Kiln.\nUUID={} / ext4 errors=remount-ro 0 1\n",
        layout.root_fs_uuid
    );
    write_mode(&tree.join("etc/fstab"), fstab.as_bytes(), 0o644)?;
    let grub_dir = tree.join("boot/grub");
    std::fs::create_dir_all(&grub_dir).map_err(BuildError::io("creating /boot/grub"))?;
    // Root-only, as CIS 1.4 asks: the kernel command line is not for every user to read.
    write_mode(
        &grub_dir.join("grub.cfg"),
        grub_cfg(layout).as_bytes(),
        0o600,
    )?;

    for platform in platforms(boot) {
        let src = tree.join("usr/lib/grub").join(platform);
        if !src.is_dir() {
            return Err(BuildError::Image {
                image: String::new(),
                message: format!(
                    "/usr/lib/grub/{platform} is missing from the tree (its GRUB package is not installed)"
                ),
            });
        }
        let dest = grub_dir.join(platform);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .map_err(BuildError::io(format!("replacing /boot/grub/{platform}")))?;
        }
        Task::new(format!("copying GRUB {platform} modules"), "cp")
            .arg("-a")
            .arg(&src)
            .arg(&dest)
            .run()?;
        let (out, modules): (&str, &[&str]) = if *platform == "i386-pc" {
            (BIOS_CORE, &["biosdisk", "part_gpt", "ext2"])
        } else {
            (EFI_CORE, &["part_gpt", "ext2"])
        };
        let prefix = format!("{}/boot/grub", layout.grub_root());
        let dir = format!("/usr/lib/grub/{platform}");
        let out_abs = format!("/{out}");
        let mut argv = vec![
            "grub-mkimage",
            "--format",
            platform,
            "--directory",
            &dir,
            "--prefix",
            &prefix,
            "--output",
            &out_abs,
            "--compression",
            "auto",
        ];
        argv.extend(modules);
        session.run(format!("building GRUB's {platform} core image"), &argv)?;
    }
    Ok(())
}
