//! Debian package versions (`[epoch:]upstream[-revision]`) ordered as dpkg orders them
//! (`dpkg --compare-versions`, deb-version(7)): epochs numerically, then upstream and revision
//! by alternating non-digit runs (letters before non-letters, `~` before everything, even the
//! end of the string) and digit runs (numerically).

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version `{version}`: {reason}")]
pub struct VersionError {
    pub version: String,
    pub reason: &'static str,
}

/// A parsed Debian version. Equality is dpkg's: `1.0` equals `0:1.0` and `1.0-0`.
#[derive(Debug, Clone)]
pub struct DebVersion {
    original: String,
    epoch: u32,
    upstream: String,
    revision: String,
}

impl DebVersion {
    /// Parses a version, refusing what dpkg refuses (empty parts, a non-numeric or too large
    /// epoch, spaces, characters outside `[A-Za-z0-9.+~:-]`).
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = |reason| VersionError {
            version: s.to_string(),
            reason,
        };
        let v = s.trim();
        if v.is_empty() {
            return Err(err("version string is empty"));
        }
        if v.contains(char::is_whitespace) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(err("epoch in version is empty"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                let n: u32 = e.parse().map_err(|_| err("epoch in version is too big"))?;
                if n > i32::MAX as u32 {
                    return Err(err("epoch in version is too big"));
                }
                (n, rest)
            }
            None => (0, v),
        };
        if rest.is_empty() {
            return Err(err("nothing after colon in version number"));
        }
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("revision number is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        let ok = |c: char, extra: &str| {
            c.is_ascii_alphanumeric() || ".+~".contains(c) || extra.contains(c)
        };
        if !upstream.chars().all(|c| ok(c, "-:")) {
            return Err(err("invalid character in version number"));
        }
        if !revision.chars().all(|c| ok(c, "")) {
            return Err(err("invalid character in revision number"));
        }
        Ok(DebVersion {
            original: v.to_string(),
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

/// Compares two version strings with dpkg's rules; `None` when either is not a valid version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(DebVersion::parse(a).ok()?.cmp(&DebVersion::parse(b).ok()?))
}

/// The weight of one character in a non-digit run; 0 stands for the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_deb_version_7() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "0:1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0-1", "1.0-1+deb12u1", Less),
            ("1.0-1+deb12u1", "1.0-1+deb12u2", Less),
            ("1:0.1", "2.0", Greater),
            ("1.10", "1.9", Greater),
            ("1.001", "1.1", Equal),
            ("1.0a", "1.0+", Less),
            ("2.36.1-8+deb12u1", "2.36.1-8", Greater),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("252.30-1~deb12u2", "252.33-1~deb12u1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), Some(want), "{a} vs {b}");
            assert_eq!(compare(b, a), Some(want.reverse()), "{b} vs {a}");
        }
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for bad in [
            "",
            "a b",
            ":1.0",
            "x:1.0",
            "1:",
            "1.0-",
            "1.0_1",
            "1.0-1:2",
            "99999999999:1",
        ] {
            assert!(DebVersion::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let v = DebVersion::parse("1:2.3-4-5").unwrap();
        assert_eq!((v.epoch(), v.upstream(), v.revision()), (1, "2.3-4", "5"));
    }
}
