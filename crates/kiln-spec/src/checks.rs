//! Check files (YAML): what a booted or built image must satisfy.
//!
//! The format stays compatible with the check files platform teams already keep (`id`,
//! `description`, `command`, `expect_stdout_contains`) and adds regex and exit-code expectations
//! and offline `file` assertions. Running checks is the test rig's job; this module only turns a
//! file into validated [`Check`]s.

use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Loc};
use crate::hcl::Cx;
use crate::source::SourceFile;
use crate::values::{GuestPath, Mode};
use crate::yaml::{self, MapReader};

/// Longest a single command check may ask to run; a longer one is almost certainly a typo.
const MAX_TIMEOUT_SECS: i64 = 3600;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    pub id: String,
    pub description: Option<String>,
    #[serde(flatten)]
    pub kind: CheckKind,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CheckKind {
    /// Runs in the booted image through the guest agent. Passes when the exit status equals
    /// `expect_exit` and every expectation holds.
    Command {
        command: String,
        expect_stdout_contains: Vec<String>,
        /// Regular expressions (validated here, compiled by the runner).
        expect_stdout_matches: Vec<String>,
        expect_exit: i32,
        timeout_secs: Option<u32>,
    },
    /// Runs on the built tree without booting, and again in the booted image.
    File(FileCheck),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileCheck {
    pub path: GuestPath,
    /// `false` asserts the path is absent; every other assertion then is meaningless.
    pub exists: bool,
    /// The file's permission bits must be a subset of these.
    pub mode_at_most: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub contains: Vec<String>,
    pub not_contains: Vec<String>,
}

/// Parses and validates a check file. `path` is only used in diagnostics.
pub fn parse_checks(path: &Path, text: &str) -> Result<Vec<Check>, Vec<Diagnostic>> {
    let mut cx = Cx::new(Arc::new(SourceFile::new(path, text.to_string())));
    let checks = read(&mut cx);
    if cx.diags.is_empty() {
        Ok(checks)
    } else {
        Err(cx.diags)
    }
}

pub(crate) fn read(cx: &mut Cx) -> Vec<Check> {
    let Some(top) = yaml::parse_mapping(cx) else {
        return Vec::new();
    };
    let mut r = MapReader::new("a check file", &top);
    let list = r.get("checks");
    r.finish(cx);
    let Some(list) = list else {
        let loc = cx.src.start();
        cx.error_at(loc, "a check file needs a top-level `checks:` list");
        return Vec::new();
    };
    let Some(seq) = list.as_sequence() else {
        let loc = yaml::node_loc(cx, list);
        cx.error_at(
            loc,
            format!("`checks` must be a list, found {}", yaml::kind(list)),
        );
        return Vec::new();
    };
    let mut out: Vec<Check> = Vec::new();
    for item in seq.iter() {
        if let Some(c) = read_check(cx, item) {
            if let Some(prev) = out.iter().find(|p| p.id == c.id) {
                let line = prev.loc.line;
                cx.error_at(
                    c.loc.clone(),
                    format!("duplicate check id `{}` (first on line {line})", c.id),
                );
            } else {
                out.push(c);
            }
        }
    }
    out
}

fn read_check(cx: &mut Cx, item: &marked_yaml::Node) -> Option<Check> {
    let Some(map) = item.as_mapping() else {
        let loc = yaml::node_loc(cx, item);
        cx.error_at(
            loc,
            format!("each check must be a mapping, found {}", yaml::kind(item)),
        );
        return None;
    };
    let item_loc = yaml::node_loc(cx, item);
    let mut r = MapReader::new("a check", map);
    let id = r.string(cx, "id");
    let description = r.string(cx, "description").map(|s| s.value);
    let command = r.string(cx, "command");
    let file = r.string(cx, "file");
    let contains_out = r.strings(cx, "expect_stdout_contains");
    let matches = r.strings(cx, "expect_stdout_matches");
    let exit = r.integer(cx, "expect_exit");
    let timeout = r.integer(cx, "timeout");
    let exists = r.boolean(cx, "exists");
    let absent = r.boolean(cx, "absent");
    let mode = r.string(cx, "mode");
    let owner = r.string(cx, "owner");
    let group = r.string(cx, "group");
    let contains = r.strings(cx, "contains");
    let not_contains = r.strings(cx, "not_contains");
    r.finish(cx);

    let Some(id) = id else {
        cx.error_at(item_loc, "a check needs an `id`");
        return None;
    };
    let id_ok = !id.value.is_empty()
        && id.value.len() <= 128
        && id
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !id_ok {
        cx.error_at(
            id.loc.clone(),
            format!(
                "invalid check id `{}`: use letters, digits, `.`, `_`, `-` (it names the check in JUnit reports)",
                id.value
            ),
        );
        return None;
    }

    let kind = match (command, file) {
        (Some(_), Some(f)) => {
            cx.error_at(f.loc, "a check has either `command` or `file`, not both");
            return None;
        }
        (None, None) => {
            cx.error_at(
                id.loc.clone(),
                format!("check `{}` needs a `command` or a `file`", id.value),
            );
            return None;
        }
        (Some(command), None) => {
            let file_only = [
                ("exists", exists.as_ref().map(|s| &s.loc)),
                ("absent", absent.as_ref().map(|s| &s.loc)),
                ("mode", mode.as_ref().map(|s| &s.loc)),
                ("owner", owner.as_ref().map(|s| &s.loc)),
                ("group", group.as_ref().map(|s| &s.loc)),
                ("contains", contains.first().map(|s| &s.loc)),
                ("not_contains", not_contains.first().map(|s| &s.loc)),
            ];
            let mut ok = true;
            for (key, loc) in file_only {
                if let Some(loc) = loc {
                    cx.error_at(
                        loc.clone(),
                        format!("`{key}` applies to `file` checks, not `command` checks"),
                    );
                    ok = false;
                }
            }
            if command.value.trim().is_empty() {
                cx.error_at(command.loc.clone(), "`command` is empty");
                ok = false;
            }
            for m in &matches {
                if let Err(e) = regex::Regex::new(&m.value) {
                    let last = e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    let first = last.strip_prefix("error: ").unwrap_or(&last).to_string();
                    cx.error_at(
                        m.loc.clone(),
                        format!("invalid regular expression: {first}"),
                    );
                    ok = false;
                }
            }
            let expect_exit = match exit {
                Some(e) => match i32::try_from(e.value) {
                    Ok(v) if (0..=255).contains(&v) => v,
                    _ => {
                        cx.error_at(e.loc, "`expect_exit` must be between 0 and 255");
                        return None;
                    }
                },
                None => 0,
            };
            let timeout_secs = match timeout {
                Some(t) if (1..=MAX_TIMEOUT_SECS).contains(&t.value) => Some(t.value as u32),
                Some(t) => {
                    cx.error_at(
                        t.loc,
                        format!("`timeout` must be between 1 and {MAX_TIMEOUT_SECS} seconds"),
                    );
                    return None;
                }
                None => None,
            };
            if !ok {
                return None;
            }
            CheckKind::Command {
                command: command.value,
                expect_stdout_contains: contains_out.into_iter().map(|s| s.value).collect(),
                expect_stdout_matches: matches.into_iter().map(|s| s.value).collect(),
                expect_exit,
                timeout_secs,
            }
        }
        (None, Some(file)) => {
            let command_only = [
                (
                    "expect_stdout_contains",
                    contains_out.first().map(|s| &s.loc),
                ),
                ("expect_stdout_matches", matches.first().map(|s| &s.loc)),
                ("expect_exit", exit.as_ref().map(|s| &s.loc)),
                ("timeout", timeout.as_ref().map(|s| &s.loc)),
            ];
            let mut ok = true;
            for (key, loc) in command_only {
                if let Some(loc) = loc {
                    cx.error_at(
                        loc.clone(),
                        format!("`{key}` applies to `command` checks, not `file` checks"),
                    );
                    ok = false;
                }
            }
            let path = match GuestPath::new(&file.value) {
                Ok(p) => Some(p),
                Err(_) => {
                    cx.error_at(
                        file.loc.clone(),
                        format!(
                            "`file` must be an absolute path in the image, found `{}`",
                            file.value
                        ),
                    );
                    None
                }
            };
            let exists_value = match (&exists, &absent) {
                (Some(e), Some(a)) if e.value == a.value => {
                    cx.error_at(a.loc.clone(), "`exists` and `absent` contradict each other");
                    None
                }
                (Some(e), _) => Some(e.value),
                (None, Some(a)) => Some(!a.value),
                (None, None) => Some(true),
            };
            let mode_at_most = match &mode {
                Some(m) => match m.value.parse::<Mode>() {
                    Ok(v) => Some(Some(v)),
                    Err(e) => {
                        cx.error_at(m.loc.clone(), e.to_string());
                        None
                    }
                },
                None => Some(None),
            };
            if exists_value == Some(false) {
                let extra = [
                    mode.as_ref().map(|s| &s.loc),
                    owner.as_ref().map(|s| &s.loc),
                    group.as_ref().map(|s| &s.loc),
                    contains.first().map(|s| &s.loc),
                    not_contains.first().map(|s| &s.loc),
                ];
                if let Some(loc) = extra.into_iter().flatten().next() {
                    cx.error_at(
                        loc.clone(),
                        "a check that asserts a file is absent cannot also assert its contents or attributes",
                    );
                    ok = false;
                }
            }
            if !ok {
                return None;
            }
            CheckKind::File(FileCheck {
                path: path?,
                exists: exists_value?,
                mode_at_most: mode_at_most?,
                owner: owner.map(|s| s.value),
                group: group.map(|s| s.value),
                contains: contains.into_iter().map(|s| s.value).collect(),
                not_contains: not_contains.into_iter().map(|s| s.value).collect(),
            })
        }
    };
    Some(Check {
        id: id.value,
        description,
        kind,
        loc: id.loc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK: &str =
        include_str!("../../../examples/factory/images/base-debian12/checks/cis-level1.yaml");

    #[test]
    fn the_example_pack_parses() {
        let checks = parse_checks(Path::new("cis.yaml"), PACK).expect("example pack is valid");
        assert!(
            checks.len() >= 40,
            "the CIS pack has {} checks",
            checks.len()
        );
        assert!(checks.iter().any(|c| matches!(c.kind, CheckKind::File(_))));
    }

    #[test]
    fn the_design_example_reads_as_written() {
        let text = r#"
checks:
  - id: 1.5.1-aslr-enabled
    description: kernel.randomize_va_space is 2
    command: "sysctl -n kernel.randomize_va_space"
    expect_stdout_contains: "2"
  - id: 6.1.1-shadow-perms
    description: /etc/shadow is not world readable
    file: /etc/shadow
    mode: "0640"
    owner: root
"#;
        let checks = parse_checks(Path::new("c.yaml"), text).unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(
            checks[0].kind,
            CheckKind::Command {
                command: "sysctl -n kernel.randomize_va_space".into(),
                expect_stdout_contains: vec!["2".into()],
                expect_stdout_matches: vec![],
                expect_exit: 0,
                timeout_secs: None,
            }
        );
        let CheckKind::File(f) = &checks[1].kind else {
            panic!("file check expected")
        };
        assert_eq!(f.mode_at_most.map(Mode::bits), Some(0o640));
        assert_eq!(f.owner.as_deref(), Some("root"));
        assert!(f.exists);
        assert_eq!((checks[1].loc.line, checks[1].loc.col), (7, 9));
    }
}
