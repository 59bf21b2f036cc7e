//! Many writers at once: 50 threads, each with its own connection, promoting, revoking and
//! restoring in one database, on SQLite and on PostgreSQL. The invariants hold afterwards and
//! nobody saw "database is locked" or a serialisation failure.

use std::sync::{Arc, Barrier};

use kiln_registry::*;
use serde_json::json;

mod support;
use support::Backend;

both_backends!(fifty_concurrent_writers_keep_the_invariants_and_never_see_a_lock);

fn fifty_concurrent_writers_keep_the_invariants_and_never_see_a_lock(b: Backend) {
    let db = Arc::new(b.fresh());
    let admin = Actor::new("root", Role::Admin);
    let mut versions = Vec::new();
    {
        let mut r = db.open();
        r.create_bucket(&admin, "base", "").unwrap();
        r.create_bucket(&admin, "web", "").unwrap();
        for _ in 0..6 {
            let v = r
                .start_version(&admin, "base", "fp", &[], json!({}))
                .unwrap();
            r.complete(&admin, &v).unwrap();
            let c = r
                .start_version(&admin, "web", "fp", std::slice::from_ref(&v), json!({}))
                .unwrap();
            r.complete(&admin, &c).unwrap();
            versions.push((v, c));
        }
    }
    let versions = Arc::new(versions);
    let threads = 50;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            let versions = versions.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut r = db.open();
                let actor = Actor::new(
                    format!("worker-{t}"),
                    if t % 3 == 0 {
                        Role::Security
                    } else {
                        Role::Platform
                    },
                );
                barrier.wait();
                let mut surfaced = Vec::new();
                for i in 0..12 {
                    let (base, web) = &versions[(t + i) % versions.len()];
                    let result = match (t + i) % 5 {
                        0 | 1 => r
                            .promote(&actor, "base", base, ["dev", "production"][i % 2], "load")
                            .map(|_| ()),
                        2 => r
                            .promote(&actor, "web", web, "production", "load")
                            .map(|_| ()),
                        3 => r.revoke(&actor, base, "load", None, false).map(|_| ()),
                        _ => r.restore(&actor, base).map(|_| ()),
                    };
                    if let Err(e) = result
                        && matches!(e, RegistryError::Busy(_) | RegistryError::Db(_))
                    {
                        surfaced.push(e.to_string());
                    }
                }
                surfaced
            })
        })
        .collect();
    let mut surfaced = Vec::new();
    for h in handles {
        surfaced.extend(h.join().unwrap());
    }
    assert!(
        surfaced.is_empty(),
        "database errors reached callers: {surfaced:?}"
    );

    let mut r = db.open();
    let audit_entries = r.verify_audit().unwrap();
    assert!(audit_entries > 100, "{audit_entries}");
    for b in ["base", "web"] {
        for c in r.channels(b).unwrap() {
            if let Some(v) = c.version {
                assert_eq!(
                    r.version(&v).unwrap().status,
                    Status::Active,
                    "{b}/{} on a non-active version",
                    c.name
                );
            }
        }
    }
    for (base, web) in versions.iter() {
        if r.version(base).unwrap().status == Status::Revoked {
            assert_ne!(
                r.version(web).unwrap().status,
                Status::Active,
                "revocation of {base} did not reach {web}"
            );
        }
    }
}
