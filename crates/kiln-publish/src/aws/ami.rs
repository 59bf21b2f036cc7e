//! From snapshot to shared AMI: RegisterImage (x86_64, ENA, the definition's boot mode), tags,
//! launch permissions set to exactly what the account map says (adding and removing), copies in
//! the other regions, and the SSM parameter per channel. Every step first looks for what an
//! earlier run made (by name and tags), so re-running completes the rest and duplicates nothing.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, Filter,
    LaunchPermission, LaunchPermissionModifications, Tag, VolumeType,
};

use super::{Clients, describe};
use crate::PublishError;

fn err(what: &str, e: impl std::error::Error + 'static) -> PublishError {
    PublishError::Cloud(format!("{what}: {}", describe(&e)))
}

/// Who may launch an AMI: account ids, organization ARNs, organizational-unit ARNs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    pub accounts: BTreeSet<String>,
    pub organizations: BTreeSet<String>,
    pub organizational_units: BTreeSet<String>,
}

impl Sharing {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.organizations.is_empty()
            && self.organizational_units.is_empty()
    }

    fn permissions(&self) -> Vec<LaunchPermission> {
        let mut out: Vec<LaunchPermission> = self
            .accounts
            .iter()
            .map(|a| LaunchPermission::builder().user_id(a).build())
            .collect();
        out.extend(
            self.organizations
                .iter()
                .map(|a| LaunchPermission::builder().organization_arn(a).build()),
        );
        out.extend(self.organizational_units.iter().map(|a| {
            LaunchPermission::builder()
                .organizational_unit_arn(a)
                .build()
        }));
        out
    }
}

/// The AMI named `name` in this region, if an earlier run registered or copied it.
pub async fn find(c: &Clients, name: &str) -> Result<Option<String>, PublishError> {
    let out = c
        .ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| err("DescribeImages", e))?;
    Ok(out
        .images()
        .iter()
        .find_map(|i| i.image_id().map(str::to_string)))
}

/// Tags an AMI (moto and some accounts drop tag specifications on RegisterImage/CopyImage, so
/// tags are always set in their own call).
pub async fn tag(c: &Clients, id: &str, tags: &[(String, String)]) -> Result<(), PublishError> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut req = c.ec2.create_tags().resources(id);
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(k).value(v).build());
    }
    req.send().await.map_err(|e| err("CreateTags", e))?;
    Ok(())
}

/// Registers the snapshot as an AMI called `name` (or finds it); returns (id, registered now).
pub async fn register(
    c: &Clients,
    snapshot: &str,
    name: &str,
    uefi: bool,
    tags: &[(String, String)],
) -> Result<(String, bool), PublishError> {
    if let Some(id) = find(c, name).await? {
        return Ok((id, false));
    }
    let out = c
        .ec2
        .register_image()
        .name(name)
        .description(format!("Kiln image {name}"))
        .architecture(ArchitectureValues::X8664)
        .virtualization_type("hvm")
        .ena_support(true)
        .boot_mode(if uefi {
            BootModeValues::Uefi
        } else {
            BootModeValues::LegacyBios
        })
        .root_device_name("/dev/xvda")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(snapshot)
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("RegisterImage", e))?;
    let id = out
        .image_id()
        .ok_or_else(|| PublishError::Cloud("RegisterImage returned no image id".into()))?
        .to_string();
    tag(c, &id, tags).await?;
    Ok((id, true))
}

/// The launch permissions an AMI has now.
pub async fn permissions(c: &Clients, id: &str) -> Result<Sharing, PublishError> {
    let out = c
        .ec2
        .describe_image_attribute()
        .image_id(id)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await
        .map_err(|e| err("DescribeImageAttribute", e))?;
    let mut s = Sharing::default();
    for p in out.launch_permissions() {
        if let Some(a) = p.user_id() {
            s.accounts.insert(a.to_string());
        }
        if let Some(a) = p.organization_arn() {
            s.organizations.insert(a.to_string());
        }
        if let Some(a) = p.organizational_unit_arn() {
            s.organizational_units.insert(a.to_string());
        }
    }
    Ok(s)
}

/// Sets the launch permissions to exactly `want`: adds what is missing, removes what is not
/// wanted. Returns (added, removed) counts.
pub async fn share(c: &Clients, id: &str, want: &Sharing) -> Result<(usize, usize), PublishError> {
    let have = permissions(c, id).await?;
    let diff = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> BTreeSet<String> {
        a.difference(b).cloned().collect()
    };
    let add = Sharing {
        accounts: diff(&want.accounts, &have.accounts),
        organizations: diff(&want.organizations, &have.organizations),
        organizational_units: diff(&want.organizational_units, &have.organizational_units),
    };
    let remove = Sharing {
        accounts: diff(&have.accounts, &want.accounts),
        organizations: diff(&have.organizations, &want.organizations),
        organizational_units: diff(&have.organizational_units, &want.organizational_units),
    };
    let (added, removed) = (add.permissions(), remove.permissions());
    let counts = (added.len(), removed.len());
    if counts == (0, 0) {
        return Ok(counts);
    }
    c.ec2
        .modify_image_attribute()
        .image_id(id)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .set_add((!added.is_empty()).then_some(added))
                .set_remove((!removed.is_empty()).then_some(removed))
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("ModifyImageAttribute", e))?;
    Ok(counts)
}

