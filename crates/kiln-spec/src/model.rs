//! The validated factory: what the rest of Kiln sees. Every value here passed validation, so later
//! stages never re-check a definition; the [`Loc`]s are kept so later stages can still point a user
//! at the line that caused a problem.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::accounts::AccountMap;
use crate::checks::Check;
use crate::diagnostic::Loc;
use crate::names::{ChannelName, FactoryName, ImageName};
use crate::values::{BootMode, ByteSize, Format, GuestPath, ImagePath, Mode};

/// A whole factory repository, validated.
#[derive(Debug, Clone)]
pub struct Factory {
    /// The directory holding `kiln.hcl`.
    pub root: PathBuf,
    pub settings: Settings,
    pub sources: BTreeMap<SourceId, Source>,
    pub policies: BTreeMap<ChannelName, Policy>,
    pub images: BTreeMap<ImageName, Image>,
    /// `accounts.yaml`, when the factory has one.
    pub accounts: Option<AccountMap>,
}

impl Factory {
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.get(name)
    }

    pub fn check_count(&self) -> usize {
        self.images
            .values()
            .flat_map(|i| &i.check_files)
            .map(|c| c.checks.len())
            .sum()
    }
}

/// The `factory`, `registry` and `store` blocks of kiln.hcl.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub name: FactoryName,
    /// Promotion order, first to last. `latest` is implicit.
    pub channels: Vec<ChannelName>,
    pub registry: RegistryUrl,
    pub store: StoreUrl,
    pub retention: Retention,
    /// `notify "webhook" "NAME"` blocks.
    pub webhooks: Vec<Webhook>,
    /// `publish "aws" | "azure" | "gcp"` blocks: where images are shared (the account map says with whom).
    pub publish: Vec<PublishTarget>,
}

/// A cloud the factory publishes to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishTarget {
    /// `aws`, `azure` or `gcp` (the block's label; `cloud` below carries the same choice).
    pub cloud: String,
    /// Regions; the first is where the image is uploaded, the others receive copies (AWS) or
    /// replicas (Azure). GCP images are global: its one entry is the image's storage location.
    pub regions: Vec<String>,
    /// When set, only builds of this git branch are published.
    pub default_branch: Option<String>,
    /// Extra tags (GCP: labels) on every published image.
    pub tags: std::collections::BTreeMap<String, String>,
    /// Where in the cloud the image goes, beyond regions.
    pub settings: CloudSettings,
    /// `channel "NAME" { … }` blocks: what versions on that channel get besides the above.
    pub channels: std::collections::BTreeMap<String, ChannelPublish>,
}

/// A `channel` block inside a publish block: more regions and tags for versions on the channel
/// (production copied to more regions than dev, say).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChannelPublish {
    /// Regions added to the block's (AWS copies, Azure replicas; GCP images are global).
    pub regions: Vec<String>,
    /// Tags added to the block's; a key in both takes the channel's value.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl PublishTarget {
    /// The block as it applies to a version on `channels`: its regions, then each channel
    /// block's new ones in the order given; its tags, then each channel block's (later channels
    /// win a key both set).
    pub fn for_channels(&self, channels: &[String]) -> PublishTarget {
        let mut out = self.clone();
        for c in channels {
            if let Some(extra) = self.channels.get(c) {
                for r in &extra.regions {
                    if !out.regions.contains(r) {
                        out.regions.push(r.clone());
                    }
                }
                out.tags
                    .extend(extra.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }
}

/// The settings one cloud needs that the others do not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "cloud", rename_all = "lowercase")]
pub enum CloudSettings {
    /// AMIs live in the account of the credentials; nothing more to say.
    Aws,
    /// A Compute Gallery image version, made from a page blob in a storage account.
    Azure {
        /// The subscription (GUID) holding the gallery and the storage account.
        subscription: String,
        resource_group: String,
        /// The gallery; each bucket is an image definition in it, which must exist.
        gallery: String,
        /// Receives the VHD as a page blob.
        storage_account: String,
        container: String,
    },
    /// A Compute Engine image, made from the `gce` tar.gz in a Cloud Storage bucket.
    Gcp {
        /// The project the images are created in.
        project: String,
        /// The Cloud Storage bucket receiving the tar.gz.
        bucket: String,
    },
}

/// The registry events a webhook can receive.
pub const WEBHOOK_EVENTS: [&str; 7] = [
    "version.created",
    "version.completed",
    "version.failed",
    "version.promoted",
    "version.revoked",
    "version.restored",
    "version.outdated",
];

/// A webhook target. The signing secret is never in kiln.hcl: it is read from the environment
/// variable `secret_env` names, at delivery time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub secret_env: Option<String>,
    /// Subset of [`WEBHOOK_EVENTS`]; all of them when the block does not say.
    pub events: Vec<String>,
}

/// What `kiln reap` may delete (the `retention` block). Versions on a channel, ancestors of
/// live versions and versions younger than `min_age_secs` are kept whatever these say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// The newest N completed versions of each bucket are kept.
    pub keep_last: u32,
    pub min_age_secs: u64,
    /// A failed version's artifacts are deleted this long after it failed.
    pub failed_grace_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 10,
            min_age_secs: 7 * 86_400,
            failed_grace_secs: 3 * 86_400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "location", rename_all = "lowercase")]
