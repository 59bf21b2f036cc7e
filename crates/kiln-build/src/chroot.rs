//! Running commands inside an image tree: a private mount namespace and pid namespace, with
//! `/proc`, `/dev` and a tmpfs `/run` mounted for the command only.
//!
//! Every mount lives in the namespace, so it disappears when the namespace's last process exits:
//! nothing can be left mounted on the host, whatever happens to Kiln. `--kill-child` and the pid
//! namespace make sure no process outlives the command. Kiln's own files for the session are
//! bind-mounted at `/run/kiln` from a host directory, so they never land in the image.
//! While a session runs, services are kept from starting (`policy-rc.d`) and the host's DNS
//! configuration is lent to the tree; both are put back afterwards by [`Session`]'s `Drop`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::cmd::Task;
use crate::error::{BuildError, Result};

/// The shell that sets up the namespace, then replaces itself with chroot.
const ENTER: &str = r#"set -eu
root=$1; stage=$2; shift 2
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -p "$root/run/kiln"
mount --bind "$stage" "$root/run/kiln"
exec chroot "$root" "$@""#;

/// `unshare` arguments for a private mount and pid namespace whose processes all die with it.
pub const NAMESPACE_ARGS: [&str; 7] = [
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
    "--",
];

const APT_CONF: &str = "etc/apt/apt.conf.d/00kiln-build";
const BUILD_APT_CONF: &str = "// Kiln: present only while the image is being built.\nAcquire::Check-Valid-Until \"false\";\nAPT::Install-Recommends \"false\";\n";

const POLICY_RC_D: &str = "#!/bin/sh\n# Installed by Kiln while provisioning: no service starts in an image tree.\nexit 101\n";

/// A provisioning session on a tree. Restores what it changed when dropped.
#[derive(Debug)]
pub struct Session {
    root: PathBuf,
    stage: tempfile::TempDir,
    policy_created: bool,
    apt_conf_created: bool,
    resolv: ResolvState,
}

#[derive(Debug)]
enum ResolvState {
    Untouched,
    /// We created the file; remove it.
    Created,
    /// We moved the original aside; move it back.
    MovedAside(PathBuf),
}

impl Session {
    /// `scratch` must be on a filesystem Kiln owns (for the staging directory).
    pub fn open(root: &Path, scratch: &Path) -> Result<Self> {
        for d in ["proc", "dev", "run", "etc", "usr/sbin"] {
            let p = root.join(d);
            let meta = std::fs::symlink_metadata(&p)
                .map_err(BuildError::io(format!("the image tree has no /{d}")))?;
            if !meta.is_dir() {
                return Err(BuildError::Io {
                    what: format!("/{d} in the image tree"),
                    source: std::io::Error::other("is not a directory"),
                });
            }
        }
        let stage = tempfile::Builder::new()
            .prefix("kiln-stage-")
            .tempdir_in(scratch)
            .map_err(BuildError::io("creating the staging directory"))?;
        let mut s = Session {
            root: root.to_path_buf(),
            stage,
            policy_created: false,
            apt_conf_created: false,
            resolv: ResolvState::Untouched,
        };
        let policy = root.join("usr/sbin/policy-rc.d");
        if std::fs::symlink_metadata(&policy).is_err() {
            write_mode(&policy, POLICY_RC_D.as_bytes(), 0o755)?;
            s.policy_created = true;
        }
        // Build-time apt settings: mirrors pinned to a snapshot serve Release files whose
        // Valid-Until has passed, which is expected for a pin. Removed when the session ends.
        let apt_conf = root.join(APT_CONF);
        if apt_conf.parent().is_some_and(Path::is_dir)
            && std::fs::symlink_metadata(&apt_conf).is_err()
        {
            write_mode(&apt_conf, BUILD_APT_CONF.as_bytes(), 0o644)?;
            s.apt_conf_created = true;
        }
        s.lend_dns()?;
        Ok(s)
    }

    fn lend_dns(&mut self) -> Result<()> {
        let Ok(host) = std::fs::read("/etc/resolv.conf") else {
            return Ok(());
        };
        let target = self.root.join("etc/resolv.conf");
        match std::fs::symlink_metadata(&target) {
            Err(_) => self.resolv = ResolvState::Created,
            Ok(_) => {
                let aside = self.root.join("etc/.resolv.conf.kiln-orig");
                std::fs::rename(&target, &aside)
                    .map_err(BuildError::io("moving resolv.conf aside"))?;
                self.resolv = ResolvState::MovedAside(aside);
            }
        }
        write_mode(&target, &host, 0o644)
    }

    /// The host directory visible as `/run/kiln` inside the tree.
    pub fn stage_dir(&self) -> &Path {
        self.stage.path()
    }

    /// A task running `argv` inside the tree.
    pub fn task(&self, what: impl Into<String>, argv: &[OsString]) -> Task {
        Task::new(what, "unshare")
            .args(NAMESPACE_ARGS)
            .args(["/bin/sh", "-c", ENTER, "kiln-enter"])
            .arg(&self.root)
            .arg(self.stage.path())
            .args(argv)
    }

    pub fn run(&self, what: impl Into<String>, argv: &[&str]) -> Result<crate::cmd::TaskOutput> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        self.task(what, &argv).run()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.policy_created {
            let _ = std::fs::remove_file(self.root.join("usr/sbin/policy-rc.d"));
        }
        if self.apt_conf_created {
            let _ = std::fs::remove_file(self.root.join(APT_CONF));
        }
        let target = self.root.join("etc/resolv.conf");
        match std::mem::replace(&mut self.resolv, ResolvState::Untouched) {
            ResolvState::Untouched => {}
            ResolvState::Created => {
                let _ = std::fs::remove_file(&target);
            }
            ResolvState::MovedAside(aside) => {
                let _ = std::fs::remove_file(&target);
                let _ = std::fs::rename(aside, target);
            }
        }
    }
}

pub(crate) fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data).map_err(BuildError::io(format!("writing {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(BuildError::io(
        format!("setting the mode of {}", path.display()),
    ))
}

/// Mount points under `dir` visible to this process (for tests and leak checks).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&dir))
        .collect()
}
