//! Registry operations. Each is one transaction that also appends its audit entries, and each
//! first applies revocations that have come due, so a scheduled revocation takes effect on time
//! whether or not a background tick ran.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use serde_json::{Value, json};

use crate::audit;
use crate::clock::{Clock, format_millis, system_clock};
use crate::error::{RegistryError, Result, invalid};
use crate::model::*;
use crate::params;
use crate::sql::{Db, Location, OptionalExt, Tx};

/// The channel Kiln points at the newest active, non-revoked version of each bucket.
pub const LATEST: &str = "latest";
const SYSTEM: &str = "kiln";

pub struct Registry {
    pub(crate) conn: Db,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn not_found(what: &'static str, id: &str) -> RegistryError {
    RegistryError::NotFound {
        what,
        id: id.to_string(),
    }
}

pub(crate) fn valid_name(kind: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        invalid(format!("invalid {kind} name `{s}`"))
    }
}

impl Registry {
    /// Opens (creating and migrating) the SQLite registry at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the registry wherever it lives, bringing its schema up to date.
    pub fn open_at(at: &Location) -> Result<Self> {
        Self::open_at_with_clock(at, system_clock())
    }

    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self> {
        Self::open_at_with_clock(&Location::Sqlite(path.to_path_buf()), clock)
    }

