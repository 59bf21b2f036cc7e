//! Publishing one version to Azure, failing closed like AWS: the common checks, then the map must
//! give the version's channels a subscription or tenant. Then the fixed VHD goes up as a page
//! blob, the bucket's image definition is made if missing, the gallery version is created from
//! the blob and replicated to the target regions, and the gallery is shared with exactly the
//! subscriptions and tenants the map names. Each region is recorded only after all of it worked;
//! a re-run finds the blob (by its metadata) and the version (by name and tags).
//!
//! Azure shares a whole gallery, not a version: the gallery is shared with every Azure principal
//! the map names for any channel. Factories that must keep a channel's images from another
//! channel's subscriptions use one gallery per audience.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_registry::{Actor, Registry, Status};
use kiln_spec::AccountMap;
use kiln_spec::model::{CloudSettings, PublishTarget};
use serde::Serialize;
use serde_json::Value;

use super::blob::{Account, BlobReport};
use super::gallery::{self, NewVersion, Place};
use crate::PublishError;
use crate::preflight::{self, refuse};
use crate::rest::Rest;

/// Where the Azure calls go.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// Resource Manager; `None`: the public cloud's.
    pub management: Option<String>,
    /// The blob service; `None`: `https://ACCOUNT.blob.core.windows.net`.
    pub blob: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub target: &'a PublishTarget,
    pub accounts: Option<&'a AccountMap>,
    pub endpoints: Endpoints,
    /// The factory's name: the image definitions' publisher.
    pub publisher: &'a str,
    /// The version's fixed VHD in the store.
    pub disk: &'a Path,
    pub parallel: usize,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AzureReport {
    pub bucket: String,
    pub version: String,
    pub channels: Vec<String>,
    pub subscriptions: Vec<String>,
    pub tenants: Vec<String>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobSummary>,
    /// The gallery image version's resource id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gallery_version: Option<String>,
    pub definition_created: bool,
    pub created: bool,
    pub regions: Vec<String>,
    pub shares_added: usize,
    pub shares_removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobSummary {
    pub url: String,
    pub ranges_sent: u64,
    pub ranges_zero: u64,
    pub reused: bool,
    pub seconds: f64,
}

impl From<&BlobReport> for BlobSummary {
    fn from(b: &BlobReport) -> Self {
        BlobSummary {
            url: b.url.clone(),
            ranges_sent: b.ranges_sent,
            ranges_zero: b.ranges_zero,
            reused: b.reused,
            seconds: b.seconds,
        }
    }
}

/// The gallery's place and the blob container, from a `publish "azure"` block.
pub fn place_of(target: &PublishTarget) -> Result<(Place, String), PublishError> {
    match &target.settings {
        CloudSettings::Azure {
            subscription,
            resource_group,
            gallery,
            storage_account,
            container,
        } => Ok((
            Place {
                subscription: subscription.clone(),
                resource_group: resource_group.clone(),
                gallery: gallery.clone(),
                storage_account: storage_account.clone(),
            },
            container.clone(),
        )),
        _ => refuse("not a publish \"azure\" block"),
    }
}

/// Every subscription and tenant the map names for any channel (the gallery's audience).
pub fn audience(map: &AccountMap) -> (Vec<String>, Vec<String>) {
    let all: Vec<String> = map
        .channels
        .keys()
        .map(|c| c.as_str().to_string())
        .collect();
    let p = preflight::principals(map, &all).azure;
    (p.subscriptions, p.tenants)
}

/// Resource Manager at the configured endpoint, with a token.
pub fn management_api(e: &Endpoints) -> Result<Rest, PublishError> {
    Ok(Rest::new(
        e.management.as_deref().unwrap_or(super::arm::MANAGEMENT),
        super::arm::token()?,
    ))
}

/// The storage account with its key: `AZURE_STORAGE_KEY`, else Resource Manager's listKeys.
pub fn blob_account(rest: &Rest, place: &Place, e: &Endpoints) -> Result<Account, PublishError> {
    let key = match std::env::var("AZURE_STORAGE_KEY") {
        Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
        _ => gallery::account_key(rest, place)?,
    };
    Ok(Account {
        name: place.storage_account.clone(),
        key,
        endpoint: e
            .blob
            .clone()
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", place.storage_account))
            .trim_end_matches('/')
            .to_string(),
    })
}

/// The page blob a version's VHD is uploaded to (and the reaper deletes).
pub fn blob_name(bucket: &str, version: &str) -> String {
    format!("{bucket}/{version}.vhd")
}

/// The tags every gallery version carries (and a revocation adds to).
fn base_tags(target: &PublishTarget, v: &kiln_registry::Version) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = target.tags.clone();
    tags.insert("kiln:bucket".into(), v.bucket.clone());
    tags.insert("kiln:version".into(), v.id.clone());
    tags.insert("kiln:fingerprint".into(), v.fingerprint.clone());
    if let Some(c) = v.build.get("git_commit").and_then(Value::as_str) {
        tags.insert("kiln:git-commit".into(), c.into());
    }
    tags
}

