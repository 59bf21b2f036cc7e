//! Test disks and a moto connection, for the publish tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use kiln_publish::aws::Conn;
use kiln_publish::aws::ebs::BLOCK;
use sha2::{Digest, Sha256};

pub use kiln_emulators::Moto;

/// A connection to moto in `region`, with its fixed credentials.
pub fn conn_in(moto: &Moto, region: &str) -> Conn {
    Conn {
        region: region.into(),
        endpoint: Some(moto.url.clone()),
        static_credentials: Some(("testing".into(), "testing".into())),
    }
}

/// A sparse disk of `mib` MiB (plus a partial tail) with data in a few places: first blocks
/// (boot), a run in the middle, one byte near the end.
pub fn disk(dir: &Path, mib: u64) -> (PathBuf, String, u64) {
    let path = dir.join("disk.raw");
    let size = mib * 1024 * 1024 + 4096;
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    let mut seed = 0x6b69_6c6eu64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    f.write_all_at(&noise(3 * BLOCK as usize / 2), 0).unwrap();
    f.write_all_at(&noise(5 * BLOCK as usize), 20 * BLOCK + 100)
        .unwrap();
    f.write_all_at(b"end", size - 10).unwrap();
    drop(f);
    let sha = hex(&Sha256::digest(std::fs::read(&path).unwrap()));
    (path, sha, size)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
