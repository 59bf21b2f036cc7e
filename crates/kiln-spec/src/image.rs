//! `image.kiln.hcl`: one image definition, read into a draft. References (`from`) and inherited
//! settings are resolved later by the loader, which sees every image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl_edit::Span as _;
use hcl_edit::structure::Block;

use crate::diagnostic::{Loc, Spanned};
use crate::hcl::{self, BodyReader, Cx};
use crate::model::{Disk, Provisioner, ShellBody};
use crate::names::{ChannelName, ImageName};
use crate::values::{BootMode, ByteSize, Format, GuestPath, ImagePath, Mode};

/// Smallest disk that holds a bootable minimal Debian with room for provisioning.
const MIN_DISK: u64 = 256 * ByteSize::MIB;

#[derive(Debug, Clone)]
pub(crate) struct ImageDraft {
    pub name: Spanned<ImageName>,
    pub dir: PathBuf,
    pub description: Option<String>,
    pub from: Option<Spanned<Vec<String>>>,
    pub channel: Option<Spanned<ChannelName>>,
    pub packages: Vec<String>,
    pub disk: Option<Disk>,
    pub provisioners: Vec<Provisioner>,
    pub checks: Vec<Spanned<ImagePath>>,
    pub formats: Option<Vec<Format>>,
    pub labels: BTreeMap<String, String>,
    pub loc: Loc,
}

/// Reads the single `image` block of a file. `abs_dir` is the image directory on disk, used to
/// check that referenced files exist and do not lead outside it.
pub(crate) fn read(cx: &mut Cx, dir: &Path, abs_dir: &Path) -> Option<ImageDraft> {
    let body = hcl::parse_body(cx)?;
    let mut top = BodyReader::new("image.kiln.hcl", &body, None);
    let blocks = top.blocks("image");
    top.finish(cx);
    let Some(block) = blocks.first() else {
        let loc = cx.src.start();
        cx.error_at(loc, "image.kiln.hcl has no `image \"NAME\" { … }` block");
        return None;
    };
    for extra in blocks.iter().skip(1) {
        cx.error(
            extra.ident.span(),
            "an image directory holds exactly one `image` block; put other images in their own directory",
        );
    }
    read_image(cx, block, dir, abs_dir)
}

fn read_image(cx: &mut Cx, b: &Block, dir: &Path, abs_dir: &Path) -> Option<ImageDraft> {
    let labels = hcl::labels(cx, b, &["name"]);
    let mut r = BodyReader::for_block("the image block", b);
    let description = r
        .attr(cx, "description")
        .and_then(|a| hcl::string(cx, &a.value, "`description`"))
        .map(|s| s.value);
    let from = r
        .required(cx, "from")
        .and_then(|a| hcl::reference(cx, &a.value, "`from`"));
    let channel = r.attr(cx, "channel").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`channel`")?;
        match ChannelName::new(&s.value) {
            Ok(c) => Some(Spanned::new(c, s.loc)),
            Err(e) => {
                cx.error_at(s.loc, e.to_string());
                None
            }
        }
    });
    let packages = r
        .attr(cx, "packages")
        .and_then(|a| hcl::string_list(cx, &a.value, "`packages`"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            if is_package_spec(&p.value) {
                Some(p.value)
            } else {
                cx.error_at(
                    p.loc,
                    format!(
                        "invalid package `{}`: expected a Debian package name, optionally with =VERSION",
                        p.value
                    ),
                );
                None
            }
        })
        .collect();

    let disks = r.blocks("disk");
    for extra in disks.iter().skip(1) {
        cx.error(extra.ident.span(), "only one `disk` block is allowed");
    }
    let disk = disks.first().and_then(|d| read_disk(cx, d));

    let provisioners = r
        .blocks("provisioner")
        .into_iter()
        .filter_map(|p| read_provisioner(cx, p, abs_dir))
        .collect();

    let checks = r
        .attr(cx, "checks")
        .and_then(|a| hcl::string_list(cx, &a.value, "`checks`"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| image_path(cx, &s, abs_dir, Want::File).map(|p| Spanned::new(p, s.loc)))
        .collect();

    let formats = r.attr(cx, "formats").and_then(|a| {
        let list = hcl::string_list(cx, &a.value, "`formats`")?;
        if list.is_empty() {
            cx.error(a.value.span(), "`formats` needs at least one format");
            return None;
        }
        let mut out: Vec<Format> = Vec::new();
        for s in list {
            match s.value.parse::<Format>() {
                Ok(f) if out.contains(&f) => {
                    cx.error_at(s.loc, format!("format `{f}` is listed twice"))
                }
                Ok(f) => out.push(f),
                Err(e) => cx.error_at(s.loc, e.to_string()),
            }
        }
        Some(out)
    });

    let mut labels_map = BTreeMap::new();
    if let Some(a) = r.attr(cx, "labels") {
        for (k, v) in hcl::string_map(cx, &a.value, "`labels`").unwrap_or_default() {
            if !is_label_key(&k.value) {
                cx.error_at(
                    k.loc,
                    format!(
                        "invalid label key `{}`: use lowercase letters, digits, `_`, `-`, `.`, starting with a letter (at most 63)",
                        k.value
                    ),
                );
            } else if labels_map.insert(k.value.clone(), v.value).is_some() {
                cx.error_at(k.loc, format!("label `{}` is set twice", k.value));
            }
        }
    }
    r.finish(cx);

    let label = labels?.pop()?;
    let name = match ImageName::new(&label.value) {
        Ok(n) => n,
        Err(e) => {
            cx.error_at(label.loc, e.to_string());
            return None;
        }
    };
    Some(ImageDraft {
        name: Spanned::new(name, label.loc),
        dir: dir.to_path_buf(),
        description,
        from,
        channel,
        packages,
        disk,
        provisioners,
        checks,
        formats,
        labels: labels_map,
        loc: cx.loc(b.ident.span()),
    })
}

