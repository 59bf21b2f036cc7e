//! Orchestrates an image build through its stages, each cached by key:
//!
//! ```text
//! root image:   bootstrap ─┐
//! child image:  parent tree ─ packages ─┤
//!                                       └─ tree (provision, boot config, seal) ─ disk ─ exports
//! ```
//! A stage runs only when its key is not in the cache; a child never re-bootstraps, it starts from
//! its parent's finished tree. The artifacts and `manifest.json` land in the store under
//! `IMAGE/FINGERPRINT/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_spec::{Factory, Format, Image, Parent, Provisioner, ShellBody, StoreUrl};
use serde_json::json;

use crate::bootstrap::{self, BootstrapInputs};
use crate::cache::{Begin, CacheEntry, StageCache, StageWork};
use crate::chroot::Session;
use crate::cmd::Task;
use crate::dpkg::{self, Package};
use crate::error::{BuildError, Result};
use crate::hash::{KeyHasher, digest_path, sha256_file, sha256_state};
use crate::hostsrc::{self, AptSource};
use crate::layout::{Layout, derived_uuid};
use crate::manifest::{Artifact, DiskInfo, Manifest, ParentRef, StageRecord, rfc3339};
use crate::progress::{Progress, StageEvent};
use crate::seal::{self, SealReport};
use crate::{bootcfg, disk, export, fingerprint, provision, vhd};
use sha2::Digest;

/// Bumped when what a stage produces changes for the same inputs.
const TREE_RECIPE: &str = "tree/2";
const DISK_RECIPE: &str = "disk/1";
const EXPORT_RECIPE: &str = "export/1";
const PACKAGES_RECIPE: &str = "packages/1";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub cache_dir: PathBuf,
    /// Where the host's apt configuration lives (`/etc/apt`).
    pub etc_apt: PathBuf,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    pub manifest: Manifest,
    /// The store directory holding the artifacts and manifest.json.
    pub dir: PathBuf,
    /// The finished image tree in the stage cache (read-only by convention), for offline checks.
    pub tree: PathBuf,
}

impl BuildOutput {
    pub fn artifact_path(&self, format: Format) -> Option<PathBuf> {
        self.manifest
            .artifacts
            .iter()
            .find(|a| a.format == format)
            .map(|a| self.dir.join(&a.file))
    }
}

#[derive(Debug, Clone)]
struct TreeOutcome {
    entry: CacheEntry,
    records: Vec<StageRecord>,
    packages: Vec<Package>,
    seal: SealReport,
    apt: Vec<AptSource>,
}

pub struct Builder<'a> {
    factory: &'a Factory,
    cache: StageCache,
    host_sources: Vec<AptSource>,
    progress: &'a dyn Progress,
    releases: HashMap<String, Vec<(String, String)>>,
    fingerprints: BTreeMap<String, String>,
    trees: HashMap<String, TreeOutcome>,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

fn image_err(image: &str, message: impl Into<String>) -> BuildError {
    BuildError::Image {
        image: image.to_string(),
        message: message.into(),
    }
}

/// The apt sources an image is built from: its root source's suites, from the source's mirrors
/// or the host's (`host`, as [`hostsrc::read_host_sources`] reads them).
pub fn image_sources(f: &Factory, host: &[AptSource], image: &str) -> Result<Vec<AptSource>> {
    let mut cur = f
        .image(image)
        .ok_or_else(|| image_err(image, "no such image in the factory"))?;
    loop {
        match &cur.from {
            Parent::Source(id) => {
                let src = f.sources.get(id).ok_or_else(|| {
                    image_err(cur.name.as_str(), format!("source {id} is not declared"))
                })?;
                if src.snapshot.is_some() {
                    return Err(image_err(
                        image,
                        format!(
                            "source {id} sets `snapshot`: pinned snapshots are not supported by the builder yet; remove it or set `mirror` to a pinned archive"
                        ),
                    ));
                }
                return hostsrc::suite_sources(
                    host,
                    &src.suite,
                    &src.components,
                    hostsrc::Mirrors {
                        main: src.mirror.as_deref(),
                        security: src.security_mirror.as_deref(),
                    },
                );
            }
            Parent::Image(p) => {
                cur = f.image(p.as_str()).ok_or_else(|| {
                    image_err(
                        cur.name.as_str(),
                        format!("parent image {p} is not in the factory"),
                    )
                })?
            }
        }
    }
}

