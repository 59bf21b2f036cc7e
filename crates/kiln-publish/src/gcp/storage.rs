//! The `gce` tar.gz into Cloud Storage with the JSON API's resumable upload: one session, 8 MiB
//! chunks, the session URI kept beside the file so a re-run (after a crash or a dropped link)
//! asks the service how far it got and sends only the rest. The object's metadata records the
//! file's sha256; an object that already carries it is not uploaded again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::PublishError;

/// Bytes per chunk: a multiple of 256 KiB, as the service requires of all but the last.
pub const CHUNK: u64 = 8 * 1024 * 1024;
/// The public service.
pub const STORAGE: &str = "https://storage.googleapis.com";

/// What an upload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ObjectReport {
    /// `gs://BUCKET/NAME`
    pub uri: String,
    /// The HTTPS URL Compute Engine reads the object from.
    pub url: String,
    pub bytes_sent: u64,
    /// Bytes the service already had from an interrupted run.
    pub bytes_resumed: u64,
    pub reused: bool,
    pub seconds: f64,
}

fn err(what: &str, e: impl std::fmt::Display) -> PublishError {
    PublishError::Cloud(format!("{what}: {e}"))
}

/// Percent-encodes an object name for a URL path segment.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A bucket reached with a bearer token.
#[derive(Clone)]
pub struct Bucket {
    pub endpoint: String,
    pub name: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("endpoint", &self.endpoint)
            .field("name", &self.name)
            .finish()
    }
}

