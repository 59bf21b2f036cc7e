//! Property test of the registry as a state machine: random operations from several actors, with
//! a moving clock, must keep the invariants after every step:
//! - no channel points at a failed, running or revoked version;
//! - a revocation (not skipping descendants) reaches every descendant;
//! - restoring right after revoking gives back exactly the revocation state from before;
//! - the audit chain verifies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::*;

mod support;
use proptest::prelude::*;
use serde_json::json;
use support::Backend;

#[derive(Debug, Clone)]
enum Op {
    Build {
        bucket: usize,
        parent: usize,
        fail: bool,
    },
    Promote {
        version: usize,
        channel: usize,
        actor: usize,
    },
    Rollback {
        bucket: usize,
        channel: usize,
        actor: usize,
    },
    Revoke {
        version: usize,
        skip: bool,
        delay: Option<u64>,
        actor: usize,
    },
    Restore {
        version: usize,
    },
    Tick {
        ms: u64,
    },
}

const BUCKETS: [&str; 3] = ["base", "mid", "leaf"];
const CHANNELS: [&str; 3] = ["dev", "test", "production"];

fn actors() -> [Actor; 3] {
    [
        Actor::new("pat", Role::Platform),
        Actor::new("sam", Role::Security),
        Actor::new("cici", Role::Ci),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, any::<usize>(), proptest::bool::weighted(0.2)).prop_map(|(bucket, parent, fail)| Op::Build { bucket, parent, fail }),
        4 => (any::<usize>(), 0..3usize, 0..3usize).prop_map(|(version, channel, actor)| Op::Promote { version, channel, actor }),
        1 => (0..3usize, 0..3usize, 0..3usize).prop_map(|(bucket, channel, actor)| Op::Rollback { bucket, channel, actor }),
        2 => (any::<usize>(), proptest::bool::weighted(0.2), proptest::option::weighted(0.3, 1u64..5000), 0..3usize)
            .prop_map(|(version, skip, delay, actor)| Op::Revoke { version, skip, delay, actor }),
        1 => any::<usize>().prop_map(|version| Op::Restore { version }),
        1 => (1u64..4000).prop_map(|ms| Op::Tick { ms }),
    ]
}

type RevState = BTreeMap<String, Option<Revocation>>;

fn rev_state(r: &mut Registry) -> RevState {
    let mut m = BTreeMap::new();
    for b in BUCKETS {
        for v in r.versions(b).unwrap() {
            m.insert(v.id.clone(), v.revocation.clone());
        }
    }
    m
}

fn check_invariants(r: &mut Registry) -> std::result::Result<(), TestCaseError> {
    let mut all: BTreeMap<String, Version> = BTreeMap::new();
    for b in BUCKETS {
        for v in r.versions(b).unwrap() {
            all.insert(v.id.clone(), v);
        }
    }
    for b in BUCKETS {
        for c in r.channels(b).unwrap() {
            if let Some(v) = &c.version {
                // Until its time comes, a version with a scheduled revocation is still good.
                let st = all[v].status;
                prop_assert!(
                    matches!(st, Status::Active | Status::RevocationScheduled),
                    "{}/{} points at {} which is {:?}",
                    b,
                    c.name,
                    v,
                    st
                );
            }
        }
    }
    for v in all.values() {
        if let (Status::Revoked, Some(rev)) = (v.status, &v.revocation)
            && rev.inherited_from.is_none()
            && !rev.skip_descendants
        {
            for d in r.descendants(&v.id).unwrap() {
                // Failed or still-running descendants carry the revocation too (a running
                // one reads as revoked the moment it completes).
                let dv = &all[&d];
                prop_assert!(
                    dv.revocation
                        .as_ref()
                        .is_some_and(|r| r.at <= rev.at || r.inherited_from.is_none())
                        && dv.status != Status::Active,
                    "descendant {} ({:?}) of revoked {} is not revoked",
                    d,
                    dv.status,
                    v.id
                );
            }
        }
    }
    prop_assert!(r.verify_audit().is_ok(), "audit chain broken");
    Ok(())
}

