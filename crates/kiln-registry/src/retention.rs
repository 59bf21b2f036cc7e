//! Retention (`kiln reap`): which versions may go, decided and applied in one transaction.
//!
//! A completed version is reaped when it is beyond the newest `keep_last` of its bucket **and**
//! none of the protections hold: it is not on any channel, not an ancestor of a live (active or
//! scheduled-for-revocation) version, and older than `min_age`. Reaping keeps the row (ancestry,
//! channel history and the audit log still name it) and deletes its artifact rows. A failed
//! version's artifacts go once it has been failed longer than the grace period. Every deletion
//! is an audit entry. The caller deletes the files the report lists, after the commit: a crash
//! in between leaves unreferenced files behind, never a registry pointing at missing files.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::params;
use kiln_spec::Retention;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::clock::format_millis;
use crate::error::Result;
use crate::model::{Actor, Artifact, Role, Status};
use crate::ops::{Registry, load_version, require};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReapAction {
    /// The version is reaped: its artifacts are deleted, its record stays.
    Version,
    /// A failed version past the grace period: its artifacts are deleted.
    FailedArtifacts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reaped {
    pub bucket: String,
    pub version: String,
    pub action: ReapAction,
    pub artifacts: Vec<Artifact>,
}

/// A version retention would otherwise take, and what protects it.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub bucket: String,
    pub version: String,
    pub because: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReapReport {
    pub dry_run: bool,
    pub reaped: Vec<Reaped>,
    /// Versions beyond `keep_last` that a protection keeps.
    pub kept: Vec<Kept>,
    /// Local artifact files (`platform = "file"`) no remaining artifact row references: the
    /// caller deletes them.
    pub files: Vec<String>,
}

struct Row {
    id: String,
    bucket: String,
    status: Status,
    created_at: String,
    completed_at: Option<String>,
    parents: Vec<String>,
    artifacts: Vec<Artifact>,
}

impl Registry {
    /// Applies (or, with `dry_run`, only reports) the retention policy.
    pub fn reap(&mut self, actor: &Actor, policy: &Retention, dry_run: bool) -> Result<ReapReport> {
        require(
            actor,
            &[Role::Admin, Role::Platform],
            "reap",
            "retention needs the platform or admin role",
        )?;
        let now_ms = (self.clock)();
        let age_cutoff = format_millis(now_ms.saturating_sub(policy.min_age_secs * 1000));
        let grace_cutoff = format_millis(now_ms.saturating_sub(policy.failed_grace_secs * 1000));
        self.tx(|tx, now| {
            let mut st = tx.prepare("SELECT id FROM versions ORDER BY bucket, ordinal DESC")?;
            let ids: Vec<String> = st
                .query_map(params![], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            drop(st);
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                let v = load_version(tx, &id, now)?;
                rows.push(Row {
                    id: v.id,
                    bucket: v.bucket,
                    status: v.status,
                    created_at: v.created_at,
                    completed_at: v.completed_at,
                    parents: v.parents,
                    artifacts: v.artifacts,
                });
            }
            let mut on_channel: HashMap<String, Vec<String>> = HashMap::new();
            let mut st =
                tx.prepare("SELECT bucket, name, version FROM channels WHERE version IS NOT NULL")?;
            for r in st.query_map(params![], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })? {
                let (b, c, v) = r?;
                on_channel.entry(v).or_default().push(format!("{b}/{c}"));
            }
            drop(st);

            // Every ancestor of a live version, with the live version that needs it.
            let by_id: HashMap<&str, &Row> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
            let mut needed_by: HashMap<String, String> = HashMap::new();
            for live in rows
                .iter()
                .filter(|r| matches!(r.status, Status::Active | Status::RevocationScheduled))
            {
                let mut stack: Vec<&str> = live.parents.iter().map(String::as_str).collect();
                let mut seen = HashSet::new();
                while let Some(p) = stack.pop() {
                    if !seen.insert(p) {
                        continue;
                    }
                    needed_by
                        .entry(p.to_string())
                        .or_insert_with(|| format!("{}/{}", live.bucket, live.id));
                    if let Some(r) = by_id.get(p) {
                        stack.extend(r.parents.iter().map(String::as_str));
                    }
                }
            }

            let mut report = ReapReport {
                dry_run,
                ..Default::default()
            };
            let mut kept_newest: BTreeMap<&str, u32> = BTreeMap::new();
            let mut to_reap: Vec<(&Row, ReapAction)> = Vec::new();
            for r in &rows {
                match r.status {
                    Status::Running | Status::Reaped => {}
                    Status::Failed => {
                        let failed_at = r.completed_at.as_deref().unwrap_or(&r.created_at);
                        if failed_at < grace_cutoff.as_str() {
                            to_reap.push((r, ReapAction::FailedArtifacts));
                        }
                    }
                    Status::Active | Status::RevocationScheduled | Status::Revoked => {
                        // Rows come newest first per bucket.
                        let n = kept_newest.entry(&r.bucket).or_insert(0);
                        if *n < policy.keep_last {
                            *n += 1;
                            continue;
                        }
                        let mut because = Vec::new();
                        if let Some(chs) = on_channel.get(&r.id) {
                            because.push(format!("on channel {}", chs.join(", ")));
                        }
                        if let Some(live) = needed_by.get(&r.id) {
                            because.push(format!("ancestor of live version {live}"));
                        }
                        if r.created_at.as_str() >= age_cutoff.as_str() {
                            because.push(format!(
                                "younger than the minimum age (created {})",
                                r.created_at
                            ));
                        }
                        if because.is_empty() {
                            to_reap.push((r, ReapAction::Version));
                        } else {
                            report.kept.push(Kept {
                                bucket: r.bucket.clone(),
                                version: r.id.clone(),
                                because,
                            });
                        }
                    }
                }
            }

            let mut deleted_files: Vec<String> = Vec::new();
            let reaped_ids: HashSet<&str> = to_reap.iter().map(|(r, _)| r.id.as_str()).collect();
            for (r, action) in &to_reap {
                let artifacts = r.artifacts.clone();
                if *action == ReapAction::FailedArtifacts && artifacts.is_empty() {
                    continue;
                }
                deleted_files.extend(
                    artifacts
                        .iter()
                        .filter(|a| a.platform == "file")
                        .map(|a| a.external_id.clone()),
                );
                if !dry_run {
                    tx.execute("DELETE FROM artifacts WHERE version = ?1", [&r.id])?;
                    let what = match action {
                        ReapAction::Version => {
                            tx.execute(
                                "UPDATE versions SET reaped_at = ?2 WHERE id = ?1",
                                params![r.id, now],
                            )?;
                            "version.reap"
                        }
                        ReapAction::FailedArtifacts => "version.reap_artifacts",
                    };
                    let ids: Vec<&str> = artifacts.iter().map(|a| a.external_id.as_str()).collect();
                    audit::append(
                        tx,
                        now,
                        &actor.name,
                        what,
                        &format!("{}/{}", r.bucket, r.id),
                        &json!({
                            "keep_last": policy.keep_last,
                            "min_age_secs": policy.min_age_secs,
                            "failed_grace_secs": policy.failed_grace_secs,
                            "artifacts": ids,
                        }),
                    )?;
                }
                report.reaped.push(Reaped {
                    bucket: r.bucket.clone(),
                    version: r.id.clone(),
                    action: *action,
                    artifacts,
                });
            }
            // A file is deleted only when no artifact row outside this reap still names it (a
            // rebuild with the same fingerprint shares the store directory).
            let mut st =
                tx.prepare("SELECT version, external_id FROM artifacts WHERE platform = 'file'")?;
            let still: HashSet<String> = st
                .query_map(params![], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .filter_map(|r| r.ok())
                .filter(|(v, _)| !reaped_ids.contains(v.as_str()))
                .map(|(_, e)| e)
                .collect();
            drop(st);
            deleted_files.sort();
            deleted_files.dedup();
            report.files = deleted_files
                .into_iter()
                .filter(|f| !still.contains(f))
                .collect();
            Ok(report)
        })
    }
}
