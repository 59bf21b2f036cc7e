//! RHEL-family: the sqlite rpm database (`rpmdb.sqlite`, RHEL 9 and Fedora ≥ 33). Each row of its
//! `Packages` table is one package's header: big-endian `u32` index count and data length, then
//! 16-byte index entries (tag, type, offset, count) and the data store. Entries are not sorted by
//! tag (install-time tags follow the signed region), so lookups scan them all.

use std::path::Path;

use super::{Kind, Package};
use crate::ScanError;

/// Where rpm keeps its database, newest layout first.
pub const DB_PATHS: [&str; 2] = [
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/rpmdb.sqlite",
];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_VENDOR: u32 = 1011;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The packages of the image at `root`, and which database path held them.
pub fn read(root: &Path) -> Result<(String, Vec<Package>), ScanError> {
    for rel in DB_PATHS {
        let p = crate::root::resolve(root, Path::new(rel)).map_err(ScanError::io(rel))?;
        if p.is_file() {
            return Ok((rel.to_string(), read_db(&p)?));
        }
    }
    Err(ScanError::Invalid(format!(
        "{}: no rpm database ({})",
        root.display(),
        DB_PATHS.join(" or ")
    )))
}

/// Reads every header of an rpmdb.sqlite file. Opened immutable: the image may be read-only and
/// its database is in WAL mode, which otherwise wants to write a shared-memory file.
pub fn read_db(path: &Path) -> Result<Vec<Package>, ScanError> {
    let uri = format!("file:{}?immutable=1", path.display());
    let conn = rusqlite::Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| ScanError::Invalid(format!("{}: {e}", path.display())))?;
    let sql_err = |e: rusqlite::Error| ScanError::Invalid(format!("{}: {e}", path.display()));
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(sql_err)?;
        let h = Header::parse(&blob).map_err(|e| {
            ScanError::Invalid(format!("{}: package header {hnum}: {e}", path.display()))
        })?;
        if let Some(p) = h.package() {
            out.push(p);
        }
    }
    Ok(out)
}

/// A parsed header blob.
#[derive(Debug)]
pub struct Header<'a> {
    entries: Vec<(u32, u32, usize, usize)>,
    data: &'a [u8],
}

impl<'a> Header<'a> {
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        let u32_at = |b: &[u8], at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let il = u32_at(blob, 0).ok_or("shorter than 8 bytes")? as usize;
        let dl = u32_at(blob, 4).ok_or("shorter than 8 bytes")? as usize;
        let start = il
            .checked_mul(16)
            .and_then(|x| x.checked_add(8))
            .ok_or("index count overflows")?;
        let end = start.checked_add(dl).ok_or("data length overflows")?;
        if end != blob.len() {
            return Err(format!(
                "{il} index entries and {dl} data bytes do not fill the {} byte header",
                blob.len()
            ));
        }
        let mut entries = Vec::with_capacity(il);
        for i in 0..il {
            let at = 8 + i * 16;
            let tag = u32_at(blob, at).unwrap_or(0);
            let ty = u32_at(blob, at + 4).unwrap_or(0);
            let off = u32_at(blob, at + 8).unwrap_or(0) as i32;
            let count = u32_at(blob, at + 12).unwrap_or(0) as usize;
            // Negative offsets belong to region trailers; nothing we read lives there.
            if let Ok(off) = usize::try_from(off)
                && off < dl
            {
                entries.push((tag, ty, off, count));
            }
        }
        Ok(Header {
            entries,
            data: &blob[start..end],
        })
    }

    fn entry(&self, tag: u32) -> Option<(u32, usize, usize)> {
        self.entries
            .iter()
            .find(|e| e.0 == tag)
            .map(|&(_, ty, off, n)| (ty, off, n))
    }

    /// A string tag (the first string of an array or translated string).
    pub fn string(&self, tag: u32) -> Option<String> {
        let (ty, off, _) = self.entry(tag)?;
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return None;
        }
        let rest = self.data.get(off..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..len]).into_owned())
    }

    pub fn int32(&self, tag: u32) -> Option<u32> {
        let (ty, off, n) = self.entry(tag)?;
        if ty != TYPE_INT32 || n == 0 {
            return None;
        }
        Some(u32::from_be_bytes(
            self.data.get(off..off + 4)?.try_into().ok()?,
        ))
    }

    /// The package this header describes; `None` for rpm's `gpg-pubkey` pseudo-packages, which
    /// have no architecture and were not built from a source package.
    pub fn package(&self) -> Option<Package> {
        let name = self.string(TAG_NAME)?;
        let version = self.string(TAG_VERSION)?;
        let release = self.string(TAG_RELEASE).unwrap_or_default();
        let arch = self.string(TAG_ARCH)?;
        let srpm = self.string(TAG_SOURCERPM);
        let (source, source_version) = srpm
            .as_deref()
            .and_then(split_srpm)
            .unwrap_or_else(|| (name.clone(), format!("{version}-{release}")));
        let vr = if release.is_empty() {
            version
        } else {
            format!("{version}-{release}")
        };
        Some(Package {
            kind: Kind::Rpm,
            name,
            version: vr,
            epoch: self.int32(TAG_EPOCH),
            arch,
            source,
            source_version,
            license: self.string(TAG_LICENSE),
            supplier: self.string(TAG_VENDOR),
        })
    }
}

/// `openssl-3.0.7-27.el9.src.rpm` → (`openssl`, `3.0.7-27.el9`).
fn split_srpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name.to_string(), format!("{version}-{release}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rpm_names() {
        assert_eq!(
            split_srpm("kiln-demo-1.2.3~rc1-4.el9_2.src.rpm"),
            Some(("kiln-demo".into(), "1.2.3~rc1-4.el9_2".into()))
        );
        assert_eq!(split_srpm("garbage"), None);
    }

    #[test]
    fn truncated_headers_are_errors_not_panics() {
        assert!(Header::parse(&[0, 0, 0, 1]).is_err());
        assert!(Header::parse(&[0, 0, 0, 9, 0, 0, 0, 0]).is_err());
        let h = Header::parse(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(h.package().is_none());
    }
}
