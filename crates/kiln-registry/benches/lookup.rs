//! Channel → artifact lookups per second from the store layer (what every Terraform plan and
//! deployment asks): 100 buckets × 20 versions, each with artifacts in 3 regions, channels
//! promoted; then lookups on one connection, and on 2 threads with a connection each (WAL lets
//! readers run side by side).

use std::sync::Arc;
use std::time::Instant;

use kiln_registry::{Actor, Artifact, Registry, Role};
use serde_json::json;

const BUCKETS: usize = 100;
const VERSIONS: usize = 20;
const LOOKUPS: usize = 50_000;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let ci = Actor::new("ci", Role::Ci);
    let t = Instant::now();
    {
        let mut r = Registry::open(&path).unwrap();
        for b in 0..BUCKETS {
            let bucket = format!("image-{b:03}");
            r.create_bucket(&ci, &bucket, "").unwrap();
            for _ in 0..VERSIONS {
                let v = r.start_version(&ci, &bucket, "fp", &[], json!({})).unwrap();
                for region in ["us-east-1", "eu-west-1", "ap-south-1"] {
                    let a = Artifact {
                        platform: "aws".into(),
                        region: region.into(),
                        external_id: format!("ami-{v}"),
                        format: "raw".into(),
                        size: 1,
                        sha256: "00".into(),
                    };
                    r.add_artifact(&ci, &v, &a).unwrap();
                }
                r.complete(&ci, &v).unwrap();
                r.promote(&ci, &bucket, &v, "production", "bench").unwrap();
            }
        }
    }
    let setup = t.elapsed();
    println!(
        "registry lookup benchmark: {BUCKETS} buckets × {VERSIONS} versions × 3 regions (setup {:.1}s, {} writes/s with synchronous=FULL)",
        setup.as_secs_f64(),
        ((BUCKETS * VERSIONS * 6) as f64 / setup.as_secs_f64()) as u64
    );

    let mut r = Registry::open(&path).unwrap();
    let t = Instant::now();
    for i in 0..LOOKUPS {
        let b = format!("image-{:03}", i % BUCKETS);
        let hit = r
            .channel_artifact(&b, "production", "aws", "eu-west-1")
            .unwrap();
        assert!(hit.is_some());
    }
    let one = LOOKUPS as f64 / t.elapsed().as_secs_f64();
    println!("  channel → artifact, 1 connection:  {one:>10.0} lookups/s");

    let path = Arc::new(path);
    let t = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|k| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut r = Registry::open(&path).unwrap();
                for i in 0..LOOKUPS / 2 {
                    let b = format!("image-{:03}", (i + k) % BUCKETS);
                    assert!(
                        r.channel_artifact(&b, "production", "aws", "us-east-1")
                            .unwrap()
                            .is_some()
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let two = LOOKUPS as f64 / t.elapsed().as_secs_f64();
    println!("  channel → artifact, 2 connections: {two:>10.0} lookups/s");
}
