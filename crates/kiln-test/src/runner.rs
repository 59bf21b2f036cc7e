//! Running checks: command checks and file checks in the booted guest (one boot for all of an
//! image's checks), and file checks on the built tree without booting.

use std::time::{Duration, Instant};

use base64::Engine;
use kiln_spec::{Check, CheckKind, FileCheck};
use serde::Serialize;

use crate::facts::{self, FileFacts};
use crate::qga::{Agent, ExecOutput, ExecRequest};

/// A check and the file it came from (for reports).
#[derive(Debug, Clone)]
pub struct SourcedCheck {
    pub file: String,
    pub check: Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The check could not be run (agent error, timeout).
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub description: Option<String>,
    pub file: String,
    /// "guest" or "offline".
    pub place: &'static str,
    pub status: Status,
    /// The command run, or `file PATH`.
    pub what: String,
    /// What was expected, one line per expectation.
    pub expected: Vec<String>,
    /// Why it failed, one line per failed expectation.
    pub failures: Vec<String>,
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

/// Default time a command check may take when its definition does not say.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn expectations(c: &Check) -> (String, Vec<String>) {
    match &c.kind {
        CheckKind::Command {
            command,
            expect_stdout_contains,
            expect_stdout_matches,
            expect_exit,
            ..
        } => {
            let mut e = vec![format!("exit status {expect_exit}")];
            e.extend(
                expect_stdout_contains
                    .iter()
                    .map(|s| format!("stdout contains {s:?}")),
            );
            e.extend(
                expect_stdout_matches
                    .iter()
                    .map(|s| format!("stdout matches /{s}/")),
            );
            (command.clone(), e)
        }
        CheckKind::File(f) => {
            let mut e = Vec::new();
            if !f.exists {
                e.push("absent".to_string());
            } else {
                e.push("exists".to_string());
                if let Some(m) = f.mode_at_most {
                    e.push(format!("mode at most {m}"));
                }
                if let Some(o) = &f.owner {
                    e.push(format!("owner {o}"));
                }
                if let Some(g) = &f.group {
                    e.push(format!("group {g}"));
                }
                e.extend(f.contains.iter().map(|s| format!("contains {s:?}")));
                e.extend(
                    f.not_contains
                        .iter()
                        .map(|s| format!("does not contain {s:?}")),
                );
            }
            (format!("file {}", f.path.as_path().display()), e)
        }
    }
}

fn result(sc: &SourcedCheck, place: &'static str, started: Instant) -> CheckResult {
    let (what, expected) = expectations(&sc.check);
    CheckResult {
        id: sc.check.id.clone(),
        description: sc.check.description.clone(),
        file: sc.file.clone(),
        place,
        status: Status::Pass,
        what,
        expected,
        failures: Vec::new(),
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn finish(mut r: CheckResult, started: Instant) -> CheckResult {
    if r.status == Status::Pass && !r.failures.is_empty() {
        r.status = Status::Fail;
    }
    r.seconds = started.elapsed().as_secs_f64();
    r
}

/// How many checks run in the guest at once: enough to hide the agent's round trips, few enough
/// that a 2-vCPU guest does not push slow checks past their timeouts. Under TCG the guest's CPU
/// is the bound (the example's 86 checks: 11.7 s one at a time, 11.0 s four at a time); with KVM
/// the round trips dominate and overlapping them pays more.
pub const GUEST_CONCURRENCY: usize = 4;

/// Runs every check in the guest, several at once ([`GUEST_CONCURRENCY`]); results keep the
/// checks' order. Waits first for the guest to finish booting (`systemctl is-system-running
/// --wait`), so checks see the system as it runs, not half-started. Checks must therefore not
/// depend on one another, which the check format never promised anyway.
pub fn run_in_guest(agent: &mut Agent, checks: &[SourcedCheck]) -> Vec<CheckResult> {
    let waited = Instant::now();
    let state = agent.exec(
        "/bin/systemctl",
        &["is-system-running", "--wait"],
        Duration::from_secs(300),
    );
    tracing::info!(
        secs = waited.elapsed().as_secs_f64(),
        state = %state.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default(),
        "guest finished booting"
    );
    let requests: Vec<ExecRequest> = checks.iter().map(|sc| request(&sc.check)).collect();
    let outputs = agent.exec_many(&requests, GUEST_CONCURRENCY);
    checks
        .iter()
        .zip(outputs)
        .map(|(sc, (out, secs))| judge_guest(sc, out, secs))
        .collect()
}

/// The script a file check runs in the guest: `stat -L`, and `base64` of the file when its
/// contents matter.
const FILE_FACTS_SCRIPT: &str = r#"if [ -e "$1" ]; then stat -L -c '%a|%U|%G' -- "$1"; if [ "$2" = yes ] && [ -f "$1" ]; then base64 -w0 -- "$1"; fi; else echo ABSENT; fi"#;

fn request(c: &Check) -> ExecRequest {
    match &c.kind {
        CheckKind::Command {
            command,
            timeout_secs,
            ..
        } => ExecRequest {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), command.clone()],
            timeout: timeout_secs.map_or(DEFAULT_COMMAND_TIMEOUT, |s| {
                Duration::from_secs(u64::from(s))
            }),
        },
        CheckKind::File(f) => ExecRequest {
            path: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                FILE_FACTS_SCRIPT.into(),
                "kiln-file-check".into(),
                f.path.as_path().to_string_lossy().into_owned(),
                if facts::needs_content(f) { "yes" } else { "no" }.into(),
            ],
            timeout: Duration::from_secs(60),
        },
    }
}

