//! Checking a Terraform plan (`terraform show -json`) against the registry: every resource the
//! plan creates or updates (replacements included) is searched for image ids, and each id must
//! belong to a version that is not revoked. An id the registry does not know fails the check or
//! only warns, by configuration. Shared by the run task and `kiln check-plan`.

use kiln_registry::{Registry, Status};
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiResult;

/// Attribute names that hold an image id in the providers people use (AWS `ami`, Azure
/// `source_image_id`, GCP `image`, generic `image_id`).
pub const IMAGE_ATTRIBUTES: &[&str] = &[
    "ami",
    "image",
    "image_id",
    "image_uri",
    "source_ami",
    "source_image",
    "source_image_id",
];

/// What to do with an image id the registry has never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Untracked {
    Fail,
    Warn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A tracked, live image.
    Ok,
    /// Tracked, but scheduled for revocation later: passes, with a warning.
    RevocationScheduled,
    /// Not in the registry, and the configuration only warns.
    UntrackedWarning,
    /// Not in the registry, and the configuration fails on it.
    Untracked,
    /// Revoked (or scheduled for a time that has passed).
    Revoked,
}

impl Verdict {
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Untracked | Verdict::Revoked)
    }
}

/// One image id used by one planned resource.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// The resource address (`aws_instance.web`).
    pub address: String,
    /// Where in the resource the id sits (`input.image_id`).
    pub attribute: String,
    pub image_id: String,
    /// `create`, `update` or `replace`.
    pub action: String,
    pub verdict: Verdict,
    /// The versions holding it, as `bucket/version (status)`.
    pub versions: Vec<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanCheck {
    pub passed: bool,
    /// Resources created or updated.
    pub resources: usize,
    pub usages: Vec<Usage>,
}

impl PlanCheck {
    pub fn summary(&self) -> String {
        let failing = self.usages.iter().filter(|u| u.verdict.fails()).count();
        if self.passed {
            format!(
                "passed: {} image id(s) in {} created or updated resource(s), none revoked or untracked",
                self.usages.len(),
                self.resources
            )
        } else {
            format!(
                "failed: {failing} of {} image id(s) in {} created or updated resource(s) are revoked or untracked",
                self.usages.len(),
                self.resources
            )
        }
    }
}

/// The action a resource change takes, when it creates or updates something.
fn action(change: &Value) -> Option<&'static str> {
    let actions: Vec<&str> = change
        .get("actions")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match actions.as_slice() {
        ["create"] => Some("create"),
        ["update"] => Some("update"),
        ["delete", "create"] | ["create", "delete"] => Some("replace"),
        _ => None,
    }
}

/// Image ids in a planned `after` value: strings under an image attribute, at any depth.
fn image_ids(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if IMAGE_ATTRIBUTES.contains(&k.as_str())
                    && let Some(s) = x.as_str()
                    && !s.is_empty()
                {
                    out.push((p.clone(), s.to_string()));
                }
                image_ids(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                image_ids(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Checks a plan document against the registry.
pub fn check(r: &mut Registry, plan: &Value, untracked: Untracked) -> ApiResult<PlanCheck> {
    let changes = plan
        .get("resource_changes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut usages = Vec::new();
    let mut resources = 0;
    for rc in changes {
        let Some(change) = rc.get("change") else {
            continue;
        };
        let Some(act) = action(change) else { continue };
        resources += 1;
        let address = rc
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let mut ids = Vec::new();
        image_ids(change.get("after").unwrap_or(&Value::Null), "", &mut ids);
        for (attribute, image_id) in ids {
            let versions = r.versions_with_artifact(&image_id)?;
            let names: Vec<String> = versions
                .iter()
                .map(|v| format!("{}/{} ({})", v.bucket, v.id, v.status.as_str()))
                .collect();
            let (verdict, detail) = if versions.is_empty() {
                let v = match untracked {
                    Untracked::Fail => Verdict::Untracked,
                    Untracked::Warn => Verdict::UntrackedWarning,
                };
                (v, format!("{image_id} is not an image the registry knows"))
            } else if let Some(v) = versions.iter().find(|v| v.status == Status::Revoked) {
                let why = v
                    .revocation
                    .as_ref()
                    .map(|r| format!(": {} (by {}, {})", r.reason, r.by, r.at))
                    .unwrap_or_default();
                (
                    Verdict::Revoked,
                    format!("{image_id} is {}/{}, revoked{why}", v.bucket, v.id),
                )
            } else if let Some(v) = versions
                .iter()
                .find(|v| v.status == Status::RevocationScheduled)
            {
                let at = v.revocation.as_ref().map(|r| r.at.as_str()).unwrap_or("?");
                (
                    Verdict::RevocationScheduled,
                    format!(
                        "{image_id} is {}/{}, scheduled for revocation at {at}",
                        v.bucket, v.id
                    ),
                )
            } else {
                let v = &versions[0];
                (
                    Verdict::Ok,
                    format!(
                        "{image_id} is {}/{} ({})",
                        v.bucket,
                        v.id,
                        v.status.as_str()
                    ),
                )
            };
            usages.push(Usage {
                address: address.clone(),
                attribute,
                image_id,
                action: act.to_string(),
                verdict,
                versions: names,
                detail,
            });
        }
    }
    Ok(PlanCheck {
        passed: !usages.iter().any(|u| u.verdict.fails()),
        resources,
        usages,
    })
}
