//! Kiln's native builder: a bootable, sealed disk image from a validated image definition, with
//! no hypervisor in the loop.
//!
//! Stages (bootstrap or parent tree → packages → tree → disk → exports) are cached by the hash of
//! their inputs in a [`cache::StageCache`]. Every external tool runs through [`cmd::Task`];
//! everything that must be released (work directories, namespaces) is owned by a guard.
//! Booting and checking images is `kiln-test`'s job; recording them is the registry's.

pub mod archive;
pub mod bootcfg;
pub mod bootstrap;
pub mod builder;
pub mod cache;
pub mod chroot;
pub mod cmd;
pub mod disk;
pub mod dpkg;
pub mod error;
pub mod export;
pub mod fingerprint;
pub mod hash;
pub mod hostsrc;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod provision;
pub mod seal;
pub mod vhd;

pub use builder::{BuildOptions, BuildOutput, Builder};
pub use error::BuildError;
pub use manifest::Manifest;
pub use progress::{Progress, Silent, StageEvent};
