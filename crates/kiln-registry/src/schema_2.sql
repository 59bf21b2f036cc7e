-- Migration 2: approvals recorded for policy-gated promotion.
CREATE TABLE approvals (
  version TEXT NOT NULL REFERENCES versions(id),
  actor   TEXT NOT NULL,
  role    TEXT NOT NULL,
  at      TEXT NOT NULL,
  PRIMARY KEY (version, actor)
);
