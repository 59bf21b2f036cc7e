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

    /// Where OSV data names this release's packages. Debian and Alpine have one ecosystem per
    /// release (`Debian:12`, `Alpine:v3.19`); Red Hat has one per repository CPE
    /// (`Red Hat:enterprise_linux:9::baseos`, `…::appstream`, …), so a RHEL image is matched
    /// against every stream of its major release. Extended-support (`rhel_eus`) streams are left
    /// out: a general image does not get EUS fixes. Empty when OSV has no name for the release.
    pub fn osv_ecosystems(&self) -> Vec<Ecosystem> {
        let major = self.version_id.split('.').next().unwrap_or_default();
        if major.is_empty() {
            return Vec::new();
        }
        match (self.family(), self.id.as_str()) {
            (Family::Debian, "debian") => vec![Ecosystem::Exact(format!("Debian:{major}"))],
            (Family::Debian, "ubuntu") => {
                vec![Ecosystem::Exact(format!("Ubuntu:{}", self.version_id))]
            }
            (Family::Alpine, _) => match self.version_id.split('.').nth(1) {
                Some(minor) => vec![Ecosystem::Exact(format!("Alpine:v{major}.{minor}"))],
                None => Vec::new(),
            },
            (Family::Rpm, "rhel") => vec![Ecosystem::Prefix(format!(
                "Red Hat:enterprise_linux:{major}::"
            ))],
            (Family::Rpm, "rocky") => vec![Ecosystem::Exact(format!("Rocky Linux:{major}"))],
            (Family::Rpm, "almalinux") => vec![Ecosystem::Exact(format!("AlmaLinux:{major}"))],
            _ => Vec::new(),
        }
    }
}

/// An OSV ecosystem name, or the prefix shared by a family of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ecosystem {
    Exact(String),
    Prefix(String),
}

impl Ecosystem {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Ecosystem::Exact(e) => e == name,
            Ecosystem::Prefix(p) => name.starts_with(p.as_str()),
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
        assert_eq!(
            d.osv_ecosystems(),
            vec![Ecosystem::Exact("Debian:12".into())]
        );
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        let a = OsRelease::parse("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(a.family(), Family::Alpine);
        assert_eq!(
            a.osv_ecosystems(),
            vec![Ecosystem::Exact("Alpine:v3.19".into())]
        );
        let r =
            OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n");
        assert_eq!(r.family(), Family::Rpm);
        assert_eq!(r.distro(), "rocky-9.4");
        assert_eq!(
            r.osv_ecosystems(),
            vec![Ecosystem::Exact("Rocky Linux:9".into())]
        );
        let rhel = OsRelease::parse("ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n");
        let [e] = rhel.osv_ecosystems().try_into().unwrap();
        assert!(e.matches("Red Hat:enterprise_linux:9::baseos"));
        assert!(e.matches("Red Hat:enterprise_linux:9::appstream"));
        assert!(!e.matches("Red Hat:enterprise_linux:8::baseos"));
        assert!(!e.matches("Red Hat:rhel_eus:9.2::baseos"));
        let edge = OsRelease::parse("ID=alpine\nVERSION_ID=edge\n");
        assert!(edge.osv_ecosystems().is_empty());
    }
}
