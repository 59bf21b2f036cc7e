//! The build manifest: what was built, from what, with which packages, into which files.
//! Written as `manifest.json` beside the artifacts; the registry records it later.

use serde::{Deserialize, Serialize};

use crate::dpkg::Package;
use crate::layout::Layout;
use crate::seal::SealReport;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub kiln_version: String,
    pub image: String,
    pub fingerprint: String,
    pub parents: Vec<ParentRef>,
    /// `debian.bookworm` for images built from a source.
    pub source: Option<String>,
    /// The apt sources the packages came from.
    pub apt_sources: Vec<String>,
    pub disk: DiskInfo,
    pub packages: Vec<Package>,
    pub seal: SealReport,
    pub artifacts: Vec<Artifact>,
    pub stages: Vec<StageRecord>,
    pub built_at: String,
    pub builder_host: String,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParentRef {
    pub image: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskInfo {
    pub size: u64,
    pub boot: String,
    pub layout: Layout,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Artifact {
    pub format: kiln_spec::Format,
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageRecord {
    pub stage: String,
    pub key: String,
    pub cached: bool,
    pub seconds: f64,
}

/// RFC 3339 UTC time of a Unix timestamp in seconds.
pub fn rfc3339(secs: u64) -> String {
    kiln_spec::time::format_millis(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_430_096), "2026-11-23T10:34:56.000Z");
    }
}
