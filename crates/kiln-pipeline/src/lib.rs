//! Kiln's pipeline: from a selection of images to recorded, tested, promotable versions.
//!
//! For each image in plan order: reuse an active version built from the same fingerprint, or
//! build → test → scan → record a registry version with artifacts,
//! manifest, test report and parents → promote to the first channel when its policy allows.
//! A failed image fails its version and skips its descendants; independent images go on
//! (unless fail-fast).

pub mod policy;
pub mod retention;
pub mod scan_stage;
pub mod store_stage;
mod test_stage;
pub mod upstream;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use kiln_build::{BuildOptions, Builder, Progress, StageEvent};
use kiln_plan::{ImageGraph, PlanOptions, Reason};
use kiln_registry::{Actor, Artifact, Registry};
use kiln_spec::{Factory, Parent};
use serde::Serialize;
use serde_json::json;

pub use test_stage::test_stage;

#[derive(Debug, Clone)]
pub enum Selection {
    Images(Vec<String>),
    All,
    Since(String),
    /// Images whose newest active version was built on a parent version that the channel it
    /// tracks no longer points at (the cascade after a parent's promotion).
    Outdated,
    /// Images whose versions on a channel have packages the archive has newer versions of.
    UpstreamUpdates,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub selection: Selection,
    pub cascade: bool,
    pub max_parallel: Option<NonZeroUsize>,
    pub test: bool,
    pub fail_fast: bool,
    pub cache_dir: PathBuf,
    pub actor: Actor,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// Built, tested and recorded now.
    Built {
        version: String,
        promoted_to: Option<String>,
        /// Why it was not promoted to the first channel, if it was not.
        not_promoted: Vec<String>,
    },
    /// An active version with the same fingerprint already exists.
    Reused {
        version: String,
    },
    Failed {
        version: Option<String>,
        error: String,
    },
    Skipped {
        because: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageResult {
    pub image: String,
    pub reason: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Plan(#[from] kiln_plan::GraphError),
    #[error(transparent)]
    Changes(#[from] kiln_plan::ChangeError),
    #[error(transparent)]
    Build(#[from] kiln_build::BuildError),
    #[error(transparent)]
    Registry(#[from] kiln_registry::RegistryError),
    #[error("{0}")]
    Selection(String),
    #[error("artifact store: {0}")]
    Store(String),
}

fn git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git_commit(dir: &std::path::Path) -> Option<String> {
    git(dir, &["rev-parse", "HEAD"])
}

/// The checked-out branch (`None` when detached or not a git repository): publishing may be
/// limited to the default branch.
fn git_branch(dir: &std::path::Path) -> Option<String> {
    git(dir, &["symbolic-ref", "--short", "-q", "HEAD"])
}

/// Children left behind by their parent's channel: only each bucket's newest active version
/// counts (older ones are history, whatever they were built on).
pub fn outdated_children(
    reg: &mut Registry,
) -> Result<Vec<kiln_registry::OutOfDate>, PipelineError> {
    let mut out = Vec::new();
    for o in reg.out_of_date()? {
        let newest = reg
            .versions(&o.child_bucket)?
            .into_iter()
            .find(|v| v.status == kiln_registry::Status::Active);
        if newest.is_some_and(|v| v.id == o.child) {
            out.push(o);
        }
    }
    Ok(out)
}

/// The images a selection starts from, with why; the plan adds their descendants.
pub fn seeds(
    f: &Factory,
    graph: &ImageGraph,
    reg: &mut Registry,
    selection: &Selection,
) -> Result<Vec<(usize, Reason)>, PipelineError> {
    Ok(match selection {
        Selection::All => (0..graph.len()).map(|i| (i, Reason::Requested)).collect(),
        Selection::Images(names) => {
            let mut s = Vec::new();
            for n in names {
                let i = graph
                    .index_of(n)
                    .ok_or_else(|| PipelineError::Selection(format!("unknown image `{n}`")))?;
                s.push((i, Reason::Requested));
            }
            s
        }
        Selection::Since(rev) => {
            let ch = kiln_plan::changes_since(&f.root, rev)?;
            kiln_plan::changes::seeds(f, graph, &ch)
        }
        Selection::Outdated => outdated_children(reg)?
            .into_iter()
            .filter_map(|o| {
                let i = graph.index_of(&o.child_bucket)?;
                Some((
                    i,
                    Reason::Parent(format!("{} moved on {}", o.parent_bucket, o.channel)),
                ))
            })
            .collect(),
        Selection::UpstreamUpdates => {
            tracing::info!("reading the archive's package indices");
            let mut s: Vec<(usize, Reason)> = Vec::new();
            for v in upstream::check(f, reg, std::path::Path::new("/etc/apt"))? {
                if v.updates.is_empty() {
                    continue;
                }
                let Some(i) = graph.index_of(&v.bucket) else {
                    continue;
                };
                if s.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                s.push((
                    i,
                    Reason::Upstream(format!(
                        "{} package update(s), {} security, on {}",
                        v.updates.len(),
                        v.security_count(),
                        v.version
                    )),
                ));
            }
            s
        }
    })
}

/// Runs the pipeline; the per-image results say what happened to each image.
pub fn run(
    f: &Factory,
    reg: &mut Registry,
    opts: &RunOptions,
    progress: &dyn Progress,
) -> Result<Vec<ImageResult>, PipelineError> {
    let graph = ImageGraph::from_factory(f)?;
    let seeds = seeds(f, &graph, reg, &opts.selection)?;
    let plan = kiln_plan::plan(
        &graph,
        &seeds,
        PlanOptions {
            cascade: opts.cascade,
            max_parallel: opts.max_parallel,
        },
    );
    let mut builder = Builder::new(
        f,
        &BuildOptions {
            cache_dir: opts.cache_dir.clone(),
            etc_apt: "/etc/apt".into(),
        },
        progress,
    )?;
    // A shared store that cannot be reached fails the run before anything is built.
    let shared_store = store_stage::open(f).map_err(PipelineError::Store)?;
    let commit = git_commit(&f.root);
    let branch = git_branch(&f.root);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    // Versions produced (or reused) in this run, and images that did not make it.
    let mut produced: HashMap<String, String> = HashMap::new();
    let mut broken: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    let mut stop = false;

    for (_, planned) in plan.iter() {
        let name = planned.image.clone();
        let reason = planned.reason.to_string();
        let img = f
            .image(&name)
            .ok_or_else(|| PipelineError::Selection(format!("unknown image `{name}`")))?;
        let skip = |because: String| ImageResult {
            image: name.clone(),
            reason: reason.clone(),
            outcome: Outcome::Skipped { because },
        };
        if stop {
            results.push(skip(
                "an earlier image failed and --fail-fast is set".into(),
            ));
            continue;
        }
        // The parent version: produced in this run, else what the tracked channel points at (and
        // only if it was built from the parent's current definition: the child builds on the
        // parent's current tree).
        let mut parents = Vec::new();
        if let Parent::Image(p) = &img.from {
            if let Some(why) = broken.get(p.as_str()) {
                let because = format!("parent {p} {why}");
                broken.insert(name.clone(), "was skipped".into());
                results.push(skip(because));
                continue;
            }
            let parent_version = match produced.get(p.as_str()) {
                Some(v) => v.clone(),
                None => {
                    let channel = img
                        .channel
                        .as_ref()
                        .map_or("production", |c| c.as_str())
                        .to_string();
                    let fp = builder.fingerprint(p.as_str())?;
                    match reg.channel(p.as_str(), &channel)? {
                        Some(v) if reg.version(&v)?.fingerprint == fp => v,
                        Some(v) => {
                            broken.insert(name.clone(), "was skipped".into());
                            results.push(skip(format!("{p}/{channel} points at {v}, built from an older definition of {p}; build and promote {p} first")));
                            continue;
                        }
                        None => {
                            broken.insert(name.clone(), "was skipped".into());
                            results.push(skip(format!("{p}/{channel} is empty; build {p} and promote it to {channel} first")));
                            continue;
                        }
                    }
                }
            };
            parents.push(parent_version);
        }

        let fingerprint = builder.fingerprint(&name)?;
        reg.ensure_bucket(&opts.actor, &name)?;
        if let Some(v) = reg.active_with_fingerprint(&name, &fingerprint)?
            && reg.version(&v)?.parents == parents
        {
            progress.event(
                &name,
                "record",
                StageEvent::Note(&format!("up to date: version {v} has this fingerprint")),
            );
            produced.insert(name.clone(), v.clone());
            results.push(ImageResult {
                image: name,
                reason,
                outcome: Outcome::Reused { version: v },
            });
            continue;
        }
        let build_meta = json!({
            "factory": f.settings.name.as_str(),
            "git_commit": commit,
            "git_branch": branch,
            "boot": img.disk.boot.to_string(),
            "builder_host": host,
            "parent_channel": img.channel.as_ref().map(|c| c.as_str()),
        });
        let version = reg.start_version(&opts.actor, &name, &fingerprint, &parents, build_meta)?;
        let outcome = (|| -> Result<Outcome, String> {
            let out = builder.build(&name).map_err(|e| e.to_string())?;
            let report = if opts.test {
                Some(test_stage(f, &out, progress).map_err(|e| e.to_string())?)
            } else {
                progress.event(&name, "test", StageEvent::Note("skipped (--no-test)"));
                None
            };
            let scan = scan_stage::scan_stage(&f.root, &out, &version, progress)
                .map_err(|e| format!("scan: {e}"))?;
            for a in &out.manifest.artifacts {
                let art = Artifact {
                    platform: "file".into(),
                    region: "local".into(),
                    external_id: out.dir.join(&a.file).display().to_string(),
                    format: a.format.as_str().into(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                };
                reg.add_artifact(&opts.actor, &version, &art)
                    .map_err(|e| e.to_string())?;
            }
            if let Some(store) = &shared_store {
                let manifest = serde_json::to_vec_pretty(&out.manifest).unwrap_or_default();
                let local = store_stage::LocalArtifact::of(&out);
                let fp = &out.manifest.fingerprint;
                for art in store_stage::upload(store, &name, fp, &local, manifest, progress)? {
                    reg.add_artifact(&opts.actor, &version, &art)
                        .map_err(|e| e.to_string())?;
                }
            }
            reg.attach_report(
                &opts.actor,
                &version,
                "manifest",
                &serde_json::to_value(&out.manifest).unwrap_or_default(),
            )
            .map_err(|e| e.to_string())?;
            reg.attach_report(&opts.actor, &version, "scan", &scan.registry_report())
                .map_err(|e| e.to_string())?;
            reg.attach_report(&opts.actor, &version, "sbom", &scan.cyclonedx)
                .map_err(|e| e.to_string())?;
            if let Some(r) = &report {
                reg.attach_report(
                    &opts.actor,
                    &version,
                    "test",
                    &serde_json::to_value(r).unwrap_or_default(),
                )
                .map_err(|e| e.to_string())?;
                if !r.passed() {
                    return Err(format!(
                        "{} check(s) failed: {}",
                        r.failed_ids().len(),
                        r.failed_ids().join(", ")
                    ));
                }
            }
            reg.complete(&opts.actor, &version)
                .map_err(|e| e.to_string())?;
            // Promote to the first channel when its policy allows.
            let first = f.settings.channels[0].clone();
            let evidence = policy::Evidence {
                test_report: report
                    .as_ref()
                    .map(|r| serde_json::to_value(r).unwrap_or_default()),
                scan_report: Some(scan.registry_report()),
                approvals: Vec::new(),
            };
            let unmet = f
                .policies
                .get(&first)
                .map(|p| policy::unmet(p, &evidence))
                .unwrap_or_default();
            if unmet.is_empty() {
                reg.promote(
                    &opts.actor,
                    &name,
                    &version,
                    first.as_str(),
                    "automatic: policy allows",
                )
                .map_err(|e| e.to_string())?;
                Ok(Outcome::Built {
                    version: version.clone(),
                    promoted_to: Some(first.to_string()),
                    not_promoted: vec![],
                })
            } else {
                Ok(Outcome::Built {
                    version: version.clone(),
                    promoted_to: None,
                    not_promoted: unmet,
                })
            }
        })();
        match outcome {
            Ok(o) => {
                produced.insert(name.clone(), version.clone());
                results.push(ImageResult {
                    image: name,
                    reason,
                    outcome: o,
                });
            }
            Err(error) => {
                let _ = reg.fail(&opts.actor, &version, &error);
                broken.insert(name.clone(), "failed".into());
                progress.event(&name, "record", StageEvent::Failed);
                results.push(ImageResult {
                    image: name,
                    reason,
                    outcome: Outcome::Failed {
                        version: Some(version),
                        error,
                    },
                });
                if opts.fail_fast {
                    stop = true;
                }
                if kiln_build::cmd::interrupted() {
                    return Ok(results);
                }
            }
        }
    }
    Ok(results)
}
