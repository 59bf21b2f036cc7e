//! The store stage against moto's S3 (the build itself is not the subject: the artifacts are
//! small files standing in for a build's output). Each artifact goes to its content address,
//! the records carry `s3://` urls that download back to the same bytes, the manifest lands
//! beside the fingerprint, and storing the same files again sends nothing.

use std::sync::Mutex;

use kiln_build::{Progress, StageEvent};
use kiln_emulators::Moto;
use kiln_pipeline::store_stage::{LocalArtifact, upload};
use kiln_store::S3Store;
use kiln_store::aws::Conn;
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Progress for Notes {
    fn event(&self, _: &str, _: &str, event: StageEvent<'_>) {
        if let StageEvent::Note(n) = event {
            self.0.lock().unwrap().push(n.to_string());
        }
    }
}

#[test]
fn a_builds_artifacts_are_stored_by_content_and_recorded_as_s3_urls() {
    let moto = Moto::start();
    let store = S3Store::new(
        "team-images",
        "acme",
        &Conn {
            region: "us-east-1".into(),
            endpoint: Some(moto.url.clone()),
            static_credentials: Some(("testing".into(), "testing".into())),
        },
    )
    .unwrap();
    store.create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<LocalArtifact> = [("raw", 7 * 1024 * 1024), ("qcow2", 300_000)]
        .into_iter()
        .map(|(format, len)| {
            let bytes: Vec<u8> = (0..len)
                .map(|i: usize| (i * 31 % 251) as u8 ^ format.len() as u8)
                .collect();
            let path = dir.path().join(format!("disk.{format}"));
            std::fs::write(&path, &bytes).unwrap();
            LocalArtifact {
                path,
                format: format.into(),
                size: len as u64,
                sha256: format!("{:x}", Sha256::digest(&bytes)),
            }
        })
        .collect();
    let fp = "0123456789abcdef0123456789abcdef";
    let notes = Notes::default();
    let recorded = upload(
        &store,
        "base",
        fp,
        &files,
        b"{\"image\":\"base\"}".to_vec(),
        &notes,
    )
    .unwrap();

    assert_eq!(recorded.len(), 2);
    for (a, f) in recorded.iter().zip(&files) {
        assert_eq!(a.platform, "s3");
        assert_eq!(
            a.external_id,
            format!("s3://team-images/acme/sha256/{}", f.sha256)
        );
        assert_eq!(
            (a.format.as_str(), a.size, a.sha256.as_str()),
            (f.format.as_str(), f.size, f.sha256.as_str())
        );
        let back = dir.path().join(format!("back.{}", f.format));
        store.get_file(&a.sha256, &back).unwrap();
        assert_eq!(
            std::fs::read(&back).unwrap(),
            std::fs::read(&f.path).unwrap()
        );
    }
    assert_eq!(
        store
            .get_bytes("base/0123456789abcdef/manifest.json")
            .unwrap(),
        b"{\"image\":\"base\"}"
    );

    // A rebuild with the same bytes (another version, another worker) stores nothing again.
    let again = Notes::default();
    upload(&store, "base", fp, &files, b"{}".to_vec(), &again).unwrap();
    let again = again.0.into_inner().unwrap();
    assert!(
        again.iter().all(|n| n.ends_with("(already stored)")),
        "{again:?}"
    );
    let first = notes.0.into_inner().unwrap();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|n| n.ends_with("(1 part)")), "{first:?}");
}
