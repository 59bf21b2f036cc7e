//! Package URLs (purl-spec): `pkg:deb/debian/NAME@VERSION?arch=…&distro=debian-12`. For deb
//! and apk the epoch stays in the version (`1:2.36-9`: the colon is never percent-encoded); rpm
//! carries it as the `epoch` qualifier. Qualifiers are sorted by key.

use super::{Kind, Package};
use crate::os::OsRelease;

/// Percent-encodes everything but ASCII letters, digits, `.-_~` and `:`, as the spec requires.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of an installed package of `os`.
pub fn of(p: &Package, os: &OsRelease) -> String {
    let namespace = encode(&os.id);
    let (ty, name) = match p.kind {
        Kind::Deb | Kind::Apk => (p.kind.as_str(), p.name.to_lowercase()),
        Kind::Rpm => ("rpm", p.name.clone()),
    };
    let mut q: Vec<(&str, String)> = vec![("arch", p.arch.clone()), ("distro", os.distro())];
    if let (Kind::Rpm, Some(e)) = (p.kind, p.epoch) {
        q.push(("epoch", e.to_string()));
    }
    q.retain(|(_, v)| !v.is_empty());
    q.sort();
    let qs: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let mut s = format!(
        "pkg:{ty}/{namespace}/{}@{}",
        encode(&name),
        encode(&p.version)
    );
    if !qs.is_empty() {
        s.push('?');
        s.push_str(&qs.join("&"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> Package {
        Package {
            kind: Kind::Deb,
            name: name.into(),
            version: version.into(),
            epoch: None,
            arch: "amd64".into(),
            source: name.into(),
            source_version: version.into(),
            license: None,
            supplier: None,
        }
    }

    #[test]
    fn spec_encoding() {
        let os = OsRelease::parse("ID=debian\nVERSION_ID=12\n");
        assert_eq!(
            of(&deb("login", "1:4.13+dfsg1-1+b1"), &os),
            "pkg:deb/debian/login@1:4.13%2Bdfsg1-1%2Bb1?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            of(&deb("libssl3", "3.0.15-1~deb12u1"), &os),
            "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12"
        );
        let mut r = deb("openssl", "3.0.7-27.el9");
        r.kind = Kind::Rpm;
        r.epoch = Some(1);
        r.arch = "x86_64".into();
        let rh = OsRelease::parse("ID=rhel\nVERSION_ID=9.4\n");
        assert_eq!(
            of(&r, &rh),
            "pkg:rpm/rhel/openssl@3.0.7-27.el9?arch=x86_64&distro=rhel-9.4&epoch=1"
        );
    }
}
