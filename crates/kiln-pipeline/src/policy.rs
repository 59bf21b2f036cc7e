//! Channel policies (`policy "CHANNEL"` in kiln.hcl): the rules a version must meet to enter a
//! channel, evaluated against what the registry recorded about it.

use kiln_spec::Policy;
use serde_json::Value;

/// What is known about a version when deciding a promotion.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The test report (`kiln-test`'s JSON), if tests ran.
    pub test_report: Option<Value>,
    /// The scan report, if a scan ran (the scanner is not built yet: always `None` today).
    pub scan_report: Option<Value>,
    /// Roles of the approvals recorded for the version.
    pub approvals: Vec<String>,
}

/// Every rule of `policy` the evidence does not meet, in words; empty means the version may enter.
pub fn unmet(policy: &Policy, e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if policy.require_tests {
        match &e.test_report {
            None => out.push("require_tests: the version has no test report".to_string()),
            Some(r) => {
                let results = r["results"].as_array().map_or(0, Vec::len);
                let failed = r["results"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|x| x["status"] != "pass").count());
                if results == 0 {
                    out.push("require_tests: the test report has no results".to_string());
                } else if failed > 0 {
                    out.push(format!(
                        "require_tests: {failed} of {results} checks did not pass"
                    ));
                }
            }
        }
    }
    if let Some(max) = policy.max_severity
        && e.scan_report.is_none()
    {
        out.push(format!(
            "max_severity {}: the version has no scan report (the scanner is not part of kiln yet)",
            max.as_str()
        ));
    }
    if policy.forbid_secrets && e.scan_report.is_none() {
        out.push(
            "forbid_secrets: the version has no scan report (the scanner is not part of kiln yet)"
                .to_string(),
        );
    }
    if let Some(role) = policy.require_approval
        && !e
            .approvals
            .iter()
            .any(|r| r == role.as_str() || r == "admin")
    {
        out.push(format!(
            "require_approval: no approval by the {} role",
            role.as_str()
        ));
    }
    out
}
