//! The web UI: server-rendered HTML from the same registry reads as the API, no scripts and no
//! build step. Buckets with their channels; a bucket's versions; a version with its artifacts,
//! ancestry, test results, SBOM summary, findings and audit trail; the out-of-date children;
//! revocations. Revoked versions are marked everywhere they appear (class `revoked`, a red badge).
//! Reads need a token (HTTP Basic: any user name, the token as password) unless reads are open.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use kiln_registry::{Registry, Status, Version};
use serde_json::Value;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

type St = State<Arc<AppState>>;

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#dde2ea; --bg:#f6f7f9; --accent:#2458c6; --bad:#b42318; --warn:#b54708; --ok:#067647; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color:var(--fg); background:var(--bg); }
header { background:#14213d; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; }
header a { color:#dfe7ff; text-decoration:none; } header b { font-size:18px; margin-right:12px; }
main { max-width:1200px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:22px; margin:4px 0 16px; } h2 { font-size:17px; margin:28px 0 8px; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f6; font-weight:600; font-size:13px; color:var(--muted); }
td code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:13px; }
a { color:var(--accent); }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#e8edf5; color:var(--muted); }
.badge.active { background:#dcfae6; color:var(--ok); }
.badge.revoked { background:var(--bad); color:#fff; }
.badge.revocation_scheduled { background:#fef0c7; color:var(--warn); }
.badge.failed { background:#fee4e2; color:var(--bad); }
tr.revoked td { background:#fff1f0; } tr.revoked td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
.banner { padding:12px 16px; border-radius:6px; margin:0 0 16px; font-weight:600; }
.banner.revoked { background:var(--bad); color:#fff; }
.banner.revocation_scheduled { background:#fef0c7; color:var(--warn); }
.muted { color:var(--muted); } .grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; }
.card .n { font-size:24px; font-weight:700; }
"#;

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · Kiln</title><style>{STYLE}</style></head><body><header><b>Kiln</b><a href=\"/\">Buckets</a><a href=\"/ui/ancestry\">Ancestry</a><a href=\"/ui/revocations\">Revocations</a><a href=\"/v1/openapi.json\">API</a></header><main>{body}</main></body></html>",
        esc(title)
    ))
}

fn badge(st: Status) -> String {
    format!(
        "<span class=\"badge {0}\" data-status=\"{0}\">{1}</span>",
        st.as_str(),
        st.as_str().replace('_', " ").to_uppercase()
    )
}

fn vlink(id: &str) -> String {
    format!(
        "<a class=\"mono\" href=\"/ui/versions/{0}\">{0}</a>",
        esc(id)
    )
}

/// Errors as a page (with the API's status code).
fn fail(e: ApiError) -> Response {
    let status = e.status;
    let mut resp = (
        status,
        page(
            "Error",
            &format!(
                "<h1>{}</h1><p>{}</p><p class=\"muted\">{}</p>",
                status,
                esc(&e.message),
                esc(e.hint.as_deref().unwrap_or_default())
            ),
        ),
    )
        .into_response();
    if let Some(c) = e.challenge {
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static(c),
        );
    }
    resp
}

fn guarded(
    s: &AppState,
    c: &Caller,
    f: impl FnOnce(&mut Registry) -> Result<Html<String>, ApiError>,
) -> Response {
    let r = c
        .read(s)
        .and_then(|_| s.pool.get().map_err(ApiError::from))
        .and_then(|mut r| f(&mut r));
    match r {
        Ok(h) => h.into_response(),
        Err(e) => fail(e),
    }
}

pub async fn index(State(s): St, c: Caller) -> Response {
    guarded(&s, &c, |r| {
        let mut rows = String::new();
        for b in r.buckets()? {
            let channels = r.channels(&b)?;
            let count = r.versions(&b)?.len();
            let mut chs = String::new();
            for ch in &channels {
                let (v, st) = match &ch.version {
                    Some(id) => (vlink(id), badge(r.version(id)?.status)),
                    None => ("<span class=\"muted\">empty</span>".into(), String::new()),
                };
                let _ = write!(
                    chs,
                    "<div><b>{}</b>{} → {v} {st}</div>",
                    esc(&ch.name),
                    if ch.restricted {
                        " <span class=\"badge\">restricted</span>"
                    } else {
                        ""
                    }
                );
            }
            let _ = write!(
                rows,
                "<tr><td><a href=\"/ui/buckets/{0}\"><b>{0}</b></a></td><td>{count}</td><td>{chs}</td></tr>",
                esc(&b)
            );
        }
        Ok(page(
            "Buckets",
            &format!(
                "<h1>Buckets</h1><table id=\"buckets\"><tr><th>Bucket</th><th>Versions</th><th>Channels</th></tr>{rows}</table>"
            ),
        ))
    })
}

fn version_rows(vs: &[Version]) -> String {
    let mut rows = String::new();
    for v in vs {
        let _ = write!(
            rows,
            "<tr class=\"{}\" data-version=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            v.status.as_str(),
            esc(&v.id),
            vlink(&v.id),
            badge(v.status),
            esc(&v.created_at),
            esc(&v.fingerprint[..v.fingerprint.len().min(16)]),
            v.revocation
                .as_ref()
                .map(|x| esc(&x.reason))
                .unwrap_or_default()
        );
    }
    rows
}

pub async fn bucket(State(s): St, c: Caller, Path(b): Path<String>) -> Response {
    guarded(&s, &c, |r| {
        if !r.buckets()?.contains(&b) {
            return Err(ApiError::not_found(format!("bucket `{b}` not found")));
        }
        let mut vs = r.versions(&b)?;
        vs.sort_by(|x, y| y.id.cmp(&x.id));
        let mut chs = String::new();
        for ch in r.channels(&b)? {
            let _ = write!(
                chs,
                "<tr><td><b>{}</b></td><td>{}</td><td>{}</td></tr>",
                esc(&ch.name),
                ch.version.as_deref().map(vlink).unwrap_or_default(),
                if ch.restricted {
                    "restricted (security role)"
                } else {
                    ""
                }
            );
        }
        Ok(page(
            &b,
            &format!(
                "<h1>{}</h1><h2>Channels</h2><table><tr><th>Channel</th><th>Version</th><th></th></tr>{chs}</table><h2>Versions</h2><table id=\"versions\"><tr><th>Version</th><th>Status</th><th>Created</th><th>Fingerprint</th><th>Revocation</th></tr>{}</table>",
                esc(&b),
                version_rows(&vs)
            ),
        ))
    })
}

fn report_cards(r: &mut Registry, id: &str) -> Result<String, ApiError> {
    let test = r.report(id, "test")?;
    let scan = r.report(id, "scan")?;
    let sbom = r.report(id, "sbom")?;
    let num = |v: Option<&Value>| v.map(|x| x.to_string()).unwrap_or_else(|| "—".into());
    let mut out = String::from("<div class=\"grid\">");
    // The test report is kiln-test's: one result per check with its status.
    match test.as_ref().and_then(|t| t.get("results")).and_then(Value::as_array) {
        Some(results) => {
            let count = |st: &str| results.iter().filter(|r| r["status"] == st).count();
            let _ = write!(
                out,
                "<div class=\"card\" id=\"tests\"><div class=\"muted\">Tests</div><div class=\"n\">{} passed · {} failed</div>{}</div>",
                count("pass"),
                count("fail") + count("error"),
                test.as_ref()
                    .and_then(|t| t["accel"].as_str())
                    .map(|a| format!("<div class=\"muted\">booted under {}</div>", esc(a)))
                    .unwrap_or_default()
            );
        }
        None => out.push_str("<div class=\"card\" id=\"tests\"><div class=\"muted\">Tests</div><div class=\"n\">not run</div></div>"),
    }
    // The SBOM is the CycloneDX document: packages are the components with a purl.
    let packages = sbom
        .as_ref()
        .and_then(|s| s.get("components"))
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|x| x.get("purl").is_some())
                .count()
                .to_string()
        });
    let _ = write!(
        out,
        "<div class=\"card\" id=\"sbom\"><div class=\"muted\">SBOM</div><div class=\"n\">{} packages</div></div>",
        packages.unwrap_or_else(|| "—".into())
    );
    let summary = scan.as_ref().and_then(|s| s.get("summary"));
    let _ = write!(
        out,
        "<div class=\"card\" id=\"findings\"><div class=\"muted\">Findings</div><div class=\"n\">{} vulnerable · {} open · {} secrets</div></div></div>",
        num(summary.and_then(|s| s.get("vulnerable"))),
        num(summary.and_then(|s| s.get("open"))),
        num(summary.and_then(|s| s.get("secrets")))
    );
    if let Some(list) = scan
        .as_ref()
        .and_then(|s| s.get("vulnerabilities"))
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        out.push_str("<h2>Vulnerabilities</h2><table><tr><th>Vulnerability</th><th>Package</th><th>Verdict</th><th>Severity</th><th>Fixed in</th></tr>");
        for f in list.iter().take(200) {
            let g = |k: &str| esc(f.get(k).and_then(Value::as_str).unwrap_or_default());
            let _ = write!(
                out,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                g("vulnerability"),
                g("package"),
                g("verdict"),
                g("severity"),
                g("fixed_version")
            );
        }
        out.push_str("</table>");
    }
    Ok(out)
}

