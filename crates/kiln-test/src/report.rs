//! Test reports: a table for people, JSON for tools, JUnit XML for CI systems.

use std::fmt::Write as _;

use serde::Serialize;

use crate::accel::Accel;
use crate::runner::{CheckResult, Status};

#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Image or artifact name.
    pub subject: String,
    pub accel: Option<Accel>,
    /// Seconds from starting QEMU to the agent answering.
    pub boot_seconds: Option<f64>,
    pub results: Vec<CheckResult>,
}

impl TestReport {
    pub fn count(&self, s: Status) -> usize {
        self.results.iter().filter(|r| r.status == s).count()
    }

    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.status == Status::Pass)
    }

    pub fn failed_ids(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.status != Status::Pass)
            .map(|r| r.id.as_str())
            .collect()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One line per check, then the details of each failure (command, expected, actual output).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let w = self
            .results
            .iter()
            .map(|r| r.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        for r in &self.results {
            let mark = match r.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Error => "ERROR",
            };
            let _ = writeln!(
                out,
                "{mark:<5}  {:<w$}  {:<7}  {:>5.2}s  {}",
                r.id,
                r.place,
                r.seconds,
                r.description.as_deref().unwrap_or("")
            );
        }
        for r in self.results.iter().filter(|r| r.status != Status::Pass) {
            let _ = writeln!(out, "\n--- {} ({}, {}) ---", r.id, r.place, r.file);
            let _ = writeln!(out, "  check:    {}", r.what);
            let _ = writeln!(out, "  expected: {}", r.expected.join("; "));
            for f in &r.failures {
                let _ = writeln!(out, "  failed:   {f}");
            }
            if let Some(c) = r.exit_code {
                let _ = writeln!(out, "  exit:     {c}");
            }
            for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                if !text.trim().is_empty() {
                    let _ = writeln!(out, "  {name}:");
                    for l in text.lines().take(20) {
                        let _ = writeln!(out, "    | {l}");
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {} passed, {} failed, {} errors{}",
            self.subject,
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Error),
            match (self.accel, self.boot_seconds) {
                (Some(a), Some(s)) => format!(" (booted under {a} in {s:.1}s)"),
                _ => String::new(),
            }
        );
        out
    }

    /// JUnit XML: one testsuite per check file and place, one testcase per check.
    pub fn to_junit(&self) -> String {
        let mut suites: Vec<(String, Vec<&CheckResult>)> = Vec::new();
        for r in &self.results {
            let name = format!("{}/{}", r.place, r.file);
            match suites.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(r),
                None => suites.push((name, vec![r])),
            }
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total_time: f64 = self.results.iter().map(|r| r.seconds).sum();
        let _ = writeln!(
            out,
            "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{total_time:.3}\">",
            xml(&self.subject),
            self.results.len(),
            self.count(Status::Fail),
            self.count(Status::Error)
        );
        for (name, rs) in &suites {
            let fails = rs.iter().filter(|r| r.status == Status::Fail).count();
            let errs = rs.iter().filter(|r| r.status == Status::Error).count();
            let time: f64 = rs.iter().map(|r| r.seconds).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" errors=\"{errs}\" time=\"{time:.3}\">",
                xml(&format!("{}:{name}", self.subject)),
                rs.len()
            );
            for r in rs {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(name),
                    xml(&r.id),
                    r.seconds
                );
                if r.status == Status::Pass {
                    out.push_str("/>\n");
                    continue;
                }
                out.push_str(">\n");
                let tag = if r.status == Status::Fail {
                    "failure"
                } else {
                    "error"
                };
                let _ = writeln!(
                    out,
                    "      <{tag} message=\"{}\" type=\"{tag}\">{}</{tag}>",
                    xml(&r.failures.join("; ")),
                    xml(&format!(
                        "{}\ncheck: {}\nexpected: {}\nexit: {}\nstdout:\n{}\nstderr:\n{}",
                        r.description.as_deref().unwrap_or(""),
                        r.what,
                        r.expected.join("; "),
                        r.exit_code.map_or("-".to_string(), |c| c.to_string()),
                        r.stdout,
                        r.stderr
                    ))
                );
                out.push_str("    </testcase>\n");
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            description: Some("d <&>".into()),
            file: "checks/cis.yaml".into(),
            place: "guest",
            status,
            what: "sysctl -n kernel.randomize_va_space".into(),
            expected: vec!["stdout contains \"2\"".into()],
            failures: if status == Status::Pass {
                vec![]
            } else {
                vec!["stdout does not contain \"2\"".into()]
            },
            exit_code: Some(0),
            stdout: "0\n\u{1}".into(),
            stderr: String::new(),
            seconds: 0.25,
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let rep = TestReport {
            subject: "base".into(),
            accel: None,
            boot_seconds: None,
            results: vec![r("a", Status::Pass), r("b<1>", Status::Fail)],
        };
        let x = rep.to_junit();
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"0\""));
        assert!(x.contains("name=\"b&lt;1&gt;\""));
        assert!(x.contains("<failure message=\"stdout does not contain &quot;2&quot;\""));
        assert!(!x.contains('\u{1}'));
        assert_eq!(rep.failed_ids(), ["b<1>"]);
        let t = rep.to_text();
        assert!(t.contains("FAIL   b<1>"));
        assert!(t.contains("expected: stdout contains \"2\""));
        assert!(t.contains("base: 1 passed, 1 failed, 0 errors"));
    }
}
