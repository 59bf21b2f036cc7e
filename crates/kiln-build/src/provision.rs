//! Provisioners, run in order inside the image tree (see [`crate::chroot`]).
//!
//! Shell provisioners run under bash with `-e` and an ERR trap that reports the failing line, so
//! a failure names the provisioner, the line number and its text, with the output's tail. File
//! provisioners copy from the image directory through the staging mount and apply owner and mode
//! inside the tree, so symlinks in the tree resolve inside it, never on the host.

use std::ffi::OsString;
use std::path::Path;

use kiln_spec::{Provisioner, ShellBody};

use crate::chroot::{Session, write_mode};
use crate::cmd::Task;
use crate::error::{BuildError, Result};

const FAIL_MARK: &str = "KILN-FAILED-LINE";

/// Runs the shell file at /run/kiln/$1 with env from /run/kiln/$2 (bash, -e, ERR trap).
const SHELL_RUNNER: &str = r#"set -eE
. "/run/kiln/$2"
trap 'rc=$?; echo "KILN-FAILED-LINE ${LINENO} ${rc}" >&2; exit $rc' ERR
. "/run/kiln/$1"
"#;

/// Copies /run/kiln/$1 to $2 and applies owner ($3), group ($4) and mode ($5, may be empty).
const FILE_COPY: &str = r#"set -eu
src="/run/kiln/$1"; dest=$2; owner=$3; group=$4; mode=$5
mkdir -p "$(dirname "$dest")"
if [ -d "$src" ]; then
  mkdir -p "$dest"
  cp -a "$src/." "$dest/"
  (cd "$src" && find . -print) | while IFS= read -r f; do
    chown -h "$owner:$group" "$dest/$f"
    if [ -n "$mode" ] && [ -f "$src/$f" ] && [ ! -L "$src/$f" ]; then chmod "$mode" "$dest/$f"; fi
  done
else
  cp "$src" "$dest"
  chown "$owner:$group" "$dest"
  if [ -n "$mode" ]; then chmod "$mode" "$dest"; fi
fi
"#;

/// A short description for progress and errors: `shell harden.sh`, `file files/x → /etc/x`.
pub fn describe(p: &Provisioner) -> String {
    match p {
        Provisioner::Shell {
            body: ShellBody::Script(s),
            ..
        } => {
            format!("shell {}", s.as_path().display())
        }
        Provisioner::Shell {
            body: ShellBody::Inline(lines),
            ..
        } => {
            format!(
                "shell inline, {} line{}",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" }
            )
        }
        Provisioner::File {
            source,
            destination,
            ..
        } => format!(
            "file {} → {}",
            source.as_path().display(),
            destination.as_path().display()
        ),
    }
}

