//! The S3 store against moto's server: content-addressed round trips, a multipart upload cut
//! off mid-way (the endpoint dies) that resumes from the parts already stored, and checksum
//! mismatches caught on both sides.

use std::path::{Path, PathBuf};

use kiln_emulators::{Moto, Throttle};
use kiln_store::aws::Conn;
use kiln_store::{S3Store, StoreError};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

fn conn(endpoint: &str) -> Conn {
    Conn {
        region: "us-east-1".into(),
        endpoint: Some(endpoint.to_string()),
        static_credentials: Some(("testing".into(), "testing".into())),
    }
}

fn store(endpoint: &str) -> S3Store {
    S3Store::new("kiln-artifacts", "team/images", &conn(endpoint))
        .unwrap()
        .with_part_size(5 * MIB)
}

/// A file of `len` bytes that no two parts share (so a reused part is the right part).
fn file(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, String) {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let p = dir.join(name);
    std::fs::write(&p, &bytes).unwrap();
    (p, format!("{:x}", Sha256::digest(&bytes)))
}

fn quiet(_: u64, _: u64) {}

#[test]
fn files_round_trip_by_content_address_and_are_stored_once() {
    let moto = Moto::start();
    let s = store(&moto.url);
    s.create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (p, sha) = file(dir.path(), "disk.raw", 12 * MIB + 123, 7);

    let up = s.put_file(&p, &sha, &quiet).unwrap();
    assert_eq!(up.key, format!("team/images/sha256/{sha}"));
    assert_eq!(
        (up.parts, up.reused_parts, up.already_stored),
        (3, 0, false)
    );
    assert_eq!(up.sent_bytes, up.size);

    let again = s.put_file(&p, &sha, &quiet).unwrap();
    assert!(again.already_stored, "{again:?}");
    assert_eq!(again.sent_bytes, 0);

    let back = dir.path().join("back.raw");
    assert_eq!(s.get_file(&sha, &back).unwrap(), up.size);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&p).unwrap());
}

#[test]
fn an_upload_cut_off_mid_way_resumes_from_the_stored_parts() {
    let moto = Moto::start();
    store(&moto.url).create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (p, sha) = file(dir.path(), "disk.raw", 30 * MIB, 11);

    // 6 parts through an endpoint at ~10 MB/s, which dies once 13 MiB went through.
    let proxy = Throttle::start(moto.port, 10_000_000);
    let cut_short = std::thread::scope(|sc| {
        let job = sc.spawn(|| store(&proxy.url).put_file(&p, &sha, &quiet));
        proxy.wait_past(0, 13 * MIB as u64, || true);
        proxy.cut();
        job.join().unwrap()
    });
    let err = cut_short.expect_err("the endpoint died mid-upload");
    assert!(matches!(err, StoreError::S3 { .. }), "{err}");

    let s = store(&moto.url);
    let resumed = s.put_file(&p, &sha, &quiet).unwrap();
    assert!(
        resumed.reused_parts >= 2,
        "the parts stored before the cut are kept: {resumed:?}"
    );
    assert_eq!(
        resumed.sent_bytes,
        resumed.size - (resumed.reused_parts * 5 * MIB) as u64,
        "only the missing parts are sent"
    );
    assert!(
        !dir.path().join("disk.raw.kiln-upload.json").exists(),
        "the resume journal goes once the upload is complete"
    );
    let back = dir.path().join("back.raw");
    s.get_file(&sha, &back).unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&p).unwrap());
}

#[test]
fn checksum_mismatches_are_refused_on_upload_and_on_download() {
    let moto = Moto::start();
    let s = store(&moto.url);
    s.create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (p, sha) = file(dir.path(), "disk.raw", 6 * MIB, 3);

    // A file that is not what its caller says is never stored under that address.
    let wrong = "0".repeat(64);
    let err = s.put_file(&p, &wrong, &quiet).unwrap_err();
    assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
    assert!(
        s.get_file(&wrong, &dir.path().join("x")).is_err(),
        "nothing stored"
    );

    // An object whose bytes changed in the store is refused, and nothing is left behind.
    let up = s.put_file(&p, &sha, &quiet).unwrap();
    s.overwrite_unchecked(&up.key, b"not the disk".to_vec())
        .unwrap();
    let dest = dir.path().join("back.raw");
    let err = s.get_file(&sha, &dest).unwrap_err();
    assert!(
        matches!(&err, StoreError::Mismatch { expected, .. } if *expected == sha),
        "{err}"
    );
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!dest.exists());
    assert!(!dest.with_extension("kiln-partial").exists());
}
