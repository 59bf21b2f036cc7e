//! The raw disk as an EBS snapshot through the EBS direct APIs: StartSnapshot, PutSnapshotBlock
//! for every 512 KiB block that is not all zeros (a fresh snapshot reads zeros wherever nothing
//! was written, so a mostly-empty disk uploads a fraction of its size), blocks in parallel, each
//! with its SHA-256, then CompleteSnapshot.
//!
//! Resumable: the snapshot is tagged with the disk's sha256 and the version when it starts and
//! marked `kiln:complete` only after CompleteSnapshot. A re-run finds a complete snapshot and
//! uploads nothing; it finds an incomplete one, lists the blocks already there and sends the rest.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAlgorithm, Tag};
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::{Clients, describe};
use crate::PublishError;

/// EBS direct APIs take exactly this block size.
pub const BLOCK: u64 = 512 * 1024;

/// Tag keys on the snapshot.
pub const TAG_DISK: &str = "kiln:disk-sha256";
pub const TAG_VERSION: &str = "kiln:version";
pub const TAG_COMPLETE: &str = "kiln:complete";

#[derive(Debug, Clone, Default)]
pub struct UploadReport {
    pub snapshot_id: String,
    /// Blocks sent in this run.
    pub blocks_sent: u64,
    /// Blocks already in the snapshot from an earlier, interrupted run.
    pub blocks_resumed: u64,
    /// All-zero blocks not sent.
    pub blocks_zero: u64,
    pub bytes_sent: u64,
    pub seconds: f64,
    /// The snapshot was complete already: nothing was sent.
    pub reused: bool,
}

/// What to upload and how.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub disk: &'a Path,
    /// The disk's sha256 (hex), the snapshot's identity.
    pub sha256: &'a str,
    /// The registry version it belongs to.
    pub version: &'a str,
    pub description: String,
    /// Extra tags (bucket, fingerprint, commit…).
    pub tags: Vec<(String, String)>,
    /// Blocks in flight at once.
    pub parallel: usize,
}

fn err(what: &str, e: impl std::error::Error + 'static) -> PublishError {
    PublishError::Cloud(format!("{what}: {}", describe(&e)))
}

/// Finds this disk's snapshot from an earlier run: (id, complete).
async fn existing(c: &Clients, sha256: &str) -> Result<Option<(String, bool)>, PublishError> {
    let out = c
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{TAG_DISK}"))
                .values(sha256)
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("DescribeSnapshots", e))?;
    let mut found: Vec<(String, bool)> = out
        .snapshots()
        .iter()
        .filter_map(|s| {
            let complete = s
                .tags()
                .iter()
                .any(|t| t.key() == Some(TAG_COMPLETE) && t.value() == Some("true"));
            Some((s.snapshot_id()?.to_string(), complete))
        })
        .collect();
    // A complete one wins; otherwise resume any.
    found.sort_by_key(|(_, complete)| !complete);
    Ok(found.into_iter().next())
}

