//! The content-addressed stage store (in the manner of osbuild's object store).
//!
//! A stage's key is the hash of everything that determines its output; its output lives under
//! `stages/KEY/out/` with a `meta.json` beside it. Work happens in `tmp/KEY.PID/` and is renamed
//! into place only when complete, so a crash or Ctrl-C never leaves a half-written entry, and a
//! per-key lock makes two builds of the same stage wait for each other instead of racing.
//! Files in committed entries are made read-only: the artifact store hard-links them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageMeta {
    pub kind: String,
    pub image: String,
    pub key: String,
    /// Unix seconds.
    pub created: u64,
    /// Bytes allocated on disk by the output.
    pub bytes: u64,
    pub build_seconds: f64,
    /// Stage-specific results (package set, seal report, digests, …).
    pub data: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct CacheEntry {
    pub key: String,
    /// The stage's output directory.
    pub out: PathBuf,
    pub meta: StageMeta,
}

#[derive(Debug, Clone)]
pub struct StageCache {
    root: PathBuf,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StageCache {
    /// Opens (creating) a cache and removes work directories left by dead processes.
    pub fn open(root: &Path) -> Result<Self> {
        for d in ["stages", "tmp", "locks"] {
            std::fs::create_dir_all(root.join(d)).map_err(BuildError::io(format!(
                "creating {}",
                root.join(d).display()
            )))?;
        }
        let cache = StageCache {
            root: root.to_path_buf(),
        };
        cache.remove_stale_work();
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn remove_stale_work(&self) {
        let Ok(rd) = std::fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                tracing::info!(dir = %e.path().display(), "removing work left by a dead build");
                let _ = make_writable_and_remove(&e.path());
            }
        }
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join("stages").join(key)
    }

    /// The committed entry for `key`, if any. A hit refreshes its last-use time (for pruning).
    pub fn lookup(&self, key: &str) -> Option<CacheEntry> {
        let dir = self.entry_dir(key);
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).ok()?;
        let meta: StageMeta = serde_json::from_str(&text).ok()?;
        let _ = File::open(&meta_path).and_then(|f| f.set_modified(SystemTime::now()));
        Some(CacheEntry {
            key: key.to_string(),
            out: dir.join("out"),
            meta,
        })
    }

    /// Starts building `key`: waits for anyone else building it, and returns the finished entry
    /// if they produced it meanwhile.
    pub fn begin(&self, key: &str, kind: &str, image: &str) -> Result<Begin> {
        let lock_path = self.root.join("locks").join(format!("{key}.lock"));
        let lock = File::create(&lock_path)
            .map_err(BuildError::io(format!("creating {}", lock_path.display())))?;
        lock.lock()
            .map_err(BuildError::io(format!("locking {}", lock_path.display())))?;
        if let Some(e) = self.lookup(key) {
            return Ok(Begin::Done(e));
        }
        let work = self.tmp_dir().join(format!("{key}.{}", std::process::id()));
        if work.exists() {
            make_writable_and_remove(&work)?;
        }
        std::fs::create_dir_all(work.join("out"))
            .map_err(BuildError::io(format!("creating {}", work.display())))?;
        Ok(Begin::Build(StageWork {
            cache: self.clone(),
            key: key.to_string(),
            kind: kind.to_string(),
            image: image.to_string(),
            dir: work,
            _lock: lock,
            started: std::time::Instant::now(),
            committed: false,
        }))
    }

    pub fn list(&self) -> Result<Vec<(StageMeta, SystemTime)>> {
        let dir = self.root.join("stages");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(BuildError::io(format!("listing {}", dir.display())))?
            .flatten()
        {
            let meta_path = e.path().join("meta.json");
            let Ok(text) = std::fs::read_to_string(&meta_path) else {
                continue;
            };
            let Ok(meta) = serde_json::from_str::<StageMeta>(&text) else {
                continue;
            };
            let used = std::fs::metadata(&meta_path)
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            out.push((meta, used));
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.1));
        Ok(out)
    }

    /// Removes entries last used before `unused_for` ago, then the least recently used until the
    /// total is at most `max_bytes`. Returns what was removed.
    pub fn prune(
        &self,
        unused_for: Option<std::time::Duration>,
        max_bytes: Option<u64>,
        dry_run: bool,
    ) -> Result<Vec<StageMeta>> {
        let mut entries = self.list()?; // newest first
        let mut removed = Vec::new();
        let cutoff = unused_for.and_then(|d| SystemTime::now().checked_sub(d));
        let mut total: u64 = entries.iter().map(|(m, _)| m.bytes).sum();
        while let Some((meta, used)) = entries.pop() {
            let too_old = cutoff.is_some_and(|c| used < c);
            let too_big = max_bytes.is_some_and(|m| total > m);
            if !(too_old || too_big) {
                continue;
            }
            total = total.saturating_sub(meta.bytes);
            if !dry_run {
                // Take the key's lock so an entry being read by a running build is not pulled
                // out from under it at the moment it is looked up.
                let lock_path = self.root.join("locks").join(format!("{}.lock", meta.key));
                let lock = File::create(&lock_path).ok();
                if let Some(l) = &lock {
                    let _ = l.lock();
                }
                make_writable_and_remove(&self.entry_dir(&meta.key))?;
                let _ = std::fs::remove_file(&lock_path);
            }
            removed.push(meta);
        }
        Ok(removed)
    }
}

