//! The software bill of materials of an image tree: its OS and every installed package, read
//! from the package manager's own database (dpkg, rpm, apk), so it says what the image really
//! holds rather than what a definition asked for.

pub mod apk;
pub mod cyclonedx;
pub mod dpkg;
pub mod purl;
pub mod rpmdb;
pub mod spdx;

use std::path::Path;

use serde::Serialize;

use crate::ScanError;
use crate::os::{Family, OsRelease};

/// The package manager a package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deb,
    Rpm,
    Apk,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deb => "deb",
            Kind::Rpm => "rpm",
            Kind::Apk => "apk",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub kind: Kind,
    pub name: String,
    /// The version as the package manager prints it: `[epoch:]upstream[-revision]` for deb,
    /// `version-release` for rpm (epoch separate), `version-rN` for apk.
    pub version: String,
    /// rpm's epoch (deb keeps its epoch inside `version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    pub arch: String,
    /// The source package it was built from (Debian `Source:`, rpm SOURCERPM, apk origin).
    pub source: String,
    pub source_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
}

impl Package {
    /// The version with rpm's epoch in front (`E:V-R`), the form vulnerability data compares.
    pub fn full_version(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}", self.version),
            None => self.version.clone(),
        }
    }
}

/// An image's OS and packages, sorted by (name, arch, version).
#[derive(Debug, Clone, Serialize)]
pub struct Sbom {
    pub os: OsRelease,
    /// The package database read, relative to the image root (SARIF points findings at it).
    pub database: String,
    pub packages: Vec<Package>,
}

impl Sbom {
    /// Reads the SBOM of the image tree at `root`.
    pub fn of_tree(root: &Path) -> Result<Sbom, ScanError> {
        let os = OsRelease::of_tree(root)?;
        let (database, mut packages) = match os.family() {
            Family::Debian => (dpkg::STATUS.to_string(), dpkg::read(root)?),
            Family::Rpm => rpmdb::read(root)?,
            Family::Alpine => (apk::INSTALLED.to_string(), apk::read(root)?),
            Family::Unknown => {
                // Not a family we know by name: take whichever database the tree has.
                if let Ok(p) = dpkg::read(root) {
                    (dpkg::STATUS.to_string(), p)
                } else if let Ok(found) = rpmdb::read(root) {
                    found
                } else {
                    (apk::INSTALLED.to_string(), apk::read(root)?)
                }
            }
        };
        packages
            .sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
        Ok(Sbom {
            os,
            database,
            packages,
        })
    }
}

/// What an SBOM document says about the thing it describes.
#[derive(Debug, Clone)]
pub struct DocMeta {
    /// The image (bucket) name, or the scanned path's file name.
    pub name: String,
    /// The registry version, or "unversioned".
    pub version: String,
    /// When the document was made, `YYYY-MM-DDThh:mm:ssZ`: the one form both CycloneDX and
    /// SPDX accept (see [`timestamp`]).
    pub created: String,
    /// The scanned disk image's sha256, when a disk was scanned.
    pub sha256: Option<String>,
}

/// `YYYY-MM-DDThh:mm:ssZ` of a Unix time.
pub fn timestamp(secs: u64) -> String {
    kiln_build::manifest::rfc3339(secs)
}

impl DocMeta {
    pub fn timestamp(&self) -> String {
        // SPDX refuses fractional seconds: `…:05.123Z` → `…:05Z`.
        match (self.created.find('.'), self.created.strip_suffix('Z')) {
            (Some(dot), Some(_)) => format!("{}Z", &self.created[..dot]),
            _ => self.created.clone(),
        }
    }

    /// A name-based UUID (version 5 layout) from the document's subject and contents, so the same
    /// scan of the same image gives the same serial number.
    pub fn uuid(&self, sbom: &Sbom) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(self.version.as_bytes());
        h.update([0]);
        h.update(self.created.as_bytes());
        for p in &sbom.packages {
            h.update(p.name.as_bytes());
            h.update([0]);
            h.update(p.version.as_bytes());
            h.update([0]);
        }
        kiln_build::layout::uuid_from_digest(&h.finalize(), 5)
    }
}
