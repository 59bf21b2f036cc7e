//! Kiln's registry: the record platform, security and application teams share — buckets (one per
//! image), versions (one per build) with their artifacts, reports and parents, channels with
//! history, revocation that reaches descendants, and a hash-chained audit log.
//!
//! SQLite is the embedded store and PostgreSQL the shared one (many `kiln serve` processes,
//! workers); every operation is one transaction written once against the seam in [`sql`].
//! Policies (what may enter a channel) are the pipeline's business; the registry enforces only
//! its own invariants and roles.

pub mod audit;
pub mod clock;
pub mod db;
pub mod error;
pub mod model;
pub mod ops;
pub mod outbox;
pub mod queue;
pub mod retention;
pub mod sql;
pub mod stats;
pub mod tokens;

pub use error::{RegistryError, Result};
pub use model::*;
pub use ops::{LATEST, Registry};
pub use outbox::{Delivery, NewDelivery};
pub use queue::{Job, NewJob};
pub use retention::{Kept, ReapAction, ReapReport, Reaped};
pub use sql::Location;
pub use stats::Stats;
pub use tokens::{TOKEN_PREFIX, TokenInfo};
