//! Loading a factory directory: read every file, then resolve references across files.
//!
//! Each file is parsed independently and every problem is collected, so one run reports all of
//! them. Only a factory with no errors becomes a [`Factory`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::accounts;
use crate::checks;
use crate::diagnostic::{Diagnostic, Diagnostics, Loc};
use crate::factory::{self, FactoryFile};
use crate::hcl::Cx;
use crate::image::{self, ImageDraft};
use crate::model::{CheckFile, Disk, Factory, Image, Parent, SourceId, SourceKind};
use crate::names::{ChannelName, ImageName};
use crate::source::SourceFile;
use crate::values::Format;

pub const FACTORY_FILE: &str = "kiln.hcl";
pub const IMAGE_FILE: &str = "image.kiln.hcl";
pub const ACCOUNTS_FILE: &str = "accounts.yaml";
pub const IMAGES_DIR: &str = "images";

/// Formats an image gets when neither it nor an ancestor lists any.
pub const DEFAULT_FORMATS: [Format; 2] = [Format::Raw, Format::Qcow2];

/// The result of loading: the factory when there were no errors, and every diagnostic (warnings
/// are reported even on success).
#[derive(Debug)]
pub struct Loaded {
    pub factory: Option<Factory>,
    pub diagnostics: Diagnostics,
}

/// Parses kiln.hcl text on its own (used to compare with an older revision).
pub fn parse_factory_file(path: &Path, text: &str) -> (FactoryFile, Vec<Diagnostic>) {
    let mut cx = Cx::new(Arc::new(SourceFile::new(path, text.to_string())));
    let f = factory::read(&mut cx);
    (f, cx.diags)
}

/// Parses the text of one image.kiln.hcl without checking referenced files against a real
/// directory (they are all reported missing). For fuzzing and tools.
pub fn parse_image_file(path: &Path, text: &str) -> Vec<Diagnostic> {
    let mut cx = Cx::new(Arc::new(SourceFile::new(path, text.to_string())));
    let dir = path.parent().unwrap_or(Path::new(""));
    let _ = image::read(&mut cx, dir, Path::new("/nonexistent/kiln-image-dir"));
    cx.diags
}

/// Parses an accounts.yaml text on its own.
pub fn parse_accounts(path: &Path, text: &str) -> Vec<Diagnostic> {
    let mut cx = Cx::new(Arc::new(SourceFile::new(path, text.to_string())));
    let _ = accounts::read(&mut cx, None);
    cx.diags
}

fn read_source(root: &Path, rel: &Path, diags: &mut Diagnostics) -> Option<Arc<SourceFile>> {
    match std::fs::read_to_string(root.join(rel)) {
        Ok(text) => {
            let src = Arc::new(SourceFile::new(rel, text));
            diags.add_source(src.clone());
            Some(src)
        }
        Err(e) => {
            let src = SourceFile::new(rel, String::new());
            diags.push(Diagnostic::error(
                src.start(),
                format!("cannot read file: {e}"),
            ));
            None
        }
    }
}

/// Loads and validates the factory rooted at `root` (the directory holding kiln.hcl).
pub fn load_factory(root: &Path) -> Loaded {
    let _span = tracing::debug_span!("load_factory", root = %root.display()).entered();
    let mut diags = Diagnostics::default();

    let factory_file = match read_source(root, Path::new(FACTORY_FILE), &mut diags) {
        Some(src) => {
            let mut cx = Cx::new(src);
            let f = factory::read(&mut cx);
            cx.diags.into_iter().for_each(|d| diags.push(d));
            f
        }
        None => FactoryFile::default(),
    };
    let channels = factory_file.settings.as_ref().map(|s| s.channels.clone());

    let (drafts, unreadable) = read_images(root, &mut diags);

    let accounts_path = root.join(ACCOUNTS_FILE);
    let accounts = if accounts_path.exists() {
        read_source(root, Path::new(ACCOUNTS_FILE), &mut diags).and_then(|src| {
            let mut cx = Cx::new(src);
            let a = accounts::read(&mut cx, channels.as_deref());
            cx.diags.into_iter().for_each(|d| diags.push(d));
            a
        })
    } else {
        None
    };

    let images = resolve(root, &factory_file, drafts, &unreadable, &mut diags);

    let factory = match (diags.has_errors(), factory_file.settings) {
        (false, Some(settings)) => Some(Factory {
            root: root.to_path_buf(),
            settings,
            sources: factory_file.sources,
            policies: factory_file.policies,
            images,
            accounts,
        }),
        _ => None,
    };
    Loaded {
        factory,
        diagnostics: diags,
    }
}

