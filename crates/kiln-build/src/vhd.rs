//! Fixed VHD, written directly: a fixed VHD is the raw disk followed by a 512-byte footer
//! (Microsoft's "Virtual Hard Disk Image Format Specification"), so a sparse copy plus a footer
//! replaces a full `qemu-img convert`, and the VHD's sha256 follows from the raw disk's hash state.
//!
//! The geometry field is set to the maximum (65535/16/255), as `qemu-img -o force_size=on` does:
//! readers then take the size from "current size" instead of rounding it down to a CHS multiple,
//! which keeps the virtual size exactly the (MiB-aligned) disk size Azure requires.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::cmd::Task;
use crate::error::{BuildError, Result};
use crate::hash::hex;

pub const FOOTER_LEN: usize = 512;
const DISK_TYPE_FIXED: u32 = 2;

/// The footer for a fixed disk of `size` bytes with the given unique id.
pub fn footer(size: u64, unique_id: [u8; 16]) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit always set
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version 1.0
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: none for fixed disks
    f[24..28].copy_from_slice(&0u32.to_be_bytes()); // timestamp: 0 keeps builds reproducible
    f[28..32].copy_from_slice(b"kiln");
    f[32..36].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // creator version
    f[36..40].copy_from_slice(b"Wi2k"); // creator host OS
    f[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    f[48..56].copy_from_slice(&size.to_be_bytes()); // current size
    f[56..58].copy_from_slice(&65535u16.to_be_bytes()); // cylinders
    f[58] = 16; // heads
    f[59] = 255; // sectors per track
    f[60..64].copy_from_slice(&DISK_TYPE_FIXED.to_be_bytes());
    f[68..84].copy_from_slice(&unique_id);
    // Checksum: one's complement of the byte sum with the checksum field zero.
    let sum: u32 = f.iter().map(|&b| u32::from(b)).sum();
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
    f
}

/// The VHD's sha256 given the hash state of the raw disk it wraps.
pub fn sha256_from_raw_state(raw_state: &Sha256, footer: &[u8; FOOTER_LEN]) -> String {
    let mut h = raw_state.clone();
    h.update(footer);
    hex(&h.finalize())
}

/// Writes `out` as `raw` (sparsely copied) plus the footer.
pub fn write_fixed(raw: &Path, out: &Path, footer: &[u8; FOOTER_LEN]) -> Result<()> {
    Task::new("exporting VHD (fixed)", "cp")
        .args(["--sparse=always", "--reflink=auto"])
        .arg(raw)
        .arg(out)
        .run()?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(out)
        .map_err(BuildError::io(format!("opening {}", out.display())))?;
    f.write_all(footer)
        .and_then(|()| f.sync_all())
        .map_err(BuildError::io(format!(
            "writing the VHD footer to {}",
            out.display()
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_fields_and_checksum() {
        let f = footer(4 << 30, [7; 16]);
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(u64::from_be_bytes(f[48..56].try_into().unwrap()), 4 << 30);
        assert_eq!(u32::from_be_bytes(f[60..64].try_into().unwrap()), 2);
        let stored = u32::from_be_bytes(f[64..68].try_into().unwrap());
        let mut zeroed = f;
        zeroed[64..68].fill(0);
        let sum: u32 = zeroed.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(stored, !sum);
    }
}
