-- Migration 3: retention. A reaped version keeps its row (ancestry, channel history and the
-- audit log still name it) but loses its artifacts; reaped_at says when.
ALTER TABLE versions ADD COLUMN reaped_at TEXT;
