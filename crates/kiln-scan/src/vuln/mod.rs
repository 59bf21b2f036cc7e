//! Offline vulnerability data and matching. Advisories are imported into a local SQLite index
//! (`kiln vulndb import`) from OSV files and the Debian security tracker's JSON, normalised to one
//! shape ([`Affected`]): which versions of a package in an ecosystem a vulnerability affects.
//! Matching compares an image's packages against that index with each package manager's own
//! version ordering.

pub mod db;
pub mod matcher;
pub mod osv;
pub mod severity;
pub mod tracker;

use serde::{Deserialize, Serialize};

pub use db::{ImportCounts, VulnDb};
pub use matcher::{Finding, Matches, Verdict, match_sbom};
pub use severity::Severity;

/// One range of affected versions: from `introduced` (inclusive; `"0"` = every version) up to
/// `fixed` (exclusive) or `last_affected` (inclusive); neither means no fix is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub introduced: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
}

/// What one advisory record says about one package of one ecosystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// Where it came from: "osv" or "debian-tracker".
    pub origin: String,
    /// The record's id (`DSA-5523-1`, `CVE-2024-1234`).
    pub record: String,
    /// `Debian:12`, `Alpine:v3.19`, `Red Hat:enterprise_linux:9::baseos`.
    pub ecosystem: String,
    pub package: String,
    /// The vulnerability ids this record speaks for (its CVEs, or its own id).
    pub vulns: Vec<String>,
    /// Empty with `not_affected` false: every version is affected and no fix is known.
    pub ranges: Vec<Range>,
    /// The data says this release was never affected.
    pub not_affected: bool,
    pub severity: Severity,
    pub summary: String,
    pub modified: String,
}

/// Debian release codenames and their OSV ecosystem numbers (the tracker keys by codename).
pub fn debian_ecosystem(codename: &str) -> Option<String> {
    let n = match codename {
        "buster" => 10,
        "bullseye" => 11,
        "bookworm" => 12,
        "trixie" => 13,
        "forky" => 14,
        _ => return None,
    };
    Some(format!("Debian:{n}"))
}
