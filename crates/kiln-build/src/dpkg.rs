//! The package set of a built tree, read from `var/lib/dpkg/status` (the same database dpkg and
//! every SBOM tool read), so the build manifest says exactly what is installed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// Installed packages (status `install ok installed`), sorted by name.
pub fn installed_packages(tree: &Path) -> Result<Vec<Package>> {
    let path = tree.join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&path)
        .map_err(BuildError::io(format!("reading {}", path.display())))?;
    Ok(parse_status(&text))
}

pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut arch = None;
        let mut installed = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Architecture: ") {
                arch = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim() == "install ok installed";
            }
        }
        if let (true, Some(n), Some(v), Some(a)) = (installed, name, version, arch) {
            out.push(Package {
                name: n.to_string(),
                version: v.to_string(),
                arch: a.to_string(),
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_count() {
        let text = "Package: zlib1g\nStatus: install ok installed\nPriority: required\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\nPackage: adduser\nStatus: install ok installed\nArchitecture: all\nVersion: 3.134\nDescription: add and remove users\n multi-line\n";
        let p = parse_status(text);
        assert_eq!(
            p,
            [
                Package {
                    name: "adduser".into(),
                    version: "3.134".into(),
                    arch: "all".into()
                },
                Package {
                    name: "zlib1g".into(),
                    version: "1:1.2.13.dfsg-1".into(),
                    arch: "amd64".into()
                },
            ]
        );
    }
}
