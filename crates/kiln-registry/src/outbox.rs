//! Webhook delivery state. The audit log is the outbox: every registry mutation is already in
//! it, in commit order, so an event cannot be lost between "the build recorded it" and "the
//! notifier saw it". Each target keeps a cursor into the log; enqueueing turns new entries into
//! delivery rows and moves the cursor in one transaction (compare-and-set, so two processes do
//! not enqueue the same entries twice). Delivery is at least once: receivers dedupe on the id.

use crate::params;
use crate::sql::{OptionalExt, Row};
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::error::Result;
use crate::ops::Registry;

/// One event for one target, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub target: String,
    pub seq: i64,
    pub idx: i64,
    pub event: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_at: String,
    pub delivered_at: Option<String>,
}

impl Delivery {
    /// The id receivers dedupe on: stable across retries.
    pub fn id(&self) -> String {
        format!("{}-{}-{}", self.target, self.seq, self.idx)
    }
}

/// `(target, delivered count)`, by target.
pub type DeliveredCounts = Vec<(String, i64)>;

/// An event to enqueue: the audit entry it comes from, its index within that entry.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub seq: i64,
    pub idx: i64,
    pub event: String,
    pub payload: String,
}

const COLUMNS: &str =
    "target, seq, idx, event, payload, status, attempts, last_error, next_at, delivered_at";

fn row(r: &Row<'_>) -> Result<Delivery> {
    Ok(Delivery {
        target: r.get(0)?,
        seq: r.get(1)?,
        idx: r.get(2)?,
        event: r.get(3)?,
        payload: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        next_at: r.get(8)?,
        delivered_at: r.get(9)?,
    })
}

impl Registry {
    /// The target's cursor; a new target starts at the current end of the log (it is not sent
    /// the history from before it was configured).
    pub fn outbox_cursor(&mut self, target: &str) -> Result<i64> {
        self.conn.write(|tx| {
            tx.execute(
                "INSERT INTO webhook_cursor (target, seq) SELECT ?1, COALESCE(MAX(seq), 0) FROM audit WHERE true ON CONFLICT (target) DO NOTHING",
                [target],
            )?;
            tx.query_row(
                "SELECT seq FROM webhook_cursor WHERE target = ?1",
                [target],
                |r| r.get(0),
            )
        })
    }

    /// Audit entries after `seq`, oldest first.
    pub fn audit_after(&mut self, seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        self.conn
            .read(|tx| crate::audit::entries_after(tx, seq, limit as i64))
    }

    /// Moves the cursor from `from` to `to` and stores `new` deliveries, atomically. `false`
    /// when another process moved the cursor first (nothing is stored then).
    pub fn outbox_enqueue(
        &mut self,
        target: &str,
        from: i64,
        to: i64,
        new: &[NewDelivery],
    ) -> Result<bool> {
        let now = self.now();
        self.conn.write(|tx| {
            let moved = tx.execute(
                "UPDATE webhook_cursor SET seq = ?3 WHERE target = ?1 AND seq = ?2",
                params![target, from, to],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            for d in new {
                tx.execute(
                    "INSERT INTO webhook_deliveries (target, seq, idx, event, payload, status, next_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) ON CONFLICT DO NOTHING",
                    params![target, d.seq, d.idx, d.event, d.payload, now],
                )?;
            }
            Ok(true)
        })
    }

    /// Pending deliveries of a target whose time has come, oldest first.
    pub fn outbox_due(&mut self, target: &str, limit: usize) -> Result<Vec<Delivery>> {
        let now = self.now();
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE target = ?1 AND status = 'pending' AND next_at <= ?2 ORDER BY seq, idx LIMIT ?3"
        );
        self.conn
            .read(|tx| tx.query_all(&sql, params![target, now, limit as i64], row))
    }

    /// When the next pending delivery of a target is due, if any is pending.
    pub fn outbox_next_due(&mut self, target: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .read(|tx| {
                tx.query_row(
                    "SELECT MIN(next_at) FROM webhook_deliveries WHERE target = ?1 AND status = 'pending'",
                    [target],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
            })?
            .flatten())
    }

    /// Records an attempt. A failure is retried at `retry_at`, or given up (`dead`) when `None`.
    pub fn outbox_record(
        &mut self,
        d: &Delivery,
        result: std::result::Result<(), String>,
        retry_at: Option<String>,
    ) -> Result<()> {
        let now = self.now();
        let (status, error, next) = match (&result, retry_at) {
            (Ok(()), _) => ("delivered", None, d.next_at.clone()),
            (Err(e), Some(at)) => ("pending", Some(e.clone()), at),
            (Err(e), None) => ("dead", Some(e.clone()), d.next_at.clone()),
        };
        self.conn.write(|tx| {
            tx.execute(
                "UPDATE webhook_deliveries SET status = ?4, attempts = attempts + 1, last_error = ?5, next_at = ?6, delivered_at = CASE WHEN ?4 = 'delivered' THEN ?7 ELSE delivered_at END
                 WHERE target = ?1 AND seq = ?2 AND idx = ?3",
                params![d.target, d.seq, d.idx, status, error, next, now],
            )?;
            Ok(())
        })
    }

    /// Every delivery that is not delivered (pending or dead), and the delivered count per
    /// target: what `kiln notify status` shows.
    pub fn outbox_undelivered(&mut self) -> Result<(Vec<Delivery>, DeliveredCounts)> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE status <> 'delivered' ORDER BY target, seq, idx"
        );
        self.conn.read(|tx| {
            let open = tx.query_all(&sql, params![], row)?;
            let done = tx.query_all(
                "SELECT target, COUNT(*) FROM webhook_deliveries WHERE status = 'delivered' GROUP BY target ORDER BY target",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((open, done))
        })
    }

    /// Puts dead deliveries back in the queue (after the receiver is fixed).
    pub fn outbox_retry_dead(&mut self, target: Option<&str>) -> Result<usize> {
        let now = self.now();
        self.conn.write(|tx| {
            tx.execute(
                "UPDATE webhook_deliveries SET status = 'pending', next_at = ?2 WHERE status = 'dead' AND (CAST(?1 AS TEXT) IS NULL OR target = ?1)",
                params![target, now],
            )
        })
    }
}
