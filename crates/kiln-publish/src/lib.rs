//! Kiln's publish stage. So far: notifications — registry events delivered to webhooks, signed
//! with HMAC-SHA256, retried with backoff, never in a build's way. Sharing images to cloud
//! accounts is the next part of this crate.

pub mod notify;
