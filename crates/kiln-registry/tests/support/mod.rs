//! Every registry test runs on both backends: `both_backends!(name, …)` turns each
//! `fn name(b: Backend)` into `name::sqlite` and `name::postgres`. PostgreSQL is a throwaway
//! server per test binary (see `kiln_emulators::postgres`), a fresh database per test.

#![allow(dead_code, reason = "each test binary uses part of the support")]

use std::path::PathBuf;

use kiln_registry::clock::Clock;
use kiln_registry::{Location, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An empty registry database; open as many connections to it as a test needs.
#[derive(Debug)]
pub struct Db {
    pub at: Location,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

impl Backend {
    pub fn fresh(self) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let at = match self {
            Backend::Sqlite => Location::Sqlite(dir.path().join("registry.db")),
            Backend::Postgres => {
                Location::Postgres(kiln_emulators::postgres::Postgres::shared().fresh_database())
            }
        };
        Db {
            at,
            backend: self,
            _dir: dir,
        }
    }
}

impl Db {
    pub fn open(&self) -> Registry {
        Registry::open_at(&self.at).unwrap()
    }

    pub fn open_with_clock(&self, clock: Clock) -> Registry {
        Registry::open_at_with_clock(&self.at, clock).unwrap()
    }

    /// A scratch dir beside the database (crash tests keep their logs there).
    pub fn scratch(&self) -> PathBuf {
        self._dir.path().to_path_buf()
    }

    /// The location as one command-line argument (for child processes).
    pub fn arg(&self) -> String {
        match &self.at {
            Location::Sqlite(p) => format!("sqlite://{}", p.display()),
            Location::Postgres(u) => u.clone(),
        }
    }
}

/// The inverse of [`Db::arg`].
pub fn location(arg: &str) -> Location {
    match arg.strip_prefix("sqlite://") {
        Some(p) => Location::Sqlite(p.into()),
        None => Location::Postgres(arg.to_string()),
    }
}

#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::support::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::support::Backend::Postgres)
            }
        }
    )+};
}
