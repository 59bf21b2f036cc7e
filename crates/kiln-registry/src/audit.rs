//! The audit log: every mutation, appended in the same transaction as the mutation, each entry
//! carrying the hash of the previous one. Editing, deleting or reordering any row breaks the
//! chain at that row, and `verify` says where.

use crate::params;
use crate::sql::{OptionalExt, Row, Tx};
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn entry_hash(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    prev: &str,
) -> String {
    let mut h = Sha256::new();
    for field in [
        seq.to_string().as_str(),
        at,
        actor,
        action,
        subject,
        detail,
        prev,
    ] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn append(
    tx: &Tx<'_>,
    at: &str,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    let (last_seq, prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_string()));
    let seq = last_seq + 1;
    let detail = detail.to_string();
    let hash = entry_hash(seq, at, actor, action, subject, &detail, &prev);
    tx.execute(
        "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at, actor, action, subject, detail, prev, hash],
    )?;
    // The head anchors the chain's end: deleting the newest entries leaves it pointing past them.
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![seq, hash],
    )?;
    Ok(())
}

pub fn entries(conn: &Tx<'_>) -> Result<Vec<AuditEntry>> {
    entries_after(conn, 0, i64::MAX)
}

/// One row of `SELECT seq, at, actor, action, subject, detail, prev_hash, hash`.
fn row(r: &Row<'_>) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

/// Entries after `seq`, oldest first, at most `limit`.
pub fn entries_after(conn: &Tx<'_>, seq: i64, limit: i64) -> Result<Vec<AuditEntry>> {
    let mut st = conn.prepare(
        "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = st.query_map(params![seq, limit], row)?;
    rows.collect()
}

/// Walks the chain; returns the number of entries, or the first broken entry and why.
pub fn verify(conn: &Tx<'_>) -> Result<usize> {
    let all = entries(conn)?;
    let mut prev = GENESIS.to_string();
    for (i, e) in all.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        if e.seq != expected_seq {
            return Err(RegistryError::AuditBroken {
                seq: e.seq,
                problem: format!(
                    "expected entry {expected_seq} here: an entry was deleted or reordered"
                ),
            });
        }
        if e.prev_hash != prev {
            return Err(RegistryError::AuditBroken {
                seq: e.seq,
                problem: "its link to the previous entry does not match: an entry before it was changed, deleted or reordered".into(),
            });
        }
        let h = entry_hash(
            e.seq,
            &e.at,
            &e.actor,
            &e.action,
            &e.subject,
            &e.detail,
            &e.prev_hash,
        );
        if h != e.hash {
            return Err(RegistryError::AuditBroken {
                seq: e.seq,
                problem: format!(
                    "its contents do not match its hash: the entry ({} {} by {}) was edited",
                    e.action, e.subject, e.actor
                ),
            });
        }
        prev = e.hash.clone();
    }
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_head WHERE id = 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let last = all.last().map(|e| (e.seq, e.hash.clone()));
    if head != last {
        let seq = head.as_ref().map_or(0, |h| h.0);
        return Err(RegistryError::AuditBroken {
            seq,
            problem: format!(
                "the log ends at entry {} but its head says {seq}: entries at the end were deleted",
                last.map_or(0, |l| l.0)
            ),
        });
    }
    Ok(all.len())
}

impl crate::Registry {
    /// Audit entries whose subject or detail mentions `needle` (a version id, a bucket), oldest
    /// first: a version's trail for the UI.
    pub fn audit_mentioning(&mut self, needle: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.conn.read(|tx| {
            tx.query_all(
                "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit
                 WHERE instr(subject, ?1) > 0 OR instr(detail, ?1) > 0 ORDER BY seq LIMIT ?2",
                params![needle, limit as i64],
                row,
            )
        })
    }

    /// The whole log, oldest first.
    pub fn audit_entries(&mut self) -> Result<Vec<AuditEntry>> {
        self.conn.read(entries)
    }
}
