//! The build queue: `kiln build --queue` enqueues a plan's images with their dependencies, and
//! `kiln worker` processes lease the ones that are ready. The database does the locking: a
//! claim is one transaction that picks the oldest ready job with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL (so workers never wait on each other's rows) and stamps it with a lease. A worker
//! extends its lease while it builds; a lease that lapses (the worker died) makes the job ready
//! again, up to [`MAX_ATTEMPTS`] times. A failed job fails every job that depends on it.

use std::time::Duration;

use serde_json::json;

use crate::audit;
use crate::clock::format_millis;
use crate::error::{Result, invalid};
use crate::model::{Actor, Role};
use crate::ops::{Registry, require};
use crate::params;
use crate::sql::{OptionalExt, Row, Tx};

/// Leases a job may lapse before it is given up (a build that kills its worker every time).
pub const MAX_ATTEMPTS: i64 = 3;

/// An image to build and the images of the same batch it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub image: String,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    pub id: String,
    pub batch: String,
    pub image: String,
    /// queued, leased, done or failed.
    pub status: String,
    pub worker: Option<String>,
    pub lease_until: Option<String>,
    pub attempts: i64,
    /// The version the job recorded (or found already recorded with its fingerprint).
    pub version: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, batch, image, status, worker, lease_until, attempts, version, error, created_at, finished_at";

fn job(r: &Row<'_>) -> Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        batch: r.get(1)?,
        image: r.get(2)?,
        status: r.get(3)?,
        worker: r.get(4)?,
        lease_until: r.get(5)?,
        attempts: r.get(6)?,
        version: r.get(7)?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
}

/// Fails every queued job that waits (directly or not) on a failed one.
fn fail_dependents(tx: &Tx<'_>, now: &str) -> Result<()> {
    loop {
        let n = tx.execute(
            "UPDATE build_jobs SET status = 'failed', error = 'a job it depends on failed', finished_at = ?1
             WHERE status = 'queued' AND id IN (
               SELECT d.job FROM build_job_deps d JOIN build_jobs p ON p.id = d.depends_on WHERE p.status = 'failed')",
            [now],
        )?;
        if n == 0 {
            return Ok(());
        }
    }
}

impl Registry {
    fn ms_from_now(&self, d: Duration) -> String {
        format_millis((self.clock)() + d.as_millis() as u64)
    }

    /// Enqueues one batch; returns its id. Dependencies name images of the same batch (a
    /// parent outside the batch is already built).
    pub fn enqueue(&mut self, actor: &Actor, jobs: &[NewJob]) -> Result<String> {
        require(
            actor,
            &[Role::Admin, Role::Platform, Role::Ci],
            "enqueue builds",
            "queueing builds needs the ci, platform or admin role",
        )?;
        let batch = ulid::Ulid::new().to_string();
        let ids: Vec<(String, &NewJob)> = jobs
            .iter()
            .map(|j| (ulid::Ulid::new().to_string(), j))
            .collect();
        for (_, j) in &ids {
            for d in &j.depends_on {
                if !jobs.iter().any(|o| o.image == *d) {
                    return invalid(format!(
                        "job `{}` depends on `{d}`, which is not in the batch",
                        j.image
                    ));
                }
            }
        }
        self.tx(|tx, now| {
            for (id, j) in &ids {
                tx.execute(
                    "INSERT INTO build_jobs (id, batch, image, status, created_at) VALUES (?1, ?2, ?3, 'queued', ?4)",
                    params![id, batch, j.image, now],
                )?;
            }
            for (id, j) in &ids {
                for d in &j.depends_on {
                    let on = ids
                        .iter()
                        .find(|(_, o)| o.image == *d)
                        .map(|(i, _)| i)
                        .expect("checked above");
                    tx.execute(
                        "INSERT INTO build_job_deps (job, depends_on) VALUES (?1, ?2)",
                        params![id, on],
                    )?;
                }
            }
            let images: Vec<&str> = jobs.iter().map(|j| j.image.as_str()).collect();
            audit::append(tx, now, &actor.name, "queue.enqueue", &batch, &json!({ "images": images }))
        })?;
        Ok(batch)
    }

