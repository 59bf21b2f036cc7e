//! `kiln worker`: lease a ready job, build it, record the outcome, repeat. A heartbeat thread
//! extends the lease while the job runs; if the lease is lost (this worker stalled past it and
//! another took the job) the job's command is stopped and its outcome is not recorded. Versions
//! are recorded by the build itself, which reuses an active version with the same fingerprint,
//! so a job that runs twice (its first worker died after recording) records its version once.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kiln_pipeline::{Outcome, RunOptions, Selection};
use kiln_registry::{Job, Location, Registry};

use crate::cli::WorkerArgs;
use crate::commands::registry;
use crate::factory_dir;
use crate::progress::Terminal;

static STOP: AtomicBool = AtomicBool::new(false);

/// Extends a lease every third of its length from a thread with its own connection.
struct Heartbeat {
    done: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(at: Location, job: String, worker: String, lease: Duration) -> Heartbeat {
        let (done, lost) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (d, l) = (done.clone(), lost.clone());
        let thread = std::thread::spawn(move || {
            let mut reg = match Registry::open_at(&at) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("heartbeat: cannot open the registry at {at}: {e}");
                    return;
                }
            };
            let mut last = Instant::now();
            while !d.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() < lease / 3 {
                    continue;
                }
                last = Instant::now();
                match reg.heartbeat(&job, &worker, lease) {
                    Ok(true) => {}
                    Ok(false) => {
                        l.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!("heartbeat for job {job}: {e}"),
                }
            }
        });
        Heartbeat {
            done,
            lost,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}

pub fn run(factory: Option<&Path>, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let at = registry::location(factory)?;
    if args.exec.is_none() && !super::build::is_root() {
        bail!("kiln worker builds with mmdebstrap and mount namespaces: it needs root (or --exec)");
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let lease = Duration::from_secs(args.lease.max(3));
    let mut reg =
        Registry::open_at(&at).with_context(|| format!("opening the registry at {at}"))?;
    let _ = ctrlc::set_handler(|| {
        STOP.store(true, Ordering::SeqCst);
        kiln_build::cmd::INTERRUPTED.store(true, Ordering::SeqCst);
    });
    println!(
        "kiln worker {name}: leasing jobs from {at} (lease {}s)",
        lease.as_secs()
    );
    let mut failed = 0usize;
    while !STOP.load(Ordering::SeqCst) {
        let Some(job) = reg.lease_job(&name, lease)? else {
            if args.exit_when_idle && reg.jobs_open()? == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        println!(
            "{name}: {} (job {}, attempt {})",
            job.image, job.id, job.attempts
        );
        let beat = Heartbeat::start(at.clone(), job.id.clone(), name.clone(), lease);
        let outcome = match &args.exec {
            Some(cmd) => exec(cmd, &job, &name, &beat.lost),
            None => build(&f, &mut reg, &job, args),
        };
        let lost = beat.lost.load(Ordering::SeqCst);
        beat.stop();
        let recorded = !lost && reg.finish_job(&job.id, &name, outcome.clone())?;
        match (&outcome, recorded) {
            (_, false) => println!(
                "{name}: {}: lease lost; another worker has the job",
                job.image
            ),
            (Ok(v), true) => println!("{name}: {}: done {}", job.image, v.as_deref().unwrap_or("")),
            (Err(e), true) => {
                failed += 1;
                println!("{name}: {}: FAILED: {e}", job.image);
            }
        }
    }
    println!("kiln worker {name}: stopping");
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The built-in build of one image (no cascade: its descendants are jobs of their own).
fn build(
    f: &kiln_spec::Factory,
    reg: &mut Registry,
    job: &Job,
    args: &WorkerArgs,
) -> Result<Option<String>, String> {
    let opts = RunOptions {
        selection: Selection::Images(vec![job.image.clone()]),
        cascade: false,
        max_parallel: None,
        test: !args.no_test,
        fail_fast: true,
        cache_dir: args.cache.cache_dir.clone(),
        actor: registry::actor(&args.who).map_err(|e| e.to_string())?,
    };
    let progress = Terminal::new(false);
    let results = kiln_pipeline::run(f, reg, &opts, &progress).map_err(|e| e.to_string())?;
    match results.into_iter().next().map(|r| r.outcome) {
        Some(Outcome::Built { version, .. } | Outcome::Reused { version }) => Ok(Some(version)),
        Some(Outcome::Failed { error, .. }) => Err(error),
        Some(Outcome::Skipped { because }) => Err(because),
        None => Err("the pipeline built nothing".into()),
    }
}

/// Runs the job's command; stops it when the lease is lost or the worker is interrupted.
fn exec(cmd: &str, job: &Job, worker: &str, lost: &AtomicBool) -> Result<Option<String>, String> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .env("KILN_JOB_IMAGE", &job.image)
        .env("KILN_JOB_ID", &job.id)
        .env("KILN_JOB_BATCH", &job.batch)
        .env("KILN_WORKER", worker)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting `{cmd}`: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let status = loop {
        if lost.load(Ordering::SeqCst) || STOP.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("stopped: the lease was lost or the worker interrupted".into());
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for `{cmd}`: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("`{cmd}` exited with {status}"));
    }
    Ok(out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string()))
}
