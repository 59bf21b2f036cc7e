//! Kiln's scanner: what is in an image (SBOM from the package database), which known
//! vulnerabilities it carries (offline OSV and Debian security tracker data), and whether anybody
//! baked a secret or a host-specific leftover into it.

pub mod disk;
pub mod error;
pub mod os;
pub mod report;
pub mod root;
pub mod sbom;
pub mod secrets;
pub mod version;
pub mod vuln;

pub use error::ScanError;
pub use os::OsRelease;
pub use report::{ScanReport, scan_tree};
pub use sbom::{Package, Sbom};
pub use version::dpkg::DebVersion;
