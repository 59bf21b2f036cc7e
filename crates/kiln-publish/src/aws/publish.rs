//! Publishing one version to AWS, failing closed. Nothing is shared unless every condition
//! holds: an account map exists and names AWS principals for a channel the version is on, the
//! version is active with a passing test report, and (when the factory says so) it was built
//! from the default branch. Then: the raw disk becomes a snapshot and an AMI in the home region,
//! copies go to the other regions, launch permissions become exactly what the map says for the
//! version's channels, each channel's SSM parameter names the AMI, and each AMI is recorded in
//! the registry only after the calls that made it succeeded. Re-running finds what exists.

use std::path::Path;
use std::sync::Arc;

use kiln_registry::{Actor, Registry, Status};
use kiln_spec::AccountMap;
use kiln_spec::model::PublishTarget;
use serde::Serialize;
use serde_json::Value;

use super::ami::{self, Sharing};
use super::ebs::{self, Upload, UploadReport};
use super::{Clients, Conn};
use crate::PublishError;
use crate::preflight::{self, refuse};

/// Why each region's AMI exists.
#[derive(Debug, Clone, Serialize)]
pub struct RegionImage {
    pub region: String,
    pub ami: String,
    /// Made in this run (false: found from an earlier one).
    pub created: bool,
    pub permissions_added: usize,
    pub permissions_removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub bucket: String,
    pub version: String,
    /// The channels whose accounts receive it.
    pub channels: Vec<String>,
    pub accounts: Vec<String>,
    pub organizations: Vec<String>,
    pub organizational_units: Vec<String>,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSummary>,
    pub images: Vec<RegionImage>,
    pub parameters: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotSummary {
    pub id: String,
    pub blocks_sent: u64,
    pub blocks_zero: u64,
    pub blocks_resumed: u64,
    pub reused: bool,
    pub seconds: f64,
}

impl From<&UploadReport> for SnapshotSummary {
    fn from(u: &UploadReport) -> Self {
        SnapshotSummary {
            id: u.snapshot_id.clone(),
            blocks_sent: u.blocks_sent,
            blocks_zero: u.blocks_zero,
            blocks_resumed: u.blocks_resumed,
            reused: u.reused,
            seconds: u.seconds,
        }
    }
}

/// What a publish needs besides the registry.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub target: &'a PublishTarget,
    /// `None`: the factory has no account map (or it could not be read).
    pub accounts: Option<&'a AccountMap>,
    /// How to reach AWS; its region is ignored (the target's regions are used).
    pub conn: Conn,
    /// The raw disk of the version (the store's file artifact).
    pub disk: &'a Path,
    pub parallel: usize,
    pub dry_run: bool,
}

/// The AWS principals the map gives `channels`.
pub fn sharing(map: &AccountMap, channels: &[String]) -> Sharing {
    let p = preflight::principals(map, channels).aws;
    Sharing {
        accounts: p.accounts.into_iter().collect(),
        organizations: p.organizations.into_iter().collect(),
        organizational_units: p.organizational_units.into_iter().collect(),
    }
}

/// The common checks, then: the map must name AWS principals for the version's channels.
fn preflight(
    r: &mut Registry,
    req: &Request<'_>,
    bucket: &str,
    version: &str,
) -> Result<(preflight::Cleared, Sharing), PublishError> {
    let ok = preflight::check(r, req.target, req.accounts, bucket, version)?;
    let want = sharing(req.accounts.unwrap_or(&AccountMap::default()), &ok.channels);
    if want.is_empty() {
        return preflight::ineligible(format!(
            "accounts.yaml gives channel(s) {} no AWS account, organization or OU: nothing is shared",
            ok.channels.join(", ")
        ));
    }
    Ok((ok, want))
}

