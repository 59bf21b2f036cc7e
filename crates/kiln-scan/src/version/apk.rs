//! Alpine package versions ordered as apk-tools orders them: `digits{.digits}{letter}
//! {_suffix{digits}}…{~hash}{-rN}`. Tokens compare in lockstep; pre-release suffixes (`_alpha`,
//! `_beta`, `_pre`, `_rc`) sort before the plain version and the others (`_cvs`, `_svn`, `_git`,
//! `_hg`, `_p`) after it; a dotted part with a leading zero compares as a string (Gentoo's rule).

use std::cmp::Ordering;

/// Token kinds, in the order apk-tools ranks them when two versions diverge: at the first
/// differing kind, the side with the lower kind is the newer version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
/// Index of the plain version among the suffixes: the pre-releases sort below it.
const NO_SUFFIX: usize = 4;

struct Tokens<'a> {
    s: &'a [u8],
    at: usize,
    last: Kind,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str) -> Self {
        Tokens {
            s: s.as_bytes(),
            at: 0,
            last: Kind::InitialDigit,
        }
    }

    fn run(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.at;
        while self.at < self.s.len() && f(self.s[self.at]) {
            self.at += 1;
        }
        &self.s[start..self.at]
    }

    /// The next token's kind and text.
    fn next(&mut self) -> (Kind, &'a [u8]) {
        let first = self.at == 0;
        let kind_text = if first {
            let d = self.run(|c| c.is_ascii_digit());
            if d.is_empty() {
                (Kind::Invalid, d)
            } else {
                (Kind::InitialDigit, d)
            }
        } else if self.at >= self.s.len() {
            (Kind::End, &[][..])
        } else {
            let c = self.s[self.at];
            let rest = &self.s[self.at..];
            match c {
                b'.' if matches!(self.last, Kind::InitialDigit | Kind::Digit) => {
                    self.at += 1;
                    let d = self.run(|c| c.is_ascii_digit());
                    if d.is_empty() {
                        (Kind::Invalid, d)
                    } else {
                        (Kind::Digit, d)
                    }
                }
                b'a'..=b'z' if matches!(self.last, Kind::InitialDigit | Kind::Digit) => {
                    self.at += 1;
                    (Kind::Letter, &rest[..1])
                }
                b'_' if self.last < Kind::CommitHash => {
                    self.at += 1;
                    let w = self.run(|c| c.is_ascii_lowercase());
                    if SUFFIXES.iter().any(|s| s.as_bytes() == w) {
                        (Kind::Suffix, w)
                    } else {
                        (Kind::Invalid, w)
                    }
                }
                b'0'..=b'9' if self.last == Kind::Suffix => {
                    (Kind::SuffixNo, self.run(|c| c.is_ascii_digit()))
                }
                b'~' if self.last < Kind::CommitHash => {
                    self.at += 1;
                    let h = self.run(|c| c.is_ascii_hexdigit());
                    if h.is_empty() {
                        (Kind::Invalid, h)
                    } else {
                        (Kind::CommitHash, h)
                    }
                }
                b'-' if self.last < Kind::RevisionNo && rest.get(1) == Some(&b'r') => {
                    self.at += 2;
                    let d = self.run(|c| c.is_ascii_digit());
                    if d.is_empty() {
                        (Kind::Invalid, d)
                    } else {
                        (Kind::RevisionNo, d)
                    }
                }
                _ => (Kind::Invalid, &[][..]),
            }
        };
        if kind_text.0 == Kind::Invalid {
            self.at = self.s.len();
        }
        self.last = kind_text.0;
        kind_text
    }
}

fn numeric(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |x: &[u8]| -> usize { x.iter().take_while(|&&c| c == b'0').count() };
    let (x, y) = (&a[strip(a)..], &b[strip(b)..]);
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn suffix_rank(w: &[u8]) -> usize {
    SUFFIXES
        .iter()
        .position(|s| s.as_bytes() == w)
        .map_or(NO_SUFFIX, |i| if i < NO_SUFFIX { i } else { i + 1 })
}

fn is_prerelease(kind: Kind, text: &[u8]) -> bool {
    kind == Kind::Suffix && suffix_rank(text) < NO_SUFFIX
}

/// Compares two apk versions as `apk version -t` does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    loop {
        let (ka, xa) = ta.next();
        let (kb, xb) = tb.next();
        if ka != kb || matches!(ka, Kind::End | Kind::Invalid) {
            if ka == kb {
                return Ordering::Equal;
            }
            if is_prerelease(ka, xa) {
                return Ordering::Less;
            }
            if is_prerelease(kb, xb) {
                return Ordering::Greater;
            }
            // The side whose next token ranks lower carries more version: it is newer.
            return kb.cmp(&ka);
        }
        let ord = match ka {
            Kind::InitialDigit | Kind::SuffixNo | Kind::RevisionNo => numeric(xa, xb),
            Kind::Digit => {
                if xa.first() == Some(&b'0') || xb.first() == Some(&b'0') {
                    xa.cmp(xb)
                } else {
                    numeric(xa, xb)
                }
            }
            Kind::Suffix => suffix_rank(xa).cmp(&suffix_rank(xb)),
            _ => xa.cmp(xb),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of apk-tools' own test/version.data.
    #[test]
    fn apk_tools_test_data() {
        use Ordering::*;
        for (a, want, b) in [
            ("1.0", Less, "1.0bc"),
            ("0.1.0_alpha2", Greater, "0.1.0_alpha"),
            ("1.1", Greater, "1.1_alpha1"),
            ("1.2.1", Greater, "1.2"),
            ("3.1_p16", Less, "3.1_p17"),
            ("1.06-r6", Less, "006"),
            ("1.2.2-r1", Greater, "1.2.2"),
            ("2.3.0b-r1", Less, "2.3.0b-r2"),
            ("0.12.3", Greater, "0.12"),
            ("2.01.01_alpha10", Greater, "0.94"),
            ("1.00_beta2", Greater, "0.9.2"),
            ("1.02", Less, "1.03-r1"),
            ("1.2.07.8", Less, "1.2.12.04"),
            ("2.5.1-r8", Less, "2.5.1a-r1"),
            ("20060720", Greater, "3.0.20060720"),
            ("3.0.0-r2", Less, "021109-r3"),
            ("087-r1", Less, "103"),
            ("0.10.0", Less, "0.10.1_rc1"),
            ("1.8.5", Less, "1.8.5_p2"),
            ("4.5_p1", Less, "4.5_p1-r1"),
            ("2.9.11_pre20051101-r3", Greater, "2.9.11_pre20051101"),
            ("1.3.5-r10", Greater, "1.3.5-r8"),
            ("7.0.17", Less, "7.0.174"),
            ("2.12r-r4", Less, "2.12r-r5"),
            ("1.6d", Greater, "1.2.07.8"),
            ("0.59s-r11", Less, "0.65"),
            ("1.3_pre1-r1", Less, "1.3.2"),
            ("1.0_p10-r0", Greater, "1.0_p9-r0"),
            ("0.1.0_alpha_pre2", Less, "0.1.0_alpha"),
            ("6.0_pre1", Less, "6.0"),
            ("6.0_p1", Greater, "6.0"),
            ("23_foo", Greater, "4_beta"),
            ("1.0~abc", Greater, "1.0"),
            ("1.0~abc", Less, "1.0.1"),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
