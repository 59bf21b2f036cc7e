//! One result row, read the same way from either backend.

use super::value::{FromValue, Value};
use crate::error::{DbError, Result};

/// A column index. Only `usize`, so integer literals infer to it (`r.get(0)`).
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A row borrowed from the backend's own row type for the duration of a mapping closure.
#[derive(Debug)]
pub struct Row<'a>(pub(super) Inner<'a>);

#[derive(Debug)]
pub(super) enum Inner<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` as a `T`; a type mismatch names the column.
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        let v = match &self.0 {
            Inner::Lite(r) => super::sqlite::column(r, i)?,
            Inner::Pg(r) => r.try_get::<_, Value>(i).map_err(DbError::Postgres)?,
        };
        T::from_value(v).map_err(|e| DbError::Type(format!("column {i}: {e}")).into())
    }
}
