-- Migration 4: webhook deliveries. The audit log is the outbox: each target reads it from a
-- cursor, and every event it turns into has a delivery row recording its fate.
CREATE TABLE webhook_cursor (
  target TEXT PRIMARY KEY,
  seq    INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
  target       TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  idx          INTEGER NOT NULL,
  event        TEXT NOT NULL,
  payload      TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  next_at      TEXT NOT NULL,
  delivered_at TEXT,
  PRIMARY KEY (target, seq, idx)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(target, status, next_at);
