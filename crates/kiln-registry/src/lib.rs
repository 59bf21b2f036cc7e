//! Kiln's registry: the record platform, security and application teams share — buckets (one per
//! image), versions (one per build) with their artifacts, reports and parents, channels with
//! history, revocation that reaches descendants, and a hash-chained audit log.
//!
//! SQLite is the embedded store (WAL, `synchronous=FULL`, foreign keys, one transaction per
//! operation with retry on contention). The SQL is kept portable for the PostgreSQL store to come.
//! Policies (what may enter a channel) are the pipeline's business; the registry enforces only
//! its own invariants and roles.

pub mod audit;
pub mod clock;
pub mod db;
pub mod error;
pub mod model;
pub mod ops;
pub mod outbox;
pub mod retention;
pub mod tokens;

pub use error::{RegistryError, Result};
pub use model::*;
pub use ops::{LATEST, Registry};
pub use outbox::{Delivery, NewDelivery};
pub use retention::{Kept, ReapAction, ReapReport, Reaped};
pub use tokens::{TOKEN_PREFIX, TokenInfo};
