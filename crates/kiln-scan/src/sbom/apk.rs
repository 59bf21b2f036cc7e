//! Alpine: `lib/apk/db/installed`, one `X:value` line per field, records separated by blank
//! lines (`P` name, `V` version, `A` arch, `o` origin = source package, `L` license, `m`
//! maintainer).

use std::path::Path;

use super::{Kind, Package};
use crate::ScanError;

pub const INSTALLED: &str = "lib/apk/db/installed";

pub fn read(root: &Path) -> Result<Vec<Package>, ScanError> {
    let bytes = crate::root::read(root, INSTALLED)
        .map_err(ScanError::io(INSTALLED))?
        .ok_or_else(|| ScanError::Invalid(format!("{}: no {INSTALLED}", root.display())))?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// Records without a name or version are dropped; lines that are not `X:value` are skipped.
pub fn parse(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur: Option<Package> = None;
    let blank = || Package {
        kind: Kind::Apk,
        name: String::new(),
        version: String::new(),
        epoch: None,
        arch: String::new(),
        source: String::new(),
        source_version: String::new(),
        license: None,
        supplier: None,
    };
    let mut finish = |p: Option<Package>| {
        if let Some(mut p) = p
            && !p.name.is_empty()
            && !p.version.is_empty()
        {
            if p.source.is_empty() {
                p.source = p.name.clone();
            }
            p.source_version = p.version.clone();
            out.push(p);
        }
    };
    for line in text.lines() {
        if line.len() < 2 {
            finish(cur.take());
            continue;
        }
        let b = line.as_bytes();
        if b[1] != b':' || !line.is_char_boundary(2) {
            continue;
        }
        let value = line[2..].to_string();
        let p = cur.get_or_insert_with(blank);
        match b[0] {
            b'P' => p.name = value,
            b'V' => p.version = value,
            b'A' => p.arch = value,
            b'o' => p.source = value,
            b'L' => p.license = Some(value),
            b'm' => p.supplier = Some(value),
            _ => {}
        }
    }
    finish(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_origins() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nL:MIT\no:musl\nm:Natanael Copa <ncopa@alpinelinux.org>\nF:lib\nR:libc.musl-x86_64.so.1\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n\n";
        let p = parse(text);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].version.as_str(),
                p[0].source.as_str()
            ),
            ("musl", "1.2.4_git20230717-r4", "musl")
        );
        assert_eq!(
            (
                p[1].name.as_str(),
                p[1].source.as_str(),
                p[1].license.as_deref()
            ),
            ("libcrypto3", "openssl", Some("Apache-2.0"))
        );
    }
}
