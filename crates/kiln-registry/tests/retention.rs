//! Property test of retention: for any history (builds that pass or fail, promotions,
//! revocations now or later, time passing) and any policy, `reap` deletes exactly what an
//! independent model says it may — never a version on a channel, an ancestor of a live version,
//! one younger than the minimum age or among its bucket's newest `keep_last` — a dry run reports
//! the same without changing anything, every deletion is audited, and a file is only listed for
//! deletion when no remaining artifact names it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kiln_registry::clock::parse_millis;
use kiln_registry::*;

mod support;
use kiln_spec::Retention;
use proptest::prelude::*;
use serde_json::json;
use support::Backend;

const BUCKETS: [&str; 3] = ["base", "mid", "leaf"];
const CHANNELS: [&str; 2] = ["dev", "production"];
const HOUR: u64 = 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    Build {
        bucket: usize,
        parent: usize,
        fail: bool,
        fp: u8,
    },
    Promote {
        version: usize,
        channel: usize,
    },
    Revoke {
        version: usize,
        later_hours: Option<u64>,
    },
    Tick {
        hours: u64,
    },
    Reap {
        keep_last: u32,
        min_age_h: u64,
        grace_h: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3usize, any::<usize>(), proptest::bool::weighted(0.25), 0..3u8)
            .prop_map(|(bucket, parent, fail, fp)| Op::Build { bucket, parent, fail, fp }),
        3 => (any::<usize>(), 0..2usize).prop_map(|(version, channel)| Op::Promote { version, channel }),
        1 => (any::<usize>(), proptest::option::weighted(0.3, 1u64..48)).prop_map(|(version, later_hours)| Op::Revoke { version, later_hours }),
        3 => (1u64..30).prop_map(|hours| Op::Tick { hours }),
        2 => (1u32..4, 0u64..72, 0u64..72).prop_map(|(keep_last, min_age_h, grace_h)| Op::Reap { keep_last, min_age_h, grace_h }),
    ]
}

type Snapshot = BTreeMap<String, Version>;

fn snapshot(r: &mut Registry) -> Snapshot {
    let mut m = BTreeMap::new();
    for b in BUCKETS {
        for v in r.versions(b).unwrap() {
            m.insert(v.id.clone(), v);
        }
    }
    m
}

/// What the policy allows to go, computed from the rules alone.
fn model(
    r: &mut Registry,
    all: &Snapshot,
    p: &Retention,
    now: u64,
) -> BTreeSet<(String, ReapAction)> {
    let mut on_channel = HashSet::new();
    for b in BUCKETS {
        for c in r.channels(b).unwrap() {
            if let Some(v) = c.version {
                on_channel.insert(v);
            }
        }
    }
    let mut needed = HashSet::new();
    let mut stack: Vec<String> = all
        .values()
        .filter(|v| matches!(v.status, Status::Active | Status::RevocationScheduled))
        .flat_map(|v| v.parents.clone())
        .collect();
    while let Some(id) = stack.pop() {
        if needed.insert(id.clone()) {
            stack.extend(all[&id].parents.clone());
        }
    }
    let ms = |t: &str| parse_millis(t).unwrap();
    let mut out = BTreeSet::new();
    for b in BUCKETS {
        let newest_first = r.versions(b).unwrap();
        let completed = newest_first.iter().filter(|v| {
            matches!(
                v.status,
                Status::Active | Status::RevocationScheduled | Status::Revoked
            )
        });
        for v in completed.skip(p.keep_last as usize) {
            if !on_channel.contains(&v.id)
                && !needed.contains(&v.id)
                && ms(&v.created_at) + p.min_age_secs * 1000 < now
            {
                out.insert((v.id.clone(), ReapAction::Version));
            }
        }
        for v in newest_first.iter().filter(|v| v.status == Status::Failed) {
            let at = v.completed_at.as_deref().unwrap_or(&v.created_at);
            if !v.artifacts.is_empty() && ms(at) + p.failed_grace_secs * 1000 < now {
                out.insert((v.id.clone(), ReapAction::FailedArtifacts));
            }
        }
    }
    out
}

fn audit_len(r: &mut Registry) -> usize {
    r.audit_entries().unwrap().len()
}

