//! Page blob upload over the Blob service REST API, signed with Shared Key: create the blob at
//! the VHD's size, then Put Page for every 4 MiB range that is not all zeros (a new page blob
//! reads zeros), several ranges in flight. The blob's metadata records the VHD's sha256; a blob
//! that already has it and `kiln_complete=true` is not uploaded again.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::PublishError;

/// The storage API version sent (Azurite accepts it with `--skipApiVersionCheck`).
pub const API_VERSION: &str = "2021-08-06";
/// The largest Put Page body.
pub const RANGE: u64 = 4 * 1024 * 1024;

/// A storage account reached with its key.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// Base64 account key.
    pub key: String,
    /// The blob endpoint: `https://NAME.blob.core.windows.net`, or Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
}

impl Account {
    /// Azurite's documented development account.
    pub fn azurite(endpoint: &str) -> Account {
        Account {
            name: "devstoreaccount1".into(),
            key: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into(),
            endpoint: endpoint.trim_end_matches('/').into(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BlobReport {
    pub url: String,
    pub ranges_sent: u64,
    pub ranges_zero: u64,
    pub bytes_sent: u64,
    pub seconds: f64,
    pub reused: bool,
}

fn err(what: &str, e: impl std::fmt::Display) -> PublishError {
    PublishError::Cloud(format!("{what}: {e}"))
}

/// RFC 1123 date for `x-ms-date`.
fn http_date() -> String {
    kiln_spec::time::http_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// One signed request.
struct Req<'a> {
    method: &'a str,
    /// Path below the endpoint: `container` or `container/blob`.
    path: &'a str,
    query: Vec<(&'a str, String)>,
    headers: Vec<(&'a str, String)>,
    body: Option<&'a [u8]>,
}

impl Account {
    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut u = format!("{}/{path}", self.endpoint);
        for (i, (k, v)) in query.iter().enumerate() {
            u.push(if i == 0 { '?' } else { '&' });
            u.push_str(&format!("{k}={v}"));
        }
        u
    }

    /// The Shared Key string to sign (Blob service, version 2009-09-19 and later).
    fn string_to_sign(&self, r: &Req<'_>, len: usize) -> String {
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut ms: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        ms.sort();
        let canon_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        // The resource is /ACCOUNT + the URL path; Azurite's path already starts with the
        // account, so it appears twice there, as Azurite expects.
        let url_path = {
            let after_scheme = self
                .endpoint
                .split_once("://")
                .map_or(self.endpoint.as_str(), |x| x.1);
            let base_path = after_scheme.split_once('/').map_or("", |x| x.1);
            if base_path.is_empty() {
                format!("/{}", r.path)
            } else {
                format!("/{base_path}/{}", r.path)
            }
        };
        let mut resource = format!("/{}{url_path}", self.name);
        let mut q: Vec<(String, String)> = r
            .query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        q.sort();
        for (k, v) in q {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let length = if len == 0 {
            String::new()
        } else {
            len.to_string()
        };
        format!(
            "{}\n{}\n{}\n{length}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{canon_headers}{resource}",
            r.method,
            header("Content-Encoding"),
            header("Content-Language"),
            header("Content-MD5"),
            header("Content-Type"),
            header("Date"),
            header("If-Modified-Since"),
            header("If-Match"),
            header("If-None-Match"),
            header("If-Unmodified-Since"),
            header("Range"),
        )
    }

    fn send(&self, agent: &ureq::Agent, mut r: Req<'_>) -> Result<ureq::Response, PublishError> {
        r.headers.push(("x-ms-date", http_date()));
        r.headers.push(("x-ms-version", API_VERSION.into()));
        let body = r.body.unwrap_or_default();
        let key = base64::engine::general_purpose::STANDARD
            .decode(&self.key)
            .map_err(|e| err("the account key is not base64", e))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| err("account key", e))?;
        mac.update(self.string_to_sign(&r, body.len()).as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut req = agent
            .request(r.method, &self.url(r.path, &r.query))
            .set("Authorization", &format!("SharedKey {}:{sig}", self.name));
        for (k, v) in &r.headers {
            req = req.set(k, v);
        }
        match req.send_bytes(body) {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let code_text = text
                    .split("<Code>")
                    .nth(1)
                    .and_then(|t| t.split("</Code>").next())
                    .unwrap_or("");
                Err(PublishError::Cloud(format!(
                    "{} {}: HTTP {code} {code_text}",
                    r.method, r.path
                )))
            }
            Err(e) => Err(err(&format!("{} {}", r.method, r.path), e)),
        }
    }

    /// The blob's bytes (for checks; images are downloaded by Azure itself).
    pub fn download(&self, container: &str, name: &str) -> Result<Vec<u8>, PublishError> {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build();
        let resp = self.send(
            &agent,
            Req {
                method: "GET",
                path: &format!("{container}/{name}"),
                query: vec![],
                headers: vec![],
                body: None,
            },
        )?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut out)
            .map_err(|e| err("reading the blob", e))?;
        Ok(out)
    }

    /// Deletes the blob; `false` when it did not exist.
    pub fn delete(&self, container: &str, name: &str) -> Result<bool, PublishError> {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build();
        match self.send(
            &agent,
            Req {
                method: "DELETE",
                path: &format!("{container}/{name}"),
                query: vec![],
                headers: vec![],
                body: None,
            },
        ) {
            Ok(_) => Ok(true),
            Err(PublishError::Cloud(m)) if m.contains("HTTP 404") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the container if it does not exist.
    pub fn ensure_container(
        &self,
        agent: &ureq::Agent,
        container: &str,
    ) -> Result<(), PublishError> {
        match self.send(
            agent,
            Req {
                method: "PUT",
                path: container,
                query: vec![("restype", "container".into())],
                headers: vec![],
                body: None,
            },
        ) {
            Ok(_) => Ok(()),
            Err(PublishError::Cloud(m)) if m.contains("ContainerAlreadyExists") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The blob's metadata, or `None` when it does not exist.
    fn metadata(
        &self,
        agent: &ureq::Agent,
        path: &str,
    ) -> Result<Option<Vec<(String, String)>>, PublishError> {
        match self.send(
            agent,
            Req {
                method: "HEAD",
                path,
                query: vec![],
                headers: vec![],
                body: None,
            },
        ) {
            Ok(resp) => Ok(Some(
                resp.headers_names()
                    .into_iter()
                    .filter_map(|h| {
                        let k = h.strip_prefix("x-ms-meta-")?.to_string();
                        Some((k, resp.header(&h)?.to_string()))
                    })
                    .collect(),
            )),
            Err(PublishError::Cloud(m)) if m.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Uploads `vhd` as the page blob `container/name`.
    pub fn upload_page_blob(
        &self,
        container: &str,
        name: &str,
        vhd: &Path,
        sha256: &str,
        parallel: usize,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<BlobReport, PublishError> {
        let started = Instant::now();
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build();
        let file = std::fs::File::open(vhd)
            .map_err(|e| PublishError::Io(format!("{}: {e}", vhd.display())))?;
        let size = file
            .metadata()
            .map_err(|e| PublishError::Io(e.to_string()))?
            .len();
        if size % 512 != 0 {
            return Err(PublishError::Refused(format!(
                "{} is {size} bytes, not a multiple of 512: not a fixed VHD",
                vhd.display()
            )));
        }
        let path = format!("{container}/{name}");
        let url = self.url(&path, &[]);
        self.ensure_container(&agent, container)?;
        if let Some(meta) = self.metadata(&agent, &path)?
            && meta.contains(&("kiln_sha256".into(), sha256.into()))
            && meta.contains(&("kiln_complete".into(), "true".into()))
        {
            return Ok(BlobReport {
                url,
                reused: true,
                seconds: started.elapsed().as_secs_f64(),
                ..BlobReport::default()
            });
        }
        self.send(
            &agent,
            Req {
                method: "PUT",
                path: &path,
                query: vec![],
                headers: vec![
                    ("x-ms-blob-type", "PageBlob".into()),
                    ("x-ms-blob-content-length", size.to_string()),
                    ("x-ms-meta-kiln_sha256", sha256.into()),
                ],
                body: None,
            },
        )?;
        let file = Arc::new(file);
        let ranges = size.div_ceil(RANGE);
        let next = std::sync::atomic::AtomicU64::new(0);
        let sent = std::sync::atomic::AtomicU64::new(0);
        let zero = std::sync::atomic::AtomicU64::new(0);
        let failure: std::sync::Mutex<Option<PublishError>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..parallel.max(1) {
                s.spawn(|| {
                    let mut buf = vec![0u8; RANGE as usize];
                    loop {
                        if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                            return;
                        }
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= ranges {
                            return;
                        }
                        let off = i * RANGE;
                        let len = RANGE.min(size - off) as usize;
                        let r = file
                            .read_exact_at(&mut buf[..len], off)
                            .map_err(|e| {
                                PublishError::Io(format!("reading {}: {e}", vhd.display()))
                            })
                            .and_then(|_| {
                                if buf[..len].iter().all(|&b| b == 0) {
                                    zero.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    return Ok(());
                                }
                                self.send(
                                    &agent,
                                    Req {
                                        method: "PUT",
                                        path: &path,
                                        query: vec![("comp", "page".into())],
                                        headers: vec![
                                            ("x-ms-page-write", "update".into()),
                                            (
                                                "x-ms-range",
                                                format!("bytes={off}-{}", off + len as u64 - 1),
                                            ),
                                        ],
                                        body: Some(&buf[..len]),
                                    },
                                )?;
                                let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                progress((n + 1) * RANGE, size);
                                Ok(())
                            });
                        if let Err(e) = r
                            && let Ok(mut f) = failure.lock()
                        {
                            f.get_or_insert(e);
                        }
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().ok().flatten() {
            return Err(e);
        }
        // Only now is the blob whole: the mark a re-run trusts.
        self.send(
            &agent,
            Req {
                method: "PUT",
                path: &path,
                query: vec![("comp", "metadata".into())],
                headers: vec![
                    ("x-ms-meta-kiln_sha256", sha256.into()),
                    ("x-ms-meta-kiln_complete", "true".into()),
                ],
                body: None,
            },
        )?;
        let ranges_sent = sent.into_inner();
        Ok(BlobReport {
            url,
            ranges_sent,
            ranges_zero: zero.into_inner(),
            bytes_sent: ranges_sent * RANGE,
            seconds: started.elapsed().as_secs_f64(),
            reused: false,
        })
    }
}
