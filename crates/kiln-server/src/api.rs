//! The `/v1` REST API. Handlers borrow a registry connection, check the caller's role, and map
//! registry errors to status codes with a body that says what to fix. Mutations run on the
//! blocking pool (a write may wait for the registry's lock); reads run inline.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use kiln_registry::{Artifact, Registry, Role, Status};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::plancheck;
use crate::runtask;

type St = State<Arc<AppState>>;

/// Runs a mutation on the blocking pool with a pooled connection.
async fn write<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut Registry) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut r = st.pool.get()?;
        f(&mut r)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not what this route takes: {e}"
        ))
        .hint("see /v1/openapi.json for the body each route expects")
    })
}

pub async fn buckets(State(s): St, c: Caller) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    let mut out = Vec::new();
    for b in r.buckets()? {
        let channels = r.channels(&b)?;
        out.push(json!({"name": b, "channels": channels}));
    }
    Ok(Json(json!({"buckets": out})))
}

pub async fn bucket(State(s): St, c: Caller, Path(b): Path<String>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    if !r.buckets()?.contains(&b) {
        return Err(ApiError::not_found(format!("bucket `{b}` not found"))
            .hint("list buckets with GET /v1/buckets"));
    }
    let channels = r.channels(&b)?;
    let versions = r.versions(&b)?.len();
    Ok(Json(
        json!({"name": b, "channels": channels, "versions": versions}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct VersionQuery {
    status: Option<String>,
    channel: Option<String>,
    page_size: Option<usize>,
    page_token: Option<String>,
}

pub const MAX_PAGE: usize = 100;

pub async fn versions(
    State(s): St,
    c: Caller,
    Path(b): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let size = q.page_size.unwrap_or(20);
    if size == 0 || size > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "page_size {size} is out of range: 1 to {MAX_PAGE}"
        )));
    }
    if let Some(st) = &q.status
        && ![
            Status::Running,
            Status::Failed,
            Status::Active,
            Status::RevocationScheduled,
            Status::Revoked,
            Status::Reaped,
        ]
        .iter()
        .any(|x| x.as_str() == st)
    {
        return Err(ApiError::bad_request(format!("unknown status `{st}`"))
            .hint("one of running, failed, active, revocation_scheduled, revoked, reaped"));
    }
    let mut r = s.pool.get()?;
    if !r.buckets()?.contains(&b) {
        return Err(ApiError::not_found(format!("bucket `{b}` not found"))
            .hint("list buckets with GET /v1/buckets"));
    }
    // Versions on the channel now or before (its history), when filtering by channel.
    let on_channel: Option<Vec<String>> = match &q.channel {
        Some(ch) => Some(
            r.history(&b, ch)?
                .into_iter()
                .filter_map(|e| e.version)
                .collect(),
        ),
        None => None,
    };
    // Newest first; ids are ULIDs, so the page token is the last id served.
    let mut all = r.versions(&b)?;
    all.sort_by(|x, y| y.id.cmp(&x.id));
    let filtered: Vec<_> = all
        .into_iter()
        .filter(|v| q.status.as_deref().is_none_or(|st| v.status.as_str() == st))
        .filter(|v| on_channel.as_ref().is_none_or(|ids| ids.contains(&v.id)))
        .filter(|v| q.page_token.as_deref().is_none_or(|t| v.id.as_str() < t))
        .take(size + 1)
        .collect();
    let next = (filtered.len() > size).then(|| filtered[size - 1].id.clone());
    let page: Vec<_> = filtered.into_iter().take(size).collect();
    Ok(Json(json!({"versions": page, "next_page_token": next})))
}

pub async fn version(State(s): St, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let v = s.pool.get()?.version(&id)?;
    Ok(Json(serde_json::to_value(v).unwrap_or_default()))
}

