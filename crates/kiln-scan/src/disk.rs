//! Scanning a disk image file: find the root filesystem (the largest ext2/3/4 partition of a GPT
//! or MBR disk, or a bare filesystem image) and extract it with e2fsprogs' `debugfs` at its byte
//! offset — no loop device, no mount, nothing on the host changes. qcow2 and VMDK are first
//! converted to raw with `qemu-img`; a fixed VHD is a raw disk with a footer and is read as is.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;

use crate::ScanError;

const EXT_MAGIC_AT: u64 = 1024 + 56;

/// An extracted image tree; removed when dropped.
#[derive(Debug)]
pub struct Extracted {
    pub dir: tempfile::TempDir,
}

impl Extracted {
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
}

fn is_ext(f: &mut std::fs::File, offset: u64) -> bool {
    let mut m = [0u8; 2];
    f.seek(SeekFrom::Start(offset + EXT_MAGIC_AT)).is_ok()
        && f.read_exact(&mut m).is_ok()
        && m == [0x53, 0xEF]
}

/// Byte offsets and sizes of the partitions a GPT (or MBR) lists.
fn partitions(f: &mut std::fs::File) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut hdr = [0u8; 92];
    if f.seek(SeekFrom::Start(512)).is_ok()
        && f.read_exact(&mut hdr).is_ok()
        && &hdr[..8] == b"EFI PART"
    {
        let le64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let le32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap_or_default());
        let entries_lba = le64(&hdr[72..]);
        let count = le32(&hdr[80..]).min(1024) as usize;
        let size = le32(&hdr[84..]).clamp(128, 4096) as usize;
        let mut table = vec![0u8; count * size];
        if f.seek(SeekFrom::Start(entries_lba * 512)).is_ok() && f.read_exact(&mut table).is_ok() {
            for e in table.chunks(size) {
                let (first, last) = (le64(&e[32..]), le64(&e[40..]));
                if e[..16].iter().any(|&b| b != 0) && last >= first {
                    out.push((first * 512, (last - first + 1) * 512));
                }
            }
        }
        return out;
    }
    let mut mbr = [0u8; 512];
    if f.seek(SeekFrom::Start(0)).is_ok()
        && f.read_exact(&mut mbr).is_ok()
        && mbr[510..] == [0x55, 0xAA]
    {
        for i in 0..4 {
            let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
            let lba = u32::from_le_bytes(e[8..12].try_into().unwrap_or_default()) as u64;
            let n = u32::from_le_bytes(e[12..16].try_into().unwrap_or_default()) as u64;
            if e[4] != 0 && n > 0 {
                out.push((lba * 512, n * 512));
            }
        }
    }
    out
}

/// The byte offset of the root filesystem in a raw disk or filesystem image.
pub fn root_offset(raw: &Path) -> Result<u64, ScanError> {
    let mut f =
        std::fs::File::open(raw).map_err(ScanError::io(format!("opening {}", raw.display())))?;
    let mut parts = partitions(&mut f);
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    if let Some((off, _)) = parts.into_iter().find(|(off, _)| is_ext(&mut f, *off)) {
        return Ok(off);
    }
    if is_ext(&mut f, 0) {
        return Ok(0);
    }
    Err(ScanError::Invalid(format!(
        "{}: no ext2/3/4 root filesystem found (GPT, MBR or bare filesystem image)",
        raw.display()
    )))
}

fn run(cmd: &mut Command, what: &str) -> Result<String, ScanError> {
    let out = cmd.output().map_err(ScanError::io(what.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(ScanError::Invalid(format!(
            "{what} failed: {}",
            stderr.trim()
        )));
    }
    Ok(stderr)
}

/// Extracts the root filesystem of the disk image at `path` into a temporary directory (under
/// `$TMPDIR`, removed on drop, also when extraction fails).
pub fn extract(path: &Path) -> Result<Extracted, ScanError> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(ScanError::io(format!("reading {}", path.display())))?;
    let dir = tempfile::Builder::new()
        .prefix("kiln-scan-")
        .tempdir()
        .map_err(ScanError::io("creating a temporary directory"))?;
    let converted;
    let raw: &Path = if &magic == b"QFI\xfb" || &magic == b"KDMV" {
        converted = dir.path().join("disk.raw");
        run(
            Command::new("qemu-img")
                .args(["convert", "-O", "raw"])
                .arg(path)
                .arg(&converted),
            &format!("qemu-img convert {}", path.display()),
        )?;
        &converted
    } else {
        path
    };
    let offset = root_offset(raw)?;
    let tree = dir.path().join("root");
    std::fs::create_dir(&tree).map_err(ScanError::io("creating the extraction directory"))?;
    let stderr = run(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("rdump / {}", tree.display()))
            .arg(format!("{}?offset={offset}", raw.display())),
        "debugfs rdump",
    )?;
    // debugfs exits 0 even when it could not open the filesystem: its stderr says so.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !tree.join("etc").is_dir() {
        return Err(ScanError::Invalid(format!(
            "{}: extracting the root filesystem at offset {offset} failed: {}",
            path.display(),
            complaints.join("; ")
        )));
    }
    if !complaints.is_empty() {
        tracing::warn!(image = %path.display(), "debugfs: {}", complaints.join("; "));
    }
    if raw != path {
        let _ = std::fs::remove_file(raw);
    }
    Ok(Extracted { dir })
}
