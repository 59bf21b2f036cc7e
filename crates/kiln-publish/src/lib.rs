//! Kiln's publish stage: notifications (registry events delivered to webhooks, signed with
//! HMAC-SHA256, retried with backoff, never in a build's way) and sharing images to cloud
//! accounts (AWS so far: the disk as an EBS snapshot through the EBS direct APIs).

pub mod aws;
pub mod azure;
pub mod error;
pub mod notify;

pub use error::PublishError;
