//! The fingerprint of an image version: a hash of its definition, every file it uses, its
//! source (for roots) and its parent's fingerprint. Two builds with the same fingerprint were
//! built from the same inputs as far as the factory can tell; a parent change changes every
//! descendant's fingerprint.
//!
//! Unlike stage keys, it does not include the mirror's state: "same definition" is what the
//! registry compares, "same bits" is what the stage cache compares.

use std::collections::BTreeMap;

use kiln_spec::{Factory, Image, Parent, Provisioner, ShellBody};

use crate::error::{BuildError, Result};
use crate::hash::{KeyHasher, digest_path};

/// Fingerprints of `image` and its ancestors (memoised in `memo`).
pub fn fingerprint(
    f: &Factory,
    image: &Image,
    memo: &mut BTreeMap<String, String>,
) -> Result<String> {
    if let Some(fp) = memo.get(image.name.as_str()) {
        return Ok(fp.clone());
    }
    let mut h = KeyHasher::new("fingerprint/1");
    h.json("definition", image);
    match &image.from {
        Parent::Source(id) => {
            let src = f.sources.get(id).ok_or_else(|| BuildError::Image {
                image: image.name.to_string(),
                message: format!("source {id} is not declared"),
            })?;
            h.json("source", src);
        }
        Parent::Image(p) => {
            let parent = f.image(p.as_str()).ok_or_else(|| BuildError::Image {
                image: image.name.to_string(),
                message: format!("parent image {p} is not defined"),
            })?;
            h.field("parent", fingerprint(f, parent, memo)?);
        }
    }
    for (rel, digest) in file_digests(f, image)? {
        h.field("file", format!("{rel} {digest}"));
    }
    let fp = h.finish();
    memo.insert(image.name.to_string(), fp.clone());
    Ok(fp)
}

/// Digests of the files an image's definition refers to (scripts, file sources, check files),
/// keyed by their path in the image directory.
pub fn file_digests(f: &Factory, image: &Image) -> Result<BTreeMap<String, String>> {
    let dir = f.root.join(&image.dir);
    let mut out = BTreeMap::new();
    let mut add = |rel: &std::path::Path| -> Result<()> {
        out.insert(rel.display().to_string(), digest_path(&dir.join(rel))?);
        Ok(())
    };
    for p in &image.provisioners {
        match p {
            Provisioner::Shell {
                body: ShellBody::Script(s),
                ..
            } => add(s.as_path())?,
            Provisioner::File { source, .. } => add(source.as_path())?,
            Provisioner::Shell { .. } => {}
        }
    }
    for c in &image.check_files {
        add(c.path.as_path())?;
    }
    Ok(out)
}
