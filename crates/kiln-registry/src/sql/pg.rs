//! The PostgreSQL backend. The `postgres` client is synchronous like the rest of the registry;
//! it drives its own small runtime, so calls made from inside the server's tokio runtime step
//! out of it with `block_in_place` first (see [`blocking`]).
//!
//! Dialect: operations use `?N` placeholders and SQLite's `instr`, rewritten here to `$N` and
//! `strpos`; migrations declare `INTEGER` (64-bit in SQLite) and `TEXT` (byte order in SQLite),
//! rewritten to `BIGINT` and `TEXT COLLATE "C"`, so sizes past 2 GiB fit and `ORDER BY` sorts
//! the same on both databases whatever the cluster's locale.

use std::cell::RefCell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::FromStr;
use std::time::Duration;

use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, IsolationLevel, NoTls, Statement};

use super::row::{Inner, Row};
use super::value::Value;
use super::{Tx, TxInner};
use crate::error::{DbError, RegistryError, Result};

/// The advisory lock every write transaction takes ("kiln" in ASCII).
const WRITE_LOCK: i64 = 0x6b69_6c6e;
/// How long a writer waits for the write lock before the attempt is retried.
const LOCK_TIMEOUT: &str = "20s";
const ATTEMPTS: u32 = 5;

type BoxError = Box<dyn StdError + Sync + Send>;

/// Runs `f` where blocking is allowed: on a tokio worker thread it first hands the thread's
/// other tasks to the rest of the pool, since the client would otherwise start a runtime
/// inside a runtime.
pub(super) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub(crate) struct PgConn {
    client: Option<Client>,
    /// Prepared statements by their (untranslated) text; they live as long as the session.
    cache: HashMap<String, Statement>,
}

impl PgConn {
    pub(super) fn connect(url: &str) -> Result<PgConn> {
        let mut config = postgres::Config::from_str(url).map_err(|e| {
            RegistryError::Invalid(format!("invalid PostgreSQL url {}: {e}", redact(url)))
        })?;
        // As libpq does: the password may come from the environment rather than kiln.hcl.
        if config.get_password().is_none()
            && let Ok(p) = std::env::var("PGPASSWORD")
        {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("kiln");
        }
        config.connect_timeout(Duration::from_secs(10));
        let client = blocking(|| -> Result<Client> {
            let mut c = config.connect(NoTls).map_err(|e| {
                RegistryError::Invalid(format!("connecting to {}: {}", redact(url), message(&e)))
            })?;
            c.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))?;
            Ok(c)
        })?;
        Ok(PgConn {
            client: Some(client),
            cache: HashMap::new(),
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    fn parts(&mut self) -> (&mut Client, &mut HashMap<String, Statement>) {
        (
            self.client.as_mut().expect("present until drop"),
            &mut self.cache,
        )
    }

    /// One transaction of `kind` around `f`, committed: the shape of every access.
    fn in_tx<T>(&mut self, kind: Kind, f: &mut impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        let (client, cache) = self.parts();
        blocking(|| {
            let tx = match kind {
                Kind::Read => client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()?,
                Kind::Write | Kind::Claim => client.transaction()?,
            };
            let mut pg = PgTx { tx, cache };
            if kind == Kind::Write {
                pg.tx
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            }
            let tx = Tx(TxInner::Pg(RefCell::new(pg)));
            let v = f(&tx)?;
            commit(tx)?;
            Ok(v)
        })
    }

    pub(super) fn write<T>(&mut self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        for attempt in 1..=ATTEMPTS {
            match self.in_tx(Kind::Write, &mut f) {
                Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "registry busy; retrying");
                }
                Err(e) if retryable(&e) => return Err(RegistryError::Busy(ATTEMPTS)),
                other => return other,
            }
        }
        Err(RegistryError::Busy(ATTEMPTS))
    }

    /// A READ COMMITTED transaction without the write lock (the build queue's claims).
    pub(super) fn claim<T>(&mut self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.in_tx(Kind::Claim, &mut f)
    }

    pub(super) fn read<T>(&mut self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.in_tx(Kind::Read, &mut f)
    }
}

/// What a transaction is for: writes hold the registry's lock, claims (the queue) run beside
/// each other, reads see one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Claim,
    Read,
}

impl Drop for PgConn {
    /// Closing the client blocks on its runtime too.
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            blocking(move || drop(c));
        }
    }
}

fn commit(tx: Tx<'_>) -> Result<()> {
    match tx.0 {
        TxInner::Pg(cell) => Ok(cell.into_inner().tx.commit()?),
        TxInner::Lite(_) => unreachable!("a PostgreSQL transaction"),
    }
}

