//! The API's description, made from the same table that builds the router: a route cannot be
//! served without being documented, or documented without being served. `/v1/openapi.json`
//! serves it as OpenAPI 3.0.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::routing::MethodRouter;
use serde_json::{Value, json};

use crate::AppState;

/// Who may call an operation.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Any token, or nobody when reads are open.
    Read,
    /// Tokens with one of these roles (admin always).
    Roles(&'static [&'static str]),
    /// HCP Terraform's signed run task request.
    Signed,
    /// Everyone.
    Public,
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// JSON Schema of the request body.
    pub body: Option<Value>,
    /// The success status.
    pub ok: u16,
}

impl Op {
    pub const fn new(method: &'static str, path: &'static str, summary: &'static str) -> Op {
        Op {
            method,
            path,
            summary,
            access: Access::Read,
            query: &[],
            body: None,
            ok: 200,
        }
    }
    pub fn access(mut self, a: Access) -> Op {
        self.access = a;
        self
    }
    pub fn query(mut self, q: &'static [(&'static str, &'static str)]) -> Op {
        self.query = q;
        self
    }
    pub fn body(mut self, schema: Value) -> Op {
        self.body = Some(schema);
        self
    }
    pub fn ok(mut self, status: u16) -> Op {
        self.ok = status;
        self
    }
}

/// The router and its description, built together.
#[derive(Debug)]
pub struct Api {
    pub router: Router<Arc<AppState>>,
    pub ops: Vec<Op>,
}

impl Api {
    pub fn new() -> Api {
        Api {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    pub fn op(mut self, op: Op, handler: MethodRouter<Arc<AppState>>) -> Api {
        self.router = self.router.route(op.path, handler);
        self.ops.push(op);
        self
    }
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

/// A JSON object schema with required string properties and optional others.
pub fn object(required: &[(&str, &str)], optional: &[(&str, &str)]) -> Value {
    let mut props = serde_json::Map::new();
    for (name, ty) in required.iter().chain(optional) {
        props.insert(name.to_string(), json!({"type": ty}));
    }
    let mut schema = json!({"type": "object", "properties": props});
    // OpenAPI 3.0 wants `required` absent rather than empty.
    if !required.is_empty() {
        schema["required"] = json!(required.iter().map(|(n, _)| n).collect::<Vec<_>>());
    }
    schema
}

/// The OpenAPI 3.0 document.
pub fn document(ops: &[Op]) -> Value {
    let mut paths: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for op in ops {
        let mut params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(op.query.iter().map(|(name, desc)| {
            json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})
        }));
        let (security, who) = match op.access {
            Access::Read => (
                json!([{"bearer": []}, {"basic": []}]),
                "any token (or none when reads are open)".to_string(),
            ),
            Access::Roles(r) => (
                json!([{"bearer": []}]),
                format!(
                    "roles: {}",
                    r.iter()
                        .chain(&["admin"])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Access::Signed => (
                json!([]),
                "HCP Terraform, signed with X-TFC-Task-Signature".to_string(),
            ),
            Access::Public => (json!([]), "anyone".to_string()),
        };
        let mut responses = serde_json::Map::new();
        responses.insert(
            op.ok.to_string(),
            json!({"description": "success", "content": {"application/json": {}}}),
        );
        for (code, what) in [
            ("400", "the request is malformed; the body says what to fix"),
            ("401", "no token, or an unknown, expired or revoked one"),
            ("403", "the token's role may not do this"),
            ("404", "not found; the hint says where to look"),
        ] {
            responses.insert(
                code.into(),
                json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut o = json!({
            "summary": op.summary,
            "description": format!("Access: {who}."),
            "operationId": format!("{}{}", op.method.to_lowercase(), op.path.replace(['/', '{', '}', '-'], "_")),
            "parameters": params,
            "security": security,
            "responses": responses,
        });
        if let Some(b) = &op.body {
            o["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": b}}});
        }
        paths
            .entry(op.path)
            .or_default()
            .insert(op.method.to_lowercase(), o);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Kiln",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Golden images: buckets, versions, artifacts, channels, revocation, audit; Terraform state per channel; HCP Terraform run task.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a token from `kiln token create`"},
                "basic": {"type": "http", "scheme": "basic", "description": "the token as the password (Terraform's http backend)"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "status": {"type": "integer"}, "message": {"type": "string"}, "hint": {"type": "string", "nullable": true},
                }}}},
            },
        },
    })
}
