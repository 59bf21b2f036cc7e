//! Upstream updates: which versions on a channel carry packages the archive has since replaced.
//!
//! For every version a channel points at, the recorded package set (the build manifest, read from
//! the image's dpkg database) is compared with the current `Packages` indices of the image's
//! sources — the suite, `-updates` and `-security` — with dpkg's version ordering. A newer
//! version that the security suite carries is a security update.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use kiln_build::archive;
use kiln_build::dpkg::Package;
use kiln_build::hostsrc::{self, AptSource};
use kiln_registry::{Registry, Status};
use kiln_scan::DebVersion;
use kiln_spec::Factory;
use serde::Serialize;

use crate::PipelineError;

/// A package of a recorded version that the archive now has in a newer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageUpdate {
    pub package: String,
    pub arch: String,
    pub installed: String,
    pub available: String,
    /// The suite that carries `available` (the security suite when it is one of them).
    pub suite: String,
    pub security: bool,
}

/// One version on one or more channels, and its updates (empty: up to date).
#[derive(Debug, Clone, Serialize)]
pub struct VersionUpdates {
    pub bucket: String,
    pub version: String,
    pub channels: Vec<String>,
    pub updates: Vec<PackageUpdate>,
}

impl VersionUpdates {
    pub fn security_count(&self) -> usize {
        self.updates.iter().filter(|u| u.security).count()
    }
}

/// The newest version of each `(name, arch)` in one source's index.
type Index = HashMap<(String, String), DebVersion>;

/// Compares every version on a channel with the archive. `etc_apt` is the host's apt
/// configuration (normally `/etc/apt`), which supplies the sources a definition does not name.
pub fn check(
    f: &Factory,
    reg: &mut Registry,
    etc_apt: &Path,
) -> Result<Vec<VersionUpdates>, PipelineError> {
    let host = hostsrc::read_host_sources(etc_apt)?;
    let mut indices: HashMap<(String, String), Rc<Index>> = HashMap::new();
    let mut out = Vec::new();
    for bucket in reg.buckets()? {
        // Versions on a channel, each once, with the channels that point at it.
        let mut on: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ch in reg.channels(&bucket)? {
            if let Some(v) = ch.version {
                on.entry(v).or_default().push(ch.name);
            }
        }
        for (version, channels) in on {
            if reg.version(&version)?.status != Status::Active {
                continue;
            }
            let Some(manifest) = reg.report(&version, "manifest")? else {
                continue;
            };
            let packages: Vec<Package> =
                serde_json::from_value(manifest["packages"].clone()).unwrap_or_default();
            let sources = if f.image(&bucket).is_some() {
                kiln_build::builder::image_sources(f, &host, &bucket)?
            } else {
                // An image no longer in the factory: the sources it was built from.
                manifest["apt_sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str())
                    .flat_map(hostsrc::parse_one_line)
                    .collect()
            };
            let mut archs: Vec<&str> = packages
                .iter()
                .map(|p| p.arch.as_str())
                .filter(|a| *a != "all")
                .collect();
            archs.sort();
            archs.dedup();
            if archs.is_empty() {
                archs.push("amd64");
            }
            let mut loaded = Vec::new();
            for s in &sources {
                for arch in &archs {
                    let key = (s.line(), arch.to_string());
                    let idx = match indices.get(&key) {
                        Some(i) => i.clone(),
                        None => {
                            let i = Rc::new(load_index(s, arch)?);
                            indices.insert(key, i.clone());
                            i
                        }
                    };
                    loaded.push((s.suite.clone(), idx));
                }
            }
            out.push(VersionUpdates {
                bucket: bucket.clone(),
                version,
                channels,
                updates: compare(&packages, &loaded),
            });
        }
    }
    Ok(out)
}

fn load_index(s: &AptSource, arch: &str) -> Result<Index, PipelineError> {
    let mut idx = Index::new();
    for p in archive::packages(s, arch)? {
        let Ok(v) = DebVersion::parse(&p.version) else {
            continue;
        };
        match idx.entry((p.name, p.arch)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if v > *e.get() {
                    e.insert(v);
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
    Ok(idx)
}

/// The newer versions the indices (`(suite, index)`) offer for `installed`.
pub fn compare(installed: &[Package], indices: &[(String, Rc<Index>)]) -> Vec<PackageUpdate> {
    let mut out = Vec::new();
    for p in installed {
        let Ok(have) = DebVersion::parse(&p.version) else {
            continue;
        };
        let key = (p.name.clone(), p.arch.clone());
        let mut best: Option<(&DebVersion, &str)> = None;
        for (suite, idx) in indices {
            if let Some(v) = idx.get(&key)
                && *v > have
            {
                // Newest wins; on a tie the security suite names it.
                let better = match best {
                    None => true,
                    Some((b, bs)) => {
                        v > b
                            || (v == b
                                && suite.ends_with("-security")
                                && !bs.ends_with("-security"))
                    }
                };
                if better {
                    best = Some((v, suite));
                }
            }
        }
        if let Some((v, suite)) = best {
            out.push(PackageUpdate {
                package: p.name.clone(),
                arch: p.arch.clone(),
                installed: p.version.clone(),
                available: v.to_string(),
                suite: suite.to_string(),
                security: suite.ends_with("-security"),
            });
        }
    }
    out
}
