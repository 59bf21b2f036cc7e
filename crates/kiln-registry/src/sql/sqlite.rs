//! The SQLite backend: WAL for concurrent readers, `synchronous=FULL` so an acknowledged commit
//! survives power loss, foreign keys on, IMMEDIATE write transactions retried while busy, so
//! "database is locked" never reaches a user.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::row::{Inner, Row};
use super::value::Value;
use super::{Tx, TxInner};
use crate::error::{DbError, RegistryError, Result};

pub(super) fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| RegistryError::Invalid(format!("creating {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path)?;
    // SQLite's own wait comes before our retry loop even starts.
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn is_busy(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Db(DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// An IMMEDIATE transaction (the write lock is taken up front, so two writers never deadlock
/// upgrading), retried with backoff while the database is busy.
pub(super) fn write<T>(
    conn: &mut Connection,
    mut f: impl FnMut(&Tx<'_>) -> Result<T>,
) -> Result<T> {
    const ATTEMPTS: u32 = 60;
    let mut pause = Duration::from_millis(5);
    for attempt in 1..=ATTEMPTS {
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&Tx(TxInner::Lite(&tx)))?;
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

/// A deferred transaction: a WAL snapshot that never waits for the write lock.
pub(super) fn read<T>(conn: &mut Connection, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
    let tx = conn.transaction()?;
    let v = f(&Tx(TxInner::Lite(&tx)))?;
    tx.commit()?;
    Ok(v)
}

pub(super) fn execute(conn: &Connection, sql: &str, values: &[Value]) -> Result<usize> {
    let mut st = conn.prepare_cached(sql)?;
    Ok(st.execute(rusqlite::params_from_iter(values.iter()))?)
}

/// Rows of a query mapped by `f`, at most `limit` of them.
pub(super) fn query<T>(
    conn: &Connection,
    sql: &str,
    values: &[Value],
    limit: Option<usize>,
    mut f: impl FnMut(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
    let mut out = Vec::new();
    while limit.is_none_or(|n| out.len() < n) {
        let Some(r) = rows.next()? else { break };
        out.push(f(&Row(Inner::Lite(r)))?);
    }
    Ok(out)
}

pub(super) fn column(r: &rusqlite::Row<'_>, i: usize) -> Result<Value> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Int(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec()).map_err(|e| DbError::Type(format!("text: {e}")))?,
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(*n),
            Value::Real(x) => ValueRef::Real(*x),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}