    pub fn open_at_with_clock(at: &Location, clock: Clock) -> Result<Self> {
        Ok(Registry {
            conn: Db::open(at)?,
            clock,
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.conn.backend()
    }

    /// True when the connection is gone (PostgreSQL restarted): pools drop such a registry
    /// rather than hand it out again.
    pub fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }

    /// The schema version the database is at.
    pub fn schema_version(&mut self) -> Result<i64> {
        self.conn.read(crate::db::schema_version)
    }

    /// Runs raw SQL outside every invariant: no audit entry, no checks. It exists for the
    /// tamper and repair drills in tests and runbooks, never for operations.
    #[doc(hidden)]
    pub fn execute_unchecked(&mut self, sql: &str) -> Result<usize> {
        self.conn.write(|tx| tx.execute(sql, params![]))
    }

    pub(crate) fn now(&self) -> String {
        format_millis((self.clock)())
    }

    /// One transaction: due revocations first, then `f`.
    pub(crate) fn tx<T>(&mut self, mut f: impl FnMut(&Tx<'_>, &str) -> Result<T>) -> Result<T> {
        let now = self.now();
        self.conn.write(|tx| {
            apply_due(tx, &now)?;
            f(tx, &now)
        })
    }

    /// A read: applies due revocations first (in a write transaction, only when there are any),
    /// then reads in a deferred transaction, so readers do not queue behind the write lock.
    fn read<T>(&mut self, mut f: impl FnMut(&Tx<'_>, &str) -> Result<T>) -> Result<T> {
        let now = self.now();
        // One snapshot answers both "is anything due?" and the read itself; only when a
        // revocation has come due does the read wait for a write transaction and start over.
        let mut due_first = false;
        loop {
            if due_first {
                self.conn.write(|tx| apply_due(tx, &now))?;
            }
            let read = self.conn.read(|tx| {
                let due: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM versions WHERE revoke_at IS NOT NULL AND revoke_at <= ?1 AND revoke_applied = 0)",
                    [&now],
                    |r| r.get(0),
                )?;
                if due && !due_first {
                    return Ok(None);
                }
                f(tx, &now).map(Some)
            })?;
            match read {
                Some(v) => return Ok(v),
                None => due_first = true,
            }
        }
    }

    /// The artifact a consumer deploys: what `channel` points at, for a platform and region.
    pub fn channel_artifact(
        &mut self,
        bucket: &str,
        channel: &str,
        platform: &str,
        region: &str,
    ) -> Result<Option<(String, Artifact)>> {
        self.read(|tx, _| {
            let row = tx
                .query_row(
                    "SELECT c.version, a.external_id, a.format, a.size, a.sha256 FROM channels c JOIN artifacts a ON a.version = c.version
                     WHERE c.bucket = ?1 AND c.name = ?2 AND a.platform = ?3 AND a.region = ?4 ORDER BY a.format LIMIT 1",
                    params![bucket, channel, platform, region],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, String>(4)?)),
                )
                .optional()?;
            Ok(row.map(|(v, external_id, format, size, sha256)| {
                (v, Artifact { platform: platform.into(), region: region.into(), external_id, format, size: size as u64, sha256 })
            }))
        })
    }

    /// Every version holding an artifact with this external id (an AMI, a gallery image id, a
    /// path): what a Terraform plan's image id is checked against.
    pub fn versions_with_artifact(&mut self, external_id: &str) -> Result<Vec<Version>> {
        self.read(|tx, now| {
            let mut st = tx.prepare_cached(
                "SELECT DISTINCT version FROM artifacts WHERE external_id = ?1 ORDER BY version",
            )?;
            let ids: Vec<String> = st
                .query_map([external_id], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            ids.iter().map(|id| load_version(tx, id, now)).collect()
        })
    }

    /// Applies revocations whose time has come (the background tick). Returns how many.
    pub fn tick(&mut self) -> Result<usize> {
        let now = self.now();
        self.conn.write(|tx| apply_due(tx, &now))
    }

    pub fn create_bucket(&mut self, actor: &Actor, name: &str, description: &str) -> Result<()> {
        valid_name("bucket", name)?;
        self.tx(|tx, now| {
            let exists: bool = tx.query_row(
                "SELECT COUNT(*) FROM buckets WHERE name = ?1",
                [name],
                |r| r.get::<_, i64>(0),
            )? > 0;
            if exists {
                return invalid(format!("bucket `{name}` already exists"));
            }
            tx.execute(
                "INSERT INTO buckets (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![name, description, now],
            )?;
            audit::append(
                tx,
                now,
                &actor.name,
                "bucket.create",
                name,
                &json!({"description": description}),
            )
        })
    }

    /// Creates the bucket if needed (builds call this for every image).
    pub fn ensure_bucket(&mut self, actor: &Actor, name: &str) -> Result<()> {
        match self.create_bucket(actor, name, "") {
            Err(RegistryError::Invalid(m)) if m.ends_with("already exists") => Ok(()),
            other => other,
        }
    }

    /// Starts a version (status running). `parents` are parent version ids; `build` holds build
    /// metadata (git commit, factory, builder host, timings, tracked parent channel).
    pub fn start_version(
        &mut self,
        actor: &Actor,
        bucket: &str,
        fingerprint: &str,
        parents: &[String],
        build: Value,
    ) -> Result<String> {
        let id = ulid::Ulid::new().to_string();
        self.tx(|tx, now| {
            if tx.query_row("SELECT COUNT(*) FROM buckets WHERE name = ?1", [bucket], |r| r.get::<_, i64>(0))? == 0 {
                return Err(not_found("bucket", bucket));
            }
            // A child is built on a finished, good parent: never on a failed, unfinished or
            // revoked one (it would inherit the revocation the moment it existed).
            for p in parents {
                if !version_exists(tx, p)? {
                    return Err(not_found("parent version", p));
                }
                let st = load_version(tx, p, now)?.status;
                if !matches!(st, Status::Active | Status::RevocationScheduled) {
                    return invalid(format!("parent version {p} is {}; a version can only be built on an active parent", st.as_str()));
                }
            }
            let ordinal: i64 = tx.query_row("SELECT COALESCE(MAX(ordinal), 0) + 1 FROM versions", params![], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO versions (id, bucket, fingerprint, status, build, ordinal, created_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6)",
                params![id, bucket, fingerprint, build.to_string(), ordinal, now],
            )?;
            for p in parents {
                tx.execute("INSERT INTO version_parents (child, parent) VALUES (?1, ?2)", params![id, p])?;
            }
            audit::append(tx, now, &actor.name, "version.start", &format!("{bucket}/{id}"), &json!({"fingerprint": fingerprint, "parents": parents}))
        })?;
        Ok(id)
    }

    pub fn add_artifact(&mut self, actor: &Actor, version: &str, a: &Artifact) -> Result<()> {
        self.tx(|tx, now| {
            let (bucket, status) = status_of(tx, version)?;
            if status == "failed" {
                return invalid(format!("version {version} failed; it takes no artifacts"));
            }
            tx.execute(
                "INSERT INTO artifacts (version, platform, region, external_id, format, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (version, platform, region, format) DO UPDATE SET external_id = excluded.external_id, size = excluded.size, sha256 = excluded.sha256",
                params![version, a.platform, a.region, a.external_id, a.format, a.size as i64, a.sha256],
            )?;
            audit::append(tx, now, &actor.name, "artifact.add", &format!("{bucket}/{version}"), &serde_json::to_value(a).unwrap_or_default())
        })
    }

    pub fn attach_report(
        &mut self,
        actor: &Actor,
        version: &str,
        kind: &str,
        body: &Value,
    ) -> Result<()> {
        self.tx(|tx, now| {
            let (bucket, _) = status_of(tx, version)?;
            tx.execute(
                "INSERT INTO reports (version, kind, body) VALUES (?1, ?2, ?3) ON CONFLICT (version, kind) DO UPDATE SET body = excluded.body",
                params![version, kind, body.to_string()],
            )?;
            audit::append(tx, now, &actor.name, "report.attach", &format!("{bucket}/{version}"), &json!({"kind": kind}))
        })
    }

    pub fn report(&mut self, version: &str, kind: &str) -> Result<Option<Value>> {
        self.read(|tx, _| {
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM reports WHERE version = ?1 AND kind = ?2",
                    params![version, kind],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
        })
    }

    /// running → active; `latest` follows.
    pub fn complete(&mut self, actor: &Actor, version: &str) -> Result<()> {
        self.tx(|tx, now| {
            let bucket = finish_running(
                tx,
                now,
                actor,
                version,
                "active",
                "version.complete",
                json!({}),
            )?;
            refresh_latest(tx, now, &bucket)
        })
    }

    /// running → failed.
    pub fn fail(&mut self, actor: &Actor, version: &str, reason: &str) -> Result<()> {
        self.tx(|tx, now| {
            finish_running(
                tx,
                now,
                actor,
                version,
                "failed",
                "version.fail",
                json!({"reason": reason}),
            )
            .map(|_| ())
        })
    }

    /// Records an approval of a version by the actor (for policies that require one).
    pub fn approve(&mut self, actor: &Actor, version: &str) -> Result<()> {
        require(
            actor,
            &[Role::Admin, Role::Platform, Role::Security],
            "approve",
            "approval needs the platform, security or admin role",
        )?;
        self.tx(|tx, now| {
            let v = load_version(tx, version, now)?;
            if v.status != Status::Active {
                return invalid(format!("version {version} is {}; only active versions can be approved", v.status.as_str()));
            }
            tx.execute(
                "INSERT INTO approvals (version, actor, role, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (version, actor) DO UPDATE SET role = excluded.role, at = excluded.at",
                params![version, actor.name, actor.role.as_str(), now],
            )?;
            audit::append(tx, now, &actor.name, "version.approve", &format!("{}/{version}", v.bucket), &json!({"role": actor.role.as_str()}))
        })
    }

    /// Roles of the approvals a version has.
    pub fn approval_roles(&mut self, version: &str) -> Result<Vec<String>> {
        self.read(|tx, _| {
            let mut st = tx.prepare("SELECT role FROM approvals WHERE version = ?1 ORDER BY at")?;
            let v = st
                .query_map([version], |r| r.get(0))?
                .collect::<std::result::Result<Vec<String>, _>>()?;
            Ok(v)
        })
    }

    /// The newest active version of a bucket built from `fingerprint`, if any (a rebuild of the
    /// same definition can reuse it).
    pub fn active_with_fingerprint(
        &mut self,
        bucket: &str,
        fingerprint: &str,
    ) -> Result<Option<String>> {
        self.read(|tx, now| {
            let mut st = tx.prepare("SELECT id FROM versions WHERE bucket = ?1 AND fingerprint = ?2 AND status = 'active' ORDER BY ordinal DESC")?;
            let ids: Vec<String> = st.query_map(params![bucket, fingerprint], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
            drop(st);
            for id in ids {
                if load_version(tx, &id, now)?.status == Status::Active {
                    return Ok(Some(id));
                }
            }
            Ok(None)
        })
    }

    /// Marks a channel restricted (only the security role may move it).
    pub fn set_restricted(
        &mut self,
        actor: &Actor,
        bucket: &str,
        channel: &str,
        restricted: bool,
    ) -> Result<()> {
        require(
            actor,
            &[Role::Security, Role::Admin],
            "manage restricted channels",
            "security role required",
        )?;
        self.tx(|tx, now| {
            ensure_channel(tx, bucket, channel)?;
            tx.execute(
                "UPDATE channels SET restricted = ?3 WHERE bucket = ?1 AND name = ?2",
                params![bucket, channel, restricted],
            )?;
            audit::append(
                tx,
                now,
                &actor.name,
                "channel.restrict",
                &format!("{bucket}/{channel}"),
                &json!({"restricted": restricted}),
            )
        })
    }

    pub fn promote(
        &mut self,
        actor: &Actor,
        bucket: &str,
        version: &str,
        channel: &str,
        reason: &str,
    ) -> Result<()> {
        valid_name("channel", channel)?;
        if channel == LATEST {
            return invalid(
                "`latest` is managed by Kiln: it always points at the newest active version",
            );
        }
        require(
            actor,
            &[Role::Admin, Role::Platform, Role::Security, Role::Ci],
            &format!("promote to {channel}"),
            "promotion needs the platform, security, ci or admin role",
        )?;
        self.tx(|tx, now| {
            let v = load_version(tx, version, now)?;
            if v.bucket != bucket {
                return invalid(format!(
                    "version {version} belongs to bucket {}, not {bucket}",
                    v.bucket
                ));
            }
            if v.status != Status::Active {
                return invalid(format!(
                    "version {version} is {}; only active, unrevoked versions can be promoted",
                    v.status.as_str()
                ));
            }
            ensure_channel(tx, bucket, channel)?;
            let (current, restricted): (Option<String>, bool) = tx.query_row(
                "SELECT version, restricted FROM channels WHERE bucket = ?1 AND name = ?2",
                params![bucket, channel],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if restricted && !matches!(actor.role, Role::Security | Role::Admin) {
                return Err(RegistryError::Forbidden {
                    actor: actor.name.clone(),
                    role: actor.role.as_str().into(),
                    action: format!("promote to {channel}"),
                    why: format!("{bucket}/{channel} is restricted to the security role"),
                });
            }
            assign(
                tx,
                now,
                bucket,
                channel,
                Some(version),
                current.as_deref(),
                &actor.name,
                reason,
            )
        })
    }

    /// Points the channel back at the assignment before the current one (skipping versions that
    /// are no longer active or are revoked). Returns the new target.
    pub fn rollback(
        &mut self,
        actor: &Actor,
        bucket: &str,
        channel: &str,
        reason: &str,
    ) -> Result<Option<String>> {
        require(
            actor,
            &[Role::Admin, Role::Platform, Role::Security],
            &format!("roll back {channel}"),
            "rollback needs the platform, security or admin role",
        )?;
        self.tx(|tx, now| {
            let (current, restricted): (Option<String>, bool) = tx
                .query_row(
                    "SELECT version, restricted FROM channels WHERE bucket = ?1 AND name = ?2",
                    params![bucket, channel],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| not_found("channel", &format!("{bucket}/{channel}")))?;
            if restricted && !matches!(actor.role, Role::Security | Role::Admin) {
                return Err(RegistryError::Forbidden {
                    actor: actor.name.clone(),
                    role: actor.role.as_str().into(),
                    action: format!("roll back {channel}"),
                    why: format!("{bucket}/{channel} is restricted to the security role"),
                });
            }
            let target =
                previous_good(tx, now, bucket, channel, current.as_deref())?.ok_or_else(|| {
                    RegistryError::Invalid(format!(
                        "{bucket}/{channel} has no earlier assignment to roll back to"
                    ))
                })?;
            assign(
                tx,
                now,
                bucket,
                channel,
                Some(&target),
                current.as_deref(),
                &actor.name,
                &format!("rollback: {reason}"),
            )?;
            Ok(Some(target))
        })
    }

    /// Revokes a version now or at `at` (RFC 3339), and unless `skip_descendants`, every version
    /// built on it. Channels pointing at a revoked version roll back. Returns the ids revoked now.
    pub fn revoke(
        &mut self,
        actor: &Actor,
        version: &str,
        reason: &str,
        at: Option<&str>,
        skip_descendants: bool,
    ) -> Result<Vec<String>> {
        require(
            actor,
            &[Role::Security, Role::Admin],
            "revoke",
            "revocation needs the security role",
        )?;
        if reason.trim().is_empty() {
            return invalid("a revocation needs a reason");
        }
        if let Some(t) = at
            && crate::clock::parse_millis(t).is_none()
        {
            return invalid(format!(
                "invalid time `{t}`: use RFC 3339 UTC, e.g. 2026-12-01T00:00:00Z"
            ));
        }
        let when = at.map(|t| format_millis(crate::clock::parse_millis(t).unwrap_or(0)));
        self.tx(|tx, now| {
            let v = load_version(tx, version, now)?;
            if v.status == Status::Revoked {
                return invalid(format!("version {version} is already revoked"));
            }
            if let (Status::RevocationScheduled, Some(r)) = (v.status, &v.revocation) {
                return invalid(format!(
                    "version {version} already has a revocation scheduled for {}: restore it first to change it",
                    r.at
                ));
            }
            if v.status != Status::Active {
                return invalid(format!("version {version} is {}; only active versions can be revoked", v.status.as_str()));
            }
            let before: BTreeSet<String> = revoked_ids(tx, now)?;
            let effective = when.clone().unwrap_or_else(|| now.to_string());
            let effective = if effective.as_str() < now { now.to_string() } else { effective };
            tx.execute(
                "UPDATE versions SET revoke_at = ?2, revoke_reason = ?3, revoked_by = ?4, revoke_from = NULL, revoke_skip_descendants = ?5, revoke_applied = 0 WHERE id = ?1",
                params![version, effective, reason, actor.name, skip_descendants],
            )?;
            audit::append(tx, now, &actor.name, if effective.as_str() > now { "version.revoke.schedule" } else { "version.revoke" }, &format!("{}/{version}", v.bucket), &json!({"reason": reason, "at": effective, "skip_descendants": skip_descendants}))?;
            apply_due(tx, now)?;
            let after = revoked_ids(tx, now)?;
            Ok(after.difference(&before).cloned().collect())
        })
    }

    /// Undoes a revocation (effective or scheduled) and the revocations descendants inherited
    /// from it. Channels are not moved back: re-promote deliberately.
    pub fn restore(&mut self, actor: &Actor, version: &str) -> Result<Vec<String>> {
        require(
            actor,
            &[Role::Security, Role::Admin],
            "restore",
            "restoring needs the security role",
        )?;
        self.tx(|tx, now| {
            let v = load_version(tx, version, now)?;
            if v.revocation.is_none() {
                return invalid(format!("version {version} is not revoked"));
            }
            if let Some(origin) = v.revocation.as_ref().and_then(|r| r.inherited_from.clone()) {
                return invalid(format!("version {version} inherited its revocation from {origin}: restore that one"));
            }
            let mut restored = vec![version.to_string()];
            let mut st = tx.prepare("SELECT id FROM versions WHERE revoke_from = ?1 ORDER BY ordinal")?;
            let inherited: Vec<String> = st.query_map([version], |r| r.get(0))?.collect::<std::result::Result<_, _>>()?;
            drop(st);
            restored.extend(inherited);
            let mut buckets = BTreeSet::new();
            for id in &restored {
                tx.execute(
                    "UPDATE versions SET revoke_at = NULL, revoke_reason = NULL, revoked_by = NULL, revoke_from = NULL, revoke_skip_descendants = 0, revoke_applied = 0 WHERE id = ?1",
                    [id],
                )?;
                let b = bucket_of(tx, id)?;
                audit::append(tx, now, &actor.name, "version.restore", &format!("{b}/{id}"), &json!({"restored_with": version}))?;
                buckets.insert(b);
            }
            for b in buckets {
                refresh_latest(tx, now, &b)?;
            }
            Ok(restored)
        })
    }

    // ---- reads -------------------------------------------------------------------------------

    pub fn version(&mut self, id: &str) -> Result<Version> {
        self.read(|tx, now| load_version(tx, id, now))
    }

    /// Versions of a bucket, newest first.
    pub fn versions(&mut self, bucket: &str) -> Result<Vec<Version>> {
        self.read(|tx, now| {
            let mut st =
                tx.prepare("SELECT id FROM versions WHERE bucket = ?1 ORDER BY ordinal DESC")?;
            let ids: Vec<String> = st
                .query_map([bucket], |r| r.get(0))?
                .collect::<std::result::Result<_, _>>()?;
            drop(st);
            ids.iter().map(|id| load_version(tx, id, now)).collect()
        })
    }

    pub fn buckets(&mut self) -> Result<Vec<String>> {
        self.read(|tx, _| {
            let mut st = tx.prepare("SELECT name FROM buckets ORDER BY name")?;
            let v = st
                .query_map(params![], |r| r.get(0))?
                .collect::<std::result::Result<Vec<String>, _>>()?;
            Ok(v)
        })
    }

    pub fn channels(&mut self, bucket: &str) -> Result<Vec<Channel>> {
        self.read(|tx, _| {
            let mut st = tx.prepare(
                "SELECT name, version, restricted FROM channels WHERE bucket = ?1 ORDER BY name",
            )?;
            let v = st
                .query_map([bucket], |r| {
                    Ok(Channel {
                        bucket: bucket.to_string(),
                        name: r.get(0)?,
                        version: r.get(1)?,
                        restricted: r.get(2)?,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(v)
        })
    }

    pub fn channel(&mut self, bucket: &str, channel: &str) -> Result<Option<String>> {
        self.read(|tx, _| {
            Ok(tx
                .query_row(
                    "SELECT version FROM channels WHERE bucket = ?1 AND name = ?2",
                    params![bucket, channel],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()?
                .flatten())
        })
    }

    pub fn history(&mut self, bucket: &str, channel: &str) -> Result<Vec<ChannelEntry>> {
        self.read(|tx, _| {
            let mut st = tx.prepare("SELECT channel, version, previous, author, reason, at FROM channel_history WHERE bucket = ?1 AND channel = ?2 ORDER BY seq")?;
            let v = st
                .query_map(params![bucket, channel], |r| {
                    Ok(ChannelEntry { channel: r.get(0)?, version: r.get(1)?, previous: r.get(2)?, author: r.get(3)?, reason: r.get(4)?, at: r.get(5)? })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(v)
        })
    }

    pub fn children(&mut self, id: &str) -> Result<Vec<String>> {
        self.read(|tx, _| children_of(tx, id))
    }

    pub fn descendants(&mut self, id: &str) -> Result<Vec<String>> {
        self.read(|tx, _| descendants_of(tx, id))
    }

    /// Child versions whose parent version is no longer what the channel they track points at.
    /// A version records its tracked channel in `build.parent_channel` (default `production`).
    pub fn out_of_date(&mut self) -> Result<Vec<OutOfDate>> {
        self.read(|tx, now| {
            let mut st = tx.prepare(
                "SELECT c.id, c.bucket, c.build, p.id, p.bucket FROM versions c JOIN version_parents vp ON vp.child = c.id JOIN versions p ON p.id = vp.parent
                 WHERE c.status = 'active' ORDER BY c.ordinal",
            )?;
            let rows: Vec<(String, String, String, String, String)> = st
                .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<std::result::Result<_, _>>()?;
            drop(st);
            let mut out = Vec::new();
            for (child, cb, build, parent, pb) in rows {
                if load_version(tx, &child, now)?.status != Status::Active {
                    continue;
                }
                let build: Value = serde_json::from_str(&build).unwrap_or_default();
                let channel = build["parent_channel"].as_str().unwrap_or("production").to_string();
                let now_on: Option<String> = tx
                    .query_row("SELECT version FROM channels WHERE bucket = ?1 AND name = ?2", params![pb, channel], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten();
                if now_on.as_deref() != Some(parent.as_str()) {
                    out.push(OutOfDate { child, child_bucket: cb, parent, parent_bucket: pb, channel, now: now_on });
                }
            }
            Ok(out)
        })
    }

    pub fn verify_audit(&mut self) -> Result<usize> {
        self.conn.read(audit::verify)
    }
}

/// Ends a running version as `to` ("active" or "failed"); returns its bucket.
fn finish_running(
    tx: &Tx<'_>,
    now: &str,
    actor: &Actor,
    version: &str,
    to: &str,
    action: &str,
    detail: Value,
) -> Result<String> {
    let (bucket, status) = status_of(tx, version)?;
    if status != "running" {
        return invalid(format!(
            "version {version} is {status}; only a running version can become {to}"
        ));
    }
    tx.execute(
        "UPDATE versions SET status = ?2, completed_at = ?3 WHERE id = ?1",
        params![version, to, now],
    )?;
    audit::append(
        tx,
        now,
        &actor.name,
        action,
        &format!("{bucket}/{version}"),
        &detail,
    )?;
    Ok(bucket)
}

pub(crate) fn require(actor: &Actor, roles: &[Role], action: &str, why: &str) -> Result<()> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(RegistryError::Forbidden {
            actor: actor.name.clone(),
            role: actor.role.as_str().into(),
            action: action.into(),
            why: why.into(),
        })
    }
}

fn version_exists(tx: &Tx<'_>, id: &str) -> Result<bool> {
    Ok(
        tx.query_row("SELECT COUNT(*) FROM versions WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })? > 0,
    )
}

fn bucket_of(tx: &Tx<'_>, id: &str) -> Result<String> {
    tx.query_row("SELECT bucket FROM versions WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| not_found("version", id))
}

fn status_of(tx: &Tx<'_>, id: &str) -> Result<(String, String)> {
    tx.query_row(
        "SELECT bucket, status FROM versions WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?
    .ok_or_else(|| not_found("version", id))
}

fn children_of(tx: &Tx<'_>, id: &str) -> Result<Vec<String>> {
    let mut st = tx.prepare("SELECT vp.child FROM version_parents vp JOIN versions v ON v.id = vp.child WHERE vp.parent = ?1 ORDER BY v.ordinal")?;
    let v = st
        .query_map([id], |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    Ok(v)
}

fn descendants_of(tx: &Tx<'_>, id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = children_of(tx, id)?.into();
    while let Some(c) = queue.pop_front() {
        if seen.insert(c.clone()) {
            queue.extend(children_of(tx, &c)?);
            out.push(c);
        }
    }
    Ok(out)
}

pub(crate) fn load_version(tx: &Tx<'_>, id: &str, now: &str) -> Result<Version> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
        Option<String>,
    );
    let row: Option<Row> = tx
        .query_row(
            "SELECT bucket, fingerprint, status, build, created_at, completed_at, revoke_at, revoke_reason, revoked_by, revoke_from, revoke_skip_descendants, reaped_at FROM versions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?)),
        )
        .optional()?;
    let (
        bucket,
        fingerprint,
        status,
        build,
        created_at,
        completed_at,
        revoke_at,
        reason,
        by,
        from,
        skip,
        reaped_at,
    ) = row.ok_or_else(|| not_found("version", id))?;
    let revocation = revoke_at.map(|at| Revocation {
        at,
        reason: reason.unwrap_or_default(),
        by: by.unwrap_or_default(),
        inherited_from: from,
        skip_descendants: skip,
    });
    let status = match (status.as_str(), &revocation) {
        ("active", _) if reaped_at.is_some() => Status::Reaped,
        ("active", Some(r)) if r.at.as_str() <= now => Status::Revoked,
        ("active", Some(_)) => Status::RevocationScheduled,
        ("active", None) => Status::Active,
        ("failed", _) => Status::Failed,
        _ => Status::Running,
    };
    let mut st =
        tx.prepare("SELECT parent FROM version_parents WHERE child = ?1 ORDER BY parent")?;
    let parents = st
        .query_map([id], |r| r.get(0))?
        .collect::<std::result::Result<Vec<String>, _>>()?;
    drop(st);
    let mut st = tx.prepare("SELECT platform, region, external_id, format, size, sha256 FROM artifacts WHERE version = ?1 ORDER BY platform, region, format")?;
    let artifacts = st
        .query_map([id], |r| {
            Ok(Artifact {
                platform: r.get(0)?,
                region: r.get(1)?,
                external_id: r.get(2)?,
                format: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
                sha256: r.get(5)?,
            })
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Version {
        id: id.to_string(),
        bucket,
        fingerprint,
        status,
        parents,
        revocation,
        build: serde_json::from_str(&build).unwrap_or_default(),
        created_at,
        completed_at,
        artifacts,
    })
}

fn revoked_ids(tx: &Tx<'_>, now: &str) -> Result<BTreeSet<String>> {
    let mut st =
        tx.prepare("SELECT id FROM versions WHERE revoke_at IS NOT NULL AND revoke_at <= ?1")?;
    let v = st
        .query_map([now], |r| r.get(0))?
        .collect::<std::result::Result<BTreeSet<String>, _>>()?;
    Ok(v)
}

fn ensure_channel(tx: &Tx<'_>, bucket: &str, channel: &str) -> Result<()> {
    if tx.query_row(
        "SELECT COUNT(*) FROM buckets WHERE name = ?1",
        [bucket],
        |r| r.get::<_, i64>(0),
    )? == 0
    {
        return Err(not_found("bucket", bucket));
    }
    tx.execute(
        "INSERT INTO channels (bucket, name) VALUES (?1, ?2) ON CONFLICT (bucket, name) DO NOTHING",
        params![bucket, channel],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn assign(
    tx: &Tx<'_>,
    now: &str,
    bucket: &str,
    channel: &str,
    version: Option<&str>,
    previous: Option<&str>,
    author: &str,
    reason: &str,
) -> Result<()> {
    ensure_channel(tx, bucket, channel)?;
    tx.execute(
        "UPDATE channels SET version = ?3 WHERE bucket = ?1 AND name = ?2",
        params![bucket, channel, version],
    )?;
    tx.execute(
        // The sequence is explicit (SQLite would assign the same, PostgreSQL has no rowid);
        // the write lock makes MAX + 1 safe.
        "INSERT INTO channel_history (seq, bucket, channel, version, previous, author, reason, at)
         SELECT COALESCE(MAX(seq), 0) + 1, ?1, ?2, ?3, ?4, ?5, ?6, ?7 FROM channel_history",
        params![bucket, channel, version, previous, author, reason, now],
    )?;
    // Children built on the previous version that track this channel are out of date now.
    let mut outdated = Vec::new();
    if let Some(prev) = previous.filter(|p| Some(*p) != version) {
        let mut st = tx.prepare(
            "SELECT c.id, c.bucket, c.build FROM versions c JOIN version_parents vp ON vp.child = c.id WHERE vp.parent = ?1 AND c.status = 'active' ORDER BY c.ordinal",
        )?;
        let rows: Vec<(String, String, String)> = st
            .query_map([prev], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<std::result::Result<_, _>>()?;
        drop(st);
        for (id, child_bucket, build) in rows {
            let build: Value = serde_json::from_str(&build).unwrap_or_default();
            let tracks = build["parent_channel"].as_str().unwrap_or("production");
            if tracks == channel && load_version(tx, &id, now)?.status == Status::Active {
                outdated.push(json!({"bucket": child_bucket, "version": id}));
            }
        }
    }
    audit::append(
        tx,
        now,
        author,
        "channel.assign",
        &format!("{bucket}/{channel}"),
        &json!({"version": version, "previous": previous, "reason": reason, "outdated": outdated}),
    )
}

/// The newest earlier assignment of a channel that is still promotable (active, not revoked).
fn previous_good(
    tx: &Tx<'_>,
    now: &str,
    bucket: &str,
    channel: &str,
    current: Option<&str>,
) -> Result<Option<String>> {
    let mut st = tx.prepare("SELECT version FROM channel_history WHERE bucket = ?1 AND channel = ?2 AND version IS NOT NULL ORDER BY seq DESC")?;
    let hist: Vec<String> = st
        .query_map(params![bucket, channel], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    drop(st);
    for v in hist {
        if Some(v.as_str()) == current {
            continue;
        }
        if load_version(tx, &v, now)?.status == Status::Active {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `latest` = the newest active, unrevoked version of the bucket (or empty).
fn refresh_latest(tx: &Tx<'_>, now: &str, bucket: &str) -> Result<()> {
    let mut st = tx.prepare(
        "SELECT id FROM versions WHERE bucket = ?1 AND status = 'active' ORDER BY ordinal DESC",
    )?;
    let ids: Vec<String> = st
        .query_map([bucket], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    drop(st);
    let mut newest = None;
    for id in ids {
        if load_version(tx, &id, now)?.status == Status::Active {
            newest = Some(id);
            break;
        }
    }
    ensure_channel(tx, bucket, LATEST)?;
    let current: Option<String> = tx.query_row(
        "SELECT version FROM channels WHERE bucket = ?1 AND name = ?2",
        params![bucket, LATEST],
        |r| r.get(0),
    )?;
    if current != newest {
        assign(
            tx,
            now,
            bucket,
            LATEST,
            newest.as_deref(),
            current.as_deref(),
            SYSTEM,
            "newest active version",
        )?;
    }
    Ok(())
}

/// Makes due revocations take effect: descendants inherit them, channels roll back.
fn apply_due(tx: &Tx<'_>, now: &str) -> Result<usize> {
    let mut st = tx.prepare("SELECT id FROM versions WHERE revoke_at IS NOT NULL AND revoke_at <= ?1 AND revoke_applied = 0 ORDER BY revoke_at, ordinal")?;
    let due: Vec<String> = st
        .query_map([now], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    drop(st);
    let mut applied = 0;
    for id in due {
        let (at, reason, by, skip, from): (String, String, String, bool, Option<String>) = tx.query_row(
            "SELECT revoke_at, revoke_reason, revoked_by, revoke_skip_descendants, revoke_from FROM versions WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        tx.execute(
            "UPDATE versions SET revoke_applied = 1 WHERE id = ?1",
            [&id],
        )?;
        let bucket = bucket_of(tx, &id)?;
        if from.is_none() {
            audit::append(
                tx,
                now,
                SYSTEM,
                "version.revoke.effective",
                &format!("{bucket}/{id}"),
                &json!({"reason": reason, "at": at}),
            )?;
        }
        let mut affected = vec![id.clone()];
        if !skip && from.is_none() {
            for d in descendants_of(tx, &id)? {
                let already: bool = tx.query_row(
                    "SELECT revoke_at IS NOT NULL AND revoke_at <= ?2 FROM versions WHERE id = ?1",
                    params![d, now],
                    |r| r.get(0),
                )?;
                if already {
                    continue;
                }
                tx.execute(
                    "UPDATE versions SET revoke_at = ?2, revoke_reason = ?3, revoked_by = ?4, revoke_from = ?5, revoke_skip_descendants = 0, revoke_applied = 1 WHERE id = ?1",
                    params![d, at, format!("inherited from {id}: {reason}"), by, id],
                )?;
                let db = bucket_of(tx, &d)?;
                audit::append(
                    tx,
                    now,
                    SYSTEM,
                    "version.revoke.inherited",
                    &format!("{db}/{d}"),
                    &json!({"from": id}),
                )?;
                affected.push(d);
            }
        }
        // Channels pointing at anything just revoked fall back (or empty).
        let mut buckets = BTreeSet::new();
        for v in &affected {
            let mut st = tx.prepare("SELECT bucket, name FROM channels WHERE version = ?1")?;
            let chans: Vec<(String, String)> = st
                .query_map([v], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<std::result::Result<_, _>>()?;
            drop(st);
            for (b, c) in chans {
                buckets.insert(b.clone());
                if c == LATEST {
                    continue;
                }
                let target = previous_good(tx, now, &b, &c, Some(v))?;
                assign(
                    tx,
                    now,
                    &b,
                    &c,
                    target.as_deref(),
                    Some(v),
                    SYSTEM,
                    &format!("revoked: {v}"),
                )?;
            }
            buckets.insert(bucket_of(tx, v)?);
        }
        for b in buckets {
            refresh_latest(tx, now, &b)?;
        }
        applied += 1;
    }
    Ok(applied)
}
