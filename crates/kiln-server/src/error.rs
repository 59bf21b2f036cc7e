//! Error bodies that say what went wrong and what to do about it:
//! `{"error": {"status": 404, "message": "…", "hint": "…"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kiln_registry::RegistryError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub hint: Option<String>,
    /// Sent as `WWW-Authenticate` on 401.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            hint: None,
            challenge: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            challenge: Some("Bearer realm=\"kiln\", Basic realm=\"kiln\""),
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
        .hint("send `Authorization: Bearer kiln_…` with a token from `kiln token create`")
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let message = e.to_string();
        match e {
            RegistryError::NotFound { what, .. } => ApiError::not_found(message).hint(match what {
                "bucket" => "list buckets with GET /v1/buckets",
                "version" => "list a bucket's versions with GET /v1/buckets/{bucket}/versions",
                _ => "check the name",
            }),
            RegistryError::Invalid(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message),
            RegistryError::Forbidden { .. } => ApiError::new(StatusCode::FORBIDDEN, message)
                .hint("use a token with the role this action needs"),
            RegistryError::Busy(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
                .hint("the registry is busy with another writer: retry"),
            _ => {
                tracing::error!(error = %message, "registry error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "status": self.status.as_u16(),
            "message": self.message,
            "hint": self.hint,
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(c) = self.challenge {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
