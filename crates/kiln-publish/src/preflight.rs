//! The checks every cloud's publish makes before its first call, and the principals the account
//! map gives a version. Nothing is shared unless every condition holds: an account map exists and
//! is not empty, the version is active with a passing test report, it is on at least one channel,
//! and (when the target says so) it was built from the default branch.

use kiln_registry::{Registry, Status, Version};
use kiln_spec::AccountMap;
use kiln_spec::accounts::ChannelAccounts;
use kiln_spec::model::PublishTarget;
use serde_json::Value;

use crate::PublishError;

pub(crate) fn refuse<T>(why: impl Into<String>) -> Result<T, PublishError> {
    Err(PublishError::Refused(why.into()))
}

/// This version is not to be published (see [`PublishError::Ineligible`]).
pub(crate) fn ineligible<T>(why: impl Into<String>) -> Result<T, PublishError> {
    Err(PublishError::Ineligible(why.into()))
}

fn registry_err(e: impl std::fmt::Display) -> PublishError {
    PublishError::Cloud(format!("registry: {e}"))
}

/// The channels (other than `latest`) that point at `version`.
pub fn channels_of(
    r: &mut Registry,
    bucket: &str,
    version: &str,
) -> Result<Vec<String>, PublishError> {
    Ok(r.channels(bucket)
        .map_err(registry_err)?
        .into_iter()
        .filter(|c| c.version.as_deref() == Some(version) && c.name != kiln_registry::LATEST)
        .map(|c| c.name)
        .collect())
}

/// Every principal the map gives any of `channels`, each once, in map order.
pub fn principals(map: &AccountMap, channels: &[String]) -> ChannelAccounts {
    fn add(to: &mut Vec<String>, from: &[String]) {
        for x in from {
            if !to.contains(x) {
                to.push(x.clone());
            }
        }
    }
    let mut out = ChannelAccounts::default();
    for (name, acc) in &map.channels {
        if !channels.iter().any(|c| c == name.as_str()) {
            continue;
        }
        add(&mut out.aws.accounts, &acc.aws.accounts);
        add(&mut out.aws.organizations, &acc.aws.organizations);
        add(
            &mut out.aws.organizational_units,
            &acc.aws.organizational_units,
        );
        add(&mut out.azure.subscriptions, &acc.azure.subscriptions);
        add(&mut out.azure.tenants, &acc.azure.tenants);
        add(&mut out.gcp.projects, &acc.gcp.projects);
    }
    out
}

/// What passed the checks.
#[derive(Debug, Clone)]
pub struct Cleared {
    pub version: Version,
    /// The channels the version is on.
    pub channels: Vec<String>,
    /// What the map gives those channels, across clouds (each cloud reads its own part).
    pub principals: ChannelAccounts,
    /// The publish block with the `channel` blocks of those channels applied (their regions
    /// and tags).
    pub target: PublishTarget,
}

/// Every refusal that does not depend on the cloud, checked before any cloud call.
pub fn check(
    r: &mut Registry,
    target: &PublishTarget,
    accounts: Option<&AccountMap>,
    bucket: &str,
    version: &str,
) -> Result<Cleared, PublishError> {
    let Some(map) = accounts else {
        return refuse(
            "the factory has no accounts.yaml (or it could not be read): nothing is shared",
        );
    };
    if map.is_empty() {
        return refuse("accounts.yaml lists no account for any channel: nothing is shared");
    }
    let v = r
        .version(version)
        .map_err(|e| PublishError::Refused(e.to_string()))?;
    if v.bucket != bucket {
        return ineligible(format!(
            "version {version} belongs to {}, not {bucket}",
            v.bucket
        ));
    }
    if v.status != Status::Active {
        return ineligible(format!(
            "{bucket}/{version} is {}: only active versions are published",
            v.status.as_str()
        ));
    }
    let tests = r.report(version, "test").map_err(registry_err)?;
    let passed = tests
        .as_ref()
        .and_then(|t| t["results"].as_array())
        .is_some_and(|rs| !rs.is_empty() && rs.iter().all(|x| x["status"] == "pass"));
    if !passed {
        return ineligible(match tests {
            None => format!(
                "{bucket}/{version} has no test report (built with --no-test?): only tested versions are published"
            ),
            Some(_) => format!(
                "{bucket}/{version} did not pass its tests: only tested versions are published"
            ),
        });
    }
    if let Some(branch) = &target.default_branch {
        let built_from = v.build.get("git_branch").and_then(Value::as_str);
        if built_from != Some(branch.as_str()) {
            return ineligible(format!(
                "{bucket}/{version} was built from {}; publish \"{}\" is limited to branch `{branch}`",
                built_from.map_or(
                    "no branch (detached or not a git checkout)".to_string(),
                    |b| format!("branch `{b}`")
                ),
                target.cloud
            ));
        }
    }
    let channels = channels_of(r, bucket, version)?;
    if channels.is_empty() {
        return ineligible(format!(
            "{bucket}/{version} is on no channel: the account map shares per channel, promote it first"
        ));
    }
    let principals = principals(map, &channels);
    Ok(Cleared {
        version: v,
        target: target.for_channels(&channels),
        channels,
        principals,
    })
}

/// The version's artifact of `format` in the local store, or why publishing cannot go on.
pub fn stored<'v>(
    v: &'v Version,
    format: &str,
    hint: &str,
) -> Result<&'v kiln_registry::Artifact, PublishError> {
    v.artifacts
        .iter()
        .find(|a| a.platform == "file" && a.format == format)
        .ok_or_else(|| {
            PublishError::Refused(format!(
                "{}/{} has no {format} artifact ({hint})",
                v.bucket, v.id
            ))
        })
}

/// Records what a cloud now holds of `version`: an artifact of `platform` in `region` named
/// `id`, with the size and sha256 of the stored file it was made from. Called only after the
/// cloud calls succeeded.
#[allow(
    clippy::too_many_arguments,
    reason = "an artifact's fields, spelled out"
)]
pub fn record(
    r: &mut Registry,
    actor: &kiln_registry::Actor,
    version: &str,
    platform: &str,
    format: &str,
    region: &str,
    id: &str,
    from: &kiln_registry::Artifact,
) -> Result<(), PublishError> {
    r.add_artifact(
        actor,
        version,
        &kiln_registry::Artifact {
            platform: platform.into(),
            region: region.into(),
            external_id: id.into(),
            format: format.into(),
            size: from.size,
            sha256: from.sha256.clone(),
        },
    )
    .map_err(|e| PublishError::Cloud(format!("recording {id}: {e}")))
}
