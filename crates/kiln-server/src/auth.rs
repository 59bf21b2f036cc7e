//! Who is calling: a token from `Authorization: Bearer …`, or from HTTP Basic (the password, so
//! Terraform's http backend can send one as `password`), or nobody. Reads may be opened to
//! anonymous callers by configuration; every mutation needs a token whose role allows it, and
//! the registry records the token's name in the audit log.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use kiln_registry::{Actor, Role};

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Token(Actor),
}

/// The secret a request carries, if any.
fn credential(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Ok(Some(t.trim().to_string()));
    }
    if let Some(b) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| ApiError::unauthorized("the Basic credentials are not valid base64"))?;
        let (user, pass) = decoded.split_once(':').unwrap_or((&decoded, ""));
        let secret = if pass.is_empty() { user } else { pass };
        return Ok(Some(secret.to_string()));
    }
    Err(ApiError::unauthorized(
        "unsupported Authorization scheme: use Bearer (or Basic with the token as password)",
    ))
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = credential(&parts.headers)? else {
            return Ok(Caller::Anonymous);
        };
        match state.pool.get()?.authenticate(&secret)? {
            Some(actor) => Ok(Caller::Token(actor)),
            None => Err(ApiError::unauthorized(
                "the token is unknown, expired or revoked",
            )),
        }
    }
}

impl Caller {
    /// Reads: any token, or nobody when the server allows anonymous reads.
    pub fn read(&self, state: &AppState) -> Result<(), ApiError> {
        match self {
            Caller::Token(_) => Ok(()),
            Caller::Anonymous if state.config.anonymous_read => Ok(()),
            Caller::Anonymous => Err(ApiError::unauthorized("this server needs a token to read")),
        }
    }

    /// The actor, when its role is one of `roles` (admin always is).
    pub fn require(&self, roles: &[Role], action: &str) -> Result<Actor, ApiError> {
        match self {
            Caller::Anonymous => Err(ApiError::unauthorized(format!("{action} needs a token"))),
            Caller::Token(a) if a.role == Role::Admin || roles.contains(&a.role) => Ok(a.clone()),
            Caller::Token(a) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token `{}` has the {} role; {action} needs {}",
                    a.name,
                    a.role.as_str(),
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .chain(["admin"])
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            )
            .hint("create a token with that role: kiln token create NAME --role ROLE")),
        }
    }
}
