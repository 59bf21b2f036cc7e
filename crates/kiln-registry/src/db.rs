//! Versioned migrations, shared by both backends (PostgreSQL adapts their column types, see
//! `sql::pg`). Each runs in the write transaction, so two processes starting at once on an
//! empty PostgreSQL apply every migration exactly once.

use crate::error::{RegistryError, Result};
use crate::sql::{Db, Tx};

/// Migrations in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
];

/// The newest schema this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn schema_version(tx: &Tx<'_>) -> Result<i64> {
    tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        crate::params![],
        |r| r.get(0),
    )
}

pub(crate) fn migrate(db: &mut Db) -> Result<()> {
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
        let current = schema_version(tx)?;
        if current > SCHEMA_VERSION {
            return Err(RegistryError::SchemaTooNew {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                crate::params![
                    i as i64 + 1,
                    crate::clock::format_millis(crate::clock::system_clock()())
                ],
            )?;
        }
        Ok(())
    })
}