pub async fn ancestry(State(s): St, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    let v = r.version(&id)?;
    let children = r.children(&id)?;
    let descendants = r.descendants(&id)?;
    let out_of_date: Vec<_> = r
        .out_of_date()?
        .into_iter()
        .filter(|o| o.parent == id || o.child == id)
        .collect();
    Ok(Json(json!({
        "version": id, "bucket": v.bucket, "parents": v.parents,
        "children": children, "descendants": descendants, "out_of_date": out_of_date,
    })))
}

/// `sbom`, `findings` (the scan report) or `tests` of a version.
pub async fn report(
    State(s): St,
    c: Caller,
    Path((id, kind)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let stored = match kind.as_str() {
        "sbom" => "sbom",
        "findings" => "scan",
        "tests" => "test",
        _ => {
            return Err(ApiError::not_found(format!("no report `{kind}`"))
                .hint("reports are sbom, findings and tests"));
        }
    };
    let mut r = s.pool.get()?;
    r.version(&id)?;
    let rep = r.report(&id, stored)?.ok_or_else(|| {
        ApiError::not_found(format!("version {id} has no {kind} report"))
            .hint("the build that made it did not run that stage")
    })?;
    Ok(Json(rep))
}

#[derive(Debug, Deserialize)]
struct NewVersion {
    fingerprint: String,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    build: Value,
}

pub async fn create_version(
    State(s): St,
    c: Caller,
    Path(b): Path<String>,
    raw: Bytes,
) -> ApiResult<impl IntoResponse> {
    let actor = c.require(&[Role::Ci], "creating versions")?;
    let nv: NewVersion = body(&raw)?;
    let id = write(&s, move |r| {
        r.ensure_bucket(&actor, &b)?;
        let build = if nv.build.is_null() {
            json!({})
        } else {
            nv.build
        };
        Ok(r.start_version(&actor, &b, &nv.fingerprint, &nv.parents, build)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

pub async fn add_artifact(
    State(s): St,
    c: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<impl IntoResponse> {
    let actor = c.require(&[Role::Ci], "adding artifacts")?;
    let a: Artifact = body(&raw)?;
    write(&s, move |r| Ok(r.add_artifact(&actor, &id, &a)?)).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    failed: Option<String>,
}

/// Marks a running version complete (active) or, with `{"failed": "reason"}`, failed.
pub async fn complete(
    State(s): St,
    c: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Ci], "completing versions")?;
    let done: Completion = if raw.is_empty() {
        Completion { failed: None }
    } else {
        body(&raw)?
    };
    let v = write(&s, move |r| {
        match &done.failed {
            Some(reason) => r.fail(&actor, &id, reason)?,
            None => r.complete(&actor, &id)?,
        }
        Ok(r.version(&id)?)
    })
    .await?;
    Ok(Json(serde_json::to_value(v).unwrap_or_default()))
}

#[derive(Debug, Deserialize)]
struct Revoke {
    reason: String,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    skip_descendants: bool,
}

pub async fn revoke(
    State(s): St,
    c: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Security], "revoking")?;
    let rv: Revoke = body(&raw)?;
    if rv.reason.trim().is_empty() {
        return Err(ApiError::bad_request("a revocation needs a reason"));
    }
    let affected = write(&s, move |r| {
        Ok(r.revoke(
            &actor,
            &id,
            &rv.reason,
            rv.at.as_deref(),
            rv.skip_descendants,
        )?)
    })
    .await?;
    Ok(Json(json!({"revoked": affected})))
}

pub async fn restore(State(s): St, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Security], "restoring")?;
    let restored = write(&s, move |r| Ok(r.restore(&actor, &id)?)).await?;
    Ok(Json(json!({"restored": restored})))
}

pub async fn approvals(State(s): St, c: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    r.version(&id)?;
    Ok(Json(json!({"roles": r.approval_roles(&id)?})))
}

pub async fn approve(
    State(s): St,
    c: Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let actor = c.require(&[Role::Platform, Role::Security], "approving")?;
    write(&s, move |r| Ok(r.approve(&actor, &id)?)).await?;
    Ok(StatusCode::CREATED)
}

pub async fn channels(State(s): St, c: Caller, Path(b): Path<String>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    Ok(Json(json!({"channels": s.pool.get()?.channels(&b)?})))
}

