//! From a set of images that must be built (the seeds, each with a reason) to ordered waves.
//!
//! A wave holds images whose selected ancestors are all in earlier waves, so a wave can build in
//! parallel. `max_parallel` then cuts a wave into batches of at most N that run one after another:
//! a base-image change across 300 descendants must not start 300 builds at once.

use std::fmt;
use std::num::NonZeroUsize;

use crate::graph::ImageGraph;

/// Why an image is in the plan. When several apply, the most direct one is kept
/// (declaration order is priority order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Files under the image's directory changed.
    Changed,
    /// The upstream source it builds from changed.
    Source(String),
    /// Named on the command line, or `--all`.
    Requested,
    /// An ancestor is rebuilt; names the parent that is in the plan.
    Parent(String),
    /// The archive has newer packages than a version on a channel; says how many.
    Upstream(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Changed => f.write_str("changed"),
            Reason::Source(s) => write!(f, "source {s}"),
            Reason::Requested => f.write_str("requested"),
            Reason::Parent(p) => write!(f, "parent {p}"),
            Reason::Upstream(u) => write!(f, "upstream: {u}"),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Add every descendant of a seed.
    pub cascade: bool,
    /// Largest batch; `None` leaves waves whole.
    pub max_parallel: Option<NonZeroUsize>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            cascade: true,
            max_parallel: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedImage {
    pub image: String,
    pub reason: Reason,
}

/// A group of images that may build at the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// 0-based wave this batch belongs to.
    pub wave: usize,
    pub images: Vec<PlannedImage>,
}

/// Batches in execution order: each depends only on earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub batches: Vec<Batch>,
}

impl Plan {
    pub fn image_count(&self) -> usize {
        self.batches.iter().map(|b| b.images.len()).sum()
    }

    pub fn wave_count(&self) -> usize {
        self.batches.last().map_or(0, |b| b.wave + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Every planned image with its batch index, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &PlannedImage)> {
        self.batches
            .iter()
            .enumerate()
            .flat_map(|(i, b)| b.images.iter().map(move |p| (i, p)))
    }
}

/// Plans `seeds` on `graph`.
pub fn plan(graph: &ImageGraph, seeds: &[(usize, Reason)], opts: PlanOptions) -> Plan {
    let n = graph.len();
    let mut reason: Vec<Option<Reason>> = vec![None; n];
    for (i, r) in seeds {
        let slot = &mut reason[*i];
        if slot.as_ref().is_none_or(|cur| r < cur) {
            *slot = Some(r.clone());
        }
    }
    // Walking in topological order, a node's parents are final before the node is visited, so
    // one pass cascades to every descendant, and computes waves:
    // depth(n) = max over parents p of depth(p) + [p selected].
    let mut depth = vec![0usize; n];
    for &i in graph.topo_order() {
        let mut d = 0;
        for &p in graph.parents(i) {
            let selected = reason[p].is_some();
            d = d.max(depth[p] + usize::from(selected));
            if opts.cascade && selected && reason[i].is_none() {
                reason[i] = Some(Reason::Parent(graph.name(p).to_string()));
            }
        }
        depth[i] = d;
    }

    let mut by_wave: Vec<Vec<PlannedImage>> = Vec::new();
    for (i, r) in reason.into_iter().enumerate() {
        if let Some(r) = r {
            let w = depth[i];
            if by_wave.len() <= w {
                by_wave.resize_with(w + 1, Vec::new);
            }
            by_wave[w].push(PlannedImage {
                image: graph.name(i).to_string(),
                reason: r,
            });
        }
    }
    let mut batches = Vec::new();
    for (wave, mut images) in by_wave.into_iter().filter(|w| !w.is_empty()).enumerate() {
        images.sort_by(|a, b| a.image.cmp(&b.image));
        let size = opts.max_parallel.map_or(images.len(), NonZeroUsize::get);
        let mut rest = images;
        while !rest.is_empty() {
            let tail = rest.split_off(size.min(rest.len()));
            batches.push(Batch { wave, images: rest });
            rest = tail;
        }
    }
    Plan { batches }
}