/// Publishes `bucket`/`version` to Azure; `progress` sees upload bytes.
pub fn publish(
    r: &mut Registry,
    actor: &Actor,
    bucket: &str,
    version: &str,
    req: &Request<'_>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<AzureReport, PublishError> {
    let (place, container) = place_of(req.target)?;
    let ok = preflight::check(r, req.target, req.accounts, bucket, version)?;
    let mine = &ok.principals.azure;
    if mine.subscriptions.is_empty() && mine.tenants.is_empty() {
        return preflight::ineligible(format!(
            "accounts.yaml gives channel(s) {} no Azure subscription or tenant: nothing is shared",
            ok.channels.join(", ")
        ));
    }
    let (subs, tenants) = audience(req.accounts.unwrap_or(&AccountMap::default()));
    let v = ok.version;
    let target = ok.target;
    let mut report = AzureReport {
        bucket: bucket.into(),
        version: version.into(),
        channels: ok.channels,
        subscriptions: subs.clone(),
        tenants: tenants.clone(),
        dry_run: req.dry_run,
        blob: None,
        gallery_version: None,
        definition_created: false,
        created: false,
        regions: target.regions.clone(),
        shares_added: 0,
        shares_removed: 0,
    };
    if req.dry_run {
        return Ok(report);
    }
    let vhd = preflight::stored(&v, "vhd", "the image's formats must include vhd")?;
    let rest = management_api(&req.endpoints)?;
    let account = blob_account(&rest, &place, &req.endpoints)?;
    let blob = account.upload_page_blob(
        &container,
        &blob_name(bucket, version),
        req.disk,
        &vhd.sha256,
        req.parallel,
        progress,
    )?;
    report.blob = Some(BlobSummary::from(&blob));

    let home = &target.regions[0];
    let uefi = v.build.get("boot").and_then(Value::as_str) != Some("bios");
    report.definition_created =
        gallery::ensure_definition(&rest, &place, bucket, req.publisher, home, uefi)?;
    let name = gallery::version_name(&v.created_at)?;
    let id = place.version_id(bucket, &name);
    let tags = base_tags(&target, &v);
    match gallery::find_version(&rest, &id)? {
        Some(found) if found.get("kiln:version").map(String::as_str) != Some(version) => {
            return Err(PublishError::Cloud(format!(
                "gallery version {name} of {bucket} exists and is Kiln version {}, not {version}: not overwritten",
                found
                    .get("kiln:version")
                    .map_or("(untagged)", String::as_str)
            )));
        }
        Some(_) => {}
        None => {
            gallery::create_version(
                &rest,
                &NewVersion {
                    id: &id,
                    location: home,
                    regions: &target.regions,
                    blob_url: &blob.url,
                    storage_account_id: &place.storage_account_id(),
                    tags: &tags,
                },
            )?;
            report.created = true;
        }
    }
    let (added, removed) = gallery::share(&rest, &place, &subs, &tenants)?;
    report.shares_added = added;
    report.shares_removed = removed;
    for region in &target.regions {
        preflight::record(r, actor, version, "azure", "gallery", region, &id, vhd)?;
    }
    report.gallery_version = Some(id);
    Ok(report)
}

/// Makes the gallery version agree with the registry: a revoked version is excluded from
/// `latest` and tagged `kiln:revoked`; an active one is back in `latest` without the tag.
/// Returns a line per version changed.
pub fn reconcile(
    r: &mut Registry,
    endpoints: &Endpoints,
    version: &str,
) -> Result<Vec<String>, PublishError> {
    let v = r
        .version(version)
        .map_err(|e| PublishError::Refused(e.to_string()))?;
    let mut ids: Vec<String> = v
        .artifacts
        .iter()
        .filter(|a| a.platform == "azure")
        .map(|a| a.external_id.clone())
        .collect();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rest = management_api(endpoints)?;
    let revoked = v.status == Status::Revoked;
    let mut lines = Vec::new();
    for id in ids {
        let Some(have) = gallery::find_version(&rest, &id)? else {
            lines.push(format!("  azure {id}: gone from the gallery"));
            continue;
        };
        if have.contains_key("kiln:revoked") == revoked {
            continue;
        }
        let mut tags = have;
        if revoked {
            let reason = v
                .revocation
                .as_ref()
                .map_or("revoked", |x| x.reason.as_str());
            tags.insert("kiln:revoked".into(), reason.into());
        } else {
            tags.remove("kiln:revoked");
        }
        gallery::set_revoked(&rest, &id, &tags, revoked)?;
        lines.push(format!(
            "  azure {id}: {}",
            if revoked {
                "excluded from latest, tagged kiln:revoked"
            } else {
                "back in latest"
            }
        ));
    }
    Ok(lines)
}