impl<'a> Builder<'a> {
    pub fn new(
        factory: &'a Factory,
        opts: &BuildOptions,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        Ok(Builder {
            factory,
            cache: StageCache::open(&opts.cache_dir)?,
            host_sources: hostsrc::read_host_sources(&opts.etc_apt)?,
            progress,
            releases: HashMap::new(),
            fingerprints: BTreeMap::new(),
            trees: HashMap::new(),
        })
    }

    pub fn cache(&self) -> &StageCache {
        &self.cache
    }

    fn image(&self, name: &str) -> Result<&'a Image> {
        self.factory
            .image(name)
            .ok_or_else(|| image_err(name, "no such image in the factory"))
    }

    pub fn fingerprint(&mut self, name: &str) -> Result<String> {
        let img = self.image(name)?;
        fingerprint::fingerprint(self.factory, img, &mut self.fingerprints)
    }

    /// Runs one stage unless its key is cached.
    fn stage(
        &self,
        image: &str,
        stage: &str,
        key: &str,
        detail: &str,
        work: impl FnOnce(&StageWork) -> Result<serde_json::Value>,
    ) -> Result<(CacheEntry, StageRecord)> {
        let record = |cached: bool, seconds: f64| StageRecord {
            stage: stage.to_string(),
            key: key.to_string(),
            cached,
            seconds,
        };
        if let Some(e) = self.cache.lookup(key) {
            self.progress.event(image, stage, StageEvent::Cached);
            return Ok((e, record(true, 0.0)));
        }
        let _span = tracing::info_span!("stage", image, stage, key = &key[..12]).entered();
        let start = Instant::now();
        match self.cache.begin(key, stage, image)? {
            Begin::Done(e) => {
                self.progress.event(image, stage, StageEvent::Cached);
                Ok((e, record(true, 0.0)))
            }
            Begin::Build(w) => {
                self.progress.event(image, stage, StageEvent::Start(detail));
                let result = work(&w).and_then(|data| w.commit(data));
                match result {
                    Ok(e) => {
                        let took = start.elapsed();
                        self.progress.event(image, stage, StageEvent::Done(took));
                        Ok((e, record(false, took.as_secs_f64())))
                    }
                    Err(err) => {
                        self.progress.event(image, stage, StageEvent::Failed);
                        Err(err)
                    }
                }
            }
        }
    }

    fn release_digests(&mut self, apt: &[AptSource]) -> Result<Vec<(String, String)>> {
        let memo_key: String = apt
            .iter()
            .map(AptSource::line)
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(d) = self.releases.get(&memo_key) {
            return Ok(d.clone());
        }
        let d = bootstrap::release_digests(apt)?;
        self.releases.insert(memo_key, d.clone());
        Ok(d)
    }

    fn apt_sources_for(&self, img: &Image) -> Result<Vec<AptSource>> {
        image_sources(self.factory, &self.host_sources, img.name.as_str())
    }

    /// The finished (provisioned, configured, sealed) tree of an image, building what is needed.
    fn tree(&mut self, name: &str) -> Result<TreeOutcome> {
        if let Some(t) = self.trees.get(name) {
            return Ok(t.clone());
        }
        let img = self.image(name)?;
        let apt = self.apt_sources_for(img)?;
        let digests = self.release_digests(&apt)?;
        let grub = bootstrap::grub_packages(img.disk.boot);
        let mut records = Vec::new();

        let base: CacheEntry = match &img.from {
            Parent::Source(_) => {
                let mut packages: Vec<String> = bootstrap::BOOT_PACKAGES
                    .iter()
                    .chain(grub)
                    .map(|s| s.to_string())
                    .collect();
                packages.extend(img.packages.iter().cloned());
                packages.sort();
                packages.dedup();
                let inputs = BootstrapInputs {
                    suite: apt[0].suite.clone(),
                    architecture: "amd64".into(),
                    sources: apt.clone(),
                    packages,
                    release_digests: digests.clone(),
                };
                let key = inputs.key();
                let detail = format!(
                    "mmdebstrap {} ({} packages requested)",
                    inputs.suite,
                    inputs.packages.len()
                );
                let (e, r) = self.stage(name, "bootstrap", &key, &detail, |w| {
                    bootstrap::run(&inputs, &w.out())?;
                    Ok(json!({ "packages": inputs.packages }))
                })?;
                records.push(r);
                e
            }
            Parent::Image(parent) => {
                let p = self.tree(parent.as_str())?;
                let have: std::collections::HashSet<&str> =
                    p.packages.iter().map(|x| x.name.as_str()).collect();
                let mut need: Vec<String> = img
                    .packages
                    .iter()
                    .cloned()
                    .chain(grub.iter().map(|s| s.to_string()))
                    .filter(|pkg| !have.contains(pkg.split('=').next().unwrap_or(pkg)))
                    .collect();
                need.sort();
                need.dedup();
                if need.is_empty() {
                    p.entry.clone()
                } else {
                    let mut h = KeyHasher::new(PACKAGES_RECIPE);
                    h.field("base", &p.entry.key);
                    for s in &apt {
                        h.field("source", s.line());
                    }
                    for (suite, d) in &digests {
                        h.field("release", format!("{suite} {d}"));
                    }
                    for pkg in &need {
                        h.field("package", pkg);
                    }
                    let key = h.finish();
                    let detail = format!("apt-get install {} on {parent}'s tree", need.join(" "));
                    let base_tree = p.entry.out.join("tree");
                    let (e, r) = self.stage(name, "packages", &key, &detail, |w| {
                        let tree = copy_tree(&base_tree, &w.out())?;
                        let session = Session::open(&tree, &w.scratch()?)?;
                        provision::install_packages(&session, &need)?;
                        Ok(json!({ "installed": need }))
                    })?;
                    records.push(r);
                    e
                }
            }
        };

        // The tree stage: provisioners, boot configuration, seal.
        let mut h = KeyHasher::new(TREE_RECIPE);
        h.field("base", &base.key)
            .json("provisioners", &img.provisioners)
            .json("boot", &img.disk.boot);
        let dir = self.factory.root.join(&img.dir);
        for p in &img.provisioners {
            let path = match p {
                Provisioner::Shell {
                    body: ShellBody::Script(s),
                    ..
                } => Some(s.as_path()),
                Provisioner::File { source, .. } => Some(source.as_path()),
                Provisioner::Shell { .. } => None,
            };
            if let Some(rel) = path {
                h.field(
                    "file",
                    format!("{} {}", rel.display(), digest_path(&dir.join(rel))?),
                );
            }
        }
        let key = h.finish();
        let layout = Layout::new(img.disk.boot, img.disk.size.bytes(), &key);
        let base_tree = base.out.join("tree");
        let detail = match img.provisioners.len() {
            0 => "boot configuration, seal".to_string(),
            n => format!(
                "{n} provisioner{}, boot configuration, seal",
                if n == 1 { "" } else { "s" }
            ),
        };
        let (entry, r) = self.stage(name, "tree", &key, &detail, |w| {
            let tree = copy_tree(&base_tree, &w.out())?;
            {
                let session = Session::open(&tree, &w.scratch()?)?;
                for (i, p) in img.provisioners.iter().enumerate() {
                    self.progress.event(
                        name,
                        "tree",
                        StageEvent::Note(&format!(
                            "provisioner {} ({})",
                            i + 1,
                            provision::describe(p)
                        )),
                    );
                    provision::run(&session, &dir, i + 1, p)?;
                }
                bootcfg::install(&session, &tree, img.disk.boot, &layout).map_err(|e| match e {
                    BuildError::Image { message, .. } => image_err(name, message),
                    other => other,
                })?;
            }
            let report = seal::seal(&tree)?;
            let packages = dpkg::installed_packages(&tree)?;
            Ok(json!({ "seal": report, "packages": packages }))
        })?;
        records.push(r);
        let seal: SealReport =
            serde_json::from_value(entry.meta.data["seal"].clone()).unwrap_or_default();
        let packages: Vec<Package> =
            serde_json::from_value(entry.meta.data["packages"].clone()).unwrap_or_default();
        if !records.last().is_some_and(|r| r.cached) {
            self.progress.event(
                name,
                "tree",
                StageEvent::Note(&format!(
                    "sealed: {}",
                    if seal.items.is_empty() {
                        "nothing to remove".to_string()
                    } else {
                        seal.summary()
                    }
                )),
            );
        }
        let out = TreeOutcome {
            entry,
            records,
            packages,
            seal,
            apt,
        };
        self.trees.insert(name.to_string(), out.clone());
        Ok(out)
    }

    /// Builds an image (and, through the cache, whatever of its ancestors' trees it needs).
    pub fn build(&mut self, name: &str) -> Result<BuildOutput> {
        let started = Instant::now();
        let img = self.image(name)?;
        let fp = self.fingerprint(name)?;
        let t = self.tree(name)?;
        let mut records = t.records.clone();

        let layout = Layout::new(img.disk.boot, img.disk.size.bytes(), &t.entry.key);
        let mut h = KeyHasher::new(DISK_RECIPE);
        h.field("tree", &t.entry.key).json("layout", &layout);
        let disk_key = h.finish();
        let tree_dir = t.entry.out.join("tree");
        let detail = format!("GPT {} disk, {}, ext4 root", img.disk.boot, img.disk.size);
        let vhd_footer = vhd::footer(
            img.disk.size.bytes(),
            uuid_bytes(&derived_uuid(&disk_key, "vhd")),
        );
        let (disk_entry, r) = self.stage(name, "disk", &disk_key, &detail, |w| {
            let raw = w.out().join(export::file_name(Format::Raw));
            disk::assemble(&tree_dir, &raw, &layout)?;
            let t = Instant::now();
            let state = sha256_state(&raw)?;
            tracing::debug!(secs = t.elapsed().as_secs_f64(), "sha256 of the raw disk");
            let sha256 = crate::hash::hex(&state.clone().finalize());
            Ok(json!({
                "sha256": sha256,
                "size": img.disk.size.bytes(),
                "vhd_sha256": vhd::sha256_from_raw_state(&state, &vhd_footer),
            }))
        })?;
        records.push(r);
        let raw = disk_entry.out.join(export::file_name(Format::Raw));

        // Exports are independent of each other: run them side by side.
        let exports: Vec<Format> = img
            .formats
            .iter()
            .copied()
            .filter(|f| *f != Format::Raw)
            .collect();
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(exports.len().max(1));
        let queue = std::sync::Mutex::new(exports.clone());
        let results =
            std::sync::Mutex::new(Vec::<(Format, Result<(CacheEntry, StageRecord)>)>::new());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.pop());
                        let Some(format) = next else { break };
                        if crate::cmd::interrupted() {
                            break;
                        }
                        let key = export_key(&disk_key, format);
                        let r = self.stage(name, &format!("export {format}"), &key, &format!("→ {}", export::file_name(format)), |w| {
                            let file = w.out().join(export::file_name(format));
                            export::convert(&raw, format, &w.out(), &vhd_footer)?;
                            if format == Format::Vhd {
                                let size = std::fs::metadata(&file).map_err(BuildError::io("reading disk.vhd"))?.len();
                                return Ok(json!({ "sha256": disk_entry.meta.data["vhd_sha256"], "size": size }));
                            }
                            file_data(&file)
                        });
                        if let Ok(mut v) = results.lock() {
                            v.push((format, r));
                        }
                    }
                });
            }
        });
        let mut done: HashMap<Format, CacheEntry> = HashMap::new();
        let mut results = results.into_inner().unwrap_or_default();
        results.sort_by_key(|(f, _)| exports.iter().position(|x| x == f));
        for (format, r) in results {
            let (e, rec) = r?;
            records.push(rec);
            done.insert(format, e);
        }
        if crate::cmd::interrupted() {
            return Err(BuildError::Interrupted);
        }
        let mut artifacts = Vec::new();
        for &format in &img.formats {
            let entry = if format == Format::Raw {
                &disk_entry
            } else {
                &done[&format]
            };
            artifacts.push(Artifact {
                format,
                file: export::file_name(format).to_string(),
                size: entry.meta.data["size"].as_u64().unwrap_or(0),
                sha256: entry.meta.data["sha256"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
        }

        let parents = match &img.from {
            Parent::Image(p) => vec![ParentRef {
                image: p.to_string(),
                fingerprint: self.fingerprint(p.as_str())?,
            }],
            Parent::Source(_) => vec![],
        };
        let manifest = Manifest {
            kiln_version: env!("CARGO_PKG_VERSION").to_string(),
            image: name.to_string(),
            fingerprint: fp.clone(),
            parents,
            source: img.source().map(|s| s.to_string()),
            apt_sources: t.apt.iter().map(AptSource::line).collect(),
            disk: DiskInfo {
                size: img.disk.size.bytes(),
                boot: img.disk.boot.to_string(),
                layout,
            },
            packages: t.packages.clone(),
            seal: t.seal.clone(),
            artifacts,
            stages: records,
            built_at: rfc3339(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
            builder_host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string(),
            total_seconds: started.elapsed().as_secs_f64(),
        };
        let dir = self.publish_to_store(name, &fp, &manifest, &disk_entry)?;
        Ok(BuildOutput {
            manifest,
            dir,
            tree: tree_dir,
        })
    }

    /// Links the artifacts into `STORE/IMAGE/FINGERPRINT[..16]/` with manifest.json, and points
    /// `STORE/IMAGE/latest` at it.
    fn publish_to_store(
        &self,
        name: &str,
        fp: &str,
        manifest: &Manifest,
        disk: &CacheEntry,
    ) -> Result<PathBuf> {
        // With a shared S3 store the build stages here first; the pipeline uploads from it.
        let store = match &self.factory.settings.store {
            StoreUrl::File { path } if path.is_absolute() => path.clone(),
            StoreUrl::File { path } => self.factory.root.join(path),
            StoreUrl::S3 { .. } => self.factory.root.join(S3_STAGING),
        };
        let image_dir = store.join(name);
        let dir = image_dir.join(&fp[..16]);
        let tmp = image_dir.join(format!(".{}.{}", &fp[..16], std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(BuildError::io(format!("creating {}", tmp.display())))?;
        let result = (|| -> Result<()> {
            for a in &manifest.artifacts {
                let src = if a.format == Format::Raw {
                    disk.out.join(&a.file)
                } else {
                    let key = KeyHasher::new(EXPORT_RECIPE)
                        .field("disk", &disk.key)
                        .field("format", a.format.as_str())
                        .finish();
                    self.cache
                        .root()
                        .join("stages")
                        .join(key)
                        .join("out")
                        .join(&a.file)
                };
                link_or_copy(&src, &tmp.join(&a.file))?;
            }
            let text = serde_json::to_vec_pretty(manifest).unwrap_or_default();
            std::fs::write(tmp.join("manifest.json"), text)
                .map_err(BuildError::io("writing manifest.json"))?;
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(BuildError::io(format!("replacing {}", dir.display())))?;
            }
            std::fs::rename(&tmp, &dir).map_err(BuildError::io(format!(
                "moving the build into {}",
                dir.display()
            )))?;
            let latest_tmp = image_dir.join(format!(".latest.{}", std::process::id()));
            let _ = std::fs::remove_file(&latest_tmp);
            std::os::unix::fs::symlink(&fp[..16], &latest_tmp)
                .map_err(BuildError::io("linking latest"))?;
            std::fs::rename(&latest_tmp, image_dir.join("latest"))
                .map_err(BuildError::io("linking latest"))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result.map(|()| dir)
    }
}

/// Where builds for an `s3://` store stage their artifacts locally, relative to the factory.
pub const S3_STAGING: &str = ".kiln/staging";

fn export_key(disk_key: &str, format: Format) -> String {
    KeyHasher::new(EXPORT_RECIPE)
        .field("disk", disk_key)
        .field("format", format.as_str())
        .finish()
}

fn uuid_bytes(uuid: &str) -> [u8; 16] {
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

fn file_data(path: &Path) -> Result<serde_json::Value> {
    let size = std::fs::metadata(path)
        .map_err(BuildError::io(format!("reading {}", path.display())))?
        .len();
    let t = Instant::now();
    let sha256 = sha256_file(path)?;
    tracing::debug!(file = %path.display(), secs = t.elapsed().as_secs_f64(), "sha256");
    Ok(json!({ "sha256": sha256, "size": size }))
}

/// Copies a tree into `out/tree` preserving everything (owners, modes, xattrs, hard links).
fn copy_tree(src: &Path, out: &Path) -> Result<PathBuf> {
    let dest = out.join("tree");
    Task::new("copying the base tree", "cp")
        .args(["-a", "--reflink=auto"])
        .arg(src)
        .arg(&dest)
        .run()?;
    Ok(dest)
}

fn link_or_copy(src: &Path, dest: &Path) -> Result<()> {
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    Task::new("copying an artifact into the store", "cp")
        .args(["--sparse=always", "--reflink=auto"])
        .arg(src)
        .arg(dest)
        .run()
        .map(|_| ())
}
