//! What a file check looks at, gathered either from a built tree (offline) or from the booted
//! guest through the agent, and judged by one function so both places agree.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use kiln_spec::FileCheck;

/// A file as a check sees it (symlinks followed, as `stat -L` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub exists: bool,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Contents, when the check needs them and the path is a regular file.
    pub content: Option<Vec<u8>>,
}

impl FileFacts {
    pub fn absent() -> Self {
        FileFacts {
            exists: false,
            mode: 0,
            owner: String::new(),
            group: String::new(),
            content: None,
        }
    }
}

pub fn needs_content(c: &FileCheck) -> bool {
    !c.contains.is_empty() || !c.not_contains.is_empty()
}

/// Every way the facts fail the check; empty means it passes.
pub fn judge(c: &FileCheck, f: &FileFacts) -> Vec<String> {
    let mut out = Vec::new();
    let path = c.path.as_path().display();
    if !c.exists {
        if f.exists {
            out.push(format!("{path} exists, expected it to be absent"));
        }
        return out;
    }
    if !f.exists {
        out.push(format!("{path} does not exist"));
        return out;
    }
    if let Some(max) = c.mode_at_most {
        let extra = f.mode & !max.bits();
        if extra != 0 {
            out.push(format!(
                "mode is {:04o}, expected at most {max} (extra bits {:04o})",
                f.mode, extra
            ));
        }
    }
    if let Some(o) = &c.owner
        && *o != f.owner
    {
        out.push(format!("owner is {}, expected {o}", f.owner));
    }
    if let Some(g) = &c.group
        && *g != f.group
    {
        out.push(format!("group is {}, expected {g}", f.group));
    }
    if needs_content(c) {
        let text = f
            .content
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        for s in &c.contains {
            if !text.contains(s.as_str()) {
                out.push(format!("does not contain {s:?}"));
            }
        }
        for s in &c.not_contains {
            if text.contains(s.as_str()) {
                out.push(format!("contains {s:?}, which it must not"));
            }
        }
    }
    out
}

/// Resolves `guest_path` inside `tree` the way the guest would: absolute symlinks restart at the
/// tree's root, `..` never climbs above it. `None` when it does not resolve to something.
pub fn resolve_in_tree(tree: &Path, guest_path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = guest_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut cur: Vec<std::ffi::OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        let mut candidate = tree.to_path_buf();
        candidate.extend(&cur);
        candidate.push(&part);
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            if target.is_absolute() {
                cur.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => pending.push(n.to_os_string()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
        } else {
            cur.push(part);
        }
    }
    let mut p = tree.to_path_buf();
    p.extend(&cur);
    Some(p)
}

/// Name of a uid/gid from the tree's own passwd/group file (not the build host's).
fn name_in(tree: &Path, file: &str, id: u32) -> String {
    std::fs::read_to_string(tree.join(file))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == id.to_string()).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| id.to_string())
}

/// Facts about a path in a built tree.
pub fn offline_facts(tree: &Path, c: &FileCheck) -> FileFacts {
    let Some(p) = resolve_in_tree(tree, c.path.as_path()) else {
        return FileFacts::absent();
    };
    let Ok(meta) = std::fs::metadata(&p) else {
        return FileFacts::absent();
    };
    FileFacts {
        exists: true,
        mode: meta.mode() & 0o7777,
        owner: name_in(tree, "etc/passwd", meta.uid()),
        group: name_in(tree, "etc/group", meta.gid()),
        content: (needs_content(c) && meta.is_file())
            .then(|| std::fs::read(&p).ok())
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> FileCheck {
        let checks = kiln_spec::parse_checks(Path::new("t.yaml"), yaml).unwrap();
        match &checks[0].kind {
            kiln_spec::CheckKind::File(f) => f.clone(),
            _ => panic!(),
        }
    }

    #[test]
    fn mode_is_an_upper_bound() {
        let c = check(
            "checks:\n  - id: s\n    file: /etc/shadow\n    mode: \"0640\"\n    owner: root\n",
        );
        let mut f = FileFacts {
            exists: true,
            mode: 0o600,
            owner: "root".into(),
            group: "shadow".into(),
            content: None,
        };
        assert!(judge(&c, &f).is_empty());
        f.mode = 0o644;
        assert_eq!(
            judge(&c, &f),
            ["mode is 0644, expected at most 0640 (extra bits 0004)"]
        );
        f.owner = "nobody".into();
        assert_eq!(judge(&c, &f).len(), 2);
    }

    #[test]
    fn absent_and_contents() {
        let c =
            check("checks:\n  - id: k\n    file: /etc/ssh/ssh_host_rsa_key\n    absent: true\n");
        assert!(judge(&c, &FileFacts::absent()).is_empty());
        let c = check(
            "checks:\n  - id: c\n    file: /etc/x\n    contains: [\"a\"]\n    not_contains: \"b\"\n",
        );
        let f = FileFacts {
            exists: true,
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"a b".to_vec()),
        };
        assert_eq!(judge(&c, &f), ["contains \"b\", which it must not"]);
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_tree() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/real"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/real", t.path().join("etc/link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("etc/host")).unwrap();
        assert_eq!(
            resolve_in_tree(t.path(), Path::new("/etc/link")),
            Some(t.path().join("etc/real"))
        );
        // /etc/passwd of the tree does not exist: it must not resolve to the host's.
        assert_eq!(resolve_in_tree(t.path(), Path::new("/etc/host")), None);
        assert_eq!(
            resolve_in_tree(t.path(), Path::new("/../../etc/real")),
            Some(t.path().join("etc/real"))
        );
    }
}