/// Publishes `bucket`/`version` as [`Request`] says; `progress` sees upload bytes.
pub async fn publish(
    r: &mut Registry,
    actor: &Actor,
    bucket: &str,
    version: &str,
    req: &Request<'_>,
    progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
) -> Result<PublishReport, PublishError> {
    let (ok, want) = preflight(r, req, bucket, version)?;
    let (v, channels, target) = (ok.version, ok.channels, ok.target);
    let mut report = PublishReport {
        bucket: bucket.into(),
        version: version.into(),
        channels: channels.clone(),
        accounts: want.accounts.iter().cloned().collect(),
        organizations: want.organizations.iter().cloned().collect(),
        organizational_units: want.organizational_units.iter().cloned().collect(),
        dry_run: req.dry_run,
        snapshot: None,
        images: Vec::new(),
        parameters: Vec::new(),
    };
    if req.dry_run {
        return Ok(report);
    }
    let raw = preflight::stored(&v, "raw", "the image's formats must include raw")?;
    let name = format!("{bucket}-{version}").to_lowercase();
    let mut tags: Vec<(String, String)> = vec![
        ("kiln:bucket".into(), bucket.into()),
        (ebs::TAG_VERSION.into(), version.into()),
        ("kiln:fingerprint".into(), v.fingerprint.clone()),
    ];
    if let Some(c) = v.build.get("git_commit").and_then(Value::as_str) {
        tags.push(("kiln:git-commit".into(), c.into()));
    }
    tags.push(("kiln:channels".into(), channels.join(",")));
    tags.extend(target.tags.iter().map(|(k, v)| (k.clone(), v.clone())));

    let home = &target.regions[0];
    let conn_in = |region: &str| Conn {
        region: region.into(),
        ..req.conn.clone()
    };
    let home_c = Clients::new(&conn_in(home)).await;
    let up = ebs::upload(
        &home_c,
        &Upload {
            disk: req.disk,
            sha256: &raw.sha256,
            version,
            description: format!("Kiln {bucket} {version}"),
            tags: tags.clone(),
            parallel: req.parallel,
        },
        progress,
    )
    .await?;
    report.snapshot = Some(SnapshotSummary::from(&up));
    let uefi = v.build.get("boot").and_then(Value::as_str) != Some("bios");
    let (home_ami, created) = ami::register(&home_c, &up.snapshot_id, &name, uefi, &tags).await?;
    let mut amis = vec![(home.clone(), home_c.clone(), home_ami.clone(), created)];
    for region in &target.regions[1..] {
        let c = Clients::new(&conn_in(region)).await;
        let (id, created) = ami::copy(&c, &home_ami, home, &name, &tags).await?;
        amis.push((region.clone(), c, id, created));
    }
    for (region, c, id, created) in amis {
        if !created {
            // Found from an earlier publish: its channels (and their tags) may have changed.
            ami::tag(&c, &id, &tags).await?;
        }
        let (added, removed) = ami::share(&c, &id, &want).await?;
        for ch in &channels {
            report.parameters.push(format!(
                "{region}:{}",
                ami::set_parameter(&c, bucket, ch, &id).await?
            ));
        }
        // Recorded only now that the image exists, is shared and is named by the parameters.
        preflight::record(r, actor, version, "aws", "ami", &region, &id, raw)?;
        report.images.push(RegionImage {
            region,
            ami: id,
            created,
            permissions_added: added,
            permissions_removed: removed,
        });
    }
    Ok(report)
}

/// What bringing one version's AMIs in line with the registry did.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub version: String,
    pub revoked: bool,
    /// Per AMI: region, id, permissions added, removed, and a note (deprecation unavailable…).
    pub images: Vec<(String, String, usize, usize, Option<String>)>,
    /// SSM parameters deleted because they named an AMI of this version for a channel it is no
    /// longer on.
    pub parameters_dropped: Vec<String>,
}

/// Makes the clouds agree with the registry for `version`'s AMIs: a revoked version loses every
/// launch permission and is tagged and deprecated; an active one has exactly the permissions the
/// map gives its channels (none when it left every channel — a revocation moves channels off a
/// version and a restore does not move them back) and each of its channels' SSM parameters;
/// parameters naming its AMIs for channels it left are deleted. Fails closed like [`publish`]
/// when the map is missing: permissions are then not widened, only a revocation is applied.
pub async fn reconcile(
    r: &mut Registry,
    accounts: Option<&AccountMap>,
    conn: &Conn,
    version: &str,
) -> Result<Reconciled, PublishError> {
    let v = r
        .version(version)
        .map_err(|e| PublishError::Refused(e.to_string()))?;
    let revoked = v.status == Status::Revoked;
    let (channels, want) = if revoked {
        (Vec::new(), Sharing::default())
    } else {
        let Some(map) = accounts else {
            return refuse(
                "the factory has no accounts.yaml (or it could not be read): launch permissions left as they are",
            );
        };
        let channels = preflight::channels_of(r, &v.bucket, version)?;
        let want = sharing(map, &channels);
        (channels, want)
    };
    let mut out = Reconciled {
        version: version.into(),
        revoked,
        images: Vec::new(),
        parameters_dropped: Vec::new(),
    };
    for a in v.artifacts.iter().filter(|a| a.platform == "aws") {
        let c = Clients::new(&Conn {
            region: a.region.clone(),
            ..conn.clone()
        })
        .await;
        if revoked {
            let reason = v
                .revocation
                .as_ref()
                .map_or("revoked", |x| x.reason.as_str());
            let done = ami::revoke(&c, &a.external_id, reason).await?;
            out.parameters_dropped
                .extend(ami::drop_parameters(&c, &v.bucket, &a.external_id, &[]).await?);
            out.images.push((
                a.region.clone(),
                a.external_id.clone(),
                0,
                done.permissions_removed,
                done.deprecated
                    .err()
                    .map(|e| format!("deprecation not applied: {e}")),
            ));
        } else {
            let was_revoked = ami::permissions(&c, &a.external_id).await?.is_empty();
            let (added, removed) = ami::share(&c, &a.external_id, &want).await?;
            let mut note = None;
            if was_revoked {
                // Restored: the tag and the deprecation go too.
                if let Err(e) = ami::restore(&c, &a.external_id, &want).await? {
                    note = Some(format!("deprecation not cancelled: {e}"));
                }
            }
            // Each channel the version is on names its AMI (a promotion moves the parameter).
            for ch in &channels {
                ami::set_parameter(&c, &v.bucket, ch, &a.external_id).await?;
            }
            out.parameters_dropped
                .extend(ami::drop_parameters(&c, &v.bucket, &a.external_id, &channels).await?);
            out.images.push((
                a.region.clone(),
                a.external_id.clone(),
                added,
                removed,
                note,
            ));
        }
    }
    Ok(out)
}
