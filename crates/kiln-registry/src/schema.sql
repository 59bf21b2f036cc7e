-- Kiln registry schema, migration 1. Portable SQL (SQLite now, PostgreSQL later): no
-- AUTOINCREMENT, no SQLite-only types; times are RFC 3339 UTC text.
CREATE TABLE buckets (
  name        TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  labels      TEXT NOT NULL DEFAULT '{}',
  created_at  TEXT NOT NULL
);
CREATE TABLE versions (
  id             TEXT PRIMARY KEY,
  bucket         TEXT NOT NULL REFERENCES buckets(name),
  fingerprint    TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('running', 'failed', 'active')),
  build          TEXT NOT NULL DEFAULT '{}',
  ordinal        INTEGER NOT NULL,
  created_at     TEXT NOT NULL,
  completed_at   TEXT,
  -- Revocation: revoke_at in the future means scheduled; effective once revoke_at <= now and
  -- revoke_applied is 1 (channels moved, descendants reached).
  revoke_at      TEXT,
  revoke_reason  TEXT,
  revoked_by     TEXT,
  revoke_from    TEXT REFERENCES versions(id),
  revoke_skip_descendants INTEGER NOT NULL DEFAULT 0,
  revoke_applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX versions_bucket ON versions(bucket, created_at);
CREATE TABLE version_parents (
  child  TEXT NOT NULL REFERENCES versions(id),
  parent TEXT NOT NULL REFERENCES versions(id),
  PRIMARY KEY (child, parent)
);
CREATE INDEX version_parents_parent ON version_parents(parent);
CREATE TABLE artifacts (
  version     TEXT NOT NULL REFERENCES versions(id),
  platform    TEXT NOT NULL,
  region      TEXT NOT NULL,
  external_id TEXT NOT NULL,
  format      TEXT NOT NULL DEFAULT '',
  size        INTEGER NOT NULL DEFAULT 0,
  sha256      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (version, platform, region, format)
);
CREATE TABLE reports (
  version TEXT NOT NULL REFERENCES versions(id),
  kind    TEXT NOT NULL,
  body    TEXT NOT NULL,
  PRIMARY KEY (version, kind)
);
CREATE TABLE channels (
  bucket     TEXT NOT NULL REFERENCES buckets(name),
  name       TEXT NOT NULL,
  version    TEXT REFERENCES versions(id),
  restricted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, name)
);
CREATE TABLE channel_history (
  seq      INTEGER PRIMARY KEY,
  bucket   TEXT NOT NULL,
  channel  TEXT NOT NULL,
  version  TEXT,
  previous TEXT,
  author   TEXT NOT NULL,
  reason   TEXT NOT NULL,
  at       TEXT NOT NULL
);
CREATE INDEX channel_history_channel ON channel_history(bucket, channel, seq);
CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  at        TEXT NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  subject   TEXT NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT NOT NULL
);
