//! Scheduling simulation: 10,000 images on 100 workers, two ways.
//!
//! - waves: the CI fan-out (`kiln plan --format github-matrix`): each wave of the plan (made by
//!   the real planner) starts when the previous one has finished, its jobs spread over the
//!   workers in plan order;
//! - queue: `kiln build --queue` + `kiln worker`: each job starts as soon as its parent's job is
//!   done and a worker is free, scheduled by the real registry queue (SQLite, simulated clock).
//!
//! Each is reported as its makespan over the lower bound max(critical path, total work /
//! workers): 1.00 would be perfect. Build times are seeded random, 2 to 30 minutes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kiln_plan::{ImageGraph, PlanOptions, Reason};
use kiln_registry::{Actor, NewJob, Registry, Role};

const IMAGES: usize = 10_000;
const ROOTS: usize = 20;
const WORKERS: usize = 100;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Greedy list scheduling of `jobs` (durations) in order on `workers` free at `start`.
fn list_schedule(durations: impl Iterator<Item = u64>, workers: usize, start: u64) -> u64 {
    let mut free: BinaryHeap<Reverse<u64>> = (0..workers).map(|_| Reverse(start)).collect();
    let mut end = start;
    for d in durations {
        let Reverse(t) = free.pop().expect("workers");
        end = end.max(t + d);
        free.push(Reverse(t + d));
    }
    end
}

fn main() {
    let mut rng = Rng(0x6b69_6c6e_5eed);
    let names: Vec<String> = (0..IMAGES).map(|i| format!("img-{i:05}")).collect();
    let parent: Vec<Option<usize>> = (0..IMAGES)
        .map(|i| (i >= ROOTS).then(|| rng.below(i)))
        .collect();
    let secs: Vec<u64> = (0..IMAGES).map(|_| 120 + rng.below(1681) as u64).collect();

    // Lower bound.
    let mut path = vec![0u64; IMAGES];
    for i in 0..IMAGES {
        path[i] = secs[i] + parent[i].map_or(0, |p| path[p]);
    }
    let critical = *path.iter().max().expect("images");
    let total: u64 = secs.iter().sum();
    let bound = critical.max(total.div_ceil(WORKERS as u64));

    // Waves, from the real planner.
    let graph = ImageGraph::new(
        (0..IMAGES).map(|i| (names[i].clone(), parent[i].map(|p| names[p].clone()))),
    )
    .expect("a DAG");
    let seeds: Vec<(usize, Reason)> = (0..IMAGES).map(|i| (i, Reason::Requested)).collect();
    let plan = kiln_plan::plan(&graph, &seeds, PlanOptions::default());
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut waves_end = 0;
    for batch in &plan.batches {
        waves_end = list_schedule(
            batch.images.iter().map(|p| secs[index[p.image.as_str()]]),
            WORKERS,
            waves_end,
        );
    }

    // The queue: the real registry's lease_job/finish_job on a simulated clock.
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(AtomicU64::new(1_800_000_000_000));
    let c = clock.clone();
    let mut reg = Registry::open_with_clock(
        &dir.path().join("queue.db"),
        Arc::new(move || c.load(Ordering::SeqCst)),
    )
    .expect("registry");
    let started = Instant::now();
    let jobs: Vec<NewJob> = plan
        .iter()
        .map(|(_, p)| NewJob {
            image: p.image.clone(),
            depends_on: parent[index[p.image.as_str()]]
                .map(|q| names[q].clone())
                .into_iter()
                .collect(),
        })
        .collect();
    reg.enqueue(&Actor::new("sim", Role::Ci), &jobs)
        .expect("enqueue");
    let lease = Duration::from_secs(30 * 24 * 3600);
    let t0 = clock.load(Ordering::SeqCst);
    let mut running: BinaryHeap<Reverse<(u64, usize, String)>> = BinaryHeap::new();
    let mut idle: Vec<usize> = (0..WORKERS).collect();
    let mut leases = 0usize;
    let mut queue_end = t0;
    loop {
        let now = clock.load(Ordering::SeqCst);
        while let Some(&w) = idle.last() {
            let Some(j) = reg.lease_job(&format!("w{w}"), lease).expect("lease") else {
                break;
            };
            leases += 1;
            idle.pop();
            running.push(Reverse((
                now + secs[index[j.image.as_str()]] * 1000,
                w,
                j.id,
            )));
        }
        let Some(Reverse((at, w, id))) = running.pop() else {
            break;
        };
        clock.store(at, Ordering::SeqCst);
        queue_end = at;
        assert!(
            reg.finish_job(&id, &format!("w{w}"), Ok(None))
                .expect("finish")
        );
        idle.push(w);
    }
    assert_eq!(leases, IMAGES, "every job ran once");
    let queue_secs = (queue_end - t0) / 1000;
    let sim_time = started.elapsed();

    let hours = |s: u64| s as f64 / 3600.0;
    println!(
        "Scheduling {IMAGES} images ({} waves deep) on {WORKERS} workers; build times 2-30 min",
        plan.wave_count()
    );
    println!(
        "lower bound: {:.2} h = max(critical path {:.2} h, work / workers {:.2} h)",
        hours(bound),
        hours(critical),
        hours(total / WORKERS as u64)
    );
    println!(
        "| {:<44} | {:>10} | {:>13} |",
        "schedule", "makespan", "÷ lower bound"
    );
    println!("| {:<44} | {:>10} | {:>13} |", "---", "---", "---");
    println!(
        "| {:<44} | {:>8.2} h | {:>13.3} |",
        "waves (CI matrix, one wave at a time)",
        hours(waves_end),
        waves_end as f64 / bound as f64
    );
    println!(
        "| {:<44} | {:>8.2} h | {:>13.3} |",
        "queue (kiln worker, ready when parent done)",
        hours(queue_secs),
        queue_secs as f64 / bound as f64
    );
    println!(
        "(the queue run drove the real registry: {} leases and finishes in {:.1} s)",
        leases,
        sim_time.as_secs_f64()
    );
}