/// Either someone already built the stage, or we hold its lock and a work directory.
#[derive(Debug)]
pub enum Begin {
    Done(CacheEntry),
    Build(StageWork),
}

/// A stage being built. Dropping it without [`StageWork::commit`] removes the work directory.
#[derive(Debug)]
pub struct StageWork {
    cache: StageCache,
    key: String,
    kind: String,
    image: String,
    dir: PathBuf,
    _lock: File,
    started: std::time::Instant,
    committed: bool,
}

impl StageWork {
    /// Where the stage writes its output.
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// A scratch directory beside the output (same filesystem), removed with the work.
    pub fn scratch(&self) -> Result<PathBuf> {
        let p = self.dir.join("scratch");
        std::fs::create_dir_all(&p).map_err(BuildError::io(format!("creating {}", p.display())))?;
        Ok(p)
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Moves the output into the cache atomically and returns the entry.
    pub fn commit(mut self, data: serde_json::Value) -> Result<CacheEntry> {
        let scratch = self.dir.join("scratch");
        if scratch.exists() {
            make_writable_and_remove(&scratch)?;
        }
        let out = self.out();
        let bytes = allocated_bytes(&out);
        make_files_read_only(&out)?;
        let meta = StageMeta {
            kind: self.kind.clone(),
            image: self.image.clone(),
            key: self.key.clone(),
            created: now(),
            bytes,
            build_seconds: self.started.elapsed().as_secs_f64(),
            data,
        };
        let meta_json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        std::fs::write(self.dir.join("meta.json"), meta_json)
            .map_err(BuildError::io("writing stage meta.json"))?;
        let dest = self.cache.entry_dir(&self.key);
        std::fs::rename(&self.dir, &dest).map_err(|e| BuildError::Cache {
            dir: self.cache.root.display().to_string(),
            message: format!("committing stage {}: {e}", self.key),
        })?;
        self.committed = true;
        Ok(CacheEntry {
            key: self.key.clone(),
            out: dest.join("out"),
            meta,
        })
    }
}

impl Drop for StageWork {
    fn drop(&mut self) {
        if !self.committed
            && self.dir.exists()
            && let Err(e) = make_writable_and_remove(&self.dir)
        {
            tracing::warn!(dir = %self.dir.display(), "could not remove work directory: {e}");
        }
    }
}

/// Regular files become read-only (they may be hard-linked into the artifact store, where an
/// accidental write would corrupt the cache). Trees are left alone: their modes are the image's.
fn make_files_read_only(out: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = std::fs::read_dir(out) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let ft = e
            .file_type()
            .map_err(BuildError::io("reading stage output"))?;
        if ft.is_file() {
            let mode = e
                .metadata()
                .map_err(BuildError::io("reading stage output"))?
                .permissions()
                .mode();
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode & !0o222))
                .map_err(BuildError::io(format!(
                    "making {} read-only",
                    e.path().display()
                )))?;
        }
    }
    Ok(())
}

/// Removes a directory tree; root can remove read-only files, others need write bits back on the
/// top-level files we made read-only.
pub(crate) fn make_writable_and_remove(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(rd) = std::fs::read_dir(dir.join("out")) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644));
            }
        }
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BuildError::Io {
            what: format!("removing {}", dir.display()),
            source: e,
        }),
    }
}

/// Disk space actually used (sparse files count only their allocated blocks).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        total += m.blocks() * 512;
        if m.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_stage_is_found_and_an_abandoned_one_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let cache = StageCache::open(t.path()).unwrap();
        assert!(cache.lookup("k1").is_none());
        let Begin::Build(w) = cache.begin("k1", "test", "img").unwrap() else {
            panic!("fresh cache")
        };
        std::fs::write(w.out().join("f"), "data").unwrap();
        let e = w.commit(serde_json::json!({"n": 1})).unwrap();
        assert_eq!(std::fs::read_to_string(e.out.join("f")).unwrap(), "data");
        assert!(matches!(
            cache.begin("k1", "test", "img").unwrap(),
            Begin::Done(_)
        ));
        assert_eq!(cache.lookup("k1").unwrap().meta.data["n"], 1);

        let Begin::Build(w) = cache.begin("k2", "test", "img").unwrap() else {
            panic!()
        };
        std::fs::write(w.out().join("half"), "x").unwrap();
        drop(w);
        assert!(cache.lookup("k2").is_none());
        assert_eq!(std::fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn prune_by_size_removes_least_recently_used_first() {
        let t = tempfile::tempdir().unwrap();
        let cache = StageCache::open(t.path()).unwrap();
        for k in ["old", "new"] {
            let Begin::Build(w) = cache.begin(k, "test", "img").unwrap() else {
                panic!()
            };
            std::fs::write(w.out().join("f"), vec![1u8; 64 * 1024]).unwrap();
            w.commit(serde_json::Value::Null).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = cache.lookup("new");
        let total: u64 = cache.list().unwrap().iter().map(|(m, _)| m.bytes).sum();
        let removed = cache.prune(None, Some(total - 1), false).unwrap();
        assert_eq!(
            removed.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            ["old"]
        );
        assert!(cache.lookup("old").is_none() && cache.lookup("new").is_some());
    }
}
