//! The shared artifact store for teams: `store { url = "s3://bucket/prefix" }`.
//!
//! Objects are content-addressed (`PREFIX/sha256/HEX`), so a disk two versions share is stored
//! once and an object's key says what its bytes must hash to. Uploads go in multipart parts,
//! each with its own SHA-256 checksum; an upload that was cut off (the process killed, the
//! endpoint gone) resumes from the parts the store already holds, checked against the local
//! file before they are reused. Downloads are hashed on the way in and refused on mismatch.
//! The local `file://` store stays the default and lives in the builder.

pub mod aws;
mod error;
pub mod s3;

pub use error::{Result, StoreError};
pub use s3::{S3Store, Upload};
