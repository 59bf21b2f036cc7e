//! Kiln's scanner: what is in an image (SBOM from the package database), which known
//! vulnerabilities it carries (offline OSV and Debian security tracker data), and whether anybody
//! baked a secret or a host-specific leftover into it.

pub mod error;
pub mod os;
pub mod root;
pub mod sbom;
pub mod version;
pub mod vuln;

pub use error::ScanError;
pub use os::OsRelease;
pub use sbom::{Package, Sbom};
pub use version::dpkg::DebVersion;
