//! Kiln's server: the registry over HTTP for the people and tools around the factory. A REST
//! API under `/v1` with token roles, a Terraform state document per channel (consumed by the
//! built-in `terraform_remote_state` data source), HCP Terraform's run task, Prometheus metrics
//! and the web UI, all from one binary and one registry file.

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod plancheck;
pub mod pool;
pub mod runtask;
pub mod terraform;
pub mod ui;

use kiln_registry::Location;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use kiln_registry::RegistryError;
use kiln_spec::{ChannelName, Policy};
use serde_json::json;

pub use plancheck::Untracked;

/// How the server behaves; everything else comes from the registry.
#[derive(Debug, Clone)]
pub struct Config {
    /// Serve reads without a token.
    pub anonymous_read: bool,
    /// The run task's HMAC key; without one, run task requests are not verified.
    pub runtask_hmac_key: Option<String>,
    /// Whether an image id the registry does not know fails a plan check.
    pub untracked: Untracked,
    /// The factory's channel policies, checked before a channel is assigned.
    pub policies: Arc<BTreeMap<ChannelName, Policy>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            anonymous_read: false,
            runtask_hmac_key: None,
            untracked: Untracked::Fail,
            policies: Arc::default(),
        }
    }
}

#[derive(Debug)]
pub struct AppState {
    pub pool: pool::Pool,
    pub config: Config,
    pub metrics: metrics::Metrics,
}

impl AppState {
    pub fn new(
        registry: impl Into<Location>,
        config: Config,
    ) -> Result<Arc<AppState>, RegistryError> {
        Ok(Arc::new(AppState {
            pool: pool::Pool::open(registry.into())?,
            config,
            metrics: metrics::Metrics::default(),
        }))
    }
}

/// Counts and times every request by its route pattern (not its path, so ids do not explode
/// the label set).
async fn observe(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    s.metrics
        .observe(&method, &route, resp.status().as_u16(), started.elapsed());
    resp
}

async fn fallback() -> error::ApiError {
    error::ApiError::not_found("no such route").hint("the API is described at /v1/openapi.json")
}

