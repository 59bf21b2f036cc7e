//! Registry connections for request handlers. A connection serves one thread at a time, so
//! each request borrows one from a small stack and gives it back; SQLite in WAL mode and
//! PostgreSQL both let any number of them read while one writes. A PostgreSQL connection that
//! broke (the server restarted) is dropped on return, and the next request opens a fresh one.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use kiln_registry::{Location, Registry, RegistryError};

#[derive(Debug)]
pub struct Pool {
    at: Location,
    idle: Mutex<Vec<Registry>>,
}

impl Pool {
    /// Opens (and migrates) the registry once up front, so a bad path fails at start-up rather
    /// than on the first request.
    pub fn open(at: Location) -> Result<Pool, RegistryError> {
        let first = Registry::open_at(&at)?;
        Ok(Pool {
            at,
            idle: Mutex::new(vec![first]),
        })
    }

    pub fn location(&self) -> &Location {
        &self.at
    }

    pub fn get(&self) -> Result<Conn<'_>, RegistryError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let reg = match idle {
            Some(r) => r,
            None => Registry::open_at(&self.at)?,
        };
        Ok(Conn {
            pool: self,
            reg: Some(reg),
        })
    }
}

/// A borrowed connection; returned to the pool when dropped.
#[derive(Debug)]
pub struct Conn<'a> {
    pool: &'a Pool,
    reg: Option<Registry>,
}

impl Deref for Conn<'_> {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        self.reg.as_ref().expect("present until drop")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Registry {
        self.reg.as_mut().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.reg.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Enough for every worker thread plus blocking mutations; more would only hold files.
            if idle.len() < 16 && !r.is_broken() {
                idle.push(r);
            }
        }
    }
}
