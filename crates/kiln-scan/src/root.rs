//! Reading files of an image tree as the image would see them: absolute symlinks resolve against
//! the image root, `..` never climbs above it, and nothing on the build host is ever read through
//! a link planted in the image.

use std::io;
use std::path::{Component, Path, PathBuf};

/// At most this many symlinks on one lookup, like the kernel's limit (loops end in an error).
const MAX_LINKS: usize = 40;

/// Resolves `rel` (a path inside the image, absolute or relative) to a host path under `root`,
/// following symlinks inside the image. The result may not exist.
pub fn resolve(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = components(rel);
    todo.reverse();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let candidate = root.join(done.iter().collect::<PathBuf>()).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many symbolic links resolving {} in the image",
                        rel.display()
                    )));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    done.clear();
                }
                let mut more = components(&target);
                more.reverse();
                todo.extend(more);
            }
            _ => done.push(c),
        }
    }
    Ok(root.join(done.iter().collect::<PathBuf>()))
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Reads a file of the image (see [`resolve`]); `Ok(None)` when it does not exist.
pub fn read(root: &Path, rel: &str) -> io::Result<Option<Vec<u8>>> {
    let p = resolve(root, Path::new(rel))?;
    match std::fs::read(&p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_stay_inside_the_image() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), "ID=debian\n").unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("etc/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../etc/passwd", root.join("etc/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("etc/loop")).unwrap();
        assert_eq!(
            read(root, "/etc/os-release").unwrap().unwrap(),
            b"ID=debian\n"
        );
        // Absolute and climbing links resolve inside the root: the host's files are never read.
        assert_eq!(
            resolve(root, Path::new("etc/abs")).unwrap(),
            root.join("etc/hostname")
        );
        assert_eq!(
            resolve(root, Path::new("etc/up")).unwrap(),
            root.join("etc/passwd")
        );
        assert!(read(root, "etc/up").unwrap().is_none());
        assert!(read(root, "etc/loop").is_err());
    }
}
