//! `kiln reap`: the registry decides and records what retention deletes (one transaction);
//! this side deletes the local files afterwards, and only inside the factory's artifact store.

use std::path::{Path, PathBuf};

use kiln_registry::{Actor, ReapReport, Registry};
use kiln_spec::{Factory, StoreUrl};

use crate::PipelineError;

/// A file retention could not delete (the registry no longer references it either way).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Leftover {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReapOutcome {
    #[serde(flatten)]
    pub report: ReapReport,
    pub files_deleted: usize,
    pub leftovers: Vec<Leftover>,
}

/// The store directory of a factory with a `file://` store.
pub fn store_dir(f: &Factory) -> Option<PathBuf> {
    match &f.settings.store {
        StoreUrl::File { path } if path.is_absolute() => Some(path.clone()),
        StoreUrl::File { path } => Some(f.root.join(path)),
        StoreUrl::S3 { .. } => None,
    }
}

/// Applies the factory's retention policy (or reports it, with `dry_run`).
pub fn reap(
    f: &Factory,
    reg: &mut Registry,
    actor: &Actor,
    dry_run: bool,
) -> Result<ReapOutcome, PipelineError> {
    let report = reg.reap(actor, &f.settings.retention, dry_run)?;
    let mut out = ReapOutcome {
        report,
        files_deleted: 0,
        leftovers: Vec::new(),
    };
    if dry_run {
        return Ok(out);
    }
    let store = store_dir(f).and_then(|s| s.canonicalize().ok());
    let mut dirs = Vec::new();
    for file in out.report.files.clone() {
        let path = Path::new(&file);
        let inside = store
            .as_deref()
            .zip(path.canonicalize().ok())
            .is_some_and(|(s, p)| p.starts_with(s) && p != s);
        if !inside {
            // Gone already, or not ours to delete: the registry row is gone either way.
            if path.exists() {
                out.leftovers.push(Leftover {
                    path: file,
                    error: "outside the factory's artifact store; left in place".into(),
                });
            }
            continue;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {
                out.files_deleted += 1;
                if let Some(d) = path.parent() {
                    dirs.push(d.to_path_buf());
                }
            }
            Err(e) => out.leftovers.push(Leftover {
                path: file,
                error: e.to_string(),
            }),
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        remove_build_dir_if_done(&d);
    }
    Ok(out)
}

/// A build directory (`STORE/IMAGE/KEY/`) whose disk images are all gone holds only that build's
/// manifest and logs: it goes, and so does the image's `latest` link if it pointed there.
fn remove_build_dir_if_done(dir: &Path) {
    let has_disk = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            [".raw", ".img", ".qcow2", ".vhd", ".vmdk"]
                .iter()
                .any(|x| n.ends_with(x))
        });
    if has_disk || std::fs::remove_dir_all(dir).is_err() {
        return;
    }
    if let Some(image_dir) = dir.parent() {
        let latest = image_dir.join("latest");
        if std::fs::symlink_metadata(&latest).is_ok() && !latest.exists() {
            let _ = std::fs::remove_file(&latest);
        }
    }
}
