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

/// Packages whose files are on disk, sorted by name.
pub fn installed_packages(tree: &Path) -> Result<Vec<Package>> {
    let path = tree.join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&path)
        .map_err(BuildError::io(format!("reading {}", path.display())))?;
    Ok(parse_status(&text))
}

/// Packages whose files are on disk (see [`Entry::on_disk`]), sorted by name.
pub fn parse_status(text: &str) -> Vec<Package> {
    let mut out: Vec<Package> = parse_entries(text)
        .into_iter()
        .filter(Entry::on_disk)
        .map(|e| Package {
            name: e.package,
            version: e.version,
            arch: e.architecture,
        })
        .collect();
    out.sort();
    out
}

/// One stanza of dpkg's status database, with the fields an SBOM needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// The `Status:` field's three words: want, error flag, state.
    pub status: String,
    /// The source package (`Source:`, or the binary's own name when absent).
    pub source: String,
    /// The source version (`Source: name (version)`, or the binary's version when absent, as
    /// `${source:Version}` is in dpkg-query).
    pub source_version: String,
    pub maintainer: Option<String>,
}

impl Entry {
    /// dpkg's package state: the last word of `Status:`.
    pub fn state(&self) -> &str {
        self.status.rsplit(' ').next().unwrap_or("")
    }

    /// Whether the package's files are on disk: every state but `not-installed` and
    /// `config-files` (a removed package whose configuration files remain).
    pub fn on_disk(&self) -> bool {
        !matches!(self.state(), "not-installed" | "config-files" | "")
    }
}

/// Every stanza of a status file, in file order. Lenient like dpkg's own readers: unknown fields
/// and continuation lines are skipped, and a stanza without `Package:` is dropped.
pub fn parse_entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut cur = Entry::default();
    let mut source_field: Option<String> = None;
    let mut flush = |cur: &mut Entry, source_field: &mut Option<String>| {
        let mut e = std::mem::take(cur);
        if e.package.is_empty() {
            *source_field = None;
            return;
        }
        match source_field.take() {
            Some(s) => match s.split_once('(') {
                Some((name, rest)) => {
                    e.source = name.trim().to_string();
                    e.source_version = rest.trim_end().trim_end_matches(')').trim().to_string();
                }
                None => {
                    e.source = s.trim().to_string();
                    e.source_version = e.version.clone();
                }
            },
            None => {
                e.source = e.package.clone();
                e.source_version = e.version.clone();
            }
        }
        out.push(e);
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur, &mut source_field);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Package" => cur.package = value.to_string(),
            "Version" => cur.version = value.to_string(),
            "Architecture" => cur.architecture = value.to_string(),
            "Status" => cur.status = value.to_string(),
            "Source" => source_field = Some(value.to_string()),
            "Maintainer" => cur.maintainer = Some(value.to_string()),
            _ => {}
        }
    }
    flush(&mut cur, &mut source_field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_fields_as_dpkg_query_prints_them() {
        let text = "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nSource: foo (1.2-3)\nVersion: 1.2-3+b1\n\nPackage: bar\nStatus: install ok unpacked\nArchitecture: all\nSource: barsrc\nVersion: 2\n\nPackage: baz\nStatus: install ok installed\nArchitecture: all\nVersion: 1:3\n";
        let e = parse_entries(text);
        let got: Vec<_> = e
            .iter()
            .map(|e| {
                (
                    e.package.as_str(),
                    e.source.as_str(),
                    e.source_version.as_str(),
                    e.on_disk(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("libfoo1", "foo", "1.2-3", true),
                ("bar", "barsrc", "2", true),
                ("baz", "baz", "1:3", true)
            ]
        );
    }

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