/// Reads every image directory. Also returns the directory names of image files that could not
/// be read into a draft, so references to them are not reported a second time as unknown.
fn read_images(root: &Path, diags: &mut Diagnostics) -> (Vec<ImageDraft>, Vec<String>) {
    let images_dir = root.join(IMAGES_DIR);
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&images_dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(_) => {
            let src = SourceFile::new(FACTORY_FILE, String::new());
            diags.push(Diagnostic::warning(
                src.start(),
                format!("the factory has no `{IMAGES_DIR}/` directory, so it defines no images"),
            ));
            return (Vec::new(), Vec::new());
        }
    };
    dirs.sort();
    let mut drafts = Vec::new();
    let mut unreadable = Vec::new();
    for abs_dir in dirs {
        let name = abs_dir.file_name().unwrap_or_default();
        let dir = Path::new(IMAGES_DIR).join(name);
        let rel = dir.join(IMAGE_FILE);
        if !abs_dir.join(IMAGE_FILE).exists() {
            let src = SourceFile::new(&dir, String::new());
            diags.push(Diagnostic::warning(
                src.start(),
                format!("directory has no {IMAGE_FILE}; it is not an image and is ignored"),
            ));
            continue;
        }
        let draft = read_source(root, &rel, diags).and_then(|src| {
            let mut cx = Cx::new(src);
            let draft = image::read(&mut cx, &dir, &abs_dir);
            cx.diags.into_iter().for_each(|d| diags.push(d));
            draft
        });
        match draft {
            Some(d) => drafts.push(d),
            None => unreadable.push(name.to_string_lossy().into_owned()),
        }
    }
    (drafts, unreadable)
}

