//! Azure Resource Manager: where the gallery, its image definitions and versions live, and the
//! waiting its long-running operations need (a gallery version replicates for many minutes).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::PublishError;
use crate::rest::{Reply, Rest};

/// The Compute Gallery API version Kiln speaks.
pub const COMPUTE_API: &str = "2024-03-03";
/// The storage resource provider's API version (for the account key).
pub const STORAGE_API: &str = "2023-05-01";
/// The public cloud's Resource Manager.
pub const MANAGEMENT: &str = "https://management.azure.com";

/// A token for Resource Manager: `AZURE_ACCESS_TOKEN`, else the Azure CLI's login.
pub fn token() -> Result<String, PublishError> {
    crate::rest::token(
        "AZURE_ACCESS_TOKEN",
        "az",
        &[
            "account",
            "get-access-token",
            "--resource",
            "https://management.azure.com/",
            "--query",
            "accessToken",
            "-o",
            "tsv",
        ],
    )
}

/// How long a replication may take before Kiln gives up waiting (it can be resumed).
const MAX_WAIT: Duration = Duration::from_secs(3 * 3600);

fn retry_after(r: &Reply) -> Duration {
    r.header("Retry-After")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(5), |s| Duration::from_secs(s.min(60)))
}

/// Waits for the operation `r` started on `resource` (a PUT, PATCH, POST or DELETE) to end:
/// through `Azure-AsyncOperation` when given, else `Location`, else the resource's own
/// `provisioningState`. Errors carry the operation's error message.
pub fn wait(rest: &Rest, what: &str, resource: &str, r: &Reply) -> Result<(), PublishError> {
    let started = Instant::now();
    let timed_out = || {
        PublishError::Cloud(format!(
            "{what}: still running after {}s; re-run to pick it up",
            started.elapsed().as_secs()
        ))
    };
    if let Some(op) = r.header("Azure-AsyncOperation").map(str::to_string) {
        let mut delay = retry_after(r);
        loop {
            std::thread::sleep(delay);
            let s = rest
                .expect("GET", &op, None, false)?
                .expect("not missing_ok");
            match s.body["status"].as_str().unwrap_or("") {
                "Succeeded" => return Ok(()),
                "Failed" | "Canceled" => {
                    return Err(PublishError::Cloud(format!(
                        "{what}: {}",
                        s.body["error"]["message"]
                            .as_str()
                            .unwrap_or("the operation failed")
                    )));
                }
                _ if started.elapsed() > MAX_WAIT => return Err(timed_out()),
                other => tracing::info!(what, status = other, "waiting"),
            }
            delay = retry_after(&s);
        }
    }
    if r.status == 202
        && let Some(loc) = r.header("Location").map(str::to_string)
    {
        let mut delay = retry_after(r);
        loop {
            std::thread::sleep(delay);
            let s = rest.call("GET", &loc, None)?;
            match s.status {
                202 if started.elapsed() > MAX_WAIT => return Err(timed_out()),
                202 => delay = retry_after(&s),
                200..=299 => return Ok(()),
                code => {
                    return Err(PublishError::Cloud(format!(
                        "{what}: HTTP {code}: {}",
                        s.body["error"]["message"].as_str().unwrap_or("failed")
                    )));
                }
            }
        }
    }
    let mut state = r.body["properties"]["provisioningState"]
        .as_str()
        .map(str::to_string);
    while let Some(s) = state.as_deref() {
        match s {
            "Succeeded" => return Ok(()),
            "Failed" | "Canceled" => {
                return Err(PublishError::Cloud(format!(
                    "{what}: provisioning state {s}"
                )));
            }
            _ if started.elapsed() > MAX_WAIT => return Err(timed_out()),
            _ => {}
        }
        std::thread::sleep(Duration::from_secs(5));
        let g = rest
            .expect("GET", resource, None, false)?
            .expect("not missing_ok");
        state = g.body["properties"]["provisioningState"]
            .as_str()
            .map(str::to_string);
    }
    Ok(())
}

/// `method` on `path` (which carries its api-version), then waits for it to finish.
pub fn change(
    rest: &Rest,
    what: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, PublishError> {
    let r = rest
        .expect(method, path, body, false)?
        .expect("not missing_ok");
    wait(rest, what, path, &r)?;
    Ok(r.body)
}
