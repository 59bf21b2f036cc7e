//! Secrets and hygiene leftovers in an image tree. The walk never follows a symlink (a link can
//! only be reported, never read through), skips pseudo filesystems, and reads every regular file
//! in bounded chunks, so huge and binary files cost memory of one chunk and nothing else.

pub mod rules;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

pub use rules::{Category, PathRule};
use rules::{ContentRule, DOCUMENTED_EXAMPLES, content_rules, redact};

/// Directories at the image root that hold kernel-provided views, not files of the image.
const PSEUDO: [&str; 4] = ["proc", "sys", "dev", "run"];
/// Bytes read at a time; hits closer than [`WINDOW`] to a chunk's end wait for the next chunk.
const CHUNK: usize = 4 << 20;
/// The longest text a rule's regex may need after its anchor.
const WINDOW: usize = 8 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretFinding {
    /// The path inside the image (`/root/.aws/credentials`).
    pub path: String,
    pub rule: &'static str,
    pub category: Category,
    pub description: &'static str,
    /// 1-based line, for text rules and files small enough to be read whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Byte offset of the match in the file, for content rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The surrounding text with the secret itself redacted.
    pub excerpt: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretReport {
    pub findings: Vec<SecretFinding>,
    pub files: u64,
    pub bytes: u64,
    /// Symlinks seen (never followed).
    pub symlinks: u64,
    /// Files with content matches that dpkg installed unmodified (their md5sum is the
    /// package's): public test or self-test material shipped by the distribution (GnuTLS
    /// carries self-test keys), not secrets baked into this image. Not reported as findings.
    pub vendor_files: Vec<String>,
    /// Paths that could not be read, with the reason.
    pub unreadable: Vec<(String, String)>,
}

/// The compiled rules, shared by the scanning threads.
#[derive(Debug)]
pub struct Scanner {
    rules: Vec<ContentRule>,
    /// Anchor pattern index → rule index.
    anchor_rule: Vec<usize>,
    anchors: AhoCorasick,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        let rules = content_rules();
        let mut anchors = Vec::new();
        let mut anchor_rule = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for a in r.anchors {
                anchors.push(*a);
                anchor_rule.push(i);
            }
        }
        let anchors = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&anchors)
            .unwrap_or_else(|e| panic!("secret anchors: {e}"));
        Scanner {
            rules,
            anchor_rule,
            anchors,
        }
    }

    /// Scans the tree at `root` with every core.
    pub fn scan_tree(&self, root: &Path) -> SecretReport {
        let mut files = Vec::new();
        let mut report = SecretReport::default();
        walk(root, root, &mut files, &mut report);
        // Largest first, so one huge file does not finish alone at the end.
        files.sort_by_key(|f| std::cmp::Reverse(f.1));
        let next = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let found = Mutex::new(Vec::new());
        let unreadable = Mutex::new(Vec::new());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut buf = vec![0u8; CHUNK + WINDOW];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, _)) = files.get(i) else { break };
                        let rel = image_path(root, path);
                        match self.scan_file(path, &rel, &mut buf) {
                            Ok((f, n)) => {
                                bytes.fetch_add(n, Ordering::Relaxed);
                                if !f.is_empty() {
                                    found.lock().unwrap_or_else(|e| e.into_inner()).extend(f);
                                }
                            }
                            Err(e) => unreadable
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((rel, e.to_string())),
                        }
                    }
                });
            }
        });
        report.files = files.len() as u64;
        let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        report.vendor_files = drop_vendor_files(root, &mut found);
        report.bytes = bytes.into_inner();
        report.findings = found;
        report
            .findings
            .sort_by(|a, b| (&a.path, a.offset, a.rule).cmp(&(&b.path, b.offset, b.rule)));
        report
            .unreadable
            .extend(unreadable.into_inner().unwrap_or_else(|e| e.into_inner()));
        report.unreadable.sort();
        report
    }

    /// One file: its path rule, then the content rules over its bytes in chunks. Returns the
    /// findings and the bytes read.
    pub fn scan_file(
        &self,
        path: &Path,
        rel: &str,
        buf: &mut [u8],
    ) -> std::io::Result<(Vec<SecretFinding>, u64)> {
        let mut out = Vec::new();
        let path_rule = PathRule::for_path(rel);
        let mut f = std::fs::File::open(path)?;
        let mut total: u64 = 0;
        // `buf[..carry]` holds the tail of the previous chunk not yet searched for anchors.
        let mut carry = 0usize;
        let mut first_chunk: Option<Vec<u8>> = None;
        let mut whole = true;
        loop {
            let mut filled = carry;
            let mut eof = false;
            while filled < buf.len() {
                let n = f.read(&mut buf[filled..])?;
                if n == 0 {
                    eof = true;
                    break;
                }
                filled += n;
            }
            let chunk_start = total - carry as u64;
            total += (filled - carry) as u64;
            let data = &buf[..filled];
            if path_rule.is_some() && first_chunk.is_none() {
                first_chunk = Some(data[..data.len().min(1 << 20)].to_vec());
            }
            if !eof {
                whole = false;
            }
            // Anchors starting at or after `limit` are searched again with the next chunk,
            // which then holds their whole window.
            let limit = if eof { filled } else { filled - WINDOW };
            for m in self.anchors.find_iter(data) {
                if m.start() >= limit {
                    break;
                }
                let rule = &self.rules[self.anchor_rule[m.pattern().as_usize()]];
                if let Some(fnd) =
                    self.confirm(rule, data, m.start(), chunk_start, whole && eof, rel)
                {
                    out.push(fnd);
                }
            }
            if eof {
                break;
            }
            buf.copy_within(limit..filled, 0);
            carry = filled - limit;
        }
        if let Some(rule) = path_rule
            && let Some((line, excerpt)) = rule.judge(first_chunk.as_deref().unwrap_or_default())
        {
            // The path rule says it better (a host key is a private key, but the point is
            // that every instance would share it).
            if matches!(rule, PathRule::SshHostKey) {
                out.retain(|f| f.rule != "private-key");
            }
            out.push(SecretFinding {
                path: rel.to_string(),
                rule: rule.id(),
                category: rule.category(),
                description: rule.description(),
                line,
                offset: None,
                excerpt,
            });
        }
        if out.iter().any(|f| f.rule == "gcp-service-account-key") {
            out.retain(|f| f.rule != "private-key");
        }
        Ok((out, total))
    }

    fn confirm(
        &self,
        rule: &ContentRule,
        data: &[u8],
        at: usize,
        chunk_start: u64,
        whole: bool,
        rel: &str,
    ) -> Option<SecretFinding> {
        let window = &data[at..data.len().min(at + WINDOW)];
        let caps = rule.confirm.captures(window)?;
        let m = caps.get(0)?;
        if rule.bounded {
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let before = at.checked_sub(1).map(|i| data[i]);
            let after = window.get(m.end()).copied();
            if before.is_some_and(word) || after.is_some_and(word) {
                return None;
            }
        }
        let secret = caps.get(rule.secret_group).unwrap_or(m);
        let secret_text = String::from_utf8_lossy(secret.as_bytes());
        if DOCUMENTED_EXAMPLES.iter().any(|e| secret_text == *e) {
            return None;
        }
        let shown = String::from_utf8_lossy(&window[..secret.start()]).replace(['\n', '\r'], " ");
        let shown: String = shown
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let line = whole.then(|| data[..at].iter().filter(|&&b| b == b'\n').count() + 1);
        Some(SecretFinding {
            path: rel.to_string(),
            rule: rule.id,
            category: Category::Secret,
            description: rule.description,
            line,
            offset: Some(chunk_start + at as u64),
            excerpt: format!("{}{}", shown.trim_start(), redact(&secret_text)),
        })
    }
}

