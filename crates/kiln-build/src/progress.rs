//! How the builder reports progress; the binary decides how to show it.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub enum StageEvent<'a> {
    /// Work starts; `detail` says what is being done.
    Start(&'a str),
    /// The stage's output was found in the cache.
    Cached,
    Done(Duration),
    Failed,
    /// A result worth showing (the seal summary, an artifact).
    Note(&'a str),
}

pub trait Progress: Sync {
    fn event(&self, image: &str, stage: &str, event: StageEvent<'_>);
}

/// Reports nothing (library use, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &str, _: &str, _: StageEvent<'_>) {}
}