impl Bucket {
    pub fn new(endpoint: &str, name: &str, token: String) -> Bucket {
        Bucket {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            name: name.to_string(),
            token,
            // 308 is "Resume Incomplete" here, not a redirect to follow.
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(300))
                .redirects(0)
                .build(),
        }
    }

    fn auth(&self, r: ureq::Request) -> ureq::Request {
        r.set("Authorization", &format!("Bearer {}", self.token))
    }

    /// The object's metadata resource, or `None` when it does not exist.
    pub fn object(&self, name: &str) -> Result<Option<Value>, PublishError> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            self.name,
            encode(name)
        );
        match self.auth(self.agent.get(&url)).call() {
            Ok(r) => r
                .into_string()
                .map_err(|e| err("reading object metadata", e))
                .and_then(|t| {
                    serde_json::from_str(&t).map_err(|e| err("reading object metadata", e))
                })
                .map(Some),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(err(&format!("GET gs://{}/{name}", self.name), e)),
        }
    }

    /// The object's bytes (for checks).
    pub fn download(&self, name: &str) -> Result<Vec<u8>, PublishError> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media",
            self.endpoint,
            self.name,
            encode(name)
        );
        let r = self
            .auth(self.agent.get(&url))
            .call()
            .map_err(|e| err("download", e))?;
        let mut out = Vec::new();
        r.into_reader()
            .read_to_end(&mut out)
            .map_err(|e| err("download", e))?;
        Ok(out)
    }

    /// Deletes the object; `false` when it did not exist.
    pub fn delete(&self, name: &str) -> Result<bool, PublishError> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            self.name,
            encode(name)
        );
        match self.auth(self.agent.delete(&url)).call() {
            Ok(_) => Ok(true),
            Err(ureq::Error::Status(404, _)) => Ok(false),
            Err(e) => Err(err(&format!("DELETE gs://{}/{name}", self.name), e)),
        }
    }

    /// Starts a resumable session for `name`; returns the session URI.
    fn start_session(&self, name: &str, size: u64, sha256: &str) -> Result<String, PublishError> {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.endpoint,
            self.name,
            encode(name)
        );
        let r = self
            .auth(self.agent.post(&url))
            .set("X-Upload-Content-Type", "application/gzip")
            .set("X-Upload-Content-Length", &size.to_string())
            .set("Content-Type", "application/json; charset=UTF-8")
            .send_string(
                &json!({
                    "name": name,
                    "contentType": "application/gzip",
                    "metadata": { "kiln-sha256": sha256 }
                })
                .to_string(),
            )
            .map_err(|e| {
                err(
                    &format!("starting the upload of gs://{}/{name}", self.name),
                    e,
                )
            })?;
        r.header("Location")
            .map(str::to_string)
            .ok_or_else(|| err("starting the upload", "no session URI in the answer"))
    }

    /// How many bytes the session holds, `None` when the session is gone (expired, or the
    /// service lost it), `Some(size)` when the object is complete.
    fn session_offset(&self, session: &str, size: u64) -> Result<Option<u64>, PublishError> {
        let r = self
            .auth(self.agent.put(session))
            .set("Content-Range", &format!("bytes */{size}"))
            .send_bytes(&[]);
        match r {
            Ok(r) if r.status() == 308 => Ok(Some(received(&r))),
            Ok(_) => Ok(Some(size)),
            Err(ureq::Error::Status(308, r)) => Ok(Some(received(&r))),
            Err(ureq::Error::Status(404 | 410, _)) => Ok(None),
            // A stale session on a restarted service: start again.
            Err(ureq::Error::Transport(_)) => Ok(None),
            Err(e) => Err(err("asking the upload session its offset", e)),
        }
    }

    /// Uploads `file` as `name` unless an object with its sha256 is already there.
    pub fn upload(
        &self,
        name: &str,
        file: &Path,
        sha256: &str,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ObjectReport, PublishError> {
        let started = Instant::now();
        let mut report = ObjectReport {
            uri: format!("gs://{}/{name}", self.name),
            url: format!("{STORAGE}/{}/{name}", self.name),
            ..ObjectReport::default()
        };
        if let Some(o) = self.object(name)?
            && o["metadata"]["kiln-sha256"].as_str() == Some(sha256)
        {
            report.reused = true;
            return Ok(report);
        }
        let mut f = std::fs::File::open(file)
            .map_err(|e| PublishError::Io(format!("{}: {e}", file.display())))?;
        let size = f
            .metadata()
            .map_err(|e| PublishError::Io(e.to_string()))?
            .len();
        let state = session_file(file);
        let mut offset = 0;
        let mut session = None;
        if let Ok(s) = std::fs::read_to_string(&state) {
            let s = s.trim().to_string();
            if let Some(off) = self.session_offset(&s, size)? {
                offset = off;
                session = Some(s);
            }
        }
        let session = match session {
            Some(s) => s,
            None => {
                let s = self.start_session(name, size, sha256)?;
                std::fs::write(&state, &s)
                    .map_err(|e| PublishError::Io(format!("{}: {e}", state.display())))?;
                s
            }
        };
        report.bytes_resumed = offset;
        let mut buf = vec![0u8; CHUNK as usize];
        use std::io::Seek;
        while offset < size {
            let len = CHUNK.min(size - offset) as usize;
            f.seek(std::io::SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(&mut buf[..len]))
                .map_err(|e| PublishError::Io(format!("reading {}: {e}", file.display())))?;
            let end = offset + len as u64 - 1;
            let r = self
                .auth(self.agent.put(&session))
                .set("Content-Range", &format!("bytes {offset}-{end}/{size}"))
                .send_bytes(&buf[..len]);
            let got = match r {
                Ok(r) if r.status() == 308 => received(&r),
                Ok(_) => size,
                Err(ureq::Error::Status(308, r)) => received(&r),
                Err(e) => {
                    return Err(err(
                        &format!(
                            "uploading gs://{}/{name} at byte {offset} (re-run to resume)",
                            self.name
                        ),
                        e,
                    ));
                }
            };
            report.bytes_sent += got.saturating_sub(offset);
            offset = got;
            progress(offset, size);
        }
        let _ = std::fs::remove_file(&state);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Where an upload's session URI is kept between runs.
fn session_file(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".gcs-session");
    PathBuf::from(p)
}

/// The bytes a `308 Resume Incomplete` says the service holds (`Range: bytes=0-N`).
fn received(r: &ureq::Response) -> u64 {
    r.header("Range")
        .and_then(|v| v.rsplit_once('-'))
        .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        .map_or(0, |n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_one_path_segment() {
        assert_eq!(
            encode("base-debian12/01JX.tar.gz"),
            "base-debian12%2F01JX.tar.gz"
        );
        assert_eq!(encode("a b"), "a%20b");
    }
}
