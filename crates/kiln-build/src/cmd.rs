//! Every external command goes through [`Task`]: it logs the command line, captures output
//! (shown only on failure, the tail of it), honours Ctrl-C, and fails with the exit status.
//! stdin is null: no tool may stop a build to ask a question.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::BuildError;

/// Set by the binary's Ctrl-C handler; running tasks then stop their child and return
/// [`BuildError::Interrupted`], so guards unwind and clean up.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Lines of output kept for the error message of a failed command.
const TAIL_LINES: usize = 40;

#[derive(Debug)]
pub struct Task {
    what: String,
    cmd: Command,
    display: String,
}

/// What a successful command printed.
#[derive(Debug)]
pub struct TaskOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Task {
    /// `what` says what the step is for, in the user's terms ("bootstrap Debian bookworm").
    pub fn new(what: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive");
        Task {
            what: what.into(),
            cmd,
            display: shell_quote(program),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.display.push(' ');
        self.display.push_str(&shell_quote(a.as_ref()));
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn command_line(&self) -> &str {
        &self.display
    }

    /// Runs to completion; non-zero exit is an error carrying the output's tail.
    pub fn run(mut self) -> Result<TaskOutput, BuildError> {
        tracing::debug!(cmd = %self.display, "run");
        let start = Instant::now();
        let mut child = self.cmd.spawn().map_err(|e| BuildError::Spawn {
            what: self.what.clone(),
            cmd: self.display.clone(),
            source: e,
        })?;
        // Drain both pipes on threads so a chatty command cannot block on a full pipe.
        let out_h = drain(child.stdout.take());
        let err_h = drain(child.stderr.take());
        let status = wait(&mut child, &self.what)?;
        let stdout = out_h.join().unwrap_or_default();
        let stderr = err_h.join().unwrap_or_default();
        let elapsed = start.elapsed();
        tracing::debug!(cmd = %self.display, ?status, secs = elapsed.as_secs_f64(), "done");
        if status.success() {
            Ok(TaskOutput {
                stdout,
                stderr,
                elapsed,
            })
        } else {
            Err(BuildError::Command {
                what: self.what,
                cmd: self.display,
                status: status.code().map_or_else(
                    || "killed by a signal".to_string(),
                    |c| format!("exit status {c}"),
                ),
                output: tail(&stdout, &stderr),
            })
        }
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

fn wait(child: &mut Child, what: &str) -> Result<std::process::ExitStatus, BuildError> {
    loop {
        if let Some(st) = child.try_wait().map_err(|e| BuildError::Io {
            what: format!("waiting for {what}"),
            source: e,
        })? {
            return Ok(st);
        }
        if interrupted() {
            // The terminal's SIGINT already reached the child's process group; make sure.
            let _ = child.kill();
            let _ = child.wait();
            return Err(BuildError::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of stdout and stderr, merged in that order.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for stream in [stdout, stderr] {
        lines.extend(
            String::from_utf8_lossy(stream)
                .lines()
                .map(str::to_string)
                .filter(|l| !l.trim().is_empty()),
        );
    }
    let skip = lines.len().saturating_sub(TAIL_LINES);
    lines[skip..].join("\n")
}

pub(crate) fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Convenience for building argument lists from mixed strings and paths.
pub fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_status_and_output() {
        let err = Task::new("a failing step", "sh")
            .args(["-c", "echo one; echo two >&2; exit 3"])
            .run()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a failing step"), "{msg}");
        assert!(msg.contains("exit status 3"), "{msg}");
        let BuildError::Command { output, cmd, .. } = err else {
            panic!()
        };
        assert_eq!(output, "one\ntwo");
        assert_eq!(cmd, "sh -c 'echo one; echo two >&2; exit 3'");
    }

    #[test]
    fn stdin_is_null() {
        let out = Task::new("cat", "cat").run().unwrap();
        assert!(out.stdout.is_empty());
    }
}
