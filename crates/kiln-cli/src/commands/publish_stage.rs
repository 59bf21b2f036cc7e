//! The publish stage of `kiln build`: every version the build promoted goes to each cloud
//! kiln.hcl publishes to, and every version a promotion pushed off a channel loses that
//! channel's sharing. A version that is not to be published (untested, built from another
//! branch, on channels the map shares with nobody there) is reported and skipped; a map that is
//! missing or empty, or a cloud call that fails, fails the build.

use std::path::Path;

use kiln_pipeline::{ImageResult, Outcome};
use kiln_publish::PublishError;
use kiln_registry::{Actor, Registry};
use kiln_spec::Factory;
use serde::Serialize;

use super::publish::{Channels, Options, channel_map, moved, publish_to, reconcile_after};
use crate::cli::CloudEndpoints;

/// One image's publish to one cloud.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub image: String,
    pub cloud: String,
    /// `published`, `not published` or `failed`.
    pub result: &'static str,
    pub detail: String,
    /// The cloud's report (as `kiln publish --format json` prints it) when published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    #[serde(skip)]
    pub lines: Vec<String>,
}

/// Publishes what the build promoted, then reconciles the versions it displaced.
/// `say` receives each line as it is known (the build's progress).
pub fn run(
    factory: Option<&Path>,
    f: &Factory,
    r: &mut Registry,
    actor: &Actor,
    results: &[ImageResult],
    before: &Channels,
    say: &dyn Fn(&str),
) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if f.settings.publish.is_empty() {
        return Ok(entries);
    }
    let opts = Options {
        parallel: 16,
        dry_run: false,
        endpoints: CloudEndpoints::from_env(),
        aws_endpoint: std::env::var("KILN_AWS_ENDPOINT_URL")
            .ok()
            .filter(|s| !s.is_empty()),
        quiet: true,
    };
    for res in results {
        let Outcome::Built {
            version,
            promoted_to: Some(channel),
            ..
        } = &res.outcome
        else {
            continue;
        };
        for target in &f.settings.publish {
            say(&format!(
                "==> {}: publish {} ({version} on {channel})",
                res.image, target.cloud
            ));
            let e = match publish_to(r, &f.root, f, target, &res.image, version, &opts, actor) {
                Ok(p) => Entry {
                    image: res.image.clone(),
                    cloud: target.cloud.clone(),
                    result: "published",
                    detail: p.lines.last().cloned().unwrap_or_default(),
                    report: Some(p.json),
                    lines: p.lines,
                },
                Err(err) => {
                    let ineligible = matches!(
                        err.downcast_ref::<PublishError>(),
                        Some(PublishError::Ineligible(_))
                    );
                    let detail = format!("{err:#}");
                    Entry {
                        image: res.image.clone(),
                        cloud: target.cloud.clone(),
                        result: if ineligible {
                            "not published"
                        } else {
                            "failed"
                        },
                        lines: vec![if ineligible {
                            detail.clone()
                        } else {
                            format!("FAILED: {detail}")
                        }],
                        detail,
                        report: None,
                    }
                }
            };
            for l in &e.lines {
                say(&format!("    {l}"));
            }
            entries.push(e);
        }
    }
    let promoted: Vec<&str> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Built { version, .. } => Some(version.as_str()),
            _ => None,
        })
        .collect();
    let displaced: Vec<String> = moved(before, &channel_map(r)?)
        .into_iter()
        .filter(|v| !promoted.contains(&v.as_str()))
        .collect();
    if !displaced.is_empty() {
        say(&format!(
            "==> reconciling {} version(s) moved off a channel",
            displaced.len()
        ));
        match reconcile_after(factory, &displaced) {
            Ok(lines) => lines.iter().for_each(|l| say(l)),
            Err(err) => {
                let detail = format!("{err:#}");
                say(&format!("    FAILED: {detail}"));
                entries.push(Entry {
                    image: String::new(),
                    cloud: "reconcile".into(),
                    result: "failed",
                    lines: vec![detail.clone()],
                    detail,
                    report: None,
                });
            }
        }
    }
    Ok(entries)
}
