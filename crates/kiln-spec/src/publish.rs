//! `publish "aws" | "azure" | "gcp"` blocks: where `kiln publish` puts a version's images.
//!
//! Names are checked against each cloud's own rules here, at the attribute that holds them, so a
//! typo in a gallery or bucket name is a definition error with a line and column instead of a
//! 400 from a management API halfway through a publish.

use crate::accounts::{is_gcp_project, is_guid};
use crate::hcl::{self, BodyReader, Cx};
use crate::model::{ChannelPublish, CloudSettings, PublishTarget};
use crate::names::ChannelName;

/// The clouds a publish block may name.
pub const CLOUDS: [&str; 3] = ["aws", "azure", "gcp"];

/// The container Azure VHDs go to when the block does not name one.
pub const DEFAULT_CONTAINER: &str = "kiln-vhds";

pub(crate) fn read(
    cx: &mut Cx,
    b: &hcl_edit::structure::Block,
    declared: Option<&[ChannelName]>,
) -> Option<PublishTarget> {
    let labels = hcl::labels(cx, b, &["cloud"])?;
    let cloud = labels[0].value.clone();
    if !CLOUDS.contains(&cloud.as_str()) {
        cx.error_at(
            labels[0].loc.clone(),
            format!(
                "publishing to `{cloud}` is not supported; supported: {}",
                CLOUDS.join(", ")
            ),
        );
        return None;
    }
    let mut r = BodyReader::for_block(format!("the publish \"{cloud}\" block"), b);
    let regions = read_regions(cx, &mut r, &cloud);
    let default_branch = r.opt_parsed(cx, "default_branch", |v| {
        if v.is_empty() || v.contains(char::is_whitespace) {
            Err(format!("`{v}` is not a git branch name"))
        } else {
            Ok(v.to_string())
        }
    });
    let tags = read_tags(cx, &mut r);
    let settings = match cloud.as_str() {
        "azure" => read_azure(cx, &mut r),
        "gcp" => read_gcp(cx, &mut r),
        _ => Some(CloudSettings::Aws),
    };
    let mut channels = std::collections::BTreeMap::new();
    let mut channels_ok = true;
    for c in r.blocks("channel") {
        match read_channel(cx, c, &cloud, declared) {
            Some((name, _)) if channels.contains_key(&name) => {
                cx.error(
                    hcl_edit::Span::span(&c.ident),
                    format!("channel \"{name}\" appears twice in publish \"{cloud}\""),
                );
                channels_ok = false;
            }
            Some((name, settings)) => {
                channels.insert(name, settings);
            }
            None => channels_ok = false,
        }
    }
    r.finish(cx);
    Some(PublishTarget {
        cloud,
        regions: regions?,
        default_branch: default_branch?,
        tags: tags?,
        settings: settings?,
        channels: channels_ok.then_some(channels)?,
    })
}

fn read_tags(
    cx: &mut Cx,
    r: &mut BodyReader<'_>,
) -> Option<std::collections::BTreeMap<String, String>> {
    match r.attr(cx, "tags") {
        Some(a) => hcl::string_map(cx, &a.value, "`tags`")
            .map(|m| m.into_iter().map(|(k, v)| (k.value, v.value)).collect()),
        None => Some(Default::default()),
    }
}

