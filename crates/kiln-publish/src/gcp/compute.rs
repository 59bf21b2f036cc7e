//! Compute Engine images: create one from the tar.gz in Cloud Storage, share it with the map's
//! projects through the image's IAM policy (`roles/compute.imageUser` for every service account
//! of each project, which is what runs instances and instance groups there), and deprecate it on
//! revocation. Every mutation is a zonal-free global operation Kiln waits for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::PublishError;
use crate::rest::Rest;

/// The public Compute Engine API.
pub const COMPUTE: &str = "https://compute.googleapis.com";
/// The public Resource Manager API (project id → project number).
pub const RESOURCE_MANAGER: &str = "https://cloudresourcemanager.googleapis.com";
/// The role that lets a principal create disks and instances from an image.
pub const IMAGE_USER: &str = "roles/compute.imageUser";

/// A token for Google APIs: `GOOGLE_OAUTH_ACCESS_TOKEN`, else gcloud's login.
pub fn token() -> Result<String, PublishError> {
    crate::rest::token(
        "GOOGLE_OAUTH_ACCESS_TOKEN",
        "gcloud",
        &["auth", "print-access-token"],
    )
}

/// An image name (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63) for a bucket's version.
pub fn image_name(bucket: &str, version: &str) -> String {
    let mut s: String = format!("{bucket}-{version}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "kiln-");
    }
    s.truncate(63);
    s.trim_end_matches('-').to_string()
}

/// Label keys and values: lowercase letters, digits, `_` and `-`, at most 63.
pub fn label(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(63);
    out
}

fn images(project: &str) -> String {
    format!("/compute/v1/projects/{project}/global/images")
}

/// Waits for a global operation to be `DONE`; its error, if any, becomes ours.
fn wait(rest: &Rest, project: &str, what: &str, op: &Value) -> Result<(), PublishError> {
    let started = Instant::now();
    let mut op = op.clone();
    loop {
        if op["status"].as_str() == Some("DONE") {
            if let Some(e) = op["error"]["errors"].as_array().and_then(|a| a.first()) {
                return Err(PublishError::Cloud(format!(
                    "{what}: {}: {}",
                    e["code"].as_str().unwrap_or("error"),
                    e["message"].as_str().unwrap_or("the operation failed")
                )));
            }
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(PublishError::Cloud(format!(
                "{what}: still running after an hour; re-run to pick it up"
            )));
        }
        std::thread::sleep(Duration::from_secs(if started.elapsed().as_secs() < 10 {
            1
        } else {
            5
        }));
        let name = op["name"].as_str().unwrap_or_default().to_string();
        op = rest
            .expect(
                "GET",
                &format!("/compute/v1/projects/{project}/global/operations/{name}"),
                None,
                false,
            )?
            .expect("not missing_ok")
            .body;
    }
}

/// The image, or `None`.
pub fn get(rest: &Rest, project: &str, name: &str) -> Result<Option<Value>, PublishError> {
    Ok(rest
        .expect("GET", &format!("{}/{name}", images(project)), None, true)?
        .map(|r| r.body))
}

/// What an image is made of.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub name: &'a str,
    pub family: &'a str,
    pub description: String,
    /// `https://storage.googleapis.com/BUCKET/OBJECT`
    pub source: &'a str,
    pub uefi: bool,
    pub location: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// The body of `images.insert`.
pub fn image_body(i: &NewImage<'_>) -> Value {
    let mut features = vec![json!({ "type": "VIRTIO_SCSI_MULTIQUEUE" })];
    if i.uefi {
        features.push(json!({ "type": "UEFI_COMPATIBLE" }));
    }
    json!({
        "name": i.name,
        "family": i.family,
        "description": i.description,
        "rawDisk": { "source": i.source },
        "guestOsFeatures": features,
        "architecture": "X86_64",
        "storageLocations": [i.location],
        "labels": i.labels,
    })
}

/// Creates the image and waits for it.
pub fn create(rest: &Rest, project: &str, i: &NewImage<'_>) -> Result<(), PublishError> {
    let op = rest
        .expect("POST", &images(project), Some(&image_body(i)), false)?
        .expect("not missing_ok")
        .body;
    wait(rest, project, &format!("creating image {}", i.name), &op)
}

/// Sets the image's deprecation state (`DEPRECATED` on revocation, `ACTIVE` on restore).
pub fn deprecate(rest: &Rest, project: &str, name: &str, state: &str) -> Result<(), PublishError> {
    let op = rest
        .expect(
            "POST",
            &format!("{}/{name}/deprecate", images(project)),
            Some(&json!({ "state": state })),
            false,
        )?
        .expect("not missing_ok")
        .body;
    wait(rest, project, &format!("marking {name} {state}"), &op)
}

/// Deletes the image (the reaper's job); `false` when it did not exist.
pub fn delete(rest: &Rest, project: &str, name: &str) -> Result<bool, PublishError> {
    match rest.expect("DELETE", &format!("{}/{name}", images(project)), None, true)? {
        None => Ok(false),
        Some(r) => {
            wait(rest, project, &format!("deleting {name}"), &r.body)?;
            Ok(true)
        }
    }
}

/// The principal for every service account of a project, which needs its number.
pub fn project_principal(crm: &Rest, project: &str) -> Result<String, PublishError> {
    let r = crm
        .expect("GET", &format!("/v3/projects/{project}"), None, false)?
        .expect("not missing_ok");
    let number = r.body["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("projects/"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            PublishError::Cloud(format!(
                "Resource Manager gave no project number for {project}"
            ))
        })?;
    Ok(format!(
        "principalSet://cloudresourcemanager.googleapis.com/projects/{number}/type/ServiceAccount"
    ))
}

/// Gives exactly `members` the image-user role on the image (other roles are left alone).
/// Returns (added, removed).
pub fn share(
    rest: &Rest,
    project: &str,
    name: &str,
    members: &[String],
) -> Result<(usize, usize), PublishError> {
    let mut policy = rest
        .expect(
            "GET",
            &format!("{}/{name}/getIamPolicy", images(project)),
            None,
            false,
        )?
        .expect("not missing_ok")
        .body;
    let mut bindings: Vec<Value> = policy["bindings"].as_array().cloned().unwrap_or_default();
    let have: Vec<String> = bindings
        .iter()
        .filter(|b| b["role"] == IMAGE_USER)
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    let added = members.iter().filter(|m| !have.contains(m)).count();
    let removed = have.iter().filter(|m| !members.contains(m)).count();
    if added == 0 && removed == 0 {
        return Ok((0, 0));
    }
    bindings.retain(|b| b["role"] != IMAGE_USER);
    if !members.is_empty() {
        bindings.push(json!({ "role": IMAGE_USER, "members": members }));
    }
    policy["bindings"] = Value::Array(bindings);
    rest.expect(
        "POST",
        &format!("{}/{name}/setIamPolicy", images(project)),
        Some(&json!({ "policy": policy })),
        false,
    )?;
    Ok((added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_follow_the_rules() {
        assert_eq!(
            image_name("base-debian12", "01JXYZ"),
            "base-debian12-01jxyz"
        );
        assert_eq!(image_name("9lives", "A"), "kiln-9lives-a");
        assert!(image_name(&"x".repeat(80), "v").len() <= 63);
        assert_eq!(label("Team Platform"), "team_platform");
    }
}
