//! Opening the database: crash-safe settings, versioned migrations, and transactions that retry
//! when another writer holds the lock, so "database is locked" never reaches a user.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{RegistryError, Result};

/// Migrations in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
];

pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| RegistryError::Invalid(format!("creating {}: {e}", dir.display())))?;
    }
    let mut conn = Connection::open(path)?;
    // WAL for concurrent readers, FULL sync so an acknowledged commit survives power loss,
    // foreign keys on, and SQLite's own wait before our retry loop even starts.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

pub fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    with_tx(conn, |tx| {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
        let current = schema_version(tx)?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(RegistryError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                rusqlite::params![
                    i as i64 + 1,
                    crate::clock::format_millis(crate::clock::system_clock()())
                ],
            )?;
        }
        Ok(())
    })
}

fn is_busy(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Db(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Runs `f` in one IMMEDIATE transaction (the write lock is taken up front, so two writers never
/// deadlock upgrading), retrying with backoff while the database is busy.
pub fn with_tx<T>(
    conn: &mut Connection,
    mut f: impl FnMut(&Transaction<'_>) -> Result<T>,
) -> Result<T> {
    const ATTEMPTS: u32 = 60;
    let mut pause = Duration::from_millis(5);
    for attempt in 1..=ATTEMPTS {
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })();
        match result {
            Err(e) if is_busy(&e) && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "registry busy; retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            Err(e) if is_busy(&e) => return Err(RegistryError::Busy(ATTEMPTS)),
            other => return other,
        }
    }
    Err(RegistryError::Busy(ATTEMPTS))
}
