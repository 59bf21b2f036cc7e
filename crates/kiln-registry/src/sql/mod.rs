//! The storage seam. Every registry operation is written once against [`Tx`], one transaction,
//! and runs on SQLite (the embedded default) or PostgreSQL (teams, many servers). What differs
//! between the two — locking, placeholders, column types, isolation — is decided here and in
//! the two backend files, never in an operation.
//!
//! Writes are serialised on both: SQLite by its IMMEDIATE write lock, PostgreSQL by one
//! transaction-scoped advisory lock. The audit chain has a single head, so a second writer could
//! only ever wait for the first anyway; taking the lock up front means no operation can observe
//! a half-applied neighbour and no invariant depends on the isolation level. Reads never take
//! it: SQLite's WAL and PostgreSQL's REPEATABLE READ snapshots let them run beside a writer.

mod pg;
mod row;
mod sqlite;
mod value;

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;

pub(crate) use pg::message as pg_message;
pub use row::{Row, RowIndex};
pub use value::{FromValue, Params, ToValue, Value};

use crate::error::{DbError, RegistryError, Result};

/// Where a registry lives: `sqlite://PATH` or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl fmt::Display for Location {
    /// Never prints a password: locations end up in logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(url) => f.write_str(&pg::redact(url)),
        }
    }
}

impl From<&std::path::Path> for Location {
    fn from(p: &std::path::Path) -> Self {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Sqlite(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An open connection to either backend.
pub(crate) enum Db {
    Lite(rusqlite::Connection),
    Pg(Box<pg::PgConn>),
}

impl Db {
    /// Connects and brings the schema up to date.
    pub(crate) fn open(at: &Location) -> Result<Db> {
        let mut db = match at {
            Location::Sqlite(path) => Db::Lite(sqlite::open(path)?),
            Location::Postgres(url) => Db::Pg(Box::new(pg::PgConn::connect(url)?)),
        };
        crate::db::migrate(&mut db)?;
        Ok(db)
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Db::Lite(_) => "sqlite",
            Db::Pg(_) => "postgres",
        }
    }

    /// True when the connection can no longer be used (PostgreSQL went away); pools drop it.
    pub(crate) fn is_broken(&self) -> bool {
        match self {
            Db::Lite(_) => false,
            Db::Pg(c) => c.is_closed(),
        }
    }

    /// One write transaction holding the registry's write lock, retried while another writer
    /// holds it for too long.
    pub(crate) fn write<T>(&mut self, f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        match self {
            Db::Lite(c) => sqlite::write(c, f),
            Db::Pg(c) => c.write(f),
        }
    }

    /// A transaction for the build queue: on PostgreSQL it does not take the registry's write
    /// lock, so workers claim jobs side by side (`FOR UPDATE SKIP LOCKED`, see
    /// [`Tx::skip_locked`]); SQLite has one writer anyway.
    pub(crate) fn claim<T>(&mut self, f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        match self {
            Db::Lite(c) => sqlite::write(c, f),
            Db::Pg(c) => c.claim(f),
        }
    }

    /// One read-only transaction on a consistent snapshot.
    pub(crate) fn read<T>(&mut self, f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        match self {
            Db::Lite(c) => sqlite::read(c, f),
            Db::Pg(c) => c.read(f),
        }
    }
}

/// One transaction on either backend. Methods mirror rusqlite's so operations read naturally;
/// SQL uses `?N` placeholders and portable syntax, translated for PostgreSQL by the backend.
pub struct Tx<'a>(TxInner<'a>);

enum TxInner<'a> {
    Lite(&'a rusqlite::Connection),
    Pg(RefCell<pg::PgTx<'a>>),
}

impl fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            TxInner::Lite(_) => "Tx(sqlite)",
            TxInner::Pg(_) => "Tx(postgres)",
        })
    }
}

impl<'a> Tx<'a> {
    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL (rows another transaction holds are passed
    /// over, not waited for); nothing on SQLite, whose write transaction is already exclusive.
    pub fn skip_locked(&self) -> &'static str {
        match self.0 {
            TxInner::Lite(_) => "",
            TxInner::Pg(_) => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Runs a statement; returns the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values();
        match &self.0 {
            TxInner::Lite(c) => sqlite::execute(c, sql, &values),
            TxInner::Pg(t) => t.borrow_mut().execute(sql, &values),
        }
    }

    /// Runs several statements without parameters (migrations).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.0 {
            TxInner::Lite(c) => Ok(c.execute_batch(sql)?),
            TxInner::Pg(t) => t.borrow_mut().execute_batch(sql),
        }
    }

    /// Every row of a query, each turned into a `T` by `f`.
    pub fn query_all<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let values = params.values();
        match &self.0 {
            TxInner::Lite(c) => sqlite::query(c, sql, &values, None, f),
            TxInner::Pg(t) => t.borrow_mut().query(sql, &values, f),
        }
    }

    /// The first row of a query; [`DbError::NoRows`] when there is none (see
    /// [`OptionalExt::optional`]).
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let values = params.values();
        let mut f = Some(f);
        let mut first = |r: &Row<'_>| match f.take() {
            Some(f) => f(r).map(Some),
            None => Ok(None),
        };
        let rows = match &self.0 {
            TxInner::Lite(c) => sqlite::query(c, sql, &values, Some(1), &mut first)?,
            TxInner::Pg(t) => t.borrow_mut().query(sql, &values, &mut first)?,
        };
        rows.into_iter()
            .flatten()
            .next()
            .ok_or(RegistryError::Db(DbError::NoRows))
    }

    /// A statement to run later with [`Stmt::query_map`] (kept for rusqlite's call shape).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_, 'a>> {
        Ok(Stmt {
            tx: self,
            sql: sql.to_string(),
        })
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_, 'a>> {
        self.prepare(sql)
    }
}

/// A query bound to its transaction. Both backends cache prepared statements by their text.
#[derive(Debug)]
pub struct Stmt<'s, 't> {
    tx: &'s Tx<'t>,
    sql: String,
}

impl Stmt<'_, '_> {
    /// The rows, each mapped by `f`, as an iterator of results (rusqlite's shape, so callers
    /// collect into whatever container they need).
    pub fn query_map<P: Params, T>(
        &mut self,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.tx.query_all(&self.sql, params, |r| Ok(f(r)))?;
        Ok(rows.into_iter())
    }

    pub fn query_row<P: Params, T>(
        &mut self,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.tx.query_row(&self.sql, params, f)
    }
}

/// Turns "no rows" into `None`, like rusqlite's extension of the same name.
pub trait OptionalExt<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExt<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(RegistryError::Db(DbError::NoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
