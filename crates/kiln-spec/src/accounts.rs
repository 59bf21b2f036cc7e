//! `accounts.yaml`: the account map — which cloud accounts receive the images of each channel.
//!
//! It is reviewed in pull requests like code, so every id is checked for shape here: a typo in an
//! AWS account id would otherwise share an image with a stranger or silently with nobody.
//! Publishing (a later stage) fails closed on an empty map; this module only validates.

use std::collections::BTreeMap;

use crate::diagnostic::Spanned;
use crate::hcl::Cx;
use crate::names::ChannelName;
use crate::yaml::{self, MapReader};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountMap {
    pub channels: BTreeMap<ChannelName, ChannelAccounts>,
}

impl AccountMap {
    pub fn is_empty(&self) -> bool {
        self.channels.values().all(ChannelAccounts::is_empty)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChannelAccounts {
    pub aws: AwsShare,
    pub azure: AzureShare,
    pub gcp: GcpShare,
}

impl ChannelAccounts {
    pub fn is_empty(&self) -> bool {
        self.aws.accounts.is_empty()
            && self.aws.organizations.is_empty()
            && self.aws.organizational_units.is_empty()
            && self.azure.subscriptions.is_empty()
            && self.azure.tenants.is_empty()
            && self.gcp.projects.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AwsShare {
    /// 12-digit account ids.
    pub accounts: Vec<String>,
    /// `arn:aws:organizations::ACCOUNT:organization/o-…`
    pub organizations: Vec<String>,
    /// `arn:aws:organizations::ACCOUNT:ou/o-…/ou-…`
    pub organizational_units: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AzureShare {
    /// Subscription ids (GUIDs).
    pub subscriptions: Vec<String>,
    /// Tenant ids (GUIDs).
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcpShare {
    /// Project ids.
    pub projects: Vec<String>,
}

/// Reads the map; `channels` are the factory's channels (when kiln.hcl could be read).
pub(crate) fn read(cx: &mut Cx, channels: Option<&[ChannelName]>) -> Option<AccountMap> {
    let top = yaml::parse_mapping(cx)?;
    let mut r = MapReader::new("accounts.yaml", &top);
    let chans = r.get("channels");
    r.finish(cx);
    let mut out = AccountMap::default();
    let Some(chans) = chans else {
        let loc = cx.src.start();
        cx.error_at(loc, "accounts.yaml needs a top-level `channels:` mapping");
        return None;
    };
    let Some(map) = chans.as_mapping() else {
        let loc = yaml::node_loc(cx, chans);
        cx.error_at(
            loc,
            format!("`channels` must be a mapping, found {}", yaml::kind(chans)),
        );
        return None;
    };
    let before = cx.diags.len();
    for (key, value) in map.iter() {
        let key_loc = yaml::scalar_loc(cx, key);
        let channel = match ChannelName::new(key.as_str()) {
            Ok(c) => c,
            Err(e) => {
                cx.error_at(key_loc, e.to_string());
                continue;
            }
        };
        if let Some(chs) = channels
            && !chs.contains(&channel)
        {
            let names: Vec<&str> = chs.iter().map(|c| c.as_str()).collect();
            cx.error_at(
                key_loc,
                format!(
                    "unknown channel `{channel}`; the factory's channels are: {}",
                    names.join(", ")
                ),
            );
            continue;
        }
        let Some(m) = value.as_mapping() else {
            let loc = yaml::node_loc(cx, value);
            cx.error_at(
                loc,
                format!(
                    "channel `{channel}` must map to aws/azure/gcp, found {}",
                    yaml::kind(value)
                ),
            );
            continue;
        };
        out.channels.insert(channel, read_channel(cx, m));
    }
    (cx.diags.len() == before).then_some(out)
}

fn read_channel(cx: &mut Cx, m: &marked_yaml::types::MarkedMappingNode) -> ChannelAccounts {
    let mut r = MapReader::new("a channel's accounts", m);
    let aws = r.get("aws");
    let azure = r.get("azure");
    let gcp = r.get("gcp");
    r.finish(cx);
    let mut out = ChannelAccounts::default();
    if let Some(m) = aws.and_then(|n| mapping(cx, n, "aws")) {
        let mut r = MapReader::new("aws", m);
        out.aws.accounts = ids(
            cx,
            &mut r,
            "accounts",
            is_aws_account,
            "a 12-digit AWS account id",
        );
        out.aws.organizations = ids(
            cx,
            &mut r,
            "organizations",
            is_aws_org_arn,
            "an organization ARN (arn:aws:organizations::ACCOUNT:organization/o-…)",
        );
        out.aws.organizational_units = ids(
            cx,
            &mut r,
            "organizational_units",
            is_aws_ou_arn,
            "an OU ARN (arn:aws:organizations::ACCOUNT:ou/o-…/ou-…)",
        );
        r.finish(cx);
    }
    if let Some(m) = azure.and_then(|n| mapping(cx, n, "azure")) {
        let mut r = MapReader::new("azure", m);
        out.azure.subscriptions = ids(
            cx,
            &mut r,
            "subscriptions",
            is_guid,
            "a subscription id (GUID)",
        );
        out.azure.tenants = ids(cx, &mut r, "tenants", is_guid, "a tenant id (GUID)");
        r.finish(cx);
    }
    if let Some(m) = gcp.and_then(|n| mapping(cx, n, "gcp")) {
        let mut r = MapReader::new("gcp", m);
        out.gcp.projects = ids(cx, &mut r, "projects", is_gcp_project, "a GCP project id");
        r.finish(cx);
    }
    out
}

fn mapping<'n>(
    cx: &mut Cx,
    n: &'n marked_yaml::Node,
    key: &str,
) -> Option<&'n marked_yaml::types::MarkedMappingNode> {
    let m = n.as_mapping();
    if m.is_none() {
        let loc = yaml::node_loc(cx, n);
        cx.error_at(
            loc,
            format!("`{key}` must be a mapping, found {}", yaml::kind(n)),
        );
    }
    m
}

fn ids(
    cx: &mut Cx,
    r: &mut MapReader<'_>,
    key: &'static str,
    valid: fn(&str) -> bool,
    what: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for Spanned { value, loc } in r.strings(cx, key) {
        if !valid(&value) {
            cx.error_at(loc, format!("`{value}` is not {what}"));
        } else if out.contains(&value) {
            cx.error_at(loc, format!("`{value}` is listed twice"));
        } else {
            out.push(value);
        }
    }
    out
}

fn is_aws_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_aws_org_arn(s: &str) -> bool {
    s.strip_prefix("arn:aws:organizations::")
        .and_then(|r| r.split_once(":organization/"))
        .is_some_and(|(acct, org)| is_aws_account(acct) && is_org_id(org))
}

fn is_aws_ou_arn(s: &str) -> bool {
    let Some((acct, rest)) = s
        .strip_prefix("arn:aws:organizations::")
        .and_then(|r| r.split_once(":ou/"))
    else {
        return false;
    };
    let Some((org, ou)) = rest.split_once('/') else {
        return false;
    };
    let ou_ok = ou.strip_prefix("ou-").is_some_and(|r| {
        let parts: Vec<&str> = r.split('-').collect();
        parts.len() == 2
            && (4..=32).contains(&parts[0].len())
            && (8..=32).contains(&parts[1].len())
            && parts.iter().all(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    });
    is_aws_account(acct) && is_org_id(org) && ou_ok
}

pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(crate) fn is_gcp_project(s: &str) -> bool {
    (6..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_shapes() {
        assert!(is_aws_account("123456789012"));
        assert!(!is_aws_account("12345678901"));
        assert!(is_aws_org_arn(
            "arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5"
        ));
        assert!(!is_aws_org_arn(
            "arn:aws:organizations::123456789012:organization/a1b2c3d4e5"
        ));
        assert!(is_aws_ou_arn(
            "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ou-ab12-cdefgh34"
        ));
        assert!(!is_aws_ou_arn(
            "arn:aws:organizations::123456789012:ou/o-a1b2c3d4e5/ab12"
        ));
        assert!(is_guid("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_guid("0f8fad5b-d9cb-469f-a165-70867728950"));
        assert!(is_gcp_project("acme-prod"));
        assert!(!is_gcp_project("Acme"));
    }
}
