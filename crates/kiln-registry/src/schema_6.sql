-- Migration 6: the build queue (`kiln build --queue`, `kiln worker`). A job is one image to
-- build; it is ready when every job it depends on is done, and a worker holds it under a lease
-- that its heartbeat extends. A lapsed lease makes the job ready again.
CREATE TABLE build_jobs (
  id          TEXT PRIMARY KEY,
  batch       TEXT NOT NULL,
  image       TEXT NOT NULL,
  fingerprint TEXT NOT NULL DEFAULT '',
  status      TEXT NOT NULL CHECK (status IN ('queued', 'leased', 'done', 'failed')),
  worker      TEXT,
  lease_until TEXT,
  attempts    INTEGER NOT NULL DEFAULT 0,
  version     TEXT,
  error       TEXT,
  created_at  TEXT NOT NULL,
  finished_at TEXT
);
CREATE INDEX build_jobs_ready ON build_jobs(status, created_at, id);
CREATE TABLE build_job_deps (
  job        TEXT NOT NULL REFERENCES build_jobs(id),
  depends_on TEXT NOT NULL REFERENCES build_jobs(id),
  PRIMARY KEY (job, depends_on)
);
CREATE INDEX build_job_deps_on ON build_job_deps(depends_on);
