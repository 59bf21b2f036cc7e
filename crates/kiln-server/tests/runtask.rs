//! The run task against a stand-in for HCP Terraform (a real HTTP server on loopback that serves
//! the plan JSON to the bearer token it issued and records the callback): signed and unsigned
//! requests, the callback's JSON:API body, and the fixtures' plans evaluated against a registry
//! where one image is revoked and one untracked.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch};
use common::{REVOKED_AMI, Server, UNTRACKED_AMI, terraform_fixtures};
use kiln_server::plancheck::Verdict as V;
use kiln_server::runtask::sign;
use kiln_server::{Config, Untracked};
use serde_json::{Value, json};

const KEY: &str = "run-task-hmac-key";
const ACCESS: &str = "hcp-access-token-123";

/// The HCP side: `/plan` (bearer-checked) and `/callback` (recorded).
struct Hcp {
    url: String,
    callbacks: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    _rt: tokio::runtime::Runtime,
}

fn hcp(plan: Value) -> Hcp {
    let callbacks: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cb = callbacks.clone();
    let app = Router::new()
        .route(
            "/plan",
            get(move |h: HeaderMap| {
                let plan = plan.clone();
                async move {
                    if h.get("authorization").and_then(|v| v.to_str().ok())
                        != Some(&format!("Bearer {ACCESS}"))
                    {
                        return (StatusCode::UNAUTHORIZED, String::new());
                    }
                    (StatusCode::OK, plan.to_string())
                }
            }),
        )
        .route(
            "/callback",
            patch(move |h: HeaderMap, body: Bytes| {
                let cb = cb.clone();
                async move {
                    cb.lock()
                        .unwrap()
                        .push((h, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                    StatusCode::OK
                }
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    Hcp {
        url,
        callbacks,
        _rt: rt,
    }
}

fn request(h: &Hcp, token: &str) -> Value {
    json!({
        "payload_version": 1,
        "stage": "post_plan",
        "access_token": token,
        "capabilities": {"outcomes": true},
        "organization_name": "acme",
        "plan_json_api_url": format!("{}/plan", h.url),
        "task_result_callback_url": format!("{}/callback", h.url),
        "task_result_enforcement_level": "mandatory",
        "task_result_id": "taskrs-1",
        "run_id": "run-1",
        "workspace_name": "web",
        "is_speculative": false,
    })
}

fn post(s: &Server, body: &Value, signature: Option<&str>) -> u16 {
    let mut r = ureq::post(&format!("{}/v1/runtask", s.url))
        .set("Content-Type", "application/json")
        .set("User-Agent", "TFC/1.0 (+https://app.terraform.io; TFC)");
    if let Some(sig) = signature {
        r = r.set("X-TFC-Task-Signature", sig);
    }
    match r.send_string(&body.to_string()) {
        Ok(resp) => resp.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    }
}

fn wait_callback(h: &Hcp) -> (HeaderMap, Value) {
    let start = Instant::now();
    loop {
        if let Some(c) = h.callbacks.lock().unwrap().first().cloned() {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no callback within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn plan(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(terraform_fixtures().join(name)).unwrap())
        .unwrap()
}

fn signed_server(untracked: Untracked) -> Server {
    Server::start(Config {
        runtask_hmac_key: Some(KEY.into()),
        untracked,
        ..Config::default()
    })
}

#[test]
fn unsigned_or_badly_signed_requests_are_refused_and_never_call_back() {
    let s = signed_server(Untracked::Fail);
    let h = hcp(plan("plan-create.json"));
    let body = request(&h, ACCESS);
    assert_eq!(post(&s, &body, None), 401);
    assert_eq!(post(&s, &body, Some("")), 401);
    assert_eq!(
        post(
            &s,
            &body,
            Some(&sign("another-key", body.to_string().as_bytes()))
        ),
        401
    );
    // A signature of different bytes (the body re-serialised with a field changed) fails too.
    let mut other = body.clone();
    other["run_id"] = json!("run-2");
    assert_eq!(
        post(&s, &body, Some(&sign(KEY, other.to_string().as_bytes()))),
        401
    );
    // HCP's verification request when the task is created: 200, no callback.
    let test = request(&h, "test-token");
    assert_eq!(
        post(&s, &test, Some(&sign(KEY, test.to_string().as_bytes()))),
        200
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.callbacks.lock().unwrap().is_empty());
}

#[test]
fn create_plan_fails_on_the_untracked_image() {
    let s = signed_server(Untracked::Fail);
    let h = hcp(plan("plan-create.json"));
    let body = request(&h, ACCESS);
    assert_eq!(
        post(&s, &body, Some(&sign(KEY, body.to_string().as_bytes()))),
        200
    );
    let (headers, cb) = wait_callback(&h);
    assert_eq!(
        headers["authorization"],
        format!("Bearer {ACCESS}").as_str()
    );
    assert_eq!(headers["content-type"], "application/vnd.api+json");
    let d = &cb["data"];
    assert_eq!(d["type"], "task-results");
    assert_eq!(d["attributes"]["status"], "failed", "{cb:#}");
    let msg = d["attributes"]["message"].as_str().unwrap();
    assert!(
        msg.contains("1 of 3 image id(s)") && msg.chars().count() <= 1000,
        "{msg}"
    );
    let outcomes = d["relationships"]["outcomes"]["data"].as_array().unwrap();
    assert_eq!(outcomes.len(), 1, "{cb:#}");
    let o = &outcomes[0];
    assert_eq!(o["type"], "task-result-outcomes");
    assert_eq!(
        o["attributes"]["outcome-id"],
        "terraform_data.untracked.input.image_id"
    );
    assert!(
        o["attributes"]["body"]
            .as_str()
            .unwrap()
            .contains(UNTRACKED_AMI)
    );
    assert_eq!(
        o["attributes"]["tags"]["Status"][0],
        json!({"label": "Untracked", "level": "error"})
    );
}

#[test]
fn untracked_only_warns_when_configured_so() {
    let s = signed_server(Untracked::Warn);
    let h = hcp(plan("plan-create.json"));
    let body = request(&h, ACCESS);
    assert_eq!(
        post(&s, &body, Some(&sign(KEY, body.to_string().as_bytes()))),
        200
    );
    let (_, cb) = wait_callback(&h);
    assert_eq!(cb["data"]["attributes"]["status"], "passed", "{cb:#}");
    let o = &cb["data"]["relationships"]["outcomes"]["data"][0]["attributes"];
    assert_eq!(o["tags"]["Status"][0]["level"], "warning");
}

#[test]
fn update_plan_fails_on_the_revoked_image_and_ignores_unchanged_resources() {
    let s = signed_server(Untracked::Fail);
    let h = hcp(plan("plan-update.json"));
    let body = request(&h, ACCESS);
    assert_eq!(
        post(&s, &body, Some(&sign(KEY, body.to_string().as_bytes()))),
        200
    );
    let (_, cb) = wait_callback(&h);
    assert_eq!(cb["data"]["attributes"]["status"], "failed", "{cb:#}");
    let outcomes = cb["data"]["relationships"]["outcomes"]["data"]
        .as_array()
        .unwrap();
    // Only `worker` changes; `untracked` and `web` are no-ops in this plan.
    assert_eq!(outcomes.len(), 1, "{cb:#}");
    let o = &outcomes[0]["attributes"];
    assert_eq!(o["outcome-id"], "terraform_data.worker.input.image_id");
    let body = o["body"].as_str().unwrap();
    assert!(
        body.contains(REVOKED_AMI) && body.contains("revoked: CVE-2099-0001 in openssl"),
        "{body}"
    );
    assert_eq!(o["tags"]["Status"][0]["label"], "Revoked");
}

#[test]
fn a_plan_that_cannot_be_fetched_fails_the_task_with_the_reason() {
    let s = signed_server(Untracked::Fail);
    let h = hcp(plan("plan-create.json"));
    // HCP would refuse a wrong access token: the task fails and says why.
    let body = request(&h, "expired-token");
    assert_eq!(
        post(&s, &body, Some(&sign(KEY, body.to_string().as_bytes()))),
        200
    );
    let (_, cb) = wait_callback(&h);
    assert_eq!(cb["data"]["attributes"]["status"], "failed");
    let msg = cb["data"]["attributes"]["message"].as_str().unwrap();
    assert!(
        msg.contains("fetching the plan JSON") && msg.contains("401"),
        "{msg}"
    );
}

#[test]
fn plan_check_on_the_fixtures() {
    let s = Server::start(Config::default());
    let mut r = kiln_registry::Registry::open(&s.registry_path()).unwrap();
    let create =
        kiln_server::plancheck::check(&mut r, &plan("plan-create.json"), Untracked::Fail).unwrap();
    assert!(!create.passed);
    assert_eq!(create.resources, 3);
    let verdicts: Vec<(&str, kiln_server::plancheck::Verdict)> = create
        .usages
        .iter()
        .map(|u| (u.address.as_str(), u.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("terraform_data.untracked", V::Untracked),
            ("terraform_data.web", V::Ok),
            ("terraform_data.worker", V::Ok)
        ]
    );
    let update =
        kiln_server::plancheck::check(&mut r, &plan("plan-update.json"), Untracked::Fail).unwrap();
    assert_eq!(update.resources, 1);
    assert_eq!(update.usages[0].verdict, V::Revoked);
    assert_eq!(update.usages[0].action, "update");
}

#[test]
fn scheduled_revocations_warn_until_their_time_then_fail() {
    let s = Server::start(Config::default());
    let mut r = kiln_registry::Registry::open(&s.registry_path()).unwrap();
    let sec = kiln_registry::Actor::new("sec", kiln_registry::Role::Security);
    // web's image is scheduled for revocation two seconds from now.
    let at = kiln_registry::clock::format_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 2_000,
    );
    r.revoke(&sec, &s.seeded.base[2], "end of life", Some(&at), false)
        .unwrap();
    let web = |r: &mut kiln_registry::Registry| {
        let c =
            kiln_server::plancheck::check(r, &plan("plan-create.json"), Untracked::Warn).unwrap();
        let u = c
            .usages
            .iter()
            .find(|u| u.address == "terraform_data.web")
            .unwrap()
            .clone();
        (c.passed, u.verdict)
    };
    assert_eq!(web(&mut r), (true, V::RevocationScheduled));
    std::thread::sleep(Duration::from_millis(2_200));
    assert_eq!(
        web(&mut r),
        (false, V::Revoked),
        "a scheduled time that has passed is a revocation"
    );
}
