//! Content-addressed objects on S3 or an S3-compatible store (MinIO, Ceph, moto in tests).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::aws::{Conn, sdk_config};
use crate::error::{Result, StoreError, io, s3};

/// S3's smallest part (every part but the last must be at least this big).
pub const MIN_PART: usize = 5 * 1024 * 1024;
/// Parts of 64 MiB: a 10 GiB disk is 160 requests, each small enough to retry cheaply.
pub const DEFAULT_PART: usize = 64 * 1024 * 1024;
/// The object metadata holding the whole object's SHA-256 (multipart checksums are per part).
const SHA_META: &str = "sha256";

/// What one upload did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Upload {
    pub url: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// The object was already there, whole and with this digest: nothing was sent.
    pub already_stored: bool,
    pub parts: usize,
    /// Parts of an interrupted earlier upload that matched the file and were kept.
    pub reused_parts: usize,
    /// Bytes of file content sent in this call.
    pub sent_bytes: u64,
}

/// One bucket and prefix.
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: usize,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Store(s3://{}/{})", self.bucket, self.prefix)
    }
}

/// The resume journal of an upload, beside the file: which upload, which parts are stored.
/// It is written after every part, so a killed process or a dead endpoint loses at most the
/// part in flight. (S3's ListParts would say the same, but S3-compatible stores disagree on its
/// answer's shape; the journal is ours, and every part in it is checked against the file.)
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Journal {
    key: String,
    upload_id: String,
    part_size: usize,
    /// Part number → (size, ETag, base64 SHA-256).
    parts: BTreeMap<i32, (usize, String, String)>,
}

fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".kiln-upload.json");
    path.with_file_name(name)
}

impl Journal {
    fn load(at: &Path, key: &str, part_size: usize) -> Option<Journal> {
        let j: Journal = serde_json::from_slice(&std::fs::read(at).ok()?).ok()?;
        (j.key == key && j.part_size == part_size).then_some(j)
    }