fn judge_guest(
    sc: &SourcedCheck,
    out: Result<ExecOutput, crate::TestError>,
    secs: f64,
) -> CheckResult {
    let mut r = result(sc, "guest", Instant::now());
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            r.status = Status::Error;
            r.failures.push(e.to_string());
            r.seconds = secs;
            return r;
        }
    };
    match &sc.check.kind {
        CheckKind::Command {
            expect_stdout_contains,
            expect_stdout_matches,
            expect_exit,
            ..
        } => {
            r.exit_code = Some(out.exit_code);
            r.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            r.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.exit_code != i64::from(*expect_exit) {
                r.failures.push(format!(
                    "exit status {}, expected {expect_exit}",
                    out.exit_code
                ));
            }
            for s in expect_stdout_contains {
                if !r.stdout.contains(s.as_str()) {
                    r.failures.push(format!("stdout does not contain {s:?}"));
                }
            }
            // Regexes see stdout without its final newline, so `^2$` matches `2\n` as a
            // reader of the check expects (grep-like), while `\n` still spans lines.
            let subject = r.stdout.strip_suffix('\n').unwrap_or(&r.stdout).to_string();
            for s in expect_stdout_matches {
                match regex::Regex::new(s) {
                    Ok(re) if re.is_match(&subject) => {}
                    Ok(_) => r.failures.push(format!("stdout does not match /{s}/")),
                    Err(e) => r.failures.push(format!("invalid regex /{s}/: {e}")),
                }
            }
        }
        CheckKind::File(f) => match file_facts(f, &out) {
            Ok(facts) => r.failures = facts::judge(f, &facts),
            Err(e) => {
                r.status = Status::Error;
                r.failures.push(e.to_string());
            }
        },
    }
    if r.status == Status::Pass && !r.failures.is_empty() {
        r.status = Status::Fail;
    }
    r.seconds = secs;
    r
}

/// Reads what [`FILE_FACTS_SCRIPT`] printed.
fn file_facts(f: &FileCheck, out: &ExecOutput) -> Result<FileFacts, crate::TestError> {
    let path = f.path.as_path().display();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    if first == "ABSENT" {
        return Ok(FileFacts::absent());
    }
    let parts: Vec<&str> = first.split('|').collect();
    if parts.len() != 3 {
        return Err(crate::TestError::Agent(format!(
            "unexpected stat output for {path}: {first:?} {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let content = lines
        .next()
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_default()
        })
        .or_else(|| facts::needs_content(f).then(Vec::new));
    Ok(FileFacts {
        exists: true,
        mode: u32::from_str_radix(parts[0], 8).unwrap_or(0),
        owner: parts[1].to_string(),
        group: parts[2].to_string(),
        content,
    })
}

/// File checks on a built tree, without booting. Command checks need a running system and are
/// left to the guest run.
pub fn run_offline(tree: &std::path::Path, checks: &[SourcedCheck]) -> Vec<CheckResult> {
    checks
        .iter()
        .filter_map(|sc| {
            let CheckKind::File(f) = &sc.check.kind else {
                return None;
            };
            let started = Instant::now();
            let mut r = result(sc, "offline", started);
            r.failures = facts::judge(f, &facts::offline_facts(tree, f));
            Some(finish(r, started))
        })
        .collect()
}
