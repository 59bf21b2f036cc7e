//! HCP Terraform's run task protocol. HCP POSTs a JSON request (signed in
//! `X-TFC-Task-Signature` with HMAC-SHA512 of the body when a key is set); we answer 200 at once,
//! then fetch the plan JSON from `plan_json_api_url` with the request's access token, check it
//! (`plancheck`), and PATCH `task_result_callback_url` with a JSON:API task result: passed or
//! failed, a message, and one outcome per image that is revoked, untracked or scheduled for
//! revocation.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha512;

use crate::AppState;
use crate::error::ApiError;
use crate::plancheck::{self, PlanCheck, Verdict};

/// The fields of the request we use; HCP sends more, and older payloads spell some differently,
/// so everything is optional and unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub plan_json_api_url: Option<String>,
    #[serde(default)]
    pub task_result_callback_url: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub workspace_name: Option<String>,
}

/// HCP's verification request when a run task is created carries this token and expects a 200.
pub const TEST_TOKEN: &str = "test-token";

/// Checks `X-TFC-Task-Signature` (lowercase hex HMAC-SHA512 of the raw body) when a key is
/// configured. Without a key every request is accepted (HCP then sends an empty header).
pub fn verify(key: Option<&str>, signature: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
    let Some(key) = key else { return Ok(()) };
    let sig = signature.unwrap_or_default().trim();
    if sig.is_empty() {
        return Err(ApiError::unauthorized(
            "this run task endpoint needs a signed request (X-TFC-Task-Signature)",
        )
        .hint("set the same HMAC key in HCP Terraform's run task settings"));
    }
    let bytes =
        decode_hex(sig).ok_or_else(|| ApiError::unauthorized("X-TFC-Task-Signature is not hex"))?;
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes())
        .map_err(|_| ApiError::unauthorized("unusable HMAC key"))?;
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&bytes).map_err(|_| {
        ApiError::unauthorized("X-TFC-Task-Signature does not match the body")
            .hint("the HMAC key in HCP Terraform and KILN_RUNTASK_HMAC_KEY must be the same")
    })
}

/// Lowercase hex HMAC-SHA512, as HCP computes it (tests sign with this).
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The JSON:API body of the callback (limits from HCP's schema: message ≤ 1000 characters, at
/// most 10 outcomes, outcome ids ≤ 64, tag labels ≤ 32).
pub fn result_body(check: &PlanCheck) -> Value {
    let outcomes: Vec<Value> = check
        .usages
        .iter()
        .filter(|u| u.verdict != Verdict::Ok)
        .take(10)
        .map(|u| {
            let (label, level) = match u.verdict {
                Verdict::Revoked => ("Revoked", "error"),
                Verdict::Untracked => ("Untracked", "error"),
                Verdict::UntrackedWarning => ("Untracked", "warning"),
                _ => ("Revocation scheduled", "warning"),
            };
            json!({
                "type": "task-result-outcomes",
                "attributes": {
                    "outcome-id": truncate(&format!("{}.{}", u.address, u.attribute), 64),
                    "description": truncate(&format!("{} ({}): {}", u.address, u.action, u.detail), 1000),
                    "body": truncate(&format!(
                        "**{}** `{}` = `{}`\n\n{}\n\nVersions: {}",
                        u.address,
                        u.attribute,
                        u.image_id,
                        u.detail,
                        if u.versions.is_empty() { "none".to_string() } else { u.versions.join(", ") }
                    ), 10_000),
                    "tags": {"Status": [{"label": label, "level": level}]},
                }
            })
        })
        .collect();
    let mut body = json!({"data": {"type": "task-results", "attributes": {
        "status": if check.passed { "passed" } else { "failed" },
        "message": truncate(&format!("Kiln: {}", check.summary()), 1000),
    }}});
    if !outcomes.is_empty() {
        body["data"]["relationships"] = json!({"outcomes": {"data": outcomes}});
    }
    body
}

/// Fetches the plan, checks it and reports back; runs after the 200 has been sent.
pub fn complete(state: Arc<AppState>, req: Request) {
    let Some(callback) = req.task_result_callback_url.clone() else {
        tracing::warn!("run task request without task_result_callback_url: nothing to report to");
        return;
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let auth = format!("Bearer {}", req.access_token);
    let outcome: Result<PlanCheck, String> = (|| {
        let url = req
            .plan_json_api_url
            .as_deref()
            .ok_or("the request has no plan_json_api_url (run task stages after the plan only)")?;
        let plan: Value = agent
            .get(url)
            .set("Authorization", &auth)
            .call()
            .map_err(|e| format!("fetching the plan JSON: {e}"))?
            .into_string()
            .map_err(|e| format!("reading the plan JSON: {e}"))
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| format!("the plan is not JSON: {e}"))
            })?;
        let mut r = state.pool.get().map_err(|e| e.to_string())?;
        plancheck::check(&mut r, &plan, state.config.untracked).map_err(|e| e.message)
    })();
    let body = match &outcome {
        Ok(check) => result_body(check),
        Err(e) => json!({"data": {"type": "task-results", "attributes": {
            "status": "failed",
            "message": truncate(&format!("Kiln could not check the plan: {e}"), 1000),
        }}}),
    };
    match agent
        .request("PATCH", &callback)
        .set("Authorization", &auth)
        .set("Content-Type", "application/vnd.api+json")
        .send_string(&body.to_string())
    {
        Ok(_) => {
            tracing::info!(run = ?req.run_id, workspace = ?req.workspace_name, status = %body["data"]["attributes"]["status"], "run task result sent")
        }
        Err(e) => {
            tracing::error!(run = ?req.run_id, error = %e, "sending the run task result failed")
        }
    }
}
