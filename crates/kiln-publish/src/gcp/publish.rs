//! Publishing one version to GCP, failing closed like the other clouds: the common checks, then
//! the map must give the version's channels a project. Then the `gce` tar.gz goes to the Cloud
//! Storage bucket, a global image is created from it (UEFI_COMPATIBLE for UEFI images), and the
//! image-user role is given to exactly the projects the map names for the version's channels.
//! The image is recorded (by self-link) only after all of that worked; a re-run finds the object
//! by its sha256 and the image by its name.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_registry::{Actor, Registry, Status};
use kiln_spec::AccountMap;
use kiln_spec::model::{CloudSettings, PublishTarget};
use serde::Serialize;
use serde_json::Value;

use super::compute::{self, NewImage};
use super::storage::{Bucket, ObjectReport};
use crate::PublishError;
use crate::preflight::{self, refuse};
use crate::rest::Rest;

/// Where the GCP calls go; `None`: Google's public endpoints.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub storage: Option<String>,
    pub compute: Option<String>,
    pub resource_manager: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub target: &'a PublishTarget,
    pub accounts: Option<&'a AccountMap>,
    pub endpoints: Endpoints,
    /// The version's `gce` tar.gz in the store.
    pub disk: &'a Path,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GcpReport {
    pub bucket: String,
    pub version: String,
    pub channels: Vec<String>,
    pub projects: Vec<String>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub created: bool,
    pub members_added: usize,
    pub members_removed: usize,
}

fn place_of(target: &PublishTarget) -> Result<(String, String), PublishError> {
    match &target.settings {
        CloudSettings::Gcp { project, bucket } => Ok((project.clone(), bucket.clone())),
        _ => refuse("not a publish \"gcp\" block"),
    }
}

/// The management APIs, reached with one token.
pub(crate) struct Apis {
    pub compute: Rest,
    pub crm: Rest,
    pub token: String,
}

pub(crate) fn apis(e: &Endpoints) -> Result<Apis, PublishError> {
    let token = compute::token()?;
    Ok(Apis {
        compute: Rest::new(
            e.compute.as_deref().unwrap_or(compute::COMPUTE),
            token.clone(),
        ),
        crm: Rest::new(
            e.resource_manager
                .as_deref()
                .unwrap_or(compute::RESOURCE_MANAGER),
            token.clone(),
        ),
        token,
    })
}

/// The Cloud Storage bucket uploads go to.
pub(crate) fn store(e: &Endpoints, bucket: &str, token: String) -> Bucket {
    Bucket::new(
        e.storage.as_deref().unwrap_or(super::storage::STORAGE),
        bucket,
        token,
    )
}

/// The object a version's tar.gz is uploaded to (and the reaper deletes).
pub fn object_name(bucket: &str, version: &str) -> String {
    format!("{bucket}/{version}.tar.gz")
}

fn members(crm: &Rest, projects: &[String]) -> Result<Vec<String>, PublishError> {
    projects
        .iter()
        .map(|p| compute::project_principal(crm, p))
        .collect()
}

/// The image's self-link, as Compute Engine writes it.
fn self_link(project: &str, name: &str) -> String {
    format!(
        "{}/compute/v1/projects/{project}/global/images/{name}",
        compute::COMPUTE
    )
}

