//! Content hashing for stage keys and fingerprints.
//!
//! Every field is fed as a length-prefixed (name, value) pair, so `("ab","c")` and `("a","bc")`
//! never collide, and adding a field to a stage's inputs changes every key of that stage (which is
//! what a new input should do).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Default)]
pub struct KeyHasher(Sha256);

impl KeyHasher {
    /// `domain` names what is hashed and its recipe version ("bootstrap/1"); bump the version when
    /// the stage's implementation changes what it produces.
    pub fn new(domain: &str) -> Self {
        let mut h = KeyHasher(Sha256::new());
        h.field("domain", domain.as_bytes());
        h
    }

    pub fn field(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let v = value.as_ref();
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((v.len() as u64).to_le_bytes());
        self.0.update(v);
        self
    }

    /// A serialisable value in canonical JSON (serde_json keeps struct field order, and maps in
    /// the definitions are BTreeMaps).
    pub fn json(&mut self, name: &str, value: &impl serde::Serialize) -> &mut Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.field(name, bytes)
    }

    pub fn finish(&self) -> String {
        hex(&self.0.clone().finalize())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file's contents, streaming.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(hex(&sha256_state(path)?.finalize()))
}

/// The sha256 state after a file's contents (to extend it, e.g. with a VHD footer).
///
/// Disk images are mostly holes. Reading a hole makes the kernel allocate and zero page-cache
/// pages for it (seconds of system time for a 4 GiB disk), so holes found with `SEEK_HOLE` are fed
/// to the hasher from a zero buffer instead of being read.
pub fn sha256_state(path: &Path) -> Result<Sha256> {
    use rustix::fs::SeekFrom as RSeek;
    use std::io::{Seek, SeekFrom};
    let io = |what: &str| BuildError::io(format!("{what} {}", path.display()));
    let mut f = std::fs::File::open(path).map_err(io("opening"))?;
    let len = f.metadata().map_err(io("reading"))?.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < len {
        // Where the next data starts (ENXIO: only a hole remains) and where it ends.
        let data = rustix::fs::seek(&f, RSeek::Data(pos)).map_or(len, |d| d.min(len));
        let mut gap = data - pos;
        while gap > 0 {
            let n = gap.min(zeros.len() as u64) as usize;
            h.update(&zeros[..n]);
            gap -= n as u64;
        }
        if data >= len {
            break;
        }
        let hole = rustix::fs::seek(&f, RSeek::Hole(data)).map_or(len, |e| e.min(len));
        f.seek(SeekFrom::Start(data)).map_err(io("seeking in"))?;
        let mut left = hole - data;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = f.read(&mut buf[..want]).map_err(io("reading"))?;
            if n == 0 {
                return Err(BuildError::Io {
                    what: format!("reading {}", path.display()),
                    source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                });
            }
            h.update(&buf[..n]);
            left -= n as u64;
        }
        pos = hole;
    }
    Ok(h)
}

/// Digest of a file or directory tree: names, modes, symlink targets and contents, in sorted
/// order, so a renamed or re-permissioned file changes it too.
pub fn digest_path(path: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let mut h = KeyHasher::new("path/1");
    let mut stack = vec![(path.to_path_buf(), String::new())];
    while let Some((p, rel)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p)
            .map_err(BuildError::io(format!("reading {}", p.display())))?;
        h.field("entry", rel.as_bytes())
            .field("mode", meta.mode().to_le_bytes());
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p)
                .map_err(BuildError::io(format!("reading link {}", p.display())))?;
            h.field("link", t.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .map_err(BuildError::io(format!("listing {}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            // Reverse so the stack pops them in sorted order.
            for n in names.into_iter().rev() {
                let child_rel = format!("{rel}/{}", n.to_string_lossy());
                stack.push((p.join(&n), child_rel));
            }
        } else {
            h.field("sha256", sha256_file(&p)?);
        }
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_files_hash_like_their_bytes() {
        use std::io::{Seek, SeekFrom, Write};
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sparse");
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(5 << 20).unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        f.seek(SeekFrom::Start(17)).unwrap();
        f.write_all(b"head").unwrap();
        drop(f);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(sha256_file(&p).unwrap(), hex(&Sha256::digest(&bytes)));
        // A file ending in data, and an empty one.
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), hex(&Sha256::digest(b"abc")));
        std::fs::write(&p, b"").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), hex(&Sha256::digest(b"")));
    }

    #[test]
    fn fields_are_unambiguous() {
        let a = KeyHasher::new("t")
            .field("x", "ab")
            .field("y", "c")
            .finish();
        let b = KeyHasher::new("t")
            .field("x", "a")
            .field("y", "bc")
            .finish();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn tree_digests_see_content_modes_and_names() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), "x").unwrap();
        let d1 = digest_path(t.path()).unwrap();
        std::fs::set_permissions(t.path().join("d/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let d2 = digest_path(t.path()).unwrap();
        std::fs::write(t.path().join("d/f"), "y").unwrap();
        let d3 = digest_path(t.path()).unwrap();
        std::fs::rename(t.path().join("d/f"), t.path().join("d/g")).unwrap();
        let d4 = digest_path(t.path()).unwrap();
        let all = [&d1, &d2, &d3, &d4];
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(all[i], all[j]);
            }
        }
        assert_eq!(d4, digest_path(t.path()).unwrap());
    }
}
