//! Channel policies (`policy "CHANNEL"` in kiln.hcl): the rules a version must meet to enter a
//! channel, evaluated against what the registry recorded about it.

use kiln_spec::Policy;
use serde_json::Value;

/// What is known about a version when deciding a promotion.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The test report (`kiln-test`'s JSON), if tests ran.
    pub test_report: Option<Value>,
    /// The scan report (`scan_stage::ScanOutput::registry_report`), if a scan ran.
    pub scan_report: Option<Value>,
    /// Roles of the approvals recorded for the version.
    pub approvals: Vec<String>,
}

/// The rules of `channel`'s policy (if it has one) that `version` does not meet, from what the
/// registry recorded: what `kiln promote` and the API's channel assignment both check.
pub fn unmet_for(
    r: &mut kiln_registry::Registry,
    policies: &std::collections::BTreeMap<kiln_spec::ChannelName, Policy>,
    version: &str,
    channel: &str,
) -> Result<Vec<String>, kiln_registry::RegistryError> {
    let Some(policy) = kiln_spec::ChannelName::new(channel)
        .ok()
        .and_then(|c| policies.get(&c))
    else {
        return Ok(Vec::new());
    };
    let evidence = Evidence {
        test_report: r.report(version, "test")?,
        scan_report: r.report(version, "scan")?,
        approvals: r.approval_roles(version)?,
    };
    Ok(unmet(policy, &evidence))
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
    if let Some(max) = policy.max_severity {
        match &e.scan_report {
            None => out.push(format!(
                "max_severity {}: the version has no scan report",
                max.as_str()
            )),
            Some(r) if r["summary"]["vulnerability_data"] != true => out.push(format!(
                "max_severity {}: the version was scanned without vulnerability data (load some with `kiln vulndb import`, then rebuild)",
                max.as_str()
            )),
            Some(r) => {
                let worst = r["summary"]["max_severity"].as_str().unwrap_or("negligible");
                if rank(worst) > allowed(max) {
                    let over: Vec<String> = r["vulnerabilities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|v| rank(v["severity"].as_str().unwrap_or("")) > allowed(max))
                        .map(|v| {
                            format!(
                                "{} in {} ({}, {})",
                                v["vulnerability"].as_str().unwrap_or("?"),
                                v["package"].as_str().unwrap_or("?"),
                                v["severity"].as_str().unwrap_or("?"),
                                v["verdict"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    out.push(format!(
                        "max_severity {}: {} finding(s) above it: {}",
                        max.as_str(),
                        over.len(),
                        over.join(", ")
                    ));
                }
            }
        }
    }
    if policy.forbid_secrets {
        match &e.scan_report {
            None => out.push("forbid_secrets: the version has no scan report".to_string()),
            Some(r) => {
                let secrets: Vec<String> = r["secrets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["category"] == "secret")
                    .map(|s| {
                        format!(
                            "{} ({})",
                            s["path"].as_str().unwrap_or("?"),
                            s["rule"].as_str().unwrap_or("?")
                        )
                    })
                    .collect();
                if !secrets.is_empty() {
                    out.push(format!(
                        "forbid_secrets: {} secret(s) in the image: {}",
                        secrets.len(),
                        secrets.join(", ")
                    ));
                }
            }
        }
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

/// A finding severity's rank against a policy threshold: unknown and negligible rank below low.
fn rank(severity: &str) -> u8 {
    match severity {
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        _ => 0,
    }
}

fn allowed(max: kiln_spec::FindingSeverity) -> u8 {
    rank(max.as_str())
}
