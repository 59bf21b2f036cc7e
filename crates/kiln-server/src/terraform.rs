//! Terraform without a provider: `terraform_remote_state` with `backend = "http"` GETs a state
//! document and reads its outputs. Kiln serves one per bucket and channel whose outputs are the
//! version the channel points at and its artifact ids, so any Terraform since 0.12 consumes golden
//! images with no plugin. The channel never points at a revoked version (the registry rolls
//! channels back on revocation); a version merely scheduled for revocation is served with
//! `revoke_at` set, so plans can warn before the date.

use std::collections::BTreeMap;

use kiln_registry::{Registry, Status};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// The state document (format version 4) for `bucket`/`channel`.
pub fn state(r: &mut Registry, bucket: &str, channel: &str) -> ApiResult<Value> {
    let id = r.channel(bucket, channel)?.ok_or_else(|| {
        ApiError::not_found(format!("{bucket}/{channel} points at no version"))
            .hint("promote a version to it: kiln promote BUCKET VERSION --to CHANNEL")
    })?;
    let v = r.version(&id)?;
    if v.status == Status::Revoked {
        // The registry moves channels off revoked versions; refuse rather than serve one if
        // that invariant were ever broken.
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("{bucket}/{channel} points at revoked version {id}"),
        ));
    }
    let mut artifacts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for a in &v.artifacts {
        // One id per platform and region: the first format in name order, as the lookup does.
        artifacts
            .entry(a.platform.clone())
            .or_default()
            .entry(a.region.clone())
            .or_insert_with(|| a.external_id.clone());
    }
    let labels: BTreeMap<String, String> = v
        .build
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let revoke_at = v.revocation.as_ref().map(|x| x.at.clone());
    // The serial changes whenever the channel moves, so Terraform sees a new state.
    let serial = r.history(bucket, channel)?.len();
    Ok(json!({
        "version": 4,
        "terraform_version": "1.0.0",
        "serial": serial,
        "lineage": format!("kiln-{bucket}-{channel}"),
        "outputs": {
            "version": {"value": v.id, "type": "string"},
            "fingerprint": {"value": v.fingerprint, "type": "string"},
            "revoked": {"value": v.status == Status::Revoked, "type": "bool"},
            "revoke_at": {"value": revoke_at.clone().unwrap_or_default(), "type": "string"},
            "artifacts": {"value": artifacts, "type": ["map", ["map", "string"]]},
            "labels": {"value": labels, "type": ["map", "string"]},
        },
        "resources": [],
    }))
}
