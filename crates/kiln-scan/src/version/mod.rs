//! Version ordering per package manager. Each one has its own rules (`~` sorts before the end of
//! a string in dpkg, epochs, revisions); comparing as plain strings or semver gets real archives
//! wrong, so each manager gets a faithful implementation tested against the manager itself where
//! one exists here (dpkg, rpm) and against the manager's own test data otherwise (apk).

pub mod apk;
pub mod dpkg;
pub mod rpm;

use std::cmp::Ordering;

use crate::sbom::Kind;

/// Compares two versions of a package of `kind`; `None` when a Debian version does not parse.
pub fn compare(kind: Kind, a: &str, b: &str) -> Option<Ordering> {
    match kind {
        Kind::Deb => dpkg::compare(a, b),
        Kind::Rpm => Some(rpm::compare(a, b)),
        Kind::Apk => Some(apk::compare(a, b)),
    }
}
