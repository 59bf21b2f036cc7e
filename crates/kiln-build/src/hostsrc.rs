//! The Debian mirror to bootstrap from, read from the build host's apt configuration
//! (`/etc/apt/sources.list.d/*.sources` in deb822 form, and one-line `.list` files). Kiln never
//! carries a mirror host name of its own: a definition either names a mirror or uses the host's.

use std::path::Path;

use crate::error::{BuildError, Result};

/// One `deb` source: a base URI and a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
}

/// Reads every `deb` entry under `etc_apt` (normally `/etc/apt`).
pub fn read_host_sources(etc_apt: &Path) -> Result<Vec<AptSource>> {
    let mut out = Vec::new();
    let dir = etc_apt.join("sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let name = f.to_string_lossy();
        if name.ends_with(".sources") {
            let text =
                std::fs::read_to_string(&f).map_err(BuildError::io(format!("reading {name}")))?;
            out.extend(parse_deb822(&text));
        } else if name.ends_with(".list") {
            let text =
                std::fs::read_to_string(&f).map_err(BuildError::io(format!("reading {name}")))?;
            out.extend(parse_one_line(&text));
        }
    }
    if let Ok(text) = std::fs::read_to_string(etc_apt.join("sources.list")) {
        out.extend(parse_one_line(&text));
    }
    Ok(out)
}

pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut comps = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            let line = line.trim_end();
            if line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let vals: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            match k.trim().to_ascii_lowercase().as_str() {
                "types" => types = vals,
                "uris" => uris = vals,
                "suites" => suites = vals,
                "components" => comps = vals,
                "enabled" => enabled = v.trim() != "no",
                _ => {}
            }
        }
        if !enabled || !types.iter().any(|t| t == "deb") {
            continue;
        }
        for u in &uris {
            for s in &suites {
                out.push(AptSource {
                    uri: u.trim_end_matches('/').to_string(),
                    suite: s.clone(),
                    components: comps.clone(),
                });
            }
        }
    }
    out
}

pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for w in words.by_ref() {
                if w.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(AptSource {
            uri: uri.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: words.map(str::to_string).collect(),
        });
    }
    out
}

/// Where a source's suites come from: explicit mirrors from its definition, else the host's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mirrors<'a> {
    /// Serves `SUITE` and `SUITE-updates`.
    pub main: Option<&'a str>,
    /// Serves `SUITE-security`.
    pub security: Option<&'a str>,
}

/// The archive URIs for `suite` and its companions (`-updates`, `-security`) from the host's
/// sources, or from explicit mirrors. Security comes from `security` or wherever the host gets it.
pub fn suite_sources(
    host: &[AptSource],
    suite: &str,
    components: &[String],
    mirrors: Mirrors<'_>,
) -> Result<Vec<AptSource>> {
    let wanted = [
        suite.to_string(),
        format!("{suite}-updates"),
        format!("{suite}-security"),
    ];
    let mut out = Vec::new();
    for s in &wanted {
        let found = host.iter().find(|h| &h.suite == s);
        let explicit = if s.ends_with("-security") {
            mirrors.security
        } else {
            mirrors.main
        };
        let uri = match (explicit, found) {
            (Some(m), _) => Some(m.trim_end_matches('/').to_string()),
            (_, Some(h)) => Some(h.uri.clone()),
            (_, None) => None,
        };
        if let Some(uri) = uri {
            out.push(AptSource {
                uri,
                suite: s.clone(),
                components: components.to_vec(),
            });
        }
    }
    if !out.iter().any(|s| s.suite == suite) {
        return Err(BuildError::HostSources(format!(
            "no apt source for suite `{suite}` in /etc/apt/sources.list.d/ and no `mirror` in the source block"
        )));
    }
    Ok(out)
}

impl AptSource {
    /// The one-line form mmdebstrap and sources.list take.
    pub fn line(&self) -> String {
        format!(
            "deb {} {} {}",
            self.uri,
            self.suite,
            self.components.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb-src\nURIs: http://src.invalid/\nSuites: bookworm\n";

    #[test]
    fn deb822_stanzas_expand_per_suite() {
        let s = parse_deb822(DEB822);
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].suite, "bookworm-updates");
        assert_eq!(s[2].uri, "http://mirror.invalid/debian-security");
        let picked = suite_sources(&s, "bookworm", &["main".into()], Mirrors::default()).unwrap();
        let lines: Vec<String> = picked.iter().map(AptSource::line).collect();
        assert_eq!(
            lines,
            [
                "deb http://mirror.invalid/debian bookworm main",
                "deb http://mirror.invalid/debian bookworm-updates main",
                "deb http://mirror.invalid/debian-security bookworm-security main",
            ]
        );
    }

    #[test]
    fn one_line_sources_and_options() {
        let s = parse_one_line(
            "deb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian trixie main contrib\n# deb http://x y\n",
        );
        assert_eq!(
            s,
            [AptSource {
                uri: "http://m.invalid/debian".into(),
                suite: "trixie".into(),
                components: vec!["main".into(), "contrib".into()]
            }]
        );
    }

    #[test]
    fn a_missing_suite_is_a_clear_error() {
        let s = parse_deb822(DEB822);
        let err = suite_sources(&s, "trixie", &["main".into()], Mirrors::default()).unwrap_err();
        assert!(err.to_string().contains("no apt source for suite `trixie`"));
        let with_mirror = suite_sources(
            &s,
            "trixie",
            &["main".into()],
            Mirrors {
                main: Some("http://m.invalid/debian/"),
                security: None,
            },
        )
        .unwrap();
        assert_eq!(with_mirror[0].uri, "http://m.invalid/debian");
        // No host source for trixie-security and no security mirror: only the main suites.
        assert_eq!(with_mirror.len(), 2);
        let both = suite_sources(
            &s,
            "trixie",
            &["main".into()],
            Mirrors {
                main: Some("file:///srv/debian"),
                security: Some("file:///srv/debian-security"),
            },
        )
        .unwrap();
        assert_eq!(
            both[2].line(),
            "deb file:///srv/debian-security trixie-security main"
        );
    }
}