pub enum RegistryUrl {
    /// Path relative to the factory root unless absolute.
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreUrl {
    File { path: PathBuf },
    S3 { bucket: String, prefix: String },
}

/// `source "debian" "bookworm"` is `SourceId { kind: Debian, name: "bookworm" }`, referenced as
/// `source.debian.bookworm`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct SourceId {
    pub kind: SourceKind,
    pub name: String,
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Debian,
}

impl SourceKind {
    pub const ALL: [SourceKind; 1] = [SourceKind::Debian];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Debian => "debian",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An upstream OS source. Two sources are "the same" for change detection when everything but
/// their location in the file is equal, hence the manual `PartialEq` that skips `loc`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Source {
    pub id: SourceId,
    pub suite: String,
    pub components: Vec<String>,
    /// `None`: the build host's apt sources.
    pub mirror: Option<String>,
    /// Where `SUITE-security` comes from. `None`: the build host's apt sources.
    pub security_mirror: Option<String>,
    /// A snapshot timestamp (`20250520T000000Z`) that pins the package set.
    pub snapshot: Option<String>,
    pub architecture: String,
    #[serde(skip)]
    pub loc: Loc,
}

impl PartialEq for Source {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.id,
            &self.suite,
            &self.components,
            &self.mirror,
            &self.security_mirror,
            &self.snapshot,
            &self.architecture,
        ) == (
            &o.id,
            &o.suite,
            &o.components,
            &o.mirror,
            &o.security_mirror,
            &o.snapshot,
            &o.architecture,
        )
    }
}

/// Highest finding severity a policy accepts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FindingSeverity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl FindingSeverity {
    pub const ALL: [FindingSeverity; 5] = [
        FindingSeverity::None,
        FindingSeverity::Low,
        FindingSeverity::Medium,
        FindingSeverity::High,
        FindingSeverity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingSeverity::None => "none",
            FindingSeverity::Low => "low",
            FindingSeverity::Medium => "medium",
            FindingSeverity::High => "high",
            FindingSeverity::Critical => "critical",
        }
    }
}

/// Roles that may approve or manage channels. The registry and server enforce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Platform,
    Security,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Platform, Role::Security];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Platform => "platform",
            Role::Security => "security",
        }
    }
}

/// `policy "CHANNEL"`: the rules a version must meet to enter that channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Policy {
    pub channel: ChannelName,
    pub require_tests: bool,
    pub max_severity: Option<FindingSeverity>,
    pub forbid_secrets: bool,
    /// `Some(role)`: a person with this role must approve before promotion.
    pub require_approval: Option<Role>,
    /// Only the security role may move a restricted channel.
    pub restricted: bool,
}

/// Where an image starts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Parent {
    Source(SourceId),
    Image(ImageName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Disk {
    pub size: ByteSize,
    pub boot: BootMode,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Provisioner {
    Shell {
        body: ShellBody,
        /// `KEY=VALUE` pairs exported to the script, in order.
        environment_vars: Vec<(String, String)>,
    },
    File {
        source: ImagePath,
        destination: GuestPath,
        mode: Option<Mode>,
        owner: Option<String>,
        group: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShellBody {
    Inline(Vec<String>),
    Script(ImagePath),
}

/// One check file of an image, loaded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckFile {
    pub path: ImagePath,
    pub checks: Vec<Check>,
}

/// A validated image definition, with inherited settings (disk, formats) resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Image {
    pub name: ImageName,
    /// The image directory, relative to the factory root.
    pub dir: PathBuf,
    pub description: Option<String>,
    pub from: Parent,
    /// For image parents: the parent channel to build on.
    pub channel: Option<ChannelName>,
    pub packages: Vec<String>,
    pub disk: Disk,
    pub provisioners: Vec<Provisioner>,
    pub check_files: Vec<CheckFile>,
    pub formats: Vec<Format>,
    pub labels: BTreeMap<String, String>,
    /// Where the `image` block starts, and where `from` is set.
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip)]
    pub from_loc: Loc,
}

impl Image {
    pub fn parent_image(&self) -> Option<&ImageName> {
        match &self.from {
            Parent::Image(n) => Some(n),
            Parent::Source(_) => None,
        }
    }

    pub fn source(&self) -> Option<&SourceId> {
        match &self.from {
            Parent::Source(s) => Some(s),
            Parent::Image(_) => None,
        }
    }
}