/// Resolves references, detects cycles, inherits settings and loads check files.
fn resolve(
    root: &Path,
    ff: &FactoryFile,
    drafts: Vec<ImageDraft>,
    unreadable: &[String],
    diags: &mut Diagnostics,
) -> BTreeMap<ImageName, Image> {
    // Duplicate names: the first definition (in directory order) wins.
    let mut by_name: BTreeMap<ImageName, ImageDraft> = BTreeMap::new();
    for d in drafts {
        if let Some(first) = by_name.get(&d.name.value) {
            diags.push(Diagnostic::error(
                d.name.loc.clone(),
                format!(
                    "image `{}` is already defined at {}",
                    d.name.value, first.name.loc
                ),
            ));
        } else {
            by_name.insert(d.name.value.clone(), d);
        }
    }

    let channels = ff.settings.as_ref().map(|s| &s.channels);
    let mut parents: HashMap<ImageName, (Parent, Option<ChannelName>, Loc)> = HashMap::new();
    for d in by_name.values() {
        let Some(from) = &d.from else { continue };
        // `image.x` where images/x/ failed to parse: that error is already reported.
        if let [root, name] = from.value.as_slice()
            && root == "image"
            && unreadable.contains(name)
            && !by_name.contains_key(name.as_str())
        {
            continue;
        }
        let Some(parent) = resolve_from(&d.name.value, &from.value, &from.loc, ff, &by_name, diags)
        else {
            continue;
        };
        let channel = match (&parent, &d.channel) {
            (Parent::Source(_), Some(c)) => {
                diags.push(Diagnostic::error(
                    c.loc.clone(),
                    "`channel` selects the parent image's channel; an image built from a source has none",
                ));
                continue;
            }
            (Parent::Source(_), None) => None,
            (Parent::Image(_), Some(c)) => match channels {
                Some(chs) if !chs.contains(&c.value) => {
                    let names: Vec<&str> = chs.iter().map(|c| c.as_str()).collect();
                    diags.push(Diagnostic::error(
                        c.loc.clone(),
                        format!(
                            "unknown channel `{}`; the factory's channels are: {}",
                            c.value,
                            names.join(", ")
                        ),
                    ));
                    continue;
                }
                _ => Some(c.value.clone()),
            },
            (Parent::Image(_), None) => channels.and_then(|chs| default_channel(chs)),
        };
        parents.insert(d.name.value.clone(), (parent, channel, from.loc.clone()));
    }

    let in_cycle = report_cycles(&parents, diags);

    let mut check_cache: HashMap<PathBuf, Option<Vec<checks::Check>>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (name, d) in &by_name {
        let Some((parent, channel, from_loc)) = parents.get(name) else {
            continue;
        };
        if in_cycle.contains(name) {
            continue;
        }
        let (disk, formats) = inherited(name, &by_name, &parents);
        let check_files = load_checks(root, d, &mut check_cache, diags);
        out.insert(
            name.clone(),
            Image {
                name: name.clone(),
                dir: d.dir.clone(),
                description: d.description.clone(),
                from: parent.clone(),
                channel: channel.clone(),
                packages: d.packages.clone(),
                disk,
                provisioners: d.provisioners.clone(),
                check_files,
                formats,
                labels: d.labels.clone(),
                loc: d.loc.clone(),
                from_loc: from_loc.clone(),
            },
        );
    }
    out
}

/// The channel children build on when they do not say: `production` if the factory has it,
/// otherwise the last (most trusted) channel of the promotion order.
fn default_channel(chs: &[ChannelName]) -> Option<ChannelName> {
    chs.iter()
        .find(|c| c.as_str() == "production")
        .or_else(|| chs.last())
        .cloned()
}

fn resolve_from(
    me: &ImageName,
    parts: &[String],
    loc: &Loc,
    ff: &FactoryFile,
    images: &BTreeMap<ImageName, ImageDraft>,
    diags: &mut Diagnostics,
) -> Option<Parent> {
    let err = |diags: &mut Diagnostics, msg: String| {
        diags.push(Diagnostic::error(loc.clone(), msg));
        None
    };
    match parts {
        [root, kind, name] if root == "source" => {
            let Some(kind) = SourceKind::parse(kind) else {
                return err(
                    diags,
                    format!("unknown source type `{kind}` in `from`; supported: debian"),
                );
            };
            let id = SourceId {
                kind,
                name: name.clone(),
            };
            if ff.sources.contains_key(&id) {
                Some(Parent::Source(id))
            } else {
                let known: Vec<String> = ff.sources.keys().map(|k| format!("source.{k}")).collect();
                err(
                    diags,
                    format!(
                        "`source.{id}` is not declared in kiln.hcl{}",
                        hint_list(&known)
                    ),
                )
            }
        }
        [root, name] if root == "image" => match images.get_key_value(name.as_str()) {
            Some((n, _)) => Some(Parent::Image(n.clone())),
            None => {
                let known: Vec<String> = images
                    .keys()
                    .filter(|k| *k != me)
                    .map(|k| format!("image.{k}"))
                    .collect();
                err(
                    diags,
                    format!("image `{name}` does not exist{}", hint_list(&known)),
                )
            }
        },
        _ => err(
            diags,
            format!(
                "`from = {}` is not a valid reference: use `source.TYPE.NAME` or `image.NAME`",
                parts.join(".")
            ),
        ),
    }
}

fn hint_list(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; known: {}", known.join(", "))
    }
}

