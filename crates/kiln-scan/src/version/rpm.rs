//! RPM versions ordered as rpm orders them (`rpmvercmp` on each of epoch, version and release,
//! as `rpm.vercmp` does from rpm 4.16 on). Segments are runs of digits or of ASCII letters;
//! anything else only separates. Digits beat letters, numbers compare without leading zeros, `~`
//! sorts before everything (even the end) and `^` after the end but before any further segment.

use std::cmp::Ordering;

/// `rpmvercmp`: compares one version or one release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (sa, ea) = take(a, i);
        let (sb, eb) = take(b, j);
        i = ea;
        j = eb;
        if sb == eb {
            // b's segment is of the other kind: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut x, mut y) = (&a[sa..ea], &b[sb..eb]);
        let ord = if numeric {
            while x.first() == Some(&b'0') {
                x = &x[1..];
            }
            while y.first() == Some(&b'0') {
                y = &y[1..];
            }
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

/// An `[epoch:]version[-release]` split as rpm splits it: the epoch is leading digits before a
/// `:`, the release follows the last `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evr<'a> {
    pub epoch: &'a str,
    pub version: &'a str,
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    pub fn parse(s: &'a str) -> Evr<'a> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if s.as_bytes().get(digits) == Some(&b':') {
            (
                if digits == 0 { "0" } else { &s[..digits] },
                &s[digits + 1..],
            )
        } else {
            ("0", s)
        };
        match rest.rsplit_once('-') {
            Some((v, r)) => Evr {
                epoch,
                version: v,
                release: Some(r),
            },
            None => Evr {
                epoch,
                version: rest,
                release: None,
            },
        }
    }
}

/// Compares full `[E:]V[-R]` strings; a missing epoch is 0, a missing release sorts first.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (Evr::parse(a), Evr::parse(b));
    rpmvercmp(x.epoch, y.epoch)
        .then_with(|| rpmvercmp(x.version, y.version))
        .then_with(|| match (x.release, y.release) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(r), Some(s)) => rpmvercmp(r, s),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_pairs_checked_against_rpm_4_18() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0^git1", "1.0a", Less),
            ("1.0^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0", "1.0.0", Less),
            ("1.0.", "1.0", Equal),
            ("1a", "1.1", Less),
            ("6.0.rc1", "6.0", Greater),
            ("10.0001", "10.1", Equal),
            ("1.9", "1.10", Less),
            ("A", "a", Less),
            ("2.0", "2_0", Equal),
            ("1.1.α", "1.1.β", Equal),
            ("1.0-1", "1.0-1.el9", Less),
            ("1.0-1.el9_2.1", "1.0-1.el9_2", Greater),
            ("1:1.0-1", "2.0-1", Greater),
            ("0:1.0-1", "1.0-1", Equal),
            ("00:1.0", "0:1.0", Equal),
            ("1.0", "1.0-1", Less),
            ("1.2.3-4-5", "1.2.3-4.5", Greater),
            (":1.0", "0:1.0", Equal),
            ("a:1.0", "1.0", Less),
            ("3.0.7-24.el9", "1:3.0.7-16.el9", Less),
            ("1.2-3.el9_0", "1.2-3.el9.0", Equal),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567891",
                Less,
            ),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
