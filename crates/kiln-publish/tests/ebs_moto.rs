//! The EBS direct upload against moto's server (the real AWS SDK on one side, moto's
//! implementation of the EBS and EC2 APIs on the other): every block read back with
//! GetSnapshotBlock reassembles the disk bit for bit; all-zero blocks are not sent; a re-run
//! uploads nothing; an upload interrupted midway resumes with the blocks that are missing.

mod common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Moto, conn_in, disk, hex};
use kiln_publish::aws::Clients;
use kiln_publish::aws::ebs::{self, BLOCK, Upload};
use sha2::{Digest, Sha256};

/// Reads every block of the snapshot back and reassembles a disk of `size` bytes.
async fn read_back(c: &Clients, id: &str, size: u64, out: &Path) -> String {
    let f = std::fs::File::create(out).unwrap();
    f.set_len(size.div_ceil(BLOCK) * BLOCK).unwrap();
    let list = c
        .ebs
        .list_snapshot_blocks()
        .snapshot_id(id)
        .send()
        .await
        .unwrap();
    for b in list.blocks() {
        let got = c
            .ebs
            .get_snapshot_block()
            .snapshot_id(id)
            .block_index(b.block_index().unwrap())
            .block_token(b.block_token().unwrap())
            .send()
            .await
            .unwrap();
        let data = got.block_data.collect().await.unwrap().into_bytes();
        assert_eq!(data.len() as u64, BLOCK);
        f.write_all_at(&data, b.block_index().unwrap() as u64 * BLOCK)
            .unwrap();
    }
    f.set_len(size).unwrap();
    let mut f = f;
    f.flush().unwrap();
    hex(&Sha256::digest(std::fs::read(out).unwrap()))
}

fn quiet() -> Arc<dyn Fn(u64, u64) + Send + Sync> {
    Arc::new(|_, _| {})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_blocks_reassemble_the_disk_and_reruns_send_nothing() {
    let moto = Moto::start();
    let c = Clients::new(&conn_in(&moto, "us-east-1")).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, sha, size) = disk(dir.path(), 64);
    let u = Upload {
        disk: &path,
        sha256: &sha,
        version: "01TESTVERSION",
        description: "kiln test disk".into(),
        tags: vec![("kiln:bucket".into(), "base".into())],
        parallel: 8,
    };
    let r = ebs::upload(&c, &u, quiet()).await.unwrap();
    let total = size.div_ceil(BLOCK);
    // Data sits in blocks 0-1 (1.5 blocks), 20-25 (5 blocks from an offset of 100 bytes) and
    // the last, partial one: 9 of 129.
    assert_eq!(total, 129);
    assert_eq!(r.blocks_sent, 9, "{r:?}");
    assert_eq!(r.blocks_zero, total - 9);
    assert!(!r.reused);
    assert_eq!(
        read_back(&c, &r.snapshot_id, size, &dir.path().join("back.raw")).await,
        sha
    );

    // The snapshot carries the tags a re-run and an operator look for.
    let snap = c
        .ec2
        .describe_snapshots()
        .snapshot_ids(&r.snapshot_id)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = snap.snapshots()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    for want in [
        (ebs::TAG_DISK, sha.as_str()),
        (ebs::TAG_VERSION, "01TESTVERSION"),
        ("kiln:bucket", "base"),
        (ebs::TAG_COMPLETE, "true"),
    ] {
        assert!(
            tags.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {tags:?}"
        );
    }

    let again = ebs::upload(&c, &u, quiet()).await.unwrap();
    assert!(again.reused);
    assert_eq!((again.snapshot_id, again.blocks_sent), (r.snapshot_id, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_with_the_missing_blocks() {
    let moto = Moto::start();
    let c = Clients::new(&conn_in(&moto, "us-east-1")).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, sha, size) = disk(dir.path(), 64);
    let u = Upload {
        disk: &path,
        sha256: &sha,
        version: "01RESUME",
        description: "kiln resume test".into(),
        tags: vec![],
        parallel: 1,
    };
    // Stop the first run after its fourth block: as if the machine went away mid-upload.
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let counter = sent.clone();
    let progress: Arc<dyn Fn(u64, u64) + Send + Sync> = Arc::new(move |_, _| {
        if counter.fetch_add(1, Ordering::SeqCst) + 1 == 4
            && let Some(t) = tx.lock().unwrap().take()
        {
            let _ = t.send(());
        }
    });
    {
        let (c2, path2, sha2) = (c.clone(), path.clone(), sha.clone());
        let first = tokio::spawn(async move {
            let u = Upload {
                disk: &path2,
                sha256: &sha2,
                version: "01RESUME",
                description: "kiln resume test".into(),
                tags: vec![],
                parallel: 1,
            };
            ebs::upload(&c2, &u, progress).await
        });
        rx.await.unwrap();
        first.abort();
        let _ = first.await;
    }
    let r = ebs::upload(&c, &u, quiet()).await.unwrap();
    assert!(
        !r.reused,
        "the interrupted snapshot was never marked complete"
    );
    assert!(r.blocks_resumed >= 4, "{r:?}");
    assert_eq!(r.blocks_sent + r.blocks_resumed, 9, "{r:?}");
    assert_eq!(
        read_back(&c, &r.snapshot_id, size, &dir.path().join("back.raw")).await,
        sha
    );
    // One snapshot for this disk, not two.
    let snaps = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", ebs::TAG_DISK))
                .values(&sha)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(snaps.snapshots().len(), 1);
}
