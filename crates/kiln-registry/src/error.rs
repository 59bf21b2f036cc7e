use thiserror::Error;

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{actor} ({role}) may not {action}: {why}")]
    Forbidden {
        actor: String,
        role: String,
        action: String,
        why: String,
    },
    #[error("registry database: {0}")]
    Db(#[from] DbError),
    #[error("registry database is busy after {0} attempts")]
    Busy(u32),
    #[error("audit log broken at entry {seq}: {problem}")]
    AuditBroken { seq: i64, problem: String },
    #[error("registry schema version {found} is newer than this kiln understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
}

/// What the database itself reported.
#[derive(Debug, Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", crate::sql::pg_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no rows")]
    NoRows,
    #[error("{0}")]
    Type(String),
}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        RegistryError::Db(e.into())
    }
}

impl From<postgres::Error> for RegistryError {
    fn from(e: postgres::Error) -> Self {
        RegistryError::Db(e.into())
    }
}

pub type Result<T> = std::result::Result<T, RegistryError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(RegistryError::Invalid(msg.into()))
}