pub async fn version(State(s): St, c: Caller, Path(id): Path<String>) -> Response {
    guarded(&s, &c, |r| {
        let v = r.version(&id)?;
        let mut body = format!(
            "<h1>{} <span class=\"mono\">{}</span> {}</h1>",
            esc(&v.bucket),
            esc(&v.id),
            badge(v.status)
        );
        if let Some(rv) = &v.revocation {
            let what = if v.status == Status::Revoked {
                "Revoked"
            } else {
                "Scheduled for revocation"
            };
            let _ = write!(
                body,
                "<div class=\"banner {}\" id=\"revocation\">{what} at {} by {}: {}{}</div>",
                v.status.as_str(),
                esc(&rv.at),
                esc(&rv.by),
                esc(&rv.reason),
                rv.inherited_from
                    .as_deref()
                    .map(|p| format!(" (inherited from {})", esc(p)))
                    .unwrap_or_default()
            );
        }
        let _ = write!(
            body,
            "<p class=\"muted\">created {} · completed {} · fingerprint <span class=\"mono\">{}</span></p>",
            esc(&v.created_at),
            esc(v.completed_at.as_deref().unwrap_or("—")),
            esc(&v.fingerprint)
        );
        body.push_str(&report_cards(r, &id)?);
        body.push_str("<h2>Artifacts</h2><table id=\"artifacts\"><tr><th>Platform</th><th>Region</th><th>Id</th><th>Format</th><th>Size</th></tr>");
        for a in &v.artifacts {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.platform),
                esc(&a.region),
                esc(&a.external_id),
                esc(&a.format),
                a.size
            );
        }
        body.push_str("</table><h2>Ancestry</h2><table id=\"ancestry\"><tr><th>Parents</th><th>Children</th></tr><tr><td>");
        for p in &v.parents {
            let _ = write!(body, "<div>{}</div>", vlink(p));
        }
        body.push_str("</td><td>");
        for ch in r.children(&id)? {
            let st = r.version(&ch)?.status;
            let _ = write!(body, "<div>{} {}</div>", vlink(&ch), badge(st));
        }
        body.push_str("</td></tr></table><h2>Audit trail</h2><table id=\"audit\"><tr><th>#</th><th>At</th><th>Who</th><th>Action</th><th>Subject</th></tr>");
        for e in r.audit_mentioning(&id, 500)? {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                e.seq,
                esc(&e.at),
                esc(&e.actor),
                esc(&e.action),
                esc(&e.subject)
            );
        }
        body.push_str("</table>");
        Ok(page(&format!("{} {}", v.bucket, v.id), &body))
    })
}

