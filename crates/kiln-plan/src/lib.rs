//! Kiln's planner: which images must be (re)built, why, and in which order.
//!
//! Inputs are a validated [`kiln_spec::Factory`] and a selection (changed files since a git
//! revision, names, or everything); the output is a [`Plan`] of waves cut into batches. The
//! planner never builds anything and never reads the registry: upstream package updates and
//! out-of-date children arrive later as more seeds.

pub mod changes;
pub mod graph;
pub mod plan;
pub mod render;

pub use changes::{ChangeError, Changes, changes_since};
pub use graph::{GraphError, ImageGraph};
pub use plan::{Batch, Plan, PlanOptions, PlannedImage, Reason, plan};
