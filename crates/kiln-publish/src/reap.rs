//! Removing a reaped version from the clouds: its AMIs deregistered and their snapshots deleted,
//! its gallery version and page blob deleted, its GCP image and tar.gz deleted. The registry
//! decides what is reaped (never a version on a channel, an ancestor of a live version, or one
//! too young); this only carries that decision out, and reports what it could not do.

use kiln_registry::Artifact;
use kiln_spec::model::{CloudSettings, PublishTarget};

use crate::PublishError;

/// Where each cloud's calls go (`None` / default: the public endpoints).
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub aws: Option<String>,
    pub azure: crate::azure::publish::Endpoints,
    pub gcp: crate::gcp::publish::Endpoints,
}

/// Deletes what `artifacts` (a reaped version's) name on `target`'s cloud. Returns a line per
/// thing deleted.
pub fn remove(
    target: &PublishTarget,
    endpoints: &Endpoints,
    bucket: &str,
    version: &str,
    artifacts: &[Artifact],
) -> Result<Vec<String>, PublishError> {
    let mine: Vec<&Artifact> = artifacts
        .iter()
        .filter(|a| a.platform == target.cloud)
        .collect();
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    match &target.settings {
        CloudSettings::Aws => remove_aws(endpoints, version, &mine),
        CloudSettings::Azure { container, .. } => {
            let (place, _) = crate::azure::publish::place_of(target)?;
            let rest = crate::azure::publish::management_api(&endpoints.azure)?;
            let mut lines = Vec::new();
            let mut ids: Vec<&str> = mine.iter().map(|a| a.external_id.as_str()).collect();
            ids.dedup();
            for id in ids {
                if crate::azure::gallery::delete_version(&rest, id)? {
                    lines.push(format!("azure gallery version {id} deleted"));
                }
            }
            let account = crate::azure::publish::blob_account(&rest, &place, &endpoints.azure)?;
            let blob = crate::azure::publish::blob_name(bucket, version);
            if account.delete(container, &blob)? {
                lines.push(format!("azure blob {container}/{blob} deleted"));
            }
            Ok(lines)
        }
        CloudSettings::Gcp {
            project,
            bucket: gcs,
        } => {
            let apis = crate::gcp::publish::apis(&endpoints.gcp)?;
            let mut lines = Vec::new();
            for a in &mine {
                let name = a.external_id.rsplit('/').next().unwrap_or_default();
                if crate::gcp::compute::delete(&apis.compute, project, name)? {
                    lines.push(format!("gcp image {name} deleted"));
                }
            }
            let store = crate::gcp::publish::store(&endpoints.gcp, gcs, apis.token);
            let object = crate::gcp::publish::object_name(bucket, version);
            if store.delete(&object)? {
                lines.push(format!("gcp object gs://{gcs}/{object} deleted"));
            }
            Ok(lines)
        }
    }
}

fn remove_aws(
    endpoints: &Endpoints,
    version: &str,
    mine: &[&Artifact],
) -> Result<Vec<String>, PublishError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| PublishError::Io(format!("async runtime: {e}")))?;
    rt.block_on(async {
        let mut lines = Vec::new();
        for a in mine {
            let c = crate::aws::Clients::new(&crate::aws::Conn {
                region: a.region.clone(),
                endpoint: endpoints.aws.clone(),
                static_credentials: None,
            })
            .await;
            let mut snaps = crate::aws::ami::deregister(&c, &a.external_id).await?;
            snaps.extend(crate::aws::ami::delete_uploads(&c, version).await?);
            lines.push(format!(
                "aws {} {} deregistered, snapshot(s) {} deleted",
                a.region,
                a.external_id,
                if snaps.is_empty() {
                    "none".to_string()
                } else {
                    snaps.join(", ")
                }
            ));
        }
        Ok(lines)
    })
}