/// `channel "production" { regions = [...] tags = {...} }` inside a publish block.
fn read_channel(
    cx: &mut Cx,
    b: &hcl_edit::structure::Block,
    cloud: &str,
    declared: Option<&[ChannelName]>,
) -> Option<(String, ChannelPublish)> {
    let labels = hcl::labels(cx, b, &["channel"])?;
    let name = labels[0].value.clone();
    if let Some(chs) = declared
        && !chs.iter().any(|c| c.as_str() == name)
    {
        cx.error_at(
            labels[0].loc.clone(),
            format!(
                "publish settings for undeclared channel `{name}`; the factory's channels are: {}",
                chs.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    }
    let mut r = BodyReader::for_block(format!("the channel \"{name}\" block"), b);
    let regions = match r.attr(cx, "regions") {
        Some(a) if cloud == "gcp" => {
            cx.error(
                hcl_edit::Span::span(&a.value),
                "GCP images are global: a channel block cannot add regions to publish \"gcp\"",
            );
            None
        }
        Some(a) => hcl::string_list(cx, &a.value, "`regions`")
            .and_then(|list| valid_regions(cx, list, cloud)),
        None => Some(Vec::new()),
    };
    let tags = read_tags(cx, &mut r);
    r.finish(cx);
    Some((
        name,
        ChannelPublish {
            regions: regions?,
            tags: tags?,
        },
    ))
}

fn read_regions(cx: &mut Cx, r: &mut BodyReader<'_>, cloud: &str) -> Option<Vec<String>> {
    let a = r.required(cx, "regions")?;
    let list = hcl::string_list(cx, &a.value, "`regions`")?;
    if list.is_empty() {
        cx.error(
            hcl_edit::Span::span(&a.value),
            "`regions` needs at least one region: the first is where images are uploaded",
        );
        return None;
    }
    if cloud == "gcp" && list.len() > 1 {
        cx.error_at(
            list[1].loc.clone(),
            "GCP images are global: `regions` takes one storage location (like `eu` or `europe-west1`)",
        );
        return None;
    }
    valid_regions(cx, list, cloud)
}

/// Each region checked against the cloud's naming rules, at its own position.
fn valid_regions(
    cx: &mut Cx,
    list: Vec<crate::diagnostic::Spanned<String>>,
    cloud: &str,
) -> Option<Vec<String>> {
    let (valid, like): (fn(&str) -> bool, &str) = match cloud {
        "azure" => (is_azure_region, "an Azure region name (like westeurope)"),
        "gcp" => (
            is_gcp_location,
            "a GCP storage location (like eu or europe-west1)",
        ),
        _ => (is_aws_region, "an AWS region name (like us-east-1)"),
    };
    let mut ok = true;
    for reg in &list {
        if !valid(&reg.value) {
            cx.error_at(reg.loc.clone(), format!("`{}` is not {like}", reg.value));
            ok = false;
        }
    }
    ok.then(|| list.into_iter().map(|x| x.value).collect())
}

/// A required string attribute that must pass `valid`, or an optional one with a default.
fn name(
    cx: &mut Cx,
    r: &mut BodyReader<'_>,
    key: &'static str,
    default: Option<&str>,
    valid: fn(&str) -> bool,
    what: &str,
) -> Option<String> {
    let a = match default {
        Some(d) => match r.attr(cx, key) {
            Some(a) => a,
            None => return Some(d.to_string()),
        },
        None => r.required(cx, key)?,
    };
    let s = hcl::string(cx, &a.value, &format!("`{key}`"))?;
    if valid(&s.value) {
        Some(s.value)
    } else {
        cx.error_at(s.loc, format!("`{}` is not {what}", s.value));
        None
    }
}

fn read_azure(cx: &mut Cx, r: &mut BodyReader<'_>) -> Option<CloudSettings> {
    let subscription = name(
        cx,
        r,
        "subscription",
        None,
        is_guid,
        "a subscription id (GUID)",
    );
    let resource_group = name(
        cx,
        r,
        "resource_group",
        None,
        is_resource_group,
        "a resource group name (1-90 letters, digits, `-_.()`, not ending in `.`)",
    );
    let gallery = name(
        cx,
        r,
        "gallery",
        None,
        is_gallery,
        "a gallery name (letters, digits, `_` and `.`, at most 80)",
    );
    let storage_account = name(
        cx,
        r,
        "storage_account",
        None,
        is_storage_account,
        "a storage account name (3-24 lowercase letters and digits)",
    );
    let container = name(
        cx,
        r,
        "container",
        Some(DEFAULT_CONTAINER),
        is_container,
        "a blob container name (3-63 lowercase letters, digits and single hyphens)",
    );
    Some(CloudSettings::Azure {
        subscription: subscription?,
        resource_group: resource_group?,
        gallery: gallery?,
        storage_account: storage_account?,
        container: container?,
    })
}

fn read_gcp(cx: &mut Cx, r: &mut BodyReader<'_>) -> Option<CloudSettings> {
    let project = name(cx, r, "project", None, is_gcp_project, "a GCP project id");
    let bucket = name(
        cx,
        r,
        "bucket",
        None,
        is_gcs_bucket,
        "a Cloud Storage bucket name (3-63 lowercase letters, digits, `-_.`)",
    );
    Some(CloudSettings::Gcp {
        project: project?,
        bucket: bucket?,
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// `westeurope`, `eastus2`, `swedencentral`: Azure's programmatic region names.
fn is_azure_region(s: &str) -> bool {
    (4..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A multi-region (`us`, `eu`, `asia`) or a region (`europe-west1`, `us-central1`).
fn is_gcp_location(s: &str) -> bool {
    if matches!(s, "us" | "eu" | "asia") {
        return true;
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 2
        && parts[0].len() >= 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1].ends_with(|c: char| c.is_ascii_digit())
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn is_resource_group(s: &str) -> bool {
    (1..=90).contains(&s.len())
        && !s.ends_with('.')
        && s.chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c))
}

fn is_gallery(s: &str) -> bool {
    (1..=80).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

fn is_storage_account(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn is_container(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_gcs_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !s.starts_with("goog")
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_shapes() {
        assert!(is_aws_region("us-gov-west-1") && !is_aws_region("Frankfurt"));
        assert!(is_azure_region("westeurope") && !is_azure_region("West Europe"));
        assert!(is_gcp_location("eu") && is_gcp_location("europe-west1"));
        assert!(!is_gcp_location("europe-west") && !is_gcp_location("us-east-1"));
        assert!(is_resource_group("rg-images_(prod)") && !is_resource_group("rg."));
        assert!(is_gallery("acme_images.v1") && !is_gallery("acme-images"));
        assert!(is_storage_account("acmeimages01") && !is_storage_account("Acme-Images"));
        assert!(is_container("kiln-vhds") && !is_container("kiln--vhds"));
        assert!(
            is_gcs_bucket("acme-kiln_images.1")
                && !is_gcs_bucket("google-x-")
                && !is_gcs_bucket("goog-images")
        );
    }
}
