//! Reading a Debian archive the way apt does: `dists/SUITE/InRelease` (or `Release`) lists every
//! index with its size and sha256; a `Packages` index (xz, gz or plain) is fetched, checked
//! against that list and parsed. The bootstrap keys its cache on the Release digests; upstream
//! update detection reads the package indices.
//!
//! The InRelease signature is not verified here: these reads only decide *whether* to rebuild;
//! the build itself goes through mmdebstrap and apt, which verify it against the keyring.

use std::io::Read;

use crate::cmd::Task;
use crate::error::{BuildError, Result};
use crate::hash::hex;
use crate::hostsrc::AptSource;

/// Fetches a URL (`file://` read directly, anything else through curl).
pub fn fetch(url: &str) -> Result<Vec<u8>> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read(path).map_err(BuildError::io(format!("reading {path}")));
    }
    Ok(Task::new(format!("fetching {url}"), "curl")
        .args(["-fsSL", "--max-time", "120", "--retry", "2", url])
        .run()?
        .stdout)
}

/// The raw `InRelease` of a source (`Release` when the archive is unsigned).
pub fn fetch_release(s: &AptSource) -> Result<Vec<u8>> {
    let mut last_err = None;
    for name in ["InRelease", "Release"] {
        match fetch(&format!("{}/dists/{}/{name}", s.uri, s.suite)) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err
        .unwrap_or_else(|| BuildError::HostSources(format!("no Release file for {}", s.suite))))
}

/// One index file listed in a Release file's `SHA256:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The `SHA256:` entries of a Release or (clear-signed) InRelease file.
pub fn release_index_files(release: &str) -> Vec<IndexFile> {
    let mut out = Vec::new();
    let mut in_sha256 = false;
    for line in release.lines() {
        if line.starts_with("-----BEGIN PGP SIGNATURE") {
            break;
        }
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha256 {
            let mut w = line.split_whitespace();
            if let (Some(h), Some(size), Some(path)) = (w.next(), w.next(), w.next())
                && let Ok(size) = size.parse()
            {
                out.push(IndexFile {
                    path: path.to_string(),
                    size,
                    sha256: h.to_ascii_lowercase(),
                });
            }
        }
    }
    out
}

/// One binary package in a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// The source package, when it differs from the binary's name.
    pub source: Option<String>,
}

/// Parses a `Packages` index (deb822 stanzas).
pub fn parse_packages(text: &str) -> Vec<IndexedPackage> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut source) = (None, None, None, None);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Architecture:") {
                arch = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Source:") {
                // `Source: name (version)` when the source version differs.
                source = v.split_whitespace().next();
            }
        }
        if let (Some(n), Some(v), Some(a)) = (name, version, arch) {
            out.push(IndexedPackage {
                name: n.to_string(),
                version: v.to_string(),
                arch: a.to_string(),
                source: source.map(str::to_string),
            });
        }
    }
    out
}

/// Every package of `source`'s components for `arch` (which, as in the archive, includes the
/// `Architecture: all` packages). Prefers the xz index, then gz, then plain, as listed in the
/// Release file, and refuses an index whose size or sha256 does not match.
pub fn packages(s: &AptSource, arch: &str) -> Result<Vec<IndexedPackage>> {
    let release = fetch_release(s)?;
    let listed = release_index_files(&String::from_utf8_lossy(&release));
    let mut out = Vec::new();
    for comp in &s.components {
        let base = format!("{comp}/binary-{arch}/Packages");
        let Some(entry) = ["xz", "gz", ""].iter().find_map(|ext| {
            let p = if ext.is_empty() {
                base.clone()
            } else {
                format!("{base}.{ext}")
            };
            listed.iter().find(|f| f.path == p)
        }) else {
            return Err(BuildError::HostSources(format!(
                "{}/dists/{}: the Release file lists no {base} index",
                s.uri, s.suite
            )));
        };
        let url = format!("{}/dists/{}/{}", s.uri, s.suite, entry.path);
        let bytes = fetch(&url)?;
        use sha2::Digest;
        let got = hex(&sha2::Sha256::digest(&bytes));
        if bytes.len() as u64 != entry.size || got != entry.sha256 {
            return Err(BuildError::HostSources(format!(
                "{url}: {} bytes with sha256 {got}, but the Release file says {} bytes with sha256 {} (a mirror caught mid-sync?)",
                bytes.len(),
                entry.size,
                entry.sha256
            )));
        }
        let text = decompress(&entry.path, &bytes)
            .map_err(BuildError::io(format!("decompressing {url}")))?;
        out.extend(parse_packages(&text));
    }
    Ok(out)
}

fn decompress(path: &str, bytes: &[u8]) -> std::io::Result<String> {
    let mut text = String::new();
    if path.ends_with(".xz") {
        xz2::read::XzDecoder::new(bytes).read_to_string(&mut text)?;
    } else if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes).read_to_string(&mut text)?;
    } else {
        text = String::from_utf8_lossy(bytes).into_owned();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_lists_sha256_entries_only() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nSuite: stable\nMD5Sum:\n 0123 10 main/binary-amd64/Packages\nSHA256:\n AbCd 1234 main/binary-amd64/Packages.xz\n ef01 99 main/binary-amd64/Packages\nAcquire-By-Hash: yes\n-----BEGIN PGP SIGNATURE-----\n\n ffff 1 junk\n";
        assert_eq!(
            release_index_files(text),
            [
                IndexFile {
                    path: "main/binary-amd64/Packages.xz".into(),
                    size: 1234,
                    sha256: "abcd".into()
                },
                IndexFile {
                    path: "main/binary-amd64/Packages".into(),
                    size: 99,
                    sha256: "ef01".into()
                },
            ]
        );
    }

    #[test]
    fn packages_keep_source_names() {
        let text = "Package: libssl3\nSource: openssl (3.0.15-1~deb12u1)\nVersion: 3.0.15-1~deb12u1+b1\nArchitecture: amd64\nDescription: x\n continued\n\nPackage: adduser\nVersion: 3.134\nArchitecture: all\n";
        let p = parse_packages(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[0].version, "3.0.15-1~deb12u1+b1");
        assert_eq!(p[1].source, None);
    }
}
