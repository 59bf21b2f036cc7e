//! Removing a reaped version from the clouds: its AMIs deregistered and their snapshots deleted,
//! its gallery version and page blob deleted, its GCP image and tar.gz deleted. The registry
//! decides what is reaped (never a version on a channel, an ancestor of a live version, or one
//! too young); this only carries that decision out, and reports what it could not do.

use kiln_registry::Artifact;
use kiln_spec::model::{CloudSettings, PublishTarget};

use crate::PublishError;
use crate::rest::Rest;

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
        CloudSettings::Azure {
            storage_account,
            container,
            ..
        } => {
            let (place, _) = crate::azure::publish::place_of(target)?;
            let rest = Rest::new(
                endpoints
                    .azure
                    .management
                    .as_deref()
                    .unwrap_or(crate::azure::arm::MANAGEMENT),
                crate::azure::arm::token()?,
            );
            let mut lines = Vec::new();
            let mut ids: Vec<&str> = mine.iter().map(|a| a.external_id.as_str()).collect();
            ids.dedup();
            for id in ids {
                if crate::azure::gallery::delete_version(&rest, id)? {
                    lines.push(format!("azure gallery version {id} deleted"));
                }
            }
            let key = match std::env::var("AZURE_STORAGE_KEY") {
                Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
                _ => crate::azure::gallery::account_key(&rest, &place)?,
            };
            let account =
                crate::azure::blob::Account {
                    name: storage_account.clone(),
                    key,
                    endpoint: endpoints.azure.blob.clone().unwrap_or_else(|| {
                        format!("https://{storage_account}.blob.core.windows.net")
                    }),
                };
            let blob = format!("{bucket}/{version}.vhd");
            if account.delete(container, &blob)? {
                lines.push(format!("azure blob {container}/{blob} deleted"));
            }
            Ok(lines)
        }
        CloudSettings::Gcp {
            project,
            bucket: gcs,
        } => {
            let token = crate::gcp::compute::token()?;
            let rest = Rest::new(
                endpoints
                    .gcp
                    .compute
                    .as_deref()
                    .unwrap_or(crate::gcp::compute::COMPUTE),
                token.clone(),
            );
            let mut lines = Vec::new();
            for a in &mine {
                let name = a.external_id.rsplit('/').next().unwrap_or_default();
                if crate::gcp::compute::delete(&rest, project, name)? {
                    lines.push(format!("gcp image {name} deleted"));
                }
            }
            let store = crate::gcp::storage::Bucket::new(
                endpoints
                    .gcp
                    .storage
                    .as_deref()
                    .unwrap_or(crate::gcp::storage::STORAGE),
                gcs,
                token,
            );
            let object = format!("{bucket}/{version}.tar.gz");
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