/// Reports every `from` cycle once, at the `from` of its alphabetically first member, and
/// returns the images that are part of (or lead into) a cycle.
fn report_cycles(
    parents: &HashMap<ImageName, (Parent, Option<ChannelName>, Loc)>,
    diags: &mut Diagnostics,
) -> std::collections::HashSet<ImageName> {
    let mut bad = std::collections::HashSet::new();
    let mut reported: std::collections::HashSet<Vec<ImageName>> = Default::default();
    let mut names: Vec<&ImageName> = parents.keys().collect();
    names.sort();
    for start in names {
        let mut path: Vec<ImageName> = vec![start.clone()];
        let mut cur = start;
        while let Some((Parent::Image(p), _, _)) = parents.get(cur) {
            if let Some(pos) = path.iter().position(|n| n == p) {
                let mut members = path[pos..].to_vec();
                bad.extend(path.iter().cloned());
                members.sort();
                if reported.insert(members.clone()) {
                    // Print the ring starting at its first member, following `from`.
                    let first = &members[0];
                    let mut ring = vec![first.to_string()];
                    let mut at = first;
                    while let Some((Parent::Image(next), _, _)) = parents.get(at) {
                        ring.push(next.to_string());
                        if next == first {
                            break;
                        }
                        at = next;
                    }
                    let loc = parents[first].2.clone();
                    diags.push(Diagnostic::error(
                        loc,
                        format!("dependency cycle: {}", ring.join(" → ")),
                    ));
                }
                break;
            }
            path.push(p.clone());
            cur = p;
        }
    }
    bad
}

/// Disk and formats come from the nearest ancestor that sets them, else the defaults.
fn inherited(
    name: &ImageName,
    drafts: &BTreeMap<ImageName, ImageDraft>,
    parents: &HashMap<ImageName, (Parent, Option<ChannelName>, Loc)>,
) -> (Disk, Vec<Format>) {
    let mut disk = None;
    let mut formats = None;
    let mut cur = Some(name);
    while let Some(n) = cur {
        let d = &drafts[n];
        disk = disk.or(d.disk);
        formats = formats.or_else(|| d.formats.clone());
        cur = match parents.get(n) {
            Some((Parent::Image(p), _, _)) => Some(p),
            _ => None,
        };
    }
    (
        disk.unwrap_or(Disk {
            size: crate::values::ByteSize::from_bytes(4 * crate::values::ByteSize::GIB),
            boot: crate::values::BootMode::Uefi,
        }),
        formats.unwrap_or_else(|| DEFAULT_FORMATS.to_vec()),
    )
}

fn load_checks(
    root: &Path,
    d: &ImageDraft,
    cache: &mut HashMap<PathBuf, Option<Vec<checks::Check>>>,
    diags: &mut Diagnostics,
) -> Vec<CheckFile> {
    let mut files = Vec::new();
    let mut seen: HashMap<String, Loc> = HashMap::new();
    for c in &d.checks {
        let rel = d.dir.join(c.value.as_path());
        if files.iter().any(|f: &CheckFile| f.path == c.value) {
            diags.push(Diagnostic::error(
                c.loc.clone(),
                format!(
                    "check file `{}` is listed twice",
                    c.value.as_path().display()
                ),
            ));
            continue;
        }
        let parsed = cache
            .entry(rel.clone())
            .or_insert_with(|| {
                let src = read_source(root, &rel, diags)?;
                let mut cx = Cx::new(src);
                let list = checks::read(&mut cx);
                let ok = cx.diags.is_empty();
                cx.diags.into_iter().for_each(|d| diags.push(d));
                ok.then_some(list)
            })
            .clone();
        let Some(list) = parsed else { continue };
        for check in &list {
            if let Some(first) = seen.get(&check.id) {
                diags.push(Diagnostic::error(
                    check.loc.clone(),
                    format!(
                        "duplicate check id `{}` in image `{}` (first at {first})",
                        check.id, d.name.value
                    ),
                ));
            } else {
                seen.insert(check.id.clone(), check.loc.clone());
            }
        }
        files.push(CheckFile {
            path: c.value.clone(),
            checks: list,
        });
    }
    files
}