/// Indexes of the blocks an (incomplete) snapshot already holds.
async fn blocks_present(c: &Clients, id: &str) -> Result<Vec<i32>, PublishError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .ebs
            .list_snapshot_blocks()
            .snapshot_id(id)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| err("ListSnapshotBlocks", e))?;
        out.extend(page.blocks().iter().filter_map(|b| b.block_index()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Uploads `u.disk` as a snapshot (or finds the one an earlier run made); `progress` gets the
/// bytes sent so far and the bytes to send.
pub async fn upload(
    c: &Clients,
    u: &Upload<'_>,
    progress: Arc<dyn Fn(u64, u64) + Send + Sync>,
) -> Result<UploadReport, PublishError> {
    let started = Instant::now();
    let file = std::fs::File::open(u.disk)
        .map_err(|e| PublishError::Io(format!("{}: {e}", u.disk.display())))?;
    let size = file
        .metadata()
        .map_err(|e| PublishError::Io(format!("{}: {e}", u.disk.display())))?
        .len();
    let gib = size.div_ceil(1 << 30).max(1);
    let (id, present) = match existing(c, u.sha256).await? {
        Some((id, true)) => {
            return Ok(UploadReport {
                snapshot_id: id,
                reused: true,
                seconds: started.elapsed().as_secs_f64(),
                ..UploadReport::default()
            });
        }
        Some((id, false)) => {
            let present = blocks_present(c, &id).await?;
            tracing::info!(snapshot = %id, blocks = present.len(), "resuming an interrupted upload");
            (id, present)
        }
        None => {
            let mut start = c
                .ebs
                .start_snapshot()
                .volume_size(gib as i64)
                .description(&u.description)
                .timeout(60)
                .tags(Tag::builder().key(TAG_DISK).value(u.sha256).build())
                .tags(Tag::builder().key(TAG_VERSION).value(u.version).build());
            for (k, v) in &u.tags {
                start = start.tags(Tag::builder().key(k).value(v).build());
            }
            let out = start.send().await.map_err(|e| err("StartSnapshot", e))?;
            let id = out
                .snapshot_id()
                .ok_or_else(|| PublishError::Cloud("StartSnapshot returned no snapshot id".into()))?
                .to_string();
            (id, Vec::new())
        }
    };

    let file = Arc::new(file);
    let blocks = size.div_ceil(BLOCK);
    let sent = Arc::new(AtomicU64::new(0));
    let mut report = UploadReport {
        snapshot_id: id.clone(),
        blocks_resumed: present.len() as u64,
        ..UploadReport::default()
    };
    let present: std::collections::HashSet<i32> = present.into_iter().collect();
    let mut tasks: JoinSet<Result<bool, PublishError>> = JoinSet::new();
    let parallel = u.parallel.max(1);
    for index in 0..blocks {
        if present.contains(&(index as i32)) {
            continue;
        }
        while tasks.len() >= parallel {
            if let Some(r) = tasks.join_next().await {
                tally(&mut report, r)?;
            }
        }
        let (c, file, id, sent, progress) = (
            c.clone(),
            file.clone(),
            id.clone(),
            sent.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let mut buf = vec![0u8; BLOCK as usize];
            let off = index * BLOCK;
            let n = read_full(&file, &mut buf, off)
                .map_err(|e| PublishError::Io(format!("reading block {index}: {e}")))?;
            // The last block is padded with zeros to the full size EBS wants.
            buf[n..].fill(0);
            if buf.iter().all(|&b| b == 0) {
                return Ok(false);
            }
            let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&buf));
            c.ebs
                .put_snapshot_block()
                .snapshot_id(&id)
                .block_index(index as i32)
                .data_length(BLOCK as i32)
                .checksum(sum)
                .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
                .block_data(ByteStream::from(buf))
                .send()
                .await
                .map_err(|e| err(&format!("PutSnapshotBlock {index}"), e))?;
            let done = sent.fetch_add(BLOCK, Ordering::Relaxed) + BLOCK;
            progress(done, size);
            Ok(true)
        });
    }
    while let Some(r) = tasks.join_next().await {
        tally(&mut report, r)?;
    }
    report.bytes_sent = report.blocks_sent * BLOCK;
    c.ebs
        .complete_snapshot()
        .snapshot_id(&id)
        .changed_blocks_count((report.blocks_sent + report.blocks_resumed) as i32)
        .send()
        .await
        .map_err(|e| err("CompleteSnapshot", e))?;
    // Only now is the snapshot whole: the tag a re-run trusts.
    c.ec2
        .create_tags()
        .resources(&id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(TAG_COMPLETE)
                .value("true")
                .build(),
        )
        .send()
        .await
        .map_err(|e| err("CreateTags", e))?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn tally(
    report: &mut UploadReport,
    r: Result<Result<bool, PublishError>, tokio::task::JoinError>,
) -> Result<(), PublishError> {
    match r.map_err(|e| PublishError::Cloud(format!("upload task: {e}")))?? {
        true => report.blocks_sent += 1,
        false => report.blocks_zero += 1,
    }
    Ok(())
}

fn read_full(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
