//! Kiln's definitions: a factory repository (`kiln.hcl`, `images/*/image.kiln.hcl`, check files,
//! `accounts.yaml`) parsed and validated into typed values.
//!
//! This crate is the only place that reads definition files. It reports every problem as a
//! [`Diagnostic`] with file, line and column, and only hands out a [`Factory`] when there are
//! none, so the planner, builder and everything after can trust what they are given. It does not
//! look at git, the registry or the build host.

pub mod accounts;
pub mod checks;
pub mod diagnostic;
pub mod factory;
mod hcl;
mod image;
mod load;
pub mod model;
pub mod names;
mod publish;
pub mod source;
pub mod time;
pub mod values;
mod yaml;

pub use accounts::AccountMap;
pub use checks::{Check, CheckKind, FileCheck, parse_checks};
pub use diagnostic::{Diagnostic, Diagnostics, Loc, Severity, Spanned};
pub use factory::FactoryFile;
pub use load::{
    ACCOUNTS_FILE, DEFAULT_FORMATS, FACTORY_FILE, IMAGE_FILE, IMAGES_DIR, Loaded, load_factory,
    parse_accounts, parse_factory_file, parse_image_file,
};
pub use model::*;
pub use names::{ChannelName, FactoryName, ImageName, NameError};
pub use values::{BootMode, ByteSize, Format, GuestPath, ImagePath, Mode};
