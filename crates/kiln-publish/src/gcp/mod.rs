//! GCP: the `gce` tar.gz (one `disk.raw` in an old-GNU tar, gzipped, as Compute Engine imports
//! it) goes to Cloud Storage through the JSON API's resumable upload, then becomes a global
//! Compute Engine image. Plain REST with a bearer token, like Azure's management plane.

pub mod compute;
pub mod publish;
pub mod storage;
