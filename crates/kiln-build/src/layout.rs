//! The disk layout of an image: GPT partitions by boot mode, and the identifiers (disk and
//! partition GUIDs, filesystem UUID, FAT serial) derived from a seed, so the same tree always
//! gives the same disk.
//!
//! ```text
//! uefi:    1 ESP (64 MiB)                      2 root (ext4)
//! bios:    1 BIOS boot (1 MiB)                 2 root
//! hybrid:  1 BIOS boot (1 MiB)  2 ESP (64 MiB) 3 root
//! ```
//! Partitions start at 1 MiB and are MiB-aligned; the last MiB holds the backup GPT.

use kiln_spec::BootMode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
const ESP_BYTES: u64 = 64 * MIB;
const BIOS_BOOT_BYTES: u64 = MIB;

/// GPT partition type GUIDs (sgdisk short codes).
pub const TYPE_BIOS_BOOT: &str = "EF02";
pub const TYPE_ESP: &str = "EF00";
/// "Linux x86-64 root (/)" from the Discoverable Partitions Specification.
pub const TYPE_ROOT_X86_64: &str = "8304";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub number: u32,
    pub name: String,
    pub type_code: String,
    pub guid: String,
    /// First sector (512 bytes).
    pub start: u64,
    pub sectors: u64,
}

impl Partition {
    pub fn offset_bytes(&self) -> u64 {
        self.start * SECTOR
    }

    pub fn size_bytes(&self) -> u64 {
        self.sectors * SECTOR
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub size: u64,
    pub disk_guid: String,
    pub bios_boot: Option<Partition>,
    pub esp: Option<Partition>,
    pub root: Partition,
    pub root_fs_uuid: String,
    /// FAT volume id, 8 hex digits.
    pub esp_serial: String,
}

/// A UUID-shaped id (version 4 and RFC 4122 variant bits set) from a seed and a purpose.
pub fn derived_uuid(seed: &str, purpose: &str) -> String {
    let d = Sha256::digest(format!("{seed}/{purpose}").as_bytes());
    uuid_from_digest(&d, 4)
}

/// Formats the first 16 bytes of a digest as a UUID with the given version nibble and the
/// RFC 4122 variant bits.
pub fn uuid_from_digest(digest: &[u8], version: u8) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hash::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Layout {
    /// `size` must be a whole number of MiB (the definition guarantees it).
    pub fn new(boot: BootMode, size: u64, seed: &str) -> Self {
        let mut next = MIB / SECTOR;
        let mut number = 0;
        let mut part = |name: &str, type_code: &str, bytes: u64| {
            number += 1;
            let p = Partition {
                number,
                name: name.to_string(),
                type_code: type_code.to_string(),
                guid: derived_uuid(seed, name),
                start: next,
                sectors: bytes / SECTOR,
            };
            next += bytes / SECTOR;
            p
        };
        let bios_boot = matches!(boot, BootMode::Bios | BootMode::Hybrid)
            .then(|| part("bios-boot", TYPE_BIOS_BOOT, BIOS_BOOT_BYTES));
        let esp = matches!(boot, BootMode::Uefi | BootMode::Hybrid)
            .then(|| part("esp", TYPE_ESP, ESP_BYTES));
        let used = MIB
            + bios_boot.as_ref().map_or(0, Partition::size_bytes)
            + esp.as_ref().map_or(0, Partition::size_bytes);
        let root = part("root", TYPE_ROOT_X86_64, size - used - MIB);
        let serial = derived_uuid(seed, "esp-serial");
        Layout {
            size,
            disk_guid: derived_uuid(seed, "disk"),
            bios_boot,
            esp,
            root,
            root_fs_uuid: derived_uuid(seed, "root-fs"),
            esp_serial: serial[..8].to_string(),
        }
    }

    /// The root partition as GRUB names it relative to the boot disk.
    pub fn grub_root(&self) -> String {
        format!("(,gpt{})", self.root.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_layout_is_aligned_and_leaves_room_for_the_backup_gpt() {
        let l = Layout::new(BootMode::Hybrid, 4 << 30, "seed");
        let parts = [
            l.bios_boot.clone().unwrap(),
            l.esp.clone().unwrap(),
            l.root.clone(),
        ];
        assert_eq!(
            parts.iter().map(|p| p.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for w in parts.windows(2) {
            assert_eq!(w[0].start + w[0].sectors, w[1].start);
        }
        for p in &parts {
            assert_eq!(p.offset_bytes() % MIB, 0);
            assert_eq!(p.size_bytes() % MIB, 0);
        }
        assert_eq!(l.root.offset_bytes() + l.root.size_bytes(), (4 << 30) - MIB);
        assert_eq!(l.grub_root(), "(,gpt3)");
        assert_eq!(l, Layout::new(BootMode::Hybrid, 4 << 30, "seed"));
        assert_ne!(
            l.root_fs_uuid,
            Layout::new(BootMode::Hybrid, 4 << 30, "other").root_fs_uuid
        );
    }

    #[test]
    fn uefi_has_no_bios_partition() {
        let l = Layout::new(BootMode::Uefi, 1 << 30, "s");
        assert!(l.bios_boot.is_none());
        assert_eq!(l.root.number, 2);
        let u = derived_uuid("s", "x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
