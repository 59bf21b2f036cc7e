//! Sealing: removing what must not ship in a golden image, and saying what was removed.
//!
//! Host keys, machine identity, package indices and caches, logs, shell histories and temporary
//! files are per-machine or leak the build. Every path is resolved inside the tree without
//! following symlinks, so a provisioner that turned `/root` into a link to `/` cannot make the
//! seal delete files on the build host.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chroot::write_mode;
use crate::error::{BuildError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Removed,
    Emptied,
    Reset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealItem {
    /// Path inside the image.
    pub path: String,
    pub action: Action,
    pub bytes: u64,
    /// Why it goes: "ssh host key", "log", …
    pub category: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealReport {
    pub items: Vec<SealItem>,
    /// Files Kiln added so the image works after sealing (host-key regeneration).
    pub added: Vec<String>,
}

impl SealReport {
    pub fn summary(&self) -> String {
        let mut cats: Vec<(String, usize, u64)> = Vec::new();
        for i in &self.items {
            match cats.iter_mut().find(|c| c.0 == i.category) {
                Some(c) => {
                    c.1 += 1;
                    c.2 += i.bytes;
                }
                None => cats.push((i.category.clone(), 1, i.bytes)),
            }
        }
        cats.iter()
            .map(|(c, n, b)| format!("{c}: {n} ({})", human_bytes(*b)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

const HOSTKEY_UNIT: &str = "[Unit]
Description=Regenerate the SSH host keys removed when the image was sealed (Kiln)
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
";
const HOSTKEY_UNIT_PATH: &str = "etc/systemd/system/kiln-ssh-hostkeys.service";
const HOSTKEY_WANTS: &str = "etc/systemd/system/multi-user.target.wants/kiln-ssh-hostkeys.service";

const HISTORIES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    ".mysql_history",
    ".psql_history",
];

/// `tree/rel` if no directory on the way from the tree to it is a symlink (the last component
/// may be one, and may not exist).
fn inside(tree: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = tree.to_path_buf();
    let comps: Vec<Component> = Path::new(rel).components().collect();
    for (i, c) in comps.iter().enumerate() {
        let Component::Normal(n) = c else {
            return None;
        };
        p.push(n);
        let last = i + 1 == comps.len();
        if !last && std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return None;
        }
    }
    Some(p)
}

/// A directory's entries (path, name) in name order; none if it cannot be read.
fn sorted_entries(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut v: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| (e.path(), e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

struct Sealer<'a> {
    tree: &'a Path,
    report: SealReport,
}

impl Sealer<'_> {
    fn rel(&self, p: &Path) -> String {
        format!("/{}", p.strip_prefix(self.tree).unwrap_or(p).display())
    }

    /// Removes a file, link or directory tree (no symlink is followed).
    fn remove(&mut self, p: &Path, category: &str) -> Result<()> {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return Ok(());
        };
        let bytes = if m.is_dir() {
            crate::cache::allocated_bytes(p)
        } else {
            m.blocks() * 512
        };
        if m.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        }
        .map_err(BuildError::io(format!("sealing: removing {}", self.rel(p))))?;
        self.report.items.push(SealItem {
            path: self.rel(p),
            action: Action::Removed,
            bytes,
            category: category.into(),
        });
        Ok(())
    }

    /// Removes everything inside a directory, keeping the directory.
    fn clear_dir(&mut self, rel: &str, category: &str, keep: &[&str]) -> Result<()> {
        let Some(dir) = inside(self.tree, rel) else {
            return Ok(());
        };
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        for (e, name) in sorted_entries(&dir) {
            if !keep.contains(&name.as_str()) {
                self.remove(&e, category)?;
            }
        }
        Ok(())
    }

    fn empty_file(&mut self, rel: &str, category: &str, contents: &str) -> Result<()> {
        let Some(p) = inside(self.tree, rel) else {
            return Ok(());
        };
        // Only regular files that exist: never through a symlink, never creating one.
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            return Ok(());
        };
        if !meta.is_file() {
            return Ok(());
        }
        let old = std::fs::read(&p).unwrap_or_default();
        if old == contents.as_bytes() {
            return Ok(());
        }
        let mode = meta.mode() & 0o7777;
        write_mode(&p, contents.as_bytes(), mode)?;
        self.report.items.push(SealItem {
            path: self.rel(&p),
            action: if contents.is_empty() {
                Action::Emptied
            } else {
                Action::Reset
            },
            bytes: old.len() as u64,
            category: category.into(),
        });
        Ok(())
    }

    fn logs(&mut self, dir: &Path) -> Result<()> {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(_) => return Ok(()),
        };
        entries.sort();
        for e in entries {
            let Ok(m) = std::fs::symlink_metadata(&e) else {
                continue;
            };
            let name = e
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if m.is_dir() {
                if name == "journal" {
                    self.clear_dir(&self.rel(&e)[1..], "log", &[])?;
                } else {
                    self.logs(&e)?;
                }
            } else if m.is_file() {
                let rotated = name.ends_with(".gz")
                    || name.ends_with(".old")
                    || name
                        .rsplit('.')
                        .next()
                        .is_some_and(|s| s.chars().all(|c| c.is_ascii_digit()));
                if rotated {
                    self.remove(&e, "log")?;
                } else if m.len() > 0 {
                    let rel = self.rel(&e);
                    self.empty_file(&rel[1..], "log", "")?;
                }
            }
        }
        Ok(())
    }
}