fn read_disk(cx: &mut Cx, b: &Block) -> Option<Disk> {
    hcl::labels(cx, b, &[]);
    let mut r = BodyReader::for_block("the disk block", b);
    let size = r.required(cx, "size").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`size`")?;
        let size = s
            .value
            .parse::<ByteSize>()
            .map_err(|e| cx.error_at(s.loc.clone(), e.to_string()))
            .ok()?;
        if size.bytes() < MIN_DISK {
            cx.error_at(
                s.loc,
                format!(
                    "disk size {size} is too small for a bootable image: at least {}",
                    ByteSize::from_bytes(MIN_DISK)
                ),
            );
            return None;
        }
        if size.bytes() % ByteSize::MIB != 0 {
            cx.error_at(
                s.loc,
                format!("disk size `{}` must be a whole number of MiB", s.value),
            );
            return None;
        }
        Some(size)
    });
    let boot = r
        .opt_parsed(cx, "boot", |v| {
            v.parse::<BootMode>().map_err(|e| e.to_string())
        })
        .map(Option::unwrap_or_default);
    r.finish(cx);
    Some(Disk {
        size: size?,
        boot: boot?,
    })
}

fn read_provisioner(cx: &mut Cx, b: &Block, abs_dir: &Path) -> Option<Provisioner> {
    let label = hcl::labels(cx, b, &["type"])?.pop()?;
    match label.value.as_str() {
        "shell" => read_shell(cx, b, abs_dir),
        "file" => read_file(cx, b, abs_dir),
        other => {
            cx.error_at(
                label.loc,
                format!("unknown provisioner type `{other}`; supported: shell, file"),
            );
            None
        }
    }
}

fn read_shell(cx: &mut Cx, b: &Block, abs_dir: &Path) -> Option<Provisioner> {
    let mut r = BodyReader::for_block("the shell provisioner", b);
    let inline = r.attr(cx, "inline");
    let script = r.attr(cx, "script");
    let env = r.attr(cx, "environment_vars");
    r.finish(cx);
    let body = match (inline, script) {
        (Some(_), Some(s)) => {
            cx.error(
                s.key.span(),
                "a shell provisioner takes either `inline` or `script`, not both",
            );
            return None;
        }
        (None, None) => {
            cx.error(
                b.ident.span(),
                "a shell provisioner needs `inline = [\"…\"]` or `script = \"FILE\"`",
            );
            return None;
        }
        (Some(i), None) => {
            let lines = hcl::string_list(cx, &i.value, "`inline`")?;
            if lines.is_empty() {
                cx.error(i.value.span(), "`inline` needs at least one command");
                return None;
            }
            ShellBody::Inline(lines.into_iter().map(|s| s.value).collect())
        }
        (None, Some(s)) => {
            let raw = hcl::string(cx, &s.value, "`script`")?;
            ShellBody::Script(image_path(cx, &raw, abs_dir, Want::File)?)
        }
    };
    let environment_vars = match env {
        None => Vec::new(),
        Some(a) => read_env(cx, &a.value)?,
    };
    Some(Provisioner::Shell {
        body,
        environment_vars,
    })
}

