//! The shared-store stage: with `store { url = "s3://bucket/prefix" }`, each artifact of a
//! finished build goes up to its content address and the version records the `s3://` urls, so
//! any machine on the team (a worker, a publisher, a CI job) can fetch and verify it. The build
//! itself still stages on local disk first; that copy is this machine's cache.

use kiln_build::{BuildOutput, Progress, StageEvent};
use kiln_registry::Artifact;
use kiln_spec::{Factory, StoreUrl};
use kiln_store::S3Store;
use kiln_store::aws::Conn;

/// The factory's S3 store, if it has one. Endpoint and region come from the SDK's usual
/// variables (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for S3-compatible stores,
/// `AWS_REGION`), credentials from the standard chain.
pub fn open(f: &Factory) -> Result<Option<S3Store>, String> {
    let StoreUrl::S3 { bucket, prefix } = &f.settings.store else {
        return Ok(None);
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let conn = Conn {
        region: env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into()),
        endpoint: env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")),
        static_credentials: None,
    };
    S3Store::new(bucket, prefix, &conn)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A finished artifact on local disk, to be stored.
#[derive(Debug, Clone)]
pub struct LocalArtifact {
    pub path: std::path::PathBuf,
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

impl LocalArtifact {
    /// The artifacts of a build, from its manifest.
    pub fn of(out: &BuildOutput) -> Vec<LocalArtifact> {
        out.manifest
            .artifacts
            .iter()
            .map(|a| LocalArtifact {
                path: out.dir.join(&a.file),
                format: a.format.as_str().into(),
                size: a.size,
                sha256: a.sha256.clone(),
            })
            .collect()
    }
}

/// Uploads a build's artifacts, then its manifest (as `IMAGE/FINGERPRINT[..16]/manifest.json`);
/// the artifacts to record for them. A file already stored is not sent again; an upload cut
/// off earlier resumes.
pub fn upload(
    store: &S3Store,
    name: &str,
    fingerprint: &str,
    artifacts: &[LocalArtifact],
    manifest: Vec<u8>,
    progress: &dyn Progress,
) -> Result<Vec<Artifact>, String> {
    progress.event(
        name,
        "store",
        StageEvent::Start("uploading to the shared store"),
    );
    let started = std::time::Instant::now();
    let mut recorded = Vec::new();
    for a in artifacts {
        let up = store
            .put_file(&a.path, &a.sha256, &|_, _| {})
            .map_err(|e| format!("store: {e}"))?;
        let how = if up.already_stored {
            "already stored".to_string()
        } else if up.reused_parts > 0 {
            format!("resumed: {} of {} parts kept", up.reused_parts, up.parts)
        } else {
            format!("{} part{}", up.parts, if up.parts == 1 { "" } else { "s" })
        };
        progress.event(
            name,
            "store",
            StageEvent::Note(&format!("{} ({how})", up.url)),
        );
        recorded.push(Artifact {
            platform: "s3".into(),
            region: String::new(),
            external_id: up.url,
            format: a.format.clone(),
            size: a.size,
            sha256: a.sha256.clone(),
        });
    }
    let fp16 = &fingerprint[..16.min(fingerprint.len())];
    store
        .put_bytes(&format!("{name}/{fp16}/manifest.json"), manifest)
        .map_err(|e| format!("store: {e}"))?;
    progress.event(name, "store", StageEvent::Done(started.elapsed()));
    Ok(recorded)
}