/// Runs provisioner `index` (1-based, for messages) of an image whose directory is `image_dir`.
pub fn run(session: &Session, image_dir: &Path, index: usize, p: &Provisioner) -> Result<()> {
    let what = format!("provisioner {index} ({})", describe(p));
    match p {
        Provisioner::Shell {
            body,
            environment_vars,
        } => {
            let script_name = format!("provision-{index}.sh");
            let script_path = session.stage_dir().join(&script_name);
            let text = match body {
                ShellBody::Inline(lines) => lines.join("\n") + "\n",
                ShellBody::Script(s) => {
                    let src = image_dir.join(s.as_path());
                    std::fs::read_to_string(&src)
                        .map_err(BuildError::io(format!("reading {}", src.display())))?
                }
            };
            write_mode(&script_path, text.as_bytes(), 0o755)?;
            let env_name = format!("env-{index}.sh");
            let mut env = String::new();
            for (k, v) in environment_vars {
                env.push_str(&format!("export {k}='{}'\n", v.replace('\'', r"'\''")));
            }
            write_mode(&session.stage_dir().join(&env_name), env.as_bytes(), 0o644)?;

            let interpreter = shebang(&text);
            let argv: Vec<OsString> = match interpreter.as_deref() {
                // Shell scripts (and inline lines) run under our runner for line reporting.
                None | Some("sh") | Some("bash") | Some("dash") => vec![
                    "/bin/bash".into(),
                    "-c".into(),
                    SHELL_RUNNER.into(),
                    "kiln-provision".into(),
                    script_name.clone().into(),
                    env_name.into(),
                ],
                // Anything else runs as itself; the exit status is all we can report.
                Some(_) => vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    format!(". /run/kiln/{env_name}; exec /run/kiln/{script_name}").into(),
                ],
            };
            let task: Task = session.task(what.clone(), &argv);
            match task.run() {
                Ok(out) => {
                    tracing::debug!(output = %String::from_utf8_lossy(&out.stdout), "{what}");
                    Ok(())
                }
                Err(BuildError::Command { status, output, .. }) => {
                    let line = output
                        .lines()
                        .find_map(|l| l.strip_prefix(FAIL_MARK))
                        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
                        .map(|n| {
                            (
                                n,
                                text.lines()
                                    .nth(n.saturating_sub(1))
                                    .unwrap_or("")
                                    .trim()
                                    .to_string(),
                            )
                        });
                    let output: Vec<&str> = output
                        .lines()
                        .filter(|l| !l.starts_with(FAIL_MARK))
                        .collect();
                    Err(BuildError::Provisioner {
                        index,
                        description: describe(p),
                        line,
                        detail: status,
                        output: output.join("\n"),
                    })
                }
                Err(e) => Err(e),
            }
        }
        Provisioner::File {
            source,
            destination,
            mode,
            owner,
            group,
        } => {
            let src = image_dir.join(source.as_path());
            let staged = format!("file-{index}");
            let dest_in_stage = session.stage_dir().join(&staged);
            Task::new(format!("{what}: staging"), "cp")
                .args(["-a", "--no-preserve=ownership"])
                .arg(&src)
                .arg(&dest_in_stage)
                .run()?;
            let argv: Vec<OsString> = vec![
                "/bin/sh".into(),
                "-c".into(),
                FILE_COPY.into(),
                "kiln-file".into(),
                staged.into(),
                destination.as_path().as_os_str().to_os_string(),
                owner.clone().unwrap_or_else(|| "root".into()).into(),
                group.clone().unwrap_or_else(|| "root".into()).into(),
                mode.map(|m| format!("{:o}", m.bits()))
                    .unwrap_or_default()
                    .into(),
            ];
            session
                .task(what.clone(), &argv)
                .run()
                .map_err(|e| match e {
                    BuildError::Command { status, output, .. } => BuildError::Provisioner {
                        index,
                        description: describe(p),
                        line: None,
                        detail: status,
                        output,
                    },
                    other => other,
                })?;
            Ok(())
        }
    }
}

/// The interpreter's file name from a `#!` line, if any.
fn shebang(text: &str) -> Option<String> {
    let first = text.lines().next()?.strip_prefix("#!")?.trim();
    let mut words = first.split_whitespace();
    let prog = words.next()?;
    let name = Path::new(prog).file_name()?.to_string_lossy().into_owned();
    // `#!/usr/bin/env bash`
    if name == "env" {
        return words.next().map(str::to_string);
    }
    Some(name)
}

/// Installs packages into a tree from its own apt sources (children adding to a parent).
pub fn install_packages(session: &Session, packages: &[String]) -> Result<()> {
    let mut argv: Vec<&str> = vec![
        "/bin/sh",
        "-c",
        "set -e; apt-get -q update; apt-get -q -y --no-install-recommends install \"$@\"",
        "kiln-apt",
    ];
    argv.extend(packages.iter().map(String::as_str));
    session.run(format!("installing {}", packages.join(" ")), &argv)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(shebang("#!/bin/sh\nset -e"), Some("sh".into()));
        assert_eq!(shebang("#!/usr/bin/env python3\n"), Some("python3".into()));
        assert_eq!(shebang("echo hi\n"), None);
    }
}
