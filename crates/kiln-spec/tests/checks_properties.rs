//! Property test of the check-file parser: any check file written in the documented format reads
//! back as exactly the checks that were written (the fuzz target covers arbitrary, malformed text).

use std::path::Path;

use kiln_spec::{CheckKind, parse_checks};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Spec {
    Command {
        command: String,
        contains: Vec<String>,
        exit: u8,
    },
    File {
        path: String,
        mode: Option<u32>,
        owner: Option<String>,
        absent: bool,
    },
}

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, colons and YAML-ish punctuation included on purpose.
    "[a-zA-Z0-9 _./:'\"\\\\#|&;{}\\[\\]-]{1,30}"
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        // A command is never blank (the parser rightly refuses that).
        (
            "[a-z]{1,5}",
            text(),
            proptest::collection::vec(text(), 0..3),
            any::<u8>()
        )
            .prop_map(|(verb, rest, contains, exit)| Spec::Command {
                command: format!("{verb} {rest}"),
                contains,
                exit
            }),
        (
            "/[a-z]{1,8}(/[a-z0-9_][a-z0-9_.-]{0,7}){0,3}",
            proptest::option::of(0u32..=0o7777),
            proptest::option::of("[a-z_][a-z0-9_-]{0,7}"),
            any::<bool>()
        )
            .prop_map(|(path, mode, owner, absent)| Spec::File {
                path,
                mode: if absent { None } else { mode },
                owner: if absent { None } else { owner },
                absent
            }),
    ]
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn written_checks_read_back_exactly(specs in proptest::collection::vec(spec(), 1..12)) {
        let mut yaml = String::from("checks:\n");
        for (i, s) in specs.iter().enumerate() {
            yaml.push_str(&format!("  - id: check-{i}\n"));
            match s {
                Spec::Command { command, contains, exit } => {
                    yaml.push_str(&format!("    command: {}\n", q(command)));
                    if !contains.is_empty() {
                        let items: Vec<String> = contains.iter().map(|c| q(c)).collect();
                        yaml.push_str(&format!("    expect_stdout_contains: [{}]\n", items.join(", ")));
                    }
                    yaml.push_str(&format!("    expect_exit: {exit}\n"));
                }
                Spec::File { path, mode, owner, absent } => {
                    yaml.push_str(&format!("    file: {}\n", q(path)));
                    if *absent {
                        yaml.push_str("    absent: true\n");
                    }
                    if let Some(m) = mode {
                        yaml.push_str(&format!("    mode: \"{m:04o}\"\n"));
                    }
                    if let Some(o) = owner {
                        yaml.push_str(&format!("    owner: {}\n", q(o)));
                    }
                }
            }
        }
        let checks = parse_checks(Path::new("p.yaml"), &yaml)
            .map_err(|d| TestCaseError::fail(format!("{d:?}\n{yaml}")))?;
        prop_assert_eq!(checks.len(), specs.len());
        for (i, (c, s)) in checks.iter().zip(&specs).enumerate() {
            prop_assert_eq!(&c.id, &format!("check-{i}"));
            match (s, &c.kind) {
                (Spec::Command { command, contains, exit },
                 CheckKind::Command { command: pc, expect_stdout_contains, expect_exit, .. }) => {
                    prop_assert_eq!(pc, command);
                    prop_assert_eq!(expect_stdout_contains, contains);
                    prop_assert_eq!(*expect_exit, i32::from(*exit));
                }
                (Spec::File { path, mode, owner, absent }, CheckKind::File(f)) => {
                    prop_assert_eq!(f.path.as_path(), Path::new(path));
                    prop_assert_eq!(f.mode_at_most.map(|m| m.bits()), *mode);
                    prop_assert_eq!(&f.owner, owner);
                    prop_assert_eq!(f.exists, !absent);
                }
                (s, k) => prop_assert!(false, "{s:?} read as {k:?}"),
            }
        }
    }
}