/// Packer's list form (`["KEY=value"]`) and HCL's object form (`{ KEY = "value" }`) both work:
/// teams migrate from Packer templates.
fn read_env(cx: &mut Cx, e: &hcl_edit::expr::Expression) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(Spanned<String>, String)> = match e {
        hcl_edit::expr::Expression::Object(_) => hcl::string_map(cx, e, "`environment_vars`")?
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect(),
        _ => {
            let mut out = Vec::new();
            for s in hcl::string_list(cx, e, "`environment_vars`")? {
                let Some((k, v)) = s.value.split_once('=') else {
                    cx.error_at(
                        s.loc,
                        format!(
                            "environment variable `{}` must be written KEY=VALUE",
                            s.value
                        ),
                    );
                    return None;
                };
                out.push((Spanned::new(k.to_string(), s.loc), v.to_string()));
            }
            out
        }
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        let valid = k
            .value
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error_at(
                k.loc,
                format!("invalid environment variable name `{}`", k.value),
            );
            return None;
        }
        if out.iter().any(|(o, _)| *o == k.value) {
            cx.error_at(
                k.loc,
                format!("environment variable `{}` is set twice", k.value),
            );
            return None;
        }
        out.push((k.value, v));
    }
    Some(out)
}

fn read_file(cx: &mut Cx, b: &Block, abs_dir: &Path) -> Option<Provisioner> {
    let mut r = BodyReader::for_block("the file provisioner", b);
    let source = r.required(cx, "source").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`source`")?;
        image_path(cx, &s, abs_dir, Want::Any)
    });
    let destination = r.required(cx, "destination").and_then(|a| {
        let s = hcl::string(cx, &a.value, "`destination`")?;
        GuestPath::new(&s.value)
            .map_err(|e| cx.error_at(s.loc, e.to_string()))
            .ok()
    });
    let mode = r.opt_parsed(cx, "mode", |v| v.parse::<Mode>().map_err(|e| e.to_string()));
    let account = |cx: &mut Cx, r: &mut BodyReader<'_>, name: &'static str| {
        r.opt_parsed(cx, name, |v| {
            if is_account_name(v) {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "invalid {name} `{v}`: a user/group name or numeric id"
                ))
            }
        })
    };
    let owner = account(cx, &mut r, "owner");
    let group = account(cx, &mut r, "group");
    r.finish(cx);
    Some(Provisioner::File {
        source: source?,
        destination: destination?,
        mode: mode?,
        owner: owner?,
        group: group?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    File,
    Any,
}

/// A path written in an image definition: relative, inside the image directory (symlinks
/// included), and existing.
fn image_path(cx: &mut Cx, s: &Spanned<String>, abs_dir: &Path, want: Want) -> Option<ImagePath> {
    let p = ImagePath::new(&s.value)
        .map_err(|e| cx.error_at(s.loc.clone(), e.to_string()))
        .ok()?;
    let full = abs_dir.join(p.as_path());
    let meta = match std::fs::metadata(&full) {
        Ok(m) => m,
        Err(_) => {
            cx.error_at(
                s.loc.clone(),
                format!("`{}` does not exist in the image directory", s.value),
            );
            return None;
        }
    };
    // A symlink may lead outside even when the written path does not.
    if let (Ok(real), Ok(root)) = (full.canonicalize(), abs_dir.canonicalize())
        && !real.starts_with(&root)
    {
        cx.error_at(
            s.loc.clone(),
            format!(
                "`{}` leads outside the image directory (through a symlink)",
                s.value
            ),
        );
        return None;
    }
    if want == Want::File && !meta.is_file() {
        cx.error_at(s.loc.clone(), format!("`{}` is not a file", s.value));
        return None;
    }
    Some(p)
}

fn is_package_spec(s: &str) -> bool {
    let (name, version) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    let b = name.as_bytes();
    let name_ok = b.len() >= 2
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        });
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.starts_with(|c: char| c.is_ascii_digit())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.~:".contains(c))
    });
    name_ok && version_ok
}

fn is_label_key(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
}

fn is_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && (s.bytes().all(|b| b.is_ascii_digit())
            || (s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_specs() {
        for ok in [
            "nginx",
            "libc6",
            "g++",
            "python3.11",
            "nginx=1.22.1-9",
            "x11-common=1:7.7+23",
        ] {
            assert!(is_package_spec(ok), "{ok}");
        }
        for bad in ["", "n", "Nginx", "nginx=", "nginx =1", "-x", "nginx=abc"] {
            assert!(!is_package_spec(bad), "{bad}");
        }
    }
}