/// Publishes `bucket`/`version` to GCP; `progress` sees upload bytes.
pub fn publish(
    r: &mut Registry,
    actor: &Actor,
    bucket: &str,
    version: &str,
    req: &Request<'_>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<GcpReport, PublishError> {
    let (project, gcs_bucket) = place_of(req.target)?;
    let ok = preflight::check(r, req.target, req.accounts, bucket, version)?;
    // The block with the version's channel blocks applied (their tags become labels).
    let applied = ok.target.clone();
    let projects = ok.principals.gcp.projects.clone();
    if projects.is_empty() {
        return preflight::ineligible(format!(
            "accounts.yaml gives channel(s) {} no GCP project: nothing is shared",
            ok.channels.join(", ")
        ));
    }
    let v = ok.version;
    let mut report = GcpReport {
        bucket: bucket.into(),
        version: version.into(),
        channels: ok.channels,
        projects: projects.clone(),
        dry_run: req.dry_run,
        object: None,
        image: None,
        created: false,
        members_added: 0,
        members_removed: 0,
    };
    if req.dry_run {
        return Ok(report);
    }
    let tarball = preflight::stored(&v, "gce", "the image's formats must include gce")?;
    let apis = apis(&req.endpoints)?;
    let store = store(&req.endpoints, &gcs_bucket, apis.token.clone());
    let object = object_name(bucket, version);
    let up = store.upload(&object, req.disk, &tarball.sha256, progress)?;
    let source = up.url.clone();
    report.object = Some(up);

    let name = compute::image_name(bucket, version);
    match compute::get(&apis.compute, &project, &name)? {
        Some(img)
            if img["labels"]["kiln-version"].as_str() != Some(&version.to_ascii_lowercase()) =>
        {
            return Err(PublishError::Cloud(format!(
                "image {name} exists in {project} but is not labelled as Kiln version {version}: not overwritten"
            )));
        }
        Some(_) => {}
        None => {
            let mut labels: BTreeMap<String, String> = applied
                .tags
                .iter()
                .map(|(k, v)| (compute::label(k), compute::label(v)))
                .collect();
            labels.insert("kiln-bucket".into(), compute::label(bucket));
            labels.insert("kiln-version".into(), compute::label(version));
            labels.insert(
                "kiln-fingerprint".into(),
                compute::label(&v.fingerprint.chars().take(32).collect::<String>()),
            );
            if let Some(c) = v.build.get("git_commit").and_then(Value::as_str) {
                labels.insert("kiln-git-commit".into(), compute::label(c));
            }
            compute::create(
                &apis.compute,
                &project,
                &NewImage {
                    name: &name,
                    family: &compute::label(bucket),
                    description: format!("Kiln {bucket} {version} (fingerprint {})", v.fingerprint),
                    source: &source,
                    uefi: v.build.get("boot").and_then(Value::as_str) != Some("bios"),
                    location: &req.target.regions[0],
                    labels: &labels,
                },
            )?;
            report.created = true;
        }
    }
    let want = members(&apis.crm, &projects)?;
    let (added, removed) = compute::share(&apis.compute, &project, &name, &want)?;
    report.members_added = added;
    report.members_removed = removed;
    let link = self_link(&project, &name);
    preflight::record(
        r,
        actor,
        version,
        "gcp",
        "image",
        &req.target.regions[0],
        &link,
        tarball,
    )?;
    report.image = Some(link);
    Ok(report)
}

/// Makes the image agree with the registry: a revoked version's image loses every image-user
/// member and is deprecated; an active one has exactly its channels' projects and is `ACTIVE`.
pub fn reconcile(
    r: &mut Registry,
    target: &PublishTarget,
    accounts: Option<&AccountMap>,
    endpoints: &Endpoints,
    version: &str,
) -> Result<Vec<String>, PublishError> {
    let (project, _) = place_of(target)?;
    let v = r
        .version(version)
        .map_err(|e| PublishError::Refused(e.to_string()))?;
    let links: Vec<String> = v
        .artifacts
        .iter()
        .filter(|a| a.platform == "gcp")
        .map(|a| a.external_id.clone())
        .collect();
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let revoked = v.status == Status::Revoked;
    let projects = if revoked {
        Vec::new()
    } else {
        let Some(map) = accounts else {
            return refuse(
                "the factory has no accounts.yaml (or it could not be read): image members left as they are",
            );
        };
        let channels = preflight::channels_of(r, &v.bucket, version)?;
        preflight::principals(map, &channels).gcp.projects
    };
    let apis = apis(endpoints)?;
    let want = members(&apis.crm, &projects)?;
    let mut lines = Vec::new();
    for link in links {
        let name = link.rsplit('/').next().unwrap_or_default().to_string();
        let Some(img) = compute::get(&apis.compute, &project, &name)? else {
            lines.push(format!("  gcp {name}: gone"));
            continue;
        };
        let (added, removed) = compute::share(&apis.compute, &project, &name, &want)?;
        let state = img["deprecated"]["state"].as_str().unwrap_or("ACTIVE");
        let wanted = if revoked { "DEPRECATED" } else { "ACTIVE" };
        if state != wanted {
            compute::deprecate(&apis.compute, &project, &name, wanted)?;
        }
        lines.push(format!(
            "  gcp {name}: +{added} -{removed} image users, {wanted}"
        ));
    }
    Ok(lines)
}
