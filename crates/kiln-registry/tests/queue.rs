//! The build queue on both backends: jobs become ready in dependency order, concurrent workers
//! never hold the same job, a lapsed lease makes a job ready again, and a failure fails the
//! jobs that depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kiln_registry::*;

mod support;
use support::Backend;

fn ci() -> Actor {
    Actor::new("ci", Role::Ci)
}

fn job(image: &str, deps: &[&str]) -> NewJob {
    NewJob {
        image: image.into(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

/// base → {web, db} → {web-a, web-b (web), db-a (db)}
fn three_levels() -> Vec<NewJob> {
    vec![
        job("base", &[]),
        job("web", &["base"]),
        job("db", &["base"]),
        job("web-a", &["web"]),
        job("web-b", &["web"]),
        job("db-a", &["db"]),
    ]
}

const LEASE: Duration = Duration::from_secs(60);

both_backends!(
    jobs_are_leased_in_dependency_order_by_concurrent_workers,
    a_lapsed_lease_is_taken_over_and_the_old_holder_is_refused,
    a_failure_fails_everything_that_depends_on_it,
);

fn jobs_are_leased_in_dependency_order_by_concurrent_workers(b: Backend) {
    let db = b.fresh();
    let mut r = db.open();
    let err = r
        .enqueue(&Actor::new("eve", Role::Consumer), &three_levels())
        .unwrap_err();
    assert!(matches!(err, RegistryError::Forbidden { .. }), "{err}");
    assert!(r.enqueue(&ci(), &[job("x", &["nope"])]).is_err());
    let batch = r.enqueue(&ci(), &three_levels()).unwrap();

    // Six workers, each with its own connection, claim and finish until nothing is left.
    let done_order = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for w in 0..6 {
            let (db, done_order) = (&db, &done_order);
            s.spawn(move || {
                let mut r = db.open();
                let me = format!("w{w}");
                while r.jobs_open().unwrap() > 0 {
                    let Some(j) = r.lease_job(&me, LEASE).unwrap() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    // Every job it waits for is done before it is handed out.
                    let done = done_order.lock().unwrap().clone();
                    let deps: &[&str] = match j.image.as_str() {
                        "base" => &[],
                        "web" | "db" => &["base"],
                        "db-a" => &["db"],
                        _ => &["web"],
                    };
                    for d in deps {
                        assert!(
                            done.iter().any(|x| x == d),
                            "{} leased before {d}: {done:?}",
                            j.image
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    done_order.lock().unwrap().push(j.image.clone());
                    assert!(r.finish_job(&j.id, &me, Ok(None)).unwrap());
                }
            });
        }
    });
    let done = done_order.into_inner().unwrap();
    assert_eq!(done.len(), 6, "every job ran once: {done:?}");
    assert_eq!(done.iter().collect::<BTreeSet<_>>().len(), 6, "{done:?}");
    let jobs = r.jobs(Some(&batch)).unwrap();
    assert!(
        jobs.iter().all(|j| j.status == "done" && j.attempts == 1),
        "{jobs:?}"
    );
}

fn a_lapsed_lease_is_taken_over_and_the_old_holder_is_refused(b: Backend) {
    let db = b.fresh();
    let clock = Arc::new(AtomicU64::new(1_795_000_000_000));
    let c = clock.clone();
    let mut r = db.open_with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    r.enqueue(&ci(), &[job("base", &[])]).unwrap();
    let first = r.lease_job("dies", LEASE).unwrap().unwrap();
    assert!(r.lease_job("other", LEASE).unwrap().is_none(), "held");
    clock.fetch_add(30_000, Ordering::SeqCst);
    assert!(
        r.heartbeat(&first.id, "dies", LEASE).unwrap(),
        "a heartbeat extends the lease"
    );
    clock.fetch_add(50_000, Ordering::SeqCst);
    assert!(
        r.lease_job("other", LEASE).unwrap().is_none(),
        "extended lease still held"
    );
    clock.fetch_add(11_000, Ordering::SeqCst);
    let again = r
        .lease_job("other", LEASE)
        .unwrap()
        .expect("lapsed: ready again");
    assert_eq!((again.id.as_str(), again.attempts), (first.id.as_str(), 2));
    assert!(!r.heartbeat(&first.id, "dies", LEASE).unwrap());
    assert!(
        !r.finish_job(&first.id, "dies", Ok(None)).unwrap(),
        "the old holder is refused"
    );
    assert!(
        r.finish_job(&first.id, "other", Ok(Some("V1".into())))
            .unwrap()
    );
    let j = &r.jobs(None).unwrap()[0];
    assert_eq!(
        (j.status.as_str(), j.version.as_deref(), j.worker.as_deref()),
        ("done", Some("V1"), Some("other"))
    );

    // A job that kills its worker every time is given up after MAX_ATTEMPTS leases.
    r.enqueue(&ci(), &[job("poison", &[])]).unwrap();
    for _ in 0..queue::MAX_ATTEMPTS {
        assert!(r.lease_job("w", LEASE).unwrap().is_some());
        clock.fetch_add(61_000, Ordering::SeqCst);
    }
    assert!(r.lease_job("w", LEASE).unwrap().is_none());
    let poison = r
        .jobs(None)
        .unwrap()
        .into_iter()
        .find(|j| j.image == "poison")
        .unwrap();
    assert_eq!(poison.status, "failed");
    assert!(poison.error.unwrap().contains("lapsed 3 times"));
    assert_eq!(r.jobs_open().unwrap(), 0);
}

fn a_failure_fails_everything_that_depends_on_it(b: Backend) {
    let mut r = b.fresh().open();
    r.enqueue(&ci(), &three_levels()).unwrap();
    let base = r.lease_job("w", LEASE).unwrap().unwrap();
    assert!(r.finish_job(&base.id, "w", Ok(None)).unwrap());
    let mut leased = BTreeMap::new();
    while let Some(j) = r.lease_job("w", LEASE).unwrap() {
        leased.insert(j.image.clone(), j.id.clone());
        if j.image == "web" {
            r.finish_job(&j.id, "w", Err("apt-get failed".into()))
                .unwrap();
        } else {
            r.finish_job(&j.id, "w", Ok(None)).unwrap();
        }
    }
    assert_eq!(leased.keys().collect::<Vec<_>>(), ["db", "db-a", "web"]);
    let status: BTreeMap<String, (String, Option<String>)> = r
        .jobs(None)
        .unwrap()
        .into_iter()
        .map(|j| (j.image, (j.status, j.error)))
        .collect();
    assert_eq!(status["web"].0, "failed");
    for child in ["web-a", "web-b"] {
        assert_eq!(
            status[child],
            ("failed".into(), Some("a job it depends on failed".into()))
        );
    }
    assert_eq!(status["db-a"].0, "done");
    assert_eq!(r.jobs_open().unwrap(), 0);
}
