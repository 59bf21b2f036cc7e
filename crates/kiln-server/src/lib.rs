//! Kiln's server: the registry over HTTP for the people and tools around the factory. A REST
//! API under `/v1` with token roles, a Terraform state document per channel (consumed by the
//! built-in `terraform_remote_state` data source), HCP Terraform's run task, Prometheus metrics
//! and the web UI, all from one binary and one registry file.

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod plancheck;
pub mod pool;
pub mod runtask;
pub mod terraform;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use kiln_registry::RegistryError;
use kiln_spec::{ChannelName, Policy};

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
    pub fn new(registry: &Path, config: Config) -> Result<Arc<AppState>, RegistryError> {
        Ok(Arc::new(AppState {
            pool: pool::Pool::open(registry)?,
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

pub fn router(state: Arc<AppState>) -> Router {
    use api::*;
    Router::new()
        .route("/v1/buckets", get(buckets))
        .route("/v1/buckets/{bucket}", get(bucket))
        .route(
            "/v1/buckets/{bucket}/versions",
            get(versions).post(create_version),
        )
        .route("/v1/buckets/{bucket}/channels", get(channels))
        .route(
            "/v1/buckets/{bucket}/channels/{channel}",
            get(channel).put(assign),
        )
        .route(
            "/v1/buckets/{bucket}/channels/{channel}/history",
            get(history),
        )
        .route(
            "/v1/buckets/{bucket}/channels/{channel}/rollback",
            post(rollback),
        )
        .route(
            "/v1/buckets/{bucket}/channels/{channel}/restricted",
            put(restrict),
        )
        .route(
            "/v1/buckets/{bucket}/channels/{channel}/artifact",
            get(channel_artifact),
        )
        .route("/v1/versions/{id}", get(version))
        .route("/v1/versions/{id}/ancestry", get(ancestry))
        .route("/v1/versions/{id}/artifacts", post(add_artifact))
        .route("/v1/versions/{id}/complete", post(complete))
        .route("/v1/versions/{id}/revoke", post(revoke))
        .route("/v1/versions/{id}/restore", post(restore))
        .route("/v1/versions/{id}/approvals", get(approvals).post(approve))
        .route("/v1/versions/{id}/reports/{kind}", get(report))
        .route("/v1/audit", get(audit))
        .route("/v1/tokens", get(tokens).post(create_token))
        .route("/v1/tokens/{name}", axum::routing::delete(revoke_token))
        .route(
            "/v1/terraform/buckets/{bucket}/channels/{channel}",
            get(terraform_state),
        )
        .route("/v1/runtask", post(runtask))
        .route("/v1/plan-check", post(plan_check))
        .route("/metrics", get(metrics))
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
