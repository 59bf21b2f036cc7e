//! Version ordering per package manager. Each one has its own rules (`~` sorts before the end of
//! a string in dpkg, epochs, revisions); comparing as plain strings or semver gets real archives
//! wrong, so each manager gets a faithful implementation tested against the manager itself.

pub mod dpkg;