/// Every operation, documented as it is routed.
pub fn api() -> openapi::Api {
    use api::*;
    use openapi::{Access, Op, object};
    const SEC: Access = Access::Roles(&["security"]);
    const PLAT: Access = Access::Roles(&["platform", "security"]);
    const CI: Access = Access::Roles(&["ci"]);
    const ADMIN: Access = Access::Roles(&[]);
    openapi::Api::new()
        .op(Op::new("GET", "/v1/buckets", "Buckets with their channels"), get(buckets))
        .op(Op::new("GET", "/v1/buckets/{bucket}", "One bucket: channels and version count"), get(bucket))
        .op(
            Op::new("GET", "/v1/buckets/{bucket}/versions", "A bucket's versions, newest first, a page at a time")
                .query(&[("status", "running, failed, active, revocation_scheduled, revoked or reaped"), ("channel", "versions that are or were on this channel"), ("page_size", "1 to 100 (default 20)"), ("page_token", "next_page_token of the previous page")]),
            get(versions),
        )
        .op(
            Op::new("POST", "/v1/buckets/{bucket}/versions", "Start a version (the bucket is created if new)")
                .access(CI).ok(201).body(object(&[("fingerprint", "string")], &[("parents", "array"), ("build", "object")])),
            post(create_version),
        )
        .op(Op::new("GET", "/v1/buckets/{bucket}/channels", "A bucket's channels"), get(channels))
        .op(Op::new("GET", "/v1/buckets/{bucket}/channels/{channel}", "One channel"), get(channel))
        .op(
            Op::new("PUT", "/v1/buckets/{bucket}/channels/{channel}", "Point a channel at a version (the channel's policy must accept it)")
                .access(PLAT).body(object(&[("version", "string")], &[("reason", "string")])),
            put(assign),
        )
        .op(Op::new("GET", "/v1/buckets/{bucket}/channels/{channel}/history", "Where a channel pointed, and who moved it"), get(history))
        .op(
            Op::new("POST", "/v1/buckets/{bucket}/channels/{channel}/rollback", "Move a channel back to its previous version")
                .access(PLAT).body(object(&[], &[("reason", "string")])),
            post(rollback),
        )
        .op(
            Op::new("PUT", "/v1/buckets/{bucket}/channels/{channel}/restricted", "Restrict a channel to the security role, or lift it")
                .access(SEC).body(object(&[("restricted", "boolean")], &[])),
            put(restrict),
        )
        .op(
            Op::new("GET", "/v1/buckets/{bucket}/channels/{channel}/artifact", "The artifact a channel points at (HCP Packer's artifact data source shape)")
                .query(&[("platform", "aws, azure, gcp, file, … (required)"), ("region", "the platform's region ('' for files)")]),
            get(channel_artifact),
        )
        .op(Op::new("GET", "/v1/versions/{id}", "One version: status, parents, revocation, artifacts"), get(version))
        .op(Op::new("GET", "/v1/versions/{id}/ancestry", "Parents, children, descendants and out-of-date children"), get(ancestry))
        .op(
            Op::new("POST", "/v1/versions/{id}/artifacts", "Record an artifact of a running version")
                .access(CI).ok(201).body(object(&[("platform", "string"), ("region", "string"), ("external_id", "string"), ("format", "string"), ("size", "integer"), ("sha256", "string")], &[])),
            post(add_artifact),
        )
        .op(
            Op::new("POST", "/v1/versions/{id}/complete", "Mark a running version active, or failed with {\"failed\": reason}")
                .access(CI),
            post(complete),
        )
        .op(
            Op::new("POST", "/v1/versions/{id}/revoke", "Revoke a version now or at a time; reaches descendants unless skipped")
                .access(SEC).body(object(&[("reason", "string")], &[("at", "string"), ("skip_descendants", "boolean")])),
            post(revoke),
        )
        .op(Op::new("POST", "/v1/versions/{id}/restore", "Undo a revocation (and the ones it caused)").access(SEC), post(restore))
        .op(Op::new("GET", "/v1/versions/{id}/approvals", "Roles that approved a version"), get(approvals))
        .op(Op::new("POST", "/v1/versions/{id}/approvals", "Approve a version (policies may require it)").access(PLAT).ok(201), post(approve))
        .op(Op::new("GET", "/v1/versions/{id}/reports/{kind}", "A version's sbom, findings (scan) or tests report"), get(report))
        .op(
            Op::new("GET", "/v1/audit", "The audit log, oldest first, a page at a time")
                .query(&[("after", "sequence number to start after"), ("limit", "1 to 1000 (default 100)")]),
            get(audit),
        )
        .op(Op::new("GET", "/v1/tokens", "Tokens (never their secrets)").access(ADMIN), get(tokens))
        .op(
            Op::new("POST", "/v1/tokens", "Create a token; the secret is in the answer, once")
                .access(ADMIN).ok(201).body(object(&[("name", "string"), ("role", "string")], &[("expires_at", "string")])),
            post(create_token),
        )
        .op(Op::new("DELETE", "/v1/tokens/{name}", "Revoke a token").access(ADMIN).ok(204), delete(revoke_token))
        .op(
            Op::new("GET", "/v1/terraform/buckets/{bucket}/channels/{channel}", "Terraform state (v4) for terraform_remote_state's http backend: version, fingerprint, revoked, revoke_at, artifacts, labels"),
            get(terraform_state),
        )
        .op(
            Op::new("POST", "/v1/runtask", "HCP Terraform run task: answers at once, checks the plan, calls back")
                .access(Access::Signed).body(json!({"type": "object"})),
            post(runtask),
        )
        .op(
            Op::new("POST", "/v1/plan-check", "Check a plan JSON (terraform show -json) and answer directly")
                .body(json!({"type": "object"})),
            post(plan_check),
        )
        .op(Op::new("GET", "/metrics", "Prometheus metrics"), get(metrics))
        .op(Op::new("GET", "/v1/openapi.json", "This description").access(Access::Public), get(openapi_json))
}

async fn openapi_json() -> axum::Json<serde_json::Value> {
    static DOC: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(|| openapi::document(&api().ops));
    axum::Json(DOC.clone())
}

pub fn router(state: Arc<AppState>) -> Router {
    api()
        .router
        .route("/", get(ui::index))
        .route("/ui/buckets/{bucket}", get(ui::bucket))
        .route("/ui/versions/{id}", get(ui::version))
        .route("/ui/ancestry", get(ui::ancestry))
        .route("/ui/revocations", get(ui::revocations))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
