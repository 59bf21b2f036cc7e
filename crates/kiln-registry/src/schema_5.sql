-- Migration 5: API tokens. Only a SHA-256 of each secret is kept; the secret is shown once.
CREATE TABLE tokens (
  name        TEXT PRIMARY KEY,
  role        TEXT NOT NULL CHECK (role IN ('admin', 'platform', 'security', 'ci', 'consumer')),
  hash        TEXT NOT NULL UNIQUE,
  created_at  TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  expires_at  TEXT,
  revoked_at  TEXT
);
-- Plan checks look images up by their cloud or file id.
CREATE INDEX artifacts_external_id ON artifacts(external_id);