/// The image path of a host path under `root`: `/etc/passwd`.
fn image_path(root: &Path, p: &Path) -> String {
    format!("/{}", p.strip_prefix(root).unwrap_or(p).display())
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(PathBuf, u64)>, report: &mut SecretReport) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            report
                .unreadable
                .push((image_path(root, dir), e.to_string()));
            return;
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            report.symlinks += 1;
        } else if ft.is_dir() {
            if dir == root && PSEUDO.iter().any(|x| e.file_name() == *x) {
                continue;
            }
            walk(root, &p, files, report);
        } else if ft.is_file() {
            let len = e.metadata().map_or(0, |m| m.len());
            files.push((p, len));
        }
    }
}

/// Drops content findings in files a Debian package installed unmodified, and returns those
/// files. Checked only where something matched, so the cost is a few md5 sums, not the tree's.
fn drop_vendor_files(root: &Path, found: &mut Vec<SecretFinding>) -> Vec<String> {
    use md5::{Digest, Md5};
    let candidates: std::collections::BTreeSet<String> = found
        .iter()
        .filter(|f| f.offset.is_some())
        .map(|f| f.path.clone())
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let Ok(info) = std::fs::read_dir(root.join("var/lib/dpkg/info")) else {
        return Vec::new();
    };
    // path (without the leading /) → md5 as dpkg recorded it
    let mut sums = std::collections::HashMap::new();
    for e in info.flatten() {
        if e.path().extension().is_none_or(|x| x != "md5sums") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some((sum, path)) = line.split_once("  ")
                && candidates.contains(&format!("/{path}"))
            {
                sums.insert(format!("/{path}"), sum.to_string());
            }
        }
    }
    let mut vendor = Vec::new();
    for path in candidates {
        let Some(want) = sums.get(&path) else {
            continue;
        };
        let Ok(mut f) = std::fs::File::open(root.join(path.trim_start_matches('/'))) else {
            continue;
        };
        let mut h = Md5::new();
        if std::io::copy(&mut f, &mut h).is_ok() {
            let got = kiln_build::hash::hex(&h.finalize());
            if &got == want {
                vendor.push(path);
            }
        }
    }
    found.retain(|f| f.offset.is_none() || !vendor.contains(&f.path));
    vendor
}
