//! What changed in a factory since a git revision, and which images that makes stale.
//!
//! Uses the `git` command line (the same git the user runs, with their config and safe.directory
//! rules) rather than a library: three read-only calls per plan. Untracked files count, so a new
//! image directory is planned before it is committed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kiln_spec::{FACTORY_FILE, Factory, SourceId};
use thiserror::Error;

use crate::graph::ImageGraph;
use crate::plan::Reason;

#[derive(Debug, Error)]
pub enum ChangeError {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("{dir} is not inside a git work tree: `--since` needs the factory under git")]
    NotARepo { dir: PathBuf },
    #[error("unknown git revision `{0}`")]
    UnknownRevision(String),
    #[error("git {args} failed: {stderr}")]
    Git { args: String, stderr: String },
}

/// Files changed between a revision and the working tree, relative to the factory root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub paths: BTreeSet<PathBuf>,
    /// kiln.hcl as it was at the revision (`None` if it did not exist there).
    pub old_factory_file: Option<String>,
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, ChangeError> {
    tracing::debug!(?args, dir = %dir.display(), "git");
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(ChangeError::Spawn)
}

fn git_ok(dir: &Path, args: &[&str]) -> Result<Vec<u8>, ChangeError> {
    let out = git(dir, args)?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(ChangeError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn nul_paths(out: &[u8]) -> impl Iterator<Item = PathBuf> + '_ {
    out.split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
}

/// Lists what changed under `root` between `rev` and the working tree (committed, staged,
/// unstaged and untracked alike).
pub fn changes_since(root: &Path, rev: &str) -> Result<Changes, ChangeError> {
    let inside = git(root, &["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() {
        return Err(ChangeError::NotARepo {
            dir: root.to_path_buf(),
        });
    }
    let spec = format!("{rev}^{{commit}}");
    let verify = git(root, &["rev-parse", "--verify", "--quiet", &spec])?;
    if !verify.status.success() || rev.starts_with('-') {
        return Err(ChangeError::UnknownRevision(rev.to_string()));
    }
    let commit = String::from_utf8_lossy(&verify.stdout).trim().to_string();

    let mut paths = BTreeSet::new();
    let diff = git_ok(
        root,
        &[
            "diff",
            "--name-only",
            "--relative",
            "--no-renames",
            "-z",
            &commit,
            "--",
        ],
    )?;
    paths.extend(nul_paths(&diff));
    let untracked = git_ok(root, &["ls-files", "--others", "--exclude-standard", "-z"])?;
    paths.extend(nul_paths(&untracked));

    let show = git(root, &["show", &format!("{commit}:./{FACTORY_FILE}")])?;
    let old_factory_file = show
        .status
        .success()
        .then(|| String::from_utf8_lossy(&show.stdout).into_owned());
    Ok(Changes {
        paths,
        old_factory_file,
    })
}

/// Sources whose definition differs from the old kiln.hcl (all of them when the old file is
/// missing or does not parse: better a needless rebuild than a missed one).
pub fn changed_sources(factory: &Factory, changes: &Changes) -> BTreeSet<SourceId> {
    if !changes.paths.contains(Path::new(FACTORY_FILE)) {
        return BTreeSet::new();
    }
    let old = changes
        .old_factory_file
        .as_deref()
        .map(|text| kiln_spec::parse_factory_file(Path::new(FACTORY_FILE), text));
    match old {
        Some((old, diags)) if diags.is_empty() => factory
            .sources
            .iter()
            .filter(|(id, src)| old.sources.get(*id) != Some(*src))
            .map(|(id, _)| id.clone())
            .collect(),
        _ => {
            tracing::warn!(
                "kiln.hcl at the base revision is missing or invalid; every source counts as changed"
            );
            factory.sources.keys().cloned().collect()
        }
    }
}

/// The seeds for a plan: images whose directory changed, and images built from a changed source.
pub fn seeds(factory: &Factory, graph: &ImageGraph, changes: &Changes) -> Vec<(usize, Reason)> {
    let sources = changed_sources(factory, changes);
    let mut out = Vec::new();
    for img in factory.images.values() {
        let Some(i) = graph.index_of(img.name.as_str()) else {
            continue;
        };
        if changes.paths.iter().any(|p| p.starts_with(&img.dir)) {
            out.push((i, Reason::Changed));
        }
        if let Some(src) = img.source().filter(|s| sources.contains(*s)) {
            out.push((i, Reason::Source(src.to_string())));
        }
    }
    out
}