/// Copies `source` (in `source_region`) into the region `dest` serves, as `name`, or finds the
/// copy an earlier run made. Returns (id, copied now).
pub async fn copy(
    dest: &Clients,
    source: &str,
    source_region: &str,
    name: &str,
    tags: &[(String, String)],
) -> Result<(String, bool), PublishError> {
    if let Some(id) = find(dest, name).await? {
        return Ok((id, false));
    }
    let out = dest
        .ec2
        .copy_image()
        .source_image_id(source)
        .source_region(source_region)
        .name(name)
        .description(format!("Kiln image {name}"))
        .send()
        .await
        .map_err(|e| err("CopyImage", e))?;
    let id = out
        .image_id()
        .ok_or_else(|| PublishError::Cloud("CopyImage returned no image id".into()))?
        .to_string();
    tag(dest, &id, tags).await?;
    Ok((id, true))
}

/// `/kiln/BUCKET/CHANNEL` = the AMI, as an `aws:ec2:image` parameter (EC2 can launch from it).
pub async fn set_parameter(
    c: &Clients,
    bucket: &str,
    channel: &str,
    ami: &str,
) -> Result<String, PublishError> {
    let name = format!("/kiln/{bucket}/{channel}");
    c.ssm
        .put_parameter()
        .name(&name)
        .value(ami)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .map_err(|e| err("PutParameter", e))?;
    Ok(name)
}

/// Deletes every `/kiln/BUCKET/CHANNEL` parameter that names `ami` for a channel not in `keep`:
/// a channel that moved to a version not published here must not keep launching the old one.
/// Returns the names deleted.
pub async fn drop_parameters(
    c: &Clients,
    bucket: &str,
    ami: &str,
    keep: &[String],
) -> Result<Vec<String>, PublishError> {
    let prefix = format!("/kiln/{bucket}/");
    let mut stale = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .ssm
            .get_parameters_by_path()
            .path(&prefix)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| err("GetParametersByPath", e))?;
        for p in page.parameters() {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            let channel = name.trim_start_matches(&prefix);
            if value == ami && !keep.iter().any(|k| k == channel) {
                stale.push(name.to_string());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    for name in &stale {
        c.ssm
            .delete_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| err("DeleteParameter", e))?;
    }
    Ok(stale)
}

/// What a revocation did to one AMI.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub permissions_removed: usize,
    /// `Err` with the service's answer where deprecation is not available (moto does not
    /// implement it).
    pub deprecated: Result<(), String>,
}

/// Pulls an AMI back: no launch permissions, a `kiln:revoked` tag, and deprecation from now.
pub async fn revoke(c: &Clients, id: &str, reason: &str) -> Result<Revoked, PublishError> {
    let (_, removed) = share(c, id, &Sharing::default()).await?;
    tag(c, id, &[("kiln:revoked".into(), reason.into())]).await?;
    let deprecated = c
        .ec2
        .enable_image_deprecation()
        .image_id(id)
        .deprecate_at(aws_sdk_ec2::primitives::DateTime::from(
            std::time::SystemTime::now(),
        ))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e));
    Ok(Revoked {
        permissions_removed: removed,
        deprecated,
    })
}

/// Undoes [`revoke`]: the permissions `want`, the tag gone, deprecation cancelled.
pub async fn restore(
    c: &Clients,
    id: &str,
    want: &Sharing,
) -> Result<Result<(), String>, PublishError> {
    share(c, id, want).await?;
    c.ec2
        .delete_tags()
        .resources(id)
        .tags(Tag::builder().key("kiln:revoked").build())
        .send()
        .await
        .map_err(|e| err("DeleteTags", e))?;
    Ok(c.ec2
        .disable_image_deprecation()
        .image_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe(&e)))
}

/// Deregisters the AMI and deletes the snapshots behind it (the reaper's job). Returns the
/// snapshots deleted; an AMI already gone is not an error.
pub async fn deregister(c: &Clients, id: &str) -> Result<Vec<String>, PublishError> {
    let out = match c.ec2.describe_images().image_ids(id).send().await {
        Ok(o) => o,
        Err(e) if describe(&e).contains("InvalidAMIID") => return Ok(Vec::new()),
        Err(e) => return Err(err("DescribeImages", e)),
    };
    let snapshots: Vec<String> = out
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_string))
        .collect();
    if out.images().is_empty() {
        return Ok(Vec::new());
    }
    c.ec2
        .deregister_image()
        .image_id(id)
        .send()
        .await
        .map_err(|e| err("DeregisterImage", e))?;
    for s in &snapshots {
        c.ec2
            .delete_snapshot()
            .snapshot_id(s)
            .send()
            .await
            .map_err(|e| err("DeleteSnapshot", e))?;
    }
    Ok(snapshots)
}

/// Deletes the snapshots an upload of `version` made (tagged `kiln:version`) that are still
/// there: one an interrupted publish never turned into an AMI, or one the AMI did not name.
pub async fn delete_uploads(c: &Clients, version: &str) -> Result<Vec<String>, PublishError> {
    let out = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{}", super::ebs::TAG_VERSION))
                .values(version)
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("DescribeSnapshots", e))?;
    let mut deleted = Vec::new();
    for s in out.snapshots() {
        if let Some(id) = s.snapshot_id() {
            c.ec2
                .delete_snapshot()
                .snapshot_id(id)
                .send()
                .await
                .map_err(|e| err("DeleteSnapshot", e))?;
            deleted.push(id.to_string());
        }
    }
    Ok(deleted)
}
