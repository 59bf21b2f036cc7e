//! Debian and Ubuntu: `var/lib/dpkg/status`, parsed by the builder's reader so the SBOM and the
//! build manifest can never disagree about what is installed.

use std::path::Path;

use kiln_build::dpkg::parse_entries;

use super::{Kind, Package};
use crate::ScanError;

pub const STATUS: &str = "var/lib/dpkg/status";

/// Packages with files on disk, as `dpkg-query -W` lists them (names, versions, architectures,
/// `${source:Package}` and `${source:Version}`).
pub fn read(root: &Path) -> Result<Vec<Package>, ScanError> {
    let bytes = crate::root::read(root, STATUS)
        .map_err(ScanError::io(STATUS))?
        .ok_or_else(|| ScanError::Invalid(format!("{}: no {STATUS}", root.display())))?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

pub fn parse(text: &str) -> Vec<Package> {
    parse_entries(text)
        .into_iter()
        .filter(|e| e.on_disk())
        .map(|e| Package {
            kind: Kind::Deb,
            name: e.package,
            version: e.version,
            epoch: None,
            arch: e.architecture,
            source: e.source,
            source_version: e.source_version,
            license: None,
            supplier: e.maintainer,
        })
        .collect()
}
