//! JSON over HTTPS with a bearer token: what Azure Resource Manager and the Compute Engine API
//! both speak. Each cloud adds its own way of waiting for long-running operations on top.

use std::time::Duration;

use serde_json::Value;

use crate::PublishError;

/// A management API reached with an OAuth bearer token.
#[derive(Clone)]
pub struct Rest {
    /// `https://management.azure.com`, `https://compute.googleapis.com`, or a test stand-in.
    pub base: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches logs.
        f.debug_struct("Rest").field("base", &self.base).finish()
    }
}

/// One answer: status, the headers a poller needs, and the JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Rest {
    pub fn new(base: &str, token: String) -> Rest {
        Rest {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(120))
                .build(),
        }
    }

    /// `path` is below the base (starting with `/`) or an absolute URL (a poll location).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, PublishError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/json");
        let resp = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(PublishError::Cloud(format!(
                    "{method} {}: {e}",
                    strip_query(&url)
                )));
            }
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|h| Some((h.clone(), resp.header(&h)?.to_string())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Like [`Rest::call`], but any status other than 2xx is an error naming the request and
    /// the service's own message. `404` is `Ok(None)` when `missing_ok`.
    pub fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        missing_ok: bool,
    ) -> Result<Option<Reply>, PublishError> {
        let r = self.call(method, path, body)?;
        if missing_ok && r.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&r.status) {
            return Err(PublishError::Cloud(format!(
                "{method} {}: HTTP {}: {}",
                strip_query(path),
                r.status,
                service_message(&r.body)
            )));
        }
        Ok(Some(r))
    }
}

/// A path without its query (api-version and the like are noise in an error).
fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |x| x.0)
}

/// `error.message` (both ARM and Google APIs put it there), else the body.
fn service_message(body: &Value) -> String {
    let e = &body["error"];
    match (
        e["code"].as_str().or(e["status"].as_str()),
        e["message"].as_str(),
    ) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (None, Some(m)) => m.to_string(),
        _ if body.is_null() => "(no body)".to_string(),
        _ => body.to_string(),
    }
}

/// A bearer token: from `env` when set, else from the cloud's CLI (`az`, `gcloud`), which keeps
/// the login (and CI's federated identity) where the platform team already manages it.
pub fn token(env: &str, cli: &str, args: &[&str]) -> Result<String, PublishError> {
    if let Ok(t) = std::env::var(env)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let out = std::process::Command::new(cli)
        .args(args)
        .output()
        .map_err(|e| {
            PublishError::Refused(format!(
                "no access token: {env} is not set and `{cli}` could not run ({e})"
            ))
        })?;
    let t = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || t.is_empty() {
        return Err(PublishError::Refused(format!(
            "no access token: {env} is not set and `{cli} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(t)
}