fn find_channel(r: &mut Registry, b: &str, ch: &str) -> ApiResult<kiln_registry::Channel> {
    r.channels(b)?
        .into_iter()
        .find(|x| x.name == ch)
        .ok_or_else(|| {
            ApiError::not_found(format!("channel `{b}/{ch}` not found")).hint(format!(
                "list the channels with GET /v1/buckets/{b}/channels"
            ))
        })
}

pub async fn channel(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    let found = find_channel(&mut r, &b, &ch)?;
    Ok(Json(serde_json::to_value(found).unwrap_or_default()))
}

pub async fn history(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    find_channel(&mut r, &b, &ch)?;
    Ok(Json(json!({"history": r.history(&b, &ch)?})))
}

#[derive(Debug, Deserialize)]
struct Assign {
    version: String,
    #[serde(default)]
    reason: String,
}

/// Points a channel at a version, after the channel's policy (kiln.hcl) accepts it.
pub async fn assign(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Platform, Role::Security], "assigning channels")?;
    let a: Assign = body(&raw)?;
    let policies = s.config.policies.clone();
    let (b2, ch2) = (b.clone(), ch.clone());
    let id = a.version.clone();
    write(&s, move |r| {
        let v = r.version(&a.version)?;
        if v.bucket != b2 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("version {} belongs to {}, not {b2}", v.id, v.bucket),
            ));
        }
        let unmet = kiln_pipeline::policy::unmet_for(r, &policies, &v.id, &ch2)?;
        if !unmet.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{b2}/{} may not enter {ch2}: {}", v.id, unmet.join("; ")),
            )
            .hint("meet the channel's policy in kiln.hcl (approvals: POST /v1/versions/{id}/approvals)"));
        }
        let reason = if a.reason.is_empty() {
            format!("assigned by {} through the API", actor.name)
        } else {
            a.reason
        };
        Ok(r.promote(&actor, &b2, &v.id, &ch2, &reason)?)
    })
    .await?;
    Ok(Json(json!({"bucket": b, "channel": ch, "version": id})))
}

#[derive(Debug, Deserialize)]
struct Reason {
    #[serde(default)]
    reason: String,
}

pub async fn rollback(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Platform, Role::Security], "rolling back channels")?;
    let why: Reason = if raw.is_empty() {
        Reason {
            reason: String::new(),
        }
    } else {
        body(&raw)?
    };
    let (b2, ch2) = (b.clone(), ch.clone());
    let now = write(&s, move |r| {
        Ok(r.rollback(&actor, &b2, &ch2, &why.reason)?)
    })
    .await?;
    Ok(Json(json!({"bucket": b, "channel": ch, "version": now})))
}

#[derive(Debug, Deserialize)]
struct Restricted {
    restricted: bool,
}