fn reap_never_deletes_anything_protected(
    b: Backend,
    ops: Vec<Op>,
) -> std::result::Result<(), TestCaseError> {
    let db = b.fresh();
    let clock = Arc::new(AtomicU64::new(1_795_000_000_000));
    let c = clock.clone();
    let mut r = db.open_with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
    let admin = Actor::new("root", Role::Admin);
    let ci = Actor::new("ci", Role::Ci);
    let sec = Actor::new("sam", Role::Security);
    for b in BUCKETS {
        r.create_bucket(&admin, b, "").unwrap();
    }
    let mut versions: Vec<(usize, String)> = Vec::new();
    let mut reaps = 0;
    for op in ops.into_iter().chain([
        Op::Tick { hours: 200 },
        Op::Reap {
            keep_last: 1,
            min_age_h: 1,
            grace_h: 1,
        },
    ]) {
        clock.fetch_add(1, Ordering::SeqCst);
        let pick = |i: usize| (!versions.is_empty()).then(|| versions[i % versions.len()].clone());
        match op {
            Op::Build {
                bucket,
                parent,
                fail,
                fp,
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
                let Ok(v) = r.start_version(&ci, BUCKETS[bucket], "fp", &parents, json!({})) else {
                    continue;
                };
                // Versions with the same fingerprint share a store directory.
                let file = format!("/store/{}/{fp}/disk.raw", BUCKETS[bucket]);
                r.add_artifact(
                    &ci,
                    &v,
                    &Artifact {
                        platform: "file".into(),
                        region: "local".into(),
                        external_id: file,
                        format: "raw".into(),
                        size: 1,
                        sha256: "00".into(),
                    },
                )
                .unwrap();
                r.add_artifact(
                    &ci,
                    &v,
                    &Artifact {
                        platform: "aws".into(),
                        region: "eu-west-1".into(),
                        external_id: format!("ami-{}", versions.len()),
                        format: "raw".into(),
                        size: 1,
                        sha256: "00".into(),
                    },
                )
                .unwrap();
                if fail {
                    r.fail(&ci, &v, "tests failed").unwrap();
                } else {
                    r.complete(&ci, &v).unwrap();
                }
                versions.push((bucket, v));
            }
            Op::Promote { version, channel } => {
                if let Some((b, v)) = pick(version) {
                    let _ = r.promote(&admin, BUCKETS[b], &v, CHANNELS[channel], "prop");
                }
            }
            Op::Revoke {
                version,
                later_hours,
            } => {
                if let Some((_, v)) = pick(version) {
                    let at = later_hours.map(|h| {
                        kiln_registry::clock::format_millis(clock.load(Ordering::SeqCst) + h * HOUR)
                    });
                    let _ = r.revoke(&sec, &v, "prop", at.as_deref(), false);
                }
            }
            Op::Tick { hours } => {
                clock.fetch_add(hours * HOUR, Ordering::SeqCst);
                r.tick().unwrap();
            }
            Op::Reap {
                keep_last,
                min_age_h,
                grace_h,
            } => {
                reaps += 1;
                let p = Retention {
                    keep_last,
                    min_age_secs: min_age_h * 3600,
                    failed_grace_secs: grace_h * 3600,
                };
                r.tick().unwrap();
                let before = snapshot(&mut r);
                let audit_before = audit_len(&mut r);
                let want = model(&mut r, &before, &p, clock.load(Ordering::SeqCst));

                let dry = r.reap(&admin, &p, true).unwrap();
                prop_assert_eq!(&snapshot(&mut r), &before, "a dry run changed the registry");
                prop_assert_eq!(audit_len(&mut r), audit_before);

                let rep = r.reap(&admin, &p, false).unwrap();
                let got: BTreeSet<(String, ReapAction)> = rep
                    .reaped
                    .iter()
                    .map(|x| (x.version.clone(), x.action))
                    .collect();
                let dry_got: BTreeSet<(String, ReapAction)> = dry
                    .reaped
                    .iter()
                    .map(|x| (x.version.clone(), x.action))
                    .collect();
                prop_assert_eq!(&got, &want, "reaped differs from the model");
                prop_assert_eq!(&dry_got, &got, "the dry run reported something else");
                prop_assert_eq!(&dry.files, &rep.files);
                prop_assert_eq!(
                    audit_len(&mut r),
                    audit_before + got.len(),
                    "one audit entry per deletion"
                );

                let after = snapshot(&mut r);
                let mut referenced = HashSet::new();
                for (id, v) in &after {
                    let b = &before[id];
                    match got.iter().find(|(g, _)| g == id).map(|(_, a)| *a) {
                        Some(ReapAction::Version) => {
                            prop_assert_eq!(v.status, Status::Reaped);
                            prop_assert!(v.artifacts.is_empty());
                            prop_assert_eq!(&v.parents, &b.parents, "ancestry is kept");
                        }
                        Some(ReapAction::FailedArtifacts) => {
                            prop_assert_eq!(v.status, Status::Failed);
                            prop_assert!(v.artifacts.is_empty());
                        }
                        None => prop_assert_eq!(v, b, "an untouched version changed"),
                    }
                    referenced.extend(
                        v.artifacts
                            .iter()
                            .filter(|a| a.platform == "file")
                            .map(|a| a.external_id.clone()),
                    );
                }
                let deleted: BTreeSet<String> = rep
                    .reaped
                    .iter()
                    .flat_map(|x| x.artifacts.iter())
                    .filter(|a| a.platform == "file")
                    .map(|a| a.external_id.clone())
                    .collect();
                let files: BTreeSet<String> = rep.files.iter().cloned().collect();
                let expect_files: BTreeSet<String> = deleted
                    .into_iter()
                    .filter(|f| !referenced.contains(f))
                    .collect();
                prop_assert_eq!(
                    files,
                    expect_files,
                    "files to delete = deleted and no longer referenced"
                );
                prop_assert!(r.verify_audit().is_ok());
            }
        }
    }
    prop_assert!(reaps > 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn reap_never_deletes_anything_protected_sqlite(ops in proptest::collection::vec(op(), 1..60)) {
        reap_never_deletes_anything_protected(Backend::Sqlite, ops)?;
    }

    #[test]
    fn reap_never_deletes_anything_protected_postgres(ops in proptest::collection::vec(op(), 1..60)) {
        reap_never_deletes_anything_protected(Backend::Postgres, ops)?;
    }
}

both_backends!(reaping_needs_the_platform_or_admin_role);

fn reaping_needs_the_platform_or_admin_role(b: Backend) {
    let mut r = b.fresh().open();
    let err = r
        .reap(&Actor::new("cici", Role::Ci), &Retention::default(), true)
        .unwrap_err();
    assert!(err.to_string().contains("platform or admin"), "{err}");
}