pub async fn ancestry(State(s): St, c: Caller) -> Response {
    guarded(&s, &c, |r| {
        let mut rows = String::new();
        for o in r.out_of_date()? {
            let _ = write!(
                rows,
                "<tr class=\"outdated\"><td>{} {}</td><td>{} {}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.child_bucket),
                vlink(&o.child),
                esc(&o.parent_bucket),
                vlink(&o.parent),
                esc(&o.channel),
                o.now
                    .as_deref()
                    .map(vlink)
                    .unwrap_or_else(|| "empty".into())
            );
        }
        let mut tree = String::new();
        for b in r.buckets()? {
            for v in r.versions(&b)? {
                if v.parents.is_empty() {
                    continue;
                }
                for p in &v.parents {
                    let pv = r.version(p)?;
                    let _ = write!(
                        tree,
                        "<tr class=\"{}\"><td>{} {} {}</td><td>{} {} {}</td></tr>",
                        v.status.as_str(),
                        esc(&v.bucket),
                        vlink(&v.id),
                        badge(v.status),
                        esc(&pv.bucket),
                        vlink(p),
                        badge(pv.status)
                    );
                }
            }
        }
        let empty = if rows.is_empty() {
            "<p class=\"muted\" id=\"none-outdated\">Every child is built on what its parent's channel points at.</p>"
        } else {
            ""
        };
        Ok(page(
            "Ancestry",
            &format!(
                "<h1>Ancestry</h1><h2>Out-of-date children</h2>{empty}<table id=\"outdated\"><tr><th>Child</th><th>Built on</th><th>Parent channel</th><th>Channel now</th></tr>{rows}</table><h2>Children and parents</h2><table id=\"tree\"><tr><th>Child</th><th>Parent</th></tr>{tree}</table>"
            ),
        ))
    })
}

pub async fn revocations(State(s): St, c: Caller) -> Response {
    guarded(&s, &c, |r| {
        let mut vs = Vec::new();
        for b in r.buckets()? {
            vs.extend(
                r.versions(&b)?
                    .into_iter()
                    .filter(|v| v.revocation.is_some()),
            );
        }
        vs.sort_by(|x, y| y.id.cmp(&x.id));
        Ok(page(
            "Revocations",
            &format!(
                "<h1>Revocations</h1><table id=\"revocations\"><tr><th>Version</th><th>Status</th><th>Created</th><th>Fingerprint</th><th>Reason</th></tr>{}</table>",
                version_rows(&vs)
            ),
        ))
    })
}
