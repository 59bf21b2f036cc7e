//! Counters for the server's `/metrics`: read in one snapshot so they agree with each other.

use crate::Registry;
use crate::error::Result;
use crate::params;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Versions ever started, per bucket (failed and running ones too).
    pub builds: Vec<(String, i64)>,
    /// Revocations recorded: direct, inherited and scheduled.
    pub revocations: i64,
}

impl Registry {
    pub fn stats(&mut self) -> Result<Stats> {
        self.conn.read(|tx| {
            Ok(Stats {
                builds: tx.query_all(
                    "SELECT bucket, COUNT(*) FROM versions GROUP BY bucket ORDER BY bucket",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?,
                revocations: tx.query_row(
                    "SELECT COUNT(*) FROM audit WHERE action IN ('version.revoke', 'version.revoke.inherited', 'version.revoke.schedule')",
                    params![],
                    |r| r.get(0),
                )?,
            })
        })
    }
}