/// Seals `tree` in place.
pub fn seal(tree: &Path) -> Result<SealReport> {
    let mut s = Sealer {
        tree,
        report: SealReport::default(),
    };

    // SSH host keys: unique per machine; regenerated at first boot.
    if let Some(ssh) = inside(tree, "etc/ssh") {
        for (k, n) in sorted_entries(&ssh) {
            if n.starts_with("ssh_host_") && (n.ends_with("_key") || n.ends_with("_key.pub")) {
                s.remove(&k, "ssh host key")?;
            }
        }
    }
    if inside(tree, "usr/sbin/sshd").is_some_and(|p| p.exists()) {
        let unit = inside(tree, HOSTKEY_UNIT_PATH)
            .ok_or_else(|| seal_err("/etc/systemd/system is a symlink"))?;
        std::fs::create_dir_all(unit.parent().unwrap_or(tree))
            .map_err(BuildError::io("creating /etc/systemd/system"))?;
        write_mode(&unit, HOSTKEY_UNIT.as_bytes(), 0o644)?;
        let wants = inside(tree, HOSTKEY_WANTS)
            .ok_or_else(|| seal_err("multi-user.target.wants is a symlink"))?;
        std::fs::create_dir_all(wants.parent().unwrap_or(tree))
            .map_err(BuildError::io("creating multi-user.target.wants"))?;
        let _ = std::fs::remove_file(&wants);
        std::os::unix::fs::symlink("/etc/systemd/system/kiln-ssh-hostkeys.service", &wants)
            .map_err(BuildError::io("enabling kiln-ssh-hostkeys.service"))?;
        s.report.added.push(format!("/{HOSTKEY_UNIT_PATH}"));
    }

    // Machine identity: an empty machine-id makes systemd generate one at first boot.
    s.empty_file("etc/machine-id", "machine id", "")?;
    if let Some(p) = inside(tree, "var/lib/dbus/machine-id")
        && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file())
    {
        s.remove(&p, "machine id")?;
    }
    s.empty_file("etc/hostname", "build host identity", "localhost\n")?;
    s.empty_file("etc/resolv.conf", "build host identity", "")?;

    // Package indices and caches: stale the day after, and large.
    s.clear_dir(
        "var/lib/apt/lists",
        "apt lists",
        &["lock", "partial", "auxfiles"],
    )?;
    s.clear_dir("var/lib/apt/lists/partial", "apt lists", &[])?;
    s.clear_dir("var/cache/apt/archives", "apt cache", &["lock", "partial"])?;
    s.clear_dir("var/cache/apt/archives/partial", "apt cache", &[])?;
    for bin in [
        "var/cache/apt/pkgcache.bin",
        "var/cache/apt/srcpkgcache.bin",
    ] {
        if let Some(p) = inside(tree, bin) {
            s.remove(&p, "apt cache")?;
        }
    }
    for old in [
        "var/lib/dpkg/status-old",
        "var/lib/dpkg/available-old",
        "var/cache/debconf/config.dat-old",
        "var/cache/debconf/templates.dat-old",
    ] {
        if let Some(p) = inside(tree, old) {
            s.remove(&p, "backup")?;
        }
    }

    // Logs: rotated ones go, live ones are emptied (their owners and modes stay).
    if let Some(log) = inside(tree, "var/log") {
        s.logs(&log)?;
    }

    // Shell histories of root and every user.
    let mut homes = vec!["root".to_string()];
    if let Some(home) = inside(tree, "home")
        && let Ok(rd) = std::fs::read_dir(home)
    {
        let mut users: Vec<String> = rd
            .flatten()
            .map(|e| format!("home/{}", e.file_name().to_string_lossy()))
            .collect();
        users.sort();
        homes.extend(users);
    }
    for h in &homes {
        for f in HISTORIES {
            if let Some(p) = inside(tree, &format!("{h}/{f}")) {
                s.remove(&p, "shell history")?;
            }
        }
    }

    // Temporary files.
    s.clear_dir("tmp", "temporary file", &[])?;
    s.clear_dir("var/tmp", "temporary file", &[])?;
    Ok(s.report)
}