fn invariants_hold_for_any_sequence(
    b: Backend,
    ops: Vec<Op>,
) -> std::result::Result<(), TestCaseError> {
    let db = b.fresh();
    let clock = Arc::new(AtomicU64::new(1_795_000_000_000));
    let c = clock.clone();
    let mut r = db.open_with_clock(Arc::new(move || c.fetch_add(1, Ordering::SeqCst)));
    let admin = Actor::new("root", Role::Admin);
    for b in BUCKETS {
        r.create_bucket(&admin, b, "").unwrap();
    }
    let actors = actors();
    let mut versions: Vec<(usize, String)> = Vec::new();
    let mut last_revoke: Option<(String, RevState)> = None;
    for op in ops {
        let pick = |i: usize| (!versions.is_empty()).then(|| versions[i % versions.len()].clone());
        let mut this_revoke = None;
        match op {
            Op::Build {
                bucket,
                parent,
                fail,
            } => {
                let parents: Vec<String> = if bucket == 0 {
                    vec![]
                } else {
                    let cands: Vec<&String> = versions
                        .iter()
                        .filter(|(b, _)| *b == bucket - 1)
                        .map(|(_, v)| v)
                        .collect();
                    if cands.is_empty() {
                        continue;
                    }
                    vec![cands[parent % cands.len()].clone()]
                };
                // Building on a failed or revoked parent is refused; that is part of the model.
                let Ok(v) = r.start_version(&actors[2], BUCKETS[bucket], "fp", &parents, json!({}))
                else {
                    continue;
                };
                if fail {
                    r.fail(&actors[2], &v, "tests failed").unwrap();
                } else {
                    r.complete(&actors[2], &v).unwrap();
                }
                versions.push((bucket, v));
            }
            Op::Promote {
                version,
                channel,
                actor,
            } => {
                if let Some((b, v)) = pick(version) {
                    let _ = r.promote(&actors[actor], BUCKETS[b], &v, CHANNELS[channel], "prop");
                }
            }
            Op::Rollback {
                bucket,
                channel,
                actor,
            } => {
                let _ = r.rollback(&actors[actor], BUCKETS[bucket], CHANNELS[channel], "prop");
            }
            Op::Revoke {
                version,
                skip,
                delay,
                actor,
            } => {
                if let Some((_, v)) = pick(version) {
                    let before = rev_state(&mut r);
                    let at = delay.map(|d| {
                        kiln_registry::clock::format_millis(clock.load(Ordering::SeqCst) + d)
                    });
                    if r.revoke(&actors[actor], &v, "prop", at.as_deref(), skip)
                        .is_ok()
                        && at.is_none()
                    {
                        this_revoke = Some((v, before));
                    }
                }
            }
            Op::Restore { version } => {
                if let Some((_, v)) = pick(version) {
                    let ok = r.restore(&actors[1], &v).is_ok();
                    if let (true, Some((rv, before))) = (ok, &last_revoke)
                        && *rv == v
                    {
                        prop_assert_eq!(
                            &rev_state(&mut r),
                            before,
                            "restore after revoke of {} is not exact",
                            v
                        );
                    }
                }
            }
            Op::Tick { ms } => {
                clock.fetch_add(ms, Ordering::SeqCst);
                r.tick().unwrap();
            }
        }
        last_revoke = this_revoke;
        check_invariants(&mut r)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn invariants_hold_for_any_sequence_sqlite(ops in proptest::collection::vec(op(), 1..40)) {
        invariants_hold_for_any_sequence(Backend::Sqlite, ops)?;
    }

    #[test]
    fn invariants_hold_for_any_sequence_postgres(ops in proptest::collection::vec(op(), 1..40)) {
        invariants_hold_for_any_sequence(Backend::Postgres, ops)?;
    }
}
