//! The registry's vocabulary, in the shape of HCP Packer so users recognise it.

use serde::{Deserialize, Serialize};

/// Who does something, and with which role (the server maps tokens to these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

impl Actor {
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Actor {
            name: name.into(),
            role,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Platform,
    Security,
    Ci,
    Consumer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Platform => "platform",
            Role::Security => "security",
            Role::Ci => "ci",
            Role::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Platform,
            Role::Security,
            Role::Ci,
            Role::Consumer,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A version's lifecycle as readers see it (revocation folded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Failed,
    Active,
    RevocationScheduled,
    Revoked,
    /// Deleted by retention: the record stays, the artifacts are gone.
    Reaped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Failed => "failed",
            Status::Active => "active",
            Status::RevocationScheduled => "revocation_scheduled",
            Status::Revoked => "revoked",
            Status::Reaped => "reaped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub at: String,
    pub reason: String,
    pub by: String,
    /// The version whose revocation this one inherited.
    pub inherited_from: Option<String>,
    pub skip_descendants: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub bucket: String,
    pub fingerprint: String,
    pub status: Status,
    pub parents: Vec<String>,
    pub revocation: Option<Revocation>,
    pub build: serde_json::Value,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub platform: String,
    pub region: String,
    pub external_id: String,
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelEntry {
    pub channel: String,
    pub version: Option<String>,
    pub previous: Option<String>,
    pub author: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub bucket: String,
    pub name: String,
    pub version: Option<String>,
    pub restricted: bool,
}

/// A child version built on a parent version that its tracked channel no longer points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfDate {
    pub child: String,
    pub child_bucket: String,
    pub parent: String,
    pub parent_bucket: String,
    pub channel: String,
    /// What the channel points at now (None: empty).
    pub now: Option<String>,
}