fn retryable(e: &RegistryError) -> bool {
    let RegistryError::Db(DbError::Postgres(e)) = e else {
        return false;
    };
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

/// The server's own words when it sent any ("relation … does not exist"), else the client's.
pub(crate) fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

pub(super) struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    cache: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&translate(sql))?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(super) fn execute(&mut self, sql: &str, values: &[Value]) -> Result<usize> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        Ok(self.tx.execute(&st, &params)? as usize)
    }

    pub(super) fn execute_batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.tx.batch_execute(&ddl(sql))?)
    }

    pub(super) fn query<T>(
        &mut self,
        sql: &str,
        values: &[Value],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = self.tx.query(&st, &params)?;
        rows.iter().map(|r| f(&Row(Inner::Pg(r)))).collect()
    }
}

/// Walks SQL outside quoted strings, handing each other character to `f`.
fn outside_quotes(sql: &str, mut f: impl FnMut(&mut String, &str, usize) -> usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut in_quote = false;
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i..].chars().next().expect("in bounds");
        if c == '\'' {
            in_quote = !in_quote;
        }
        if in_quote || c == '\'' {
            out.push(c);
            i += c.len_utf8();
        } else {
            i += f(&mut out, sql, i);
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `?N` → `$N`, `instr(` → `strpos(` (same argument order).
pub(super) fn translate(sql: &str) -> String {
    outside_quotes(sql, |out, sql, i| {
        let rest = &sql[i..];
        if rest.starts_with('?') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            out.push('$');
            return 1;
        }
        let word_start = sql[..i].chars().next_back().is_none_or(|c| !is_word(c));
        if word_start && rest.to_ascii_lowercase().starts_with("instr(") {
            out.push_str("strpos(");
            return "instr(".len();
        }
        let c = rest.chars().next().expect("in bounds");
        out.push(c);
        c.len_utf8()
    })
}

/// A migration, for PostgreSQL: comments dropped, `INTEGER` → `BIGINT`, `TEXT` → `TEXT COLLATE "C"`.
pub(super) fn ddl(sql: &str) -> String {
    let body: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    outside_quotes(&body, |out, sql, i| {
        let rest = &sql[i..];
        let word_start = sql[..i].chars().next_back().is_none_or(|c| !is_word(c));
        for (word, with) in [("INTEGER", "BIGINT"), ("TEXT", "TEXT COLLATE \"C\"")] {
            let ends = rest[word.len().min(rest.len())..]
                .chars()
                .next()
                .is_none_or(|c| !is_word(c));
            if word_start && rest.starts_with(word) && ends {
                out.push_str(with);
                return word.len();
            }
        }
        let c = rest.chars().next().expect("in bounds");
        out.push(c);
        c.len_utf8()
    })
}

/// The url with its password, if any, replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

fn int_as(ty: &Type, n: i64, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => n.to_sql(ty, out),
        Type::INT4 => i32::try_from(n)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(n)?.to_sql(ty, out),
        Type::BOOL => (n != 0).to_sql(ty, out),
        Type::FLOAT8 => (n as f64).to_sql(ty, out),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            n.to_string().as_str().to_sql(&Type::TEXT, out)
        }
        _ => Err(format!("cannot bind an integer to a {ty} parameter").into()),
    }
}

/// Values bind to whatever type PostgreSQL inferred for the parameter, the way SQLite's
/// affinity would have stored them.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => int_as(ty, *n, out),
            Value::Real(x) => match *ty {
                Type::FLOAT4 => (*x as f32).to_sql(ty, out),
                _ => x.to_sql(&Type::FLOAT8, out),
            },
            Value::Text(s) => match *ty {
                Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL => int_as(ty, s.parse()?, out),
                _ => s.as_str().to_sql(&Type::TEXT, out),
            },
            Value::Blob(b) => b.as_slice().to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(match *ty {
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_utf8(raw.to_vec())?),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_functions_are_rewritten_outside_strings() {
        assert_eq!(
            translate("SELECT instr(a, ?1) FROM t WHERE b = '?2' AND c = ?12 AND xinstr(d)"),
            "SELECT strpos(a, $1) FROM t WHERE b = '?2' AND c = $12 AND xinstr(d)"
        );
    }

    #[test]
    fn migrations_get_wide_integers_and_byte_order_text() {
        assert_eq!(
            ddl(
                "CREATE TABLE t (\n  n INTEGER NOT NULL, -- TEXT here is a comment\n  s TEXT DEFAULT 'TEXT', INTEGERS_X TEXTUAL\n);"
            ),
            "CREATE TABLE t (\n  n BIGINT NOT NULL, \n  s TEXT COLLATE \"C\" DEFAULT 'TEXT', INTEGERS_X TEXTUAL\n);"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://kiln:s3cret@db:5432/kiln"),
            "postgres://kiln:***@db:5432/kiln"
        );
        assert_eq!(redact("postgres://kiln@db/kiln"), "postgres://kiln@db/kiln");
    }
}