fn seal_err(msg: &str) -> BuildError {
    BuildError::Io {
        what: "sealing".into(),
        source: std::io::Error::other(msg.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str, data: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    #[test]
    fn seals_what_must_not_ship_and_reports_it() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(r, "etc/ssh/ssh_host_ed25519_key", "secret");
        touch(r, "etc/ssh/ssh_host_ed25519_key.pub", "pub");
        touch(r, "etc/ssh/sshd_config", "keep");
        touch(r, "usr/sbin/sshd", "");
        touch(r, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        touch(r, "etc/hostname", "buildhost\n");
        touch(r, "var/lib/apt/lists/deb_dists_bookworm_InRelease", "x");
        std::fs::create_dir_all(r.join("var/lib/apt/lists/partial")).unwrap();
        touch(r, "var/cache/apt/archives/nginx.deb", "deb");
        touch(r, "var/log/dpkg.log", "installed things");
        touch(r, "var/log/apt/history.log.1.gz", "old");
        touch(r, "root/.bash_history", "curl -H 'Authorization: secret'");
        touch(r, "home/alice/.bash_history", "ls");
        touch(r, "tmp/build-junk", "x");
        std::fs::create_dir_all(r.join("var/tmp")).unwrap();

        let report = seal(r).unwrap();
        assert!(!r.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!r.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
        assert!(r.join("etc/ssh/sshd_config").exists());
        assert_eq!(
            std::fs::read_to_string(r.join("etc/machine-id")).unwrap(),
            ""
        );
        assert_eq!(
            std::fs::read_to_string(r.join("etc/hostname")).unwrap(),
            "localhost\n"
        );
        assert!(
            !r.join("var/lib/apt/lists/deb_dists_bookworm_InRelease")
                .exists()
        );
        assert!(r.join("var/lib/apt/lists/partial").is_dir());
        assert!(!r.join("var/cache/apt/archives/nginx.deb").exists());
        assert_eq!(
            std::fs::read_to_string(r.join("var/log/dpkg.log")).unwrap(),
            ""
        );
        assert!(!r.join("var/log/apt/history.log.1.gz").exists());
        assert!(!r.join("root/.bash_history").exists());
        assert!(!r.join("home/alice/.bash_history").exists());
        assert!(!r.join("tmp/build-junk").exists() && r.join("tmp").is_dir());
        assert!(
            r.join(HOSTKEY_WANTS)
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );

        let paths: Vec<&str> = report.items.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"/etc/ssh/ssh_host_ed25519_key"));
        assert!(paths.contains(&"/root/.bash_history"));
        assert!(report.summary().contains("ssh host key: 2"));
        assert_eq!(
            report.added,
            ["/etc/systemd/system/kiln-ssh-hostkeys.service"]
        );

        // Sealing twice finds nothing more to do.
        assert!(seal(r).unwrap().items.is_empty());
    }

    #[test]
    fn symlinks_never_lead_the_seal_out_of_the_tree() {
        let host = tempfile::tempdir().unwrap();
        touch(host.path(), ".bash_history", "host history");
        touch(host.path(), "precious", "keep");
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), t.path().join("root")).unwrap();
        std::os::unix::fs::symlink(host.path(), t.path().join("tmp")).unwrap();
        seal(t.path()).unwrap();
        assert!(host.path().join(".bash_history").exists());
        assert!(host.path().join("precious").exists());
    }
}