    /// Leases the oldest job whose dependencies are all done, for `lease`; `None` when nothing
    /// is ready. A job whose lease lapsed is ready again (or failed after [`MAX_ATTEMPTS`]).
    pub fn lease_job(&mut self, worker: &str, lease: Duration) -> Result<Option<Job>> {
        let until = self.ms_from_now(lease);
        let now = self.now();
        let sql = "SELECT id FROM build_jobs j
             WHERE (j.status = 'queued' OR (j.status = 'leased' AND j.lease_until < ?1))
               AND NOT EXISTS (SELECT 1 FROM build_job_deps d JOIN build_jobs p ON p.id = d.depends_on
                               WHERE d.job = j.id AND p.status <> 'done')
             ORDER BY j.created_at, j.id LIMIT 1";
        self.conn.claim(|tx| {
            tx.execute(
                "UPDATE build_jobs SET status = 'failed', finished_at = ?1,
                   error = 'its lease lapsed ' || attempts || ' times: the build keeps killing its worker'
                 WHERE status = 'leased' AND lease_until < ?1 AND attempts >= ?2",
                params![now, MAX_ATTEMPTS],
            )?;
            fail_dependents(tx, &now)?;
            let Some(id) = tx
                .query_row(&format!("{sql}{}", tx.skip_locked()), [&now], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
            else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE build_jobs SET status = 'leased', worker = ?2, lease_until = ?3, attempts = attempts + 1 WHERE id = ?1",
                params![id, worker, until],
            )?;
            tx.query_row(
                &format!("SELECT {COLUMNS} FROM build_jobs WHERE id = ?1"),
                [&id],
                job,
            )
            .map(Some)
        })
    }

    /// Extends a lease; `false` when the worker no longer holds it (it lapsed and another
    /// worker took the job), and the worker should stop.
    pub fn heartbeat(&mut self, job: &str, worker: &str, lease: Duration) -> Result<bool> {
        let until = self.ms_from_now(lease);
        self.conn.claim(|tx| {
            Ok(tx.execute(
                "UPDATE build_jobs SET lease_until = ?3 WHERE id = ?1 AND worker = ?2 AND status = 'leased'",
                params![job, worker, until],
            )? == 1)
        })
    }

    /// Records a job's end: done with the version it recorded, or failed (which fails its
    /// dependents). `false` when the worker had lost the lease; nothing is changed then.
    pub fn finish_job(
        &mut self,
        job: &str,
        worker: &str,
        outcome: std::result::Result<Option<String>, String>,
    ) -> Result<bool> {
        let now = self.now();
        self.conn.claim(|tx| {
            let (status, version, error) = match &outcome {
                Ok(v) => ("done", v.clone(), None),
                Err(e) => ("failed", None, Some(e.clone())),
            };
            let n = tx.execute(
                "UPDATE build_jobs SET status = ?3, version = ?4, error = ?5, finished_at = ?6
                 WHERE id = ?1 AND worker = ?2 AND status = 'leased'",
                params![job, worker, status, version, error, now],
            )?;
            fail_dependents(tx, &now)?;
            Ok(n == 1)
        })
    }

    /// The jobs of one batch, or of every batch, oldest first.
    pub fn jobs(&mut self, batch: Option<&str>) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM build_jobs WHERE (CAST(?1 AS TEXT) IS NULL OR batch = ?1) ORDER BY created_at, id"
        );
        self.conn.read(|tx| tx.query_all(&sql, [batch], job))
    }

    /// Jobs still to run (queued or leased), across batches.
    pub fn jobs_open(&mut self) -> Result<i64> {
        self.conn.read(|tx| {
            tx.query_row(
                "SELECT COUNT(*) FROM build_jobs WHERE status IN ('queued', 'leased')",
                params![],
                |r| r.get(0),
            )
        })
    }
}
