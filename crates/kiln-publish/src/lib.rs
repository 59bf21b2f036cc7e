//! Kiln's publish stage: notifications (registry events delivered to webhooks, signed with
//! HMAC-SHA256, retried with backoff, never in a build's way) and sharing images to cloud
//! accounts: AWS (the raw disk as an EBS snapshot through the EBS direct APIs, then AMIs), Azure
//! (the VHD as a page blob, then a Compute Gallery version) and GCP (the gce tar.gz in Cloud
//! Storage, then a Compute Engine image). Every cloud passes the same fail-closed checks first
//! ([`preflight`]).

pub mod aws;
pub mod azure;
pub mod error;
pub mod gcp;
pub mod notify;
pub mod preflight;
pub mod reap;
pub mod rest;

pub use error::PublishError;
