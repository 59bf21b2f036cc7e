//! Kiln's scanner. So far: package version ordering exactly as the package managers do it, which
//! both upstream-update detection (is the archive's version newer than the installed one?) and
//! vulnerability matching (is the installed version older than the fixed one?) depend on.

pub mod version;

pub use version::dpkg::DebVersion;
