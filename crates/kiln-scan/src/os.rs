//! Which operating system an image holds, from its os-release file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::ScanError;

/// The package manager family, which decides where the package database is and how versions
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Rpm,
    Alpine,
    Unknown,
}

/// The fields of os-release a scanner uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: String,
    pub codename: Option<String>,
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// Parses os-release's shell-like `KEY=value` lines (quoted or not).
    pub fn parse(text: &str) -> OsRelease {
        let mut kv = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.trim().to_string(), unquote(v.trim()));
            }
        }
        let get = |k: &str| kv.get(k).cloned().filter(|v| !v.is_empty());
        OsRelease {
            id: get("ID").unwrap_or_else(|| "linux".into()).to_lowercase(),
            id_like: get("ID_LIKE")
                .map(|v| v.split_whitespace().map(str::to_lowercase).collect())
                .unwrap_or_default(),
            version_id: get("VERSION_ID").unwrap_or_default(),
            codename: get("VERSION_CODENAME"),
            pretty_name: get("PRETTY_NAME"),
        }
    }

    /// Reads `etc/os-release` (or `usr/lib/os-release`) of the image at `root`.
    pub fn of_tree(root: &Path) -> Result<OsRelease, ScanError> {
        for p in ["etc/os-release", "usr/lib/os-release"] {
            if let Some(b) = crate::root::read(root, p).map_err(ScanError::io(p))? {
                return Ok(OsRelease::parse(&String::from_utf8_lossy(&b)));
            }
        }
        Err(ScanError::Invalid(format!(
            "{}: no etc/os-release or usr/lib/os-release: not an OS image tree",
            root.display()
        )))
    }

    pub fn family(&self) -> Family {
        let is = |x: &str| self.id == x || self.id_like.iter().any(|l| l == x);
        if is("debian") || is("ubuntu") {
            Family::Debian
        } else if is("alpine") {
            Family::Alpine
        } else if is("rhel") || is("fedora") || is("centos") || is("suse") {
            Family::Rpm
        } else {
            Family::Unknown
        }
    }

    /// The purl `distro` qualifier: `debian-12`, `alpine-3.19.1`, `rhel-9.4`.
    pub fn distro(&self) -> String {
        if self.version_id.is_empty() {
            self.id.clone()
        } else {
            format!("{}-{}", self.id, self.version_id)
        }
    }

    /// The OSV ecosystem of this release's packages: `Debian:12`, `Alpine:v3.19`; `None` where
    /// the release has no single ecosystem name (Red Hat's are per repository CPE).
    pub fn osv_ecosystem(&self) -> Option<String> {
        match self.family() {
            Family::Debian if self.id == "debian" => {
                Some(format!("Debian:{}", self.version_id.split('.').next()?))
            }
            Family::Debian if self.id == "ubuntu" => Some(format!("Ubuntu:{}", self.version_id)),
            Family::Alpine => {
                let mut parts = self.version_id.split('.');
                Some(format!("Alpine:v{}.{}", parts.next()?, parts.next()?))
            }
            _ => None,
        }
    }
}

fn unquote(v: &str) -> String {
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v);
    v.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_ecosystems() {
        let d = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        );
        assert_eq!(d.family(), Family::Debian);
        assert_eq!(d.distro(), "debian-12");
        assert_eq!(d.osv_ecosystem().as_deref(), Some("Debian:12"));
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        let a = OsRelease::parse("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(a.family(), Family::Alpine);
        assert_eq!(a.osv_ecosystem().as_deref(), Some("Alpine:v3.19"));
        let r =
            OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n");
        assert_eq!(r.family(), Family::Rpm);
        assert_eq!(r.distro(), "rocky-9.4");
    }
}