pub async fn restrict(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let actor = c.require(&[Role::Security], "changing restricted channels")?;
    let x: Restricted = body(&raw)?;
    let (b2, ch2) = (b.clone(), ch.clone());
    write(&s, move |r| {
        Ok(r.set_restricted(&actor, &b2, &ch2, x.restricted)?)
    })
    .await?;
    Ok(Json(
        json!({"bucket": b, "channel": ch, "restricted": x.restricted}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ArtifactQuery {
    platform: Option<String>,
    region: Option<String>,
}

/// The artifact a channel points at, in the shape of HCP Packer's artifact data source.
pub async fn channel_artifact(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
    Query(q): Query<ArtifactQuery>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let platform = q.platform.ok_or_else(|| {
        ApiError::bad_request("`platform` is required")
            .hint("e.g. ?platform=aws&region=us-east-1, or ?platform=file")
    })?;
    let region = q.region.unwrap_or_default();
    let mut r = s.pool.get()?;
    match r.channel_artifact(&b, &ch, &platform, &region)? {
        Some((version, a)) => Ok(Json(json!({
            "bucket": b, "channel": ch, "version_id": version,
            "platform": a.platform, "region": a.region, "external_identifier": a.external_id,
            "format": a.format, "size": a.size, "sha256": a.sha256,
        }))),
        None => {
            let found = find_channel(&mut r, &b, &ch)?;
            Err(match found.version {
                None => ApiError::not_found(format!("{b}/{ch} points at no version")),
                Some(v) => ApiError::not_found(format!(
                    "version {v} on {b}/{ch} has no artifact for platform `{platform}` region `{region}`"
                ))
                .hint(format!("see its artifacts with GET /v1/versions/{v}")),
            })
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

pub async fn audit(State(s): St, c: Caller, Query(q): Query<AuditQuery>) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range: 1 to 1000"
        )));
    }
    let entries = s.pool.get()?.audit_after(q.after.unwrap_or(0), limit + 1)?;
    let next = (entries.len() > limit).then(|| entries[limit - 1].seq);
    let page: Vec<_> = entries
        .into_iter()
        .take(limit)
        .map(|e| json!({"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
                        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::String(e.detail)), "hash": e.hash}))
        .collect();
    Ok(Json(json!({"entries": page, "next_after": next})))
}

pub async fn tokens(State(s): St, c: Caller) -> ApiResult<Json<Value>> {
    c.require(&[], "listing tokens")?;
    Ok(Json(json!({"tokens": s.pool.get()?.tokens()?})))
}

#[derive(Debug, Deserialize)]
struct NewToken {
    name: String,
    role: String,
    #[serde(default)]
    expires_at: Option<String>,
}

pub async fn create_token(State(s): St, c: Caller, raw: Bytes) -> ApiResult<impl IntoResponse> {
    let actor = c.require(&[], "creating tokens")?;
    let t: NewToken = body(&raw)?;
    let role = Role::parse(&t.role).ok_or_else(|| {
        ApiError::bad_request(format!("unknown role `{}`", t.role))
            .hint("admin, platform, security, ci or consumer")
    })?;
    let name = t.name.clone();
    let secret = write(&s, move |r| {
        Ok(r.create_token(&actor, &t.name, role, t.expires_at.as_deref())?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "role": role.as_str(), "token": secret})),
    ))
}

pub async fn revoke_token(
    State(s): St,
    c: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = c.require(&[], "revoking tokens")?;
    write(&s, move |r| Ok(r.revoke_token(&actor, &name)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn terraform_state(
    State(s): St,
    c: Caller,
    Path((b, ch)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    Ok(Json(crate::terraform::state(&mut r, &b, &ch)?))
}

/// `POST /v1/runtask`: verify, answer 200 at once, check and call back in the background.
pub async fn runtask(State(s): St, headers: HeaderMap, raw: Bytes) -> ApiResult<StatusCode> {
    let sig = headers
        .get("x-tfc-task-signature")
        .and_then(|v| v.to_str().ok());
    runtask::verify(s.config.runtask_hmac_key.as_deref(), sig, &raw)?;
    let req: runtask::Request = body(&raw)?;
    if req.access_token == runtask::TEST_TOKEN {
        return Ok(StatusCode::OK);
    }
    let st = s.clone();
    tokio::task::spawn_blocking(move || runtask::complete(st, req));
    Ok(StatusCode::OK)
}

/// `POST /v1/plan-check`: the same check on a plan JSON body, answered directly.
pub async fn plan_check(State(s): St, c: Caller, raw: Bytes) -> ApiResult<Json<Value>> {
    c.read(&s)?;
    let plan: Value = body(&raw)?;
    let mut r = s.pool.get()?;
    let check = plancheck::check(&mut r, &plan, s.config.untracked)?;
    Ok(Json(serde_json::to_value(check).unwrap_or_default()))
}

/// Prometheus scrapes with a token (`authorization` in the scrape config) unless reads are open.
pub async fn metrics(State(s): St, c: Caller) -> ApiResult<impl IntoResponse> {
    c.read(&s)?;
    let mut r = s.pool.get()?;
    Ok((
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(&mut r),
    ))
}
