//! `kiln build --queue` and three `kiln worker` processes on one PostgreSQL registry, with a
//! ten-image factory in three levels. This test is about scheduling, so the workers run a build
//! stub (`--exec`, which logs when each job starts and ends) instead of real builds: every image
//! runs once to completion, never before the job of its parent is done, and the job of a worker
//! killed mid-job (SIGKILL to its whole process group, as if its machine died) is leased again
//! and completed by another worker.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{kiln_in, ok, parent_in_ten, ten_image_factory};
use kiln_emulators::postgres::Postgres;
use kiln_registry::{Location, Registry};

fn worker(f: &Path, name: &str, stub: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(f)
        .args([
            "worker",
            "--name",
            name,
            "--lease",
            "3",
            "--exit-when-idle",
            "--exec",
            stub,
        ])
        .env("KILN_ACTOR", "worker")
        .env("KILN_ROLE", "ci")
        .stdout(Stdio::null())
        // Its own process group: killing it takes the job's command down too.
        .process_group(0)
        .spawn()
        .unwrap()
}

/// `start|done IMAGE WORKER NANOS` lines of the stub's log.
fn events(log: &Path) -> Vec<(String, String, String, u128)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4).then(|| (w[0].into(), w[1].into(), w[2].into(), w[3].parse().unwrap()))
        })
        .collect()
}

#[test]
fn three_workers_build_a_ten_image_factory_in_order_and_survive_a_killed_worker() {
    let dir = tempfile::tempdir().unwrap();
    let url = Postgres::shared().fresh_database();
    let f = ten_image_factory(dir.path(), Some(&url));

    let queued = ok(&kiln_in(&f, &["build", "--all", "--queue"]));
    assert!(queued.starts_with("queued batch "), "{queued}");
    assert!(queued.contains(" 10 jobs"), "{queued}");
    assert!(queued.contains("b1 (after svc-a)"), "{queued}");

    let log = dir.path().join("stub.log");
    let stub = format!(
        "echo start $KILN_JOB_IMAGE $KILN_WORKER $(date +%s%N) >> {log}; sleep 1.5; \
         echo done $KILN_JOB_IMAGE $KILN_WORKER $(date +%s%N) >> {log}; echo stub-$KILN_JOB_IMAGE",
        log = log.display()
    );
    let mut victim = worker(&f, "w1", &stub);
    let mut others = [worker(&f, "w2", &stub), worker(&f, "w3", &stub)];

    // Kill w1 once it is in the middle of a job.
    let t = Instant::now();
    let killed_image = loop {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "w1 never started a job"
        );
        let ev = events(&log);
        if let Some((_, image, _, _)) = ev.iter().find(|(k, _, w, _)| k == "start" && w == "w1") {
            break image.clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let pgid = victim.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status()
            .unwrap()
            .success()
    );
    let _ = victim.wait();

    for w in &mut others {
        let t = Instant::now();
        loop {
            if let Some(status) = w.try_wait().unwrap() {
                assert!(status.success(), "a worker failed: {status}");
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "workers did not drain the queue"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let ev = events(&log);
    let mut done: BTreeMap<String, Vec<(String, u128)>> = BTreeMap::new();
    let mut starts: BTreeMap<String, Vec<(String, u128)>> = BTreeMap::new();
    for (kind, image, w, at) in &ev {
        let m = if kind == "done" {
            &mut done
        } else {
            &mut starts
        };
        m.entry(image.clone()).or_default().push((w.clone(), *at));
    }
    assert_eq!(done.len(), 10, "every image completed: {ev:?}");
    for (image, runs) in &done {
        assert_eq!(runs.len(), 1, "{image} completed once: {runs:?}");
        let finisher = &runs[0].0;
        assert_ne!(
            finisher, "w1",
            "w1 was killed before finishing anything: {ev:?}"
        );
        let start = starts[image].iter().find(|(w, _)| w == finisher).unwrap().1;
        if let Some(parent) = parent_in_ten(image) {
            let parent_done = done[parent][0].1;
            assert!(
                start >= parent_done,
                "{image} started before {parent} was done: {ev:?}"
            );
        }
    }
    assert_eq!(
        starts[&killed_image].len(),
        2,
        "the killed job ran again: {ev:?}"
    );

    let mut r = Registry::open_at(&Location::Postgres(url)).unwrap();
    let jobs = r.jobs(None).unwrap();
    assert_eq!(jobs.len(), 10);
    for j in &jobs {
        assert_eq!(j.status, "done", "{j:?}");
        assert_eq!(
            j.version.as_deref(),
            Some(format!("stub-{}", j.image).as_str())
        );
        if j.image == killed_image {
            assert_eq!(j.attempts, 2, "{j:?}");
            assert_ne!(j.worker.as_deref(), Some("w1"));
        } else {
            assert_eq!(j.attempts, 1, "{j:?}");
        }
    }
    let listing = ok(&kiln_in(&f, &["jobs"]));
    assert_eq!(
        listing.lines().filter(|l| l.contains(" done ")).count(),
        10,
        "{listing}"
    );
}
