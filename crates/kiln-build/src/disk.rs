//! Assembling the bootable disk image from a finished tree, without loop devices or mounts:
//! `sgdisk` writes the GPT, `mkfs.ext4 -d` fills the root filesystem at its offset, `mkfs.fat`
//! and mtools make the ESP, and the BIOS boot code is written with plain file I/O.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::bootcfg::{BIOS_BOOT_IMG, BIOS_CORE, EFI_CORE};
use crate::cmd::Task;
use crate::error::{BuildError, Result};
use crate::layout::{Layout, SECTOR};

/// Offset in boot.img where the core image's first sector (LBA, u64 LE) is patched in
/// (GRUB_BOOT_MACHINE_KERNEL_SECTOR in GRUB's boot.S).
const BOOT_IMG_KERNEL_SECTOR: u64 = 0x5c;
/// Offset in core.img's first sector of the blocklist start (sector 512 - 12).
const CORE_BLOCKLIST_START: u64 = 500;
/// boot.img bytes that are code; the rest of sector 0 is the (protective) partition table.
const MBR_CODE: usize = 440;

/// Writes `disk` (a new file) from `tree`.
pub fn assemble(tree: &Path, disk: &Path, layout: &Layout) -> Result<()> {
    let f = std::fs::File::create(disk)
        .map_err(BuildError::io(format!("creating {}", disk.display())))?;
    f.set_len(layout.size)
        .map_err(BuildError::io("sizing the disk image"))?;
    drop(f);

    let mut sg = Task::new("partitioning the disk", "sgdisk")
        .arg("--clear")
        .arg(format!("--disk-guid={}", layout.disk_guid));
    for p in [&layout.bios_boot, &layout.esp, &Some(layout.root.clone())]
        .into_iter()
        .flatten()
    {
        sg = sg
            .arg(format!(
                "--new={}:{}:{}",
                p.number,
                p.start,
                p.start + p.sectors - 1
            ))
            .arg(format!("--typecode={}:{}", p.number, p.type_code))
            .arg(format!("--change-name={}:{}", p.number, p.name))
            .arg(format!("--partition-guid={}:{}", p.number, p.guid));
    }
    sg.arg(disk).run()?;

    let root = &layout.root;
    Task::new("creating the root filesystem", "mkfs.ext4")
        .args(["-F", "-q", "-t", "ext4", "-L", "root"])
        .arg("-U")
        .arg(&layout.root_fs_uuid)
        .arg("-E")
        .arg(format!(
            "offset={},hash_seed={}",
            root.offset_bytes(),
            layout.root_fs_uuid
        ))
        .arg("-d")
        .arg(tree)
        .arg(disk)
        .arg(format!("{}k", root.size_bytes() / 1024))
        .run()?;

    if let Some(esp) = &layout.esp {
        Task::new("creating the EFI system partition", "mkfs.fat")
            .args(["-F", "32", "-s", "1", "-n", "EFI"])
            .arg("-i")
            .arg(&layout.esp_serial)
            .arg(format!("--offset={}", esp.start))
            .arg(disk)
            .arg((esp.size_bytes() / 1024).to_string())
            .run()?;
        let image = format!("{}@@{}", disk.display(), esp.offset_bytes());
        Task::new("creating the EFI boot directory", "mmd")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &image, "::/EFI", "::/EFI/BOOT"])
            .run()?;
        Task::new("installing the UEFI boot loader", "mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-i", &image])
            .arg(tree.join(EFI_CORE))
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .run()?;
    }

    if let Some(bios) = &layout.bios_boot {
        install_bios(tree, disk, bios.start, bios.size_bytes())?;
    }
    Ok(())
}

/// GRUB for BIOS: core.img into the BIOS boot partition, boot.img's code into the MBR, each
/// patched with where the other lies (as grub-setup does for a GPT disk).
fn install_bios(tree: &Path, disk: &Path, core_lba: u64, room: u64) -> Result<()> {
    let core = std::fs::read(tree.join(BIOS_CORE))
        .map_err(BuildError::io("reading GRUB's BIOS core image"))?;
    if core.len() as u64 > room {
        return Err(BuildError::Io {
            what: "installing the BIOS boot loader".into(),
            source: std::io::Error::other(format!(
                "core.img is {} bytes, the BIOS boot partition holds {room}",
                core.len()
            )),
        });
    }
    let mut boot_img = Vec::new();
    std::fs::File::open(tree.join(BIOS_BOOT_IMG))
        .and_then(|mut f| f.read_to_end(&mut boot_img))
        .map_err(BuildError::io("reading GRUB's boot.img"))?;
    if boot_img.len() < 512 {
        return Err(BuildError::Io {
            what: "installing the BIOS boot loader".into(),
            source: std::io::Error::other("boot.img is shorter than a sector"),
        });
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(BuildError::io("opening the disk image"))?;
    let io = BuildError::io("writing the BIOS boot loader");
    (|| -> std::io::Result<()> {
        f.seek(SeekFrom::Start(core_lba * SECTOR))?;
        f.write_all(&core)?;
        f.seek(SeekFrom::Start(core_lba * SECTOR + CORE_BLOCKLIST_START))?;
        f.write_all(&(core_lba + 1).to_le_bytes())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&boot_img[..MBR_CODE])?;
        f.seek(SeekFrom::Start(BOOT_IMG_KERNEL_SECTOR))?;
        f.write_all(&core_lba.to_le_bytes())?;
        f.sync_all()
    })()
    .map_err(io)
}