    fn save(&self, at: &Path) -> Result<()> {
        let tmp = at.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).unwrap_or_default())
            .and_then(|()| std::fs::rename(&tmp, at))
            .map_err(io(format!("writing {}", at.display())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl S3Store {
    /// A store on `bucket` under `prefix`. A custom endpoint (S3-compatible stores) is addressed
    /// path-style, which is what those stores serve; AWS itself gets virtual-hosted style.
    pub fn new(bucket: &str, prefix: &str, conn: &Conn) -> Result<S3Store> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("starting the S3 client's runtime"))?;
        let shared = rt.block_on(sdk_config(conn));
        // Checksums are ours to compute (SHA-256 per part, sent as headers); the SDK's own
        // trailing CRCs are left off so every S3-compatible store can take the requests.
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(conn.endpoint.is_some())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(S3Store {
            client: Client::from_conf(config),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            part_size: DEFAULT_PART,
            rt,
        })
    }

    /// Parts of `bytes` (at least [`MIN_PART`]).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART);
        self
    }

    /// The key of the object with this SHA-256.
    pub fn key_for(&self, sha256: &str) -> String {
        self.key(&format!("sha256/{sha256}"))
    }

    /// `name` under the store's prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The whole-object digest recorded on an object, if the object exists.
    fn stored_digest(&self, key: &str) -> Result<Option<(i64, Option<String>)>> {
        let head = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        );
        match head {
            Ok(h) => Ok(Some((
                h.content_length().unwrap_or(-1),
                h.metadata().and_then(|m| m.get(SHA_META)).cloned(),
            ))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3(format!("checking {}", self.url(key)))(e)),
        }
    }

    /// Uploads `path`, whose SHA-256 is `sha256`, to its content address. Already stored: nothing
    /// is sent. Interrupted before: the parts that match are kept. The file is hashed as it is
    /// read and the upload is only completed when the whole matches `sha256`.
    pub fn put_file(
        &self,
        path: &Path,
        sha256: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<Upload> {
        let key = self.key_for(sha256);
        let url = self.url(&key);
        let size = std::fs::metadata(path)
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        let parts = (size as usize).div_ceil(self.part_size).max(1);
        let mut out = Upload {
            url: url.clone(),
            key: key.clone(),
            size,
            sha256: sha256.to_string(),
            already_stored: false,
            parts,
            reused_parts: 0,
            sent_bytes: 0,
        };
        if let Some((len, digest)) = self.stored_digest(&key)?
            && len == size as i64
            && digest.as_deref() == Some(sha256)
        {
            out.already_stored = true;
            return Ok(out);
        }
        let journal_at = journal_path(path);
        let mut journal = match Journal::load(&journal_at, &key, self.part_size) {
            Some(j) => {
                tracing::info!(%url, parts = j.parts.len(), "resuming an unfinished upload");
                j
            }
            None => {
                let created = self
                    .rt
                    .block_on(
                        self.client
                            .create_multipart_upload()
                            .bucket(&self.bucket)
                            .key(&key)
                            .checksum_algorithm(ChecksumAlgorithm::Sha256)
                            .metadata(SHA_META, sha256)
                            .send(),
                    )
                    .map_err(s3(format!("starting the upload of {url}")))?;
                Journal {
                    key: key.clone(),
                    upload_id: created.upload_id().unwrap_or_default().to_string(),
                    part_size: self.part_size,
                    parts: BTreeMap::new(),
                }
            }
        };
        let upload_id = journal.upload_id.clone();
        let mut file =
            std::fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let mut whole = Sha256::new();
        let mut done = Vec::with_capacity(parts);
        let mut buf = vec![0u8; self.part_size];
        let mut offset = 0u64;
        for number in 1..=parts as i32 {
            let n = read_full(&mut file, &mut buf)
                .map_err(io(format!("reading {}", path.display())))?;
            let chunk = &buf[..n];
            whole.update(chunk);
            let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(chunk));
            let reusable = journal
                .parts
                .get(&number)
                .filter(|(len, _, sum)| *len == n && *sum == checksum);
            let etag = match reusable {
                Some((_, etag, _)) => {
                    out.reused_parts += 1;
                    etag.clone()
                }
                None => {
                    let sent = self
                        .rt
                        .block_on(
                            self.client
                                .upload_part()
                                .bucket(&self.bucket)
                                .key(&key)
                                .upload_id(&upload_id)
                                .part_number(number)
                                .checksum_sha256(&checksum)
                                .content_md5(
                                    base64::engine::general_purpose::STANDARD
                                        .encode(Md5::digest(chunk)),
                                )
                                .body(ByteStream::from(chunk.to_vec()))
                                .send(),
                        )
                        .map_err(|e| {
                            if e.as_service_error().and_then(|s| s.meta().code())
                                == Some("NoSuchUpload")
                            {
                                // Aborted or expired since: the next attempt starts afresh.
                                let _ = std::fs::remove_file(&journal_at);
                            }
                            s3(format!("uploading part {number}/{parts} of {url}"))(e)
                        })?;
                    out.sent_bytes += n as u64;
                    let etag = sent.e_tag().unwrap_or_default().to_string();
                    journal
                        .parts
                        .insert(number, (n, etag.clone(), checksum.clone()));
                    journal.save(&journal_at)?;
                    etag
                }
            };
            done.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .checksum_sha256(checksum)
                    .build(),
            );
            offset += n as u64;
            progress(offset, size);
        }
        let got = hex(&whole.finalize());
        if got != sha256 {
            // The file is not what the caller says: never store it under that address.
            let _ = self.rt.block_on(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send(),
            );
            let _ = std::fs::remove_file(&journal_at);
            return Err(StoreError::Mismatch {
                url: path.display().to_string(),
                expected: sha256.to_string(),
                got,
            });
        }
        self.rt
            .block_on(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(done))
                            .build(),
                    )
                    .send(),
            )
            .map_err(s3(format!("completing the upload of {url}")))?;
        let _ = std::fs::remove_file(&journal_at);
        Ok(out)
    }

    /// A small object written in one request (manifests).
    pub fn put_bytes(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let key = self.key(name);
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .checksum_sha256(checksum)
                    .body(ByteStream::from(bytes))
                    .send(),
            )
            .map_err(s3(format!("writing {}", self.url(&key))))?;
        Ok(self.url(&key))
    }

    async fn get_object(
        &self,
        key: &str,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3(format!("reading {}", self.url(key))))
    }

    /// A small object named under the prefix (a manifest), whole.
    pub fn get_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let key = self.key(name);
        let url = self.url(&key);
        self.rt.block_on(async {
            let obj = self.get_object(&key).await?;
            let bytes = obj
                .body
                .collect()
                .await
                .map_err(s3(format!("reading {url}")))?;
            Ok(bytes.into_bytes().to_vec())
        })
    }

    /// Downloads the object with this SHA-256 to `dest`, hashing as it arrives. On a mismatch
    /// nothing is left at `dest` (the bytes went to a temporary file beside it).
    pub fn get_file(&self, sha256: &str, dest: &Path) -> Result<u64> {
        let key = self.key_for(sha256);
        let url = self.url(&key);
        let tmp = dest.with_extension("kiln-partial");
        let result = self.rt.block_on(async {
            let mut obj = self.get_object(&key).await?;
            let mut f =
                std::fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Some(chunk) = obj
                .body
                .try_next()
                .await
                .map_err(s3(format!("reading {url}")))?
            {
                h.update(&chunk);
                n += chunk.len() as u64;
                f.write_all(&chunk)
                    .map_err(io(format!("writing {}", tmp.display())))?;
            }
            f.sync_all()
                .map_err(io(format!("writing {}", tmp.display())))?;
            Ok::<_, StoreError>((n, hex(&h.finalize())))
        });
        let (n, got) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if got != sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::Mismatch {
                url,
                expected: sha256.to_string(),
                got,
            });
        }
        std::fs::rename(&tmp, dest).map_err(io(format!("moving into {}", dest.display())))?;
        Ok(n)
    }

    /// Creates the bucket (tests and trial setups; teams create theirs with their own tooling).
    pub fn create_bucket(&self) -> Result<()> {
        self.rt
            .block_on(self.client.create_bucket().bucket(&self.bucket).send())
            .map_err(s3(format!("creating bucket {}", self.bucket)))?;
        Ok(())
    }

    /// Overwrites an object with other bytes, bypassing every check: the corruption drill of
    /// the store tests, never used by Kiln itself.
    #[doc(hidden)]
    pub fn overwrite_unchecked(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(bytes))
                    .send(),
            )
            .map_err(s3(format!("writing {}", self.url(key))))?;
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
