//! Every route of the /v1 API against every role: reads for any token (and nobody when reads
//! are open), each mutation for exactly the roles the issue gives it (admin always), 401 without
//! a token, 403 with the wrong one; pagination; error bodies that say what to fix.

mod common;

use common::{Server, WEB_AMI};
use kiln_server::Config;
use serde_json::{Value, json};

const ROLES: [&str; 5] = ["admin", "platform", "security", "ci", "consumer"];

fn reads(s: &Server) -> Vec<(&'static str, String, Option<Value>)> {
    let v3 = &s.seeded.base[2];
    vec![
        ("GET", "/v1/buckets".into(), None),
        ("GET", "/v1/buckets/base".into(), None),
        ("GET", "/v1/buckets/base/versions".into(), None),
        ("GET", "/v1/buckets/base/channels".into(), None),
        ("GET", "/v1/buckets/base/channels/dev".into(), None),
        ("GET", "/v1/buckets/base/channels/dev/history".into(), None),
        (
            "GET",
            "/v1/buckets/base/channels/production/artifact?platform=aws&region=us-east-1".into(),
            None,
        ),
        ("GET", format!("/v1/versions/{v3}"), None),
        ("GET", format!("/v1/versions/{v3}/ancestry"), None),
        ("GET", format!("/v1/versions/{v3}/approvals"), None),
        ("GET", format!("/v1/versions/{v3}/reports/sbom"), None),
        ("GET", format!("/v1/versions/{v3}/reports/findings"), None),
        ("GET", format!("/v1/versions/{v3}/reports/tests"), None),
        ("GET", "/v1/audit".into(), None),
        (
            "GET",
            "/v1/terraform/buckets/base/channels/production".into(),
            None,
        ),
        (
            "POST",
            "/v1/plan-check".into(),
            Some(json!({"resource_changes": []})),
        ),
        ("GET", "/metrics".into(), None),
    ]
}

#[test]
fn reads_need_a_token_unless_opened() {
    let s = Server::start(Config::default());
    for (m, path, body) in reads(&s) {
        let (st, b) = s.call(m, &path, None, body.as_ref());
        assert_eq!(st, 401, "{m} {path} without a token: {b}");
        assert!(
            b["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("kiln token create"),
            "{b}"
        );
        let (st, _) = s.call(m, &path, Some("kiln_not_a_real_token"), body.as_ref());
        assert_eq!(st, 401, "{m} {path} with an unknown token");
        for role in ROLES {
            let (st, b) = s.call(m, &path, Some(s.token(role)), body.as_ref());
            assert_eq!(st, 200, "{m} {path} as {role}: {b}");
        }
    }
    // Admin-only reads.
    for role in ["platform", "security", "ci", "consumer"] {
        let (st, b) = s.call("GET", "/v1/tokens", Some(s.token(role)), None);
        assert_eq!(st, 403, "{role}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("admin"),
            "{b}"
        );
    }
    let (st, b) = s.call("GET", "/v1/tokens", Some(s.token("admin")), None);
    assert_eq!(st, 200);
    let names: Vec<&str> = b["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 5);
    assert!(!b.to_string().contains("kiln_"), "no secret is ever listed");

    let open = Server::start(Config {
        anonymous_read: true,
        ..Config::default()
    });
    for (m, path, body) in reads(&open) {
        let (st, b) = open.call(m, &path, None, body.as_ref());
        assert_eq!(st, 200, "{m} {path} anonymously on an open server: {b}");
    }
    // Opening reads opens nothing else.
    let (st, _) = open.call(
        "POST",
        "/v1/buckets/base/versions",
        None,
        Some(&json!({"fingerprint": "x"})),
    );
    assert_eq!(st, 401);
    let (st, _) = open.call("GET", "/v1/tokens", None, None);
    assert_eq!(st, 401);
}

/// One mutation: who may do it, and the request.
struct Mutation {
    method: &'static str,
    path: String,
    body: Option<Value>,
    allowed: &'static [&'static str],
    success: u16,
}

fn check(s: &Server, m: &Mutation) {
    let (st, b) = s.call(m.method, &m.path, None, m.body.as_ref());
    assert_eq!(st, 401, "{} {} anonymously: {b}", m.method, m.path);
    for role in ROLES {
        if role == "admin" || m.allowed.contains(&role) {
            continue;
        }
        let (st, b) = s.call(m.method, &m.path, Some(s.token(role)), m.body.as_ref());
        assert_eq!(st, 403, "{} {} as {role}: {b}", m.method, m.path);
        assert!(
            b["error"]["hint"].as_str().unwrap().contains("--role"),
            "{b}"
        );
    }
    let role = m.allowed[0];
    let (st, b) = s.call(m.method, &m.path, Some(s.token(role)), m.body.as_ref());
    assert_eq!(st, m.success, "{} {} as {role}: {b}", m.method, m.path);
}

#[test]
fn each_mutation_takes_exactly_its_roles_and_is_audited() {
    let s = Server::start(Config::default());
    let [v1, v2, v3] = [
        s.seeded.base[0].clone(),
        s.seeded.base[1].clone(),
        s.seeded.base[2].clone(),
    ];

    // ci creates a version, adds an artifact, completes it.
    check(
        &s,
        &Mutation {
            method: "POST",
            path: "/v1/buckets/base/versions".into(),
            body: Some(json!({"fingerprint": "fp-new", "parents": []})),
            allowed: &["ci"],
            success: 201,
        },
    );
    let (_, list) = s.call(
        "GET",
        "/v1/buckets/base/versions?status=running",
        Some(s.token("consumer")),
        None,
    );
    let new = list["versions"][0]["id"].as_str().unwrap().to_string();
    check(
        &s,
        &Mutation {
            method: "POST",
            path: format!("/v1/versions/{new}/artifacts"),
            body: Some(
                json!({"platform": "aws", "region": "eu-west-1", "external_id": "ami-0123456789abcdef0", "format": "", "size": 0, "sha256": ""}),
            ),
            allowed: &["ci"],
            success: 201,
        },
    );
    check(
        &s,
        &Mutation {
            method: "POST",
            path: format!("/v1/versions/{new}/complete"),
            body: None,
            allowed: &["ci"],
            success: 200,
        },
    );
    // platform and security assign and roll back unrestricted channels, and approve.
    check(
        &s,
        &Mutation {
            method: "PUT",
            path: "/v1/buckets/base/channels/test".into(),
            body: Some(json!({"version": v3, "reason": "qa"})),
            allowed: &["platform", "security"],
            success: 200,
        },
    );
    check(
        &s,
        &Mutation {
            method: "POST",
            path: "/v1/buckets/base/channels/dev/rollback".into(),
            body: Some(json!({"reason": "bad"})),
            allowed: &["platform", "security"],
            success: 200,
        },
    );
    check(
        &s,
        &Mutation {
            method: "POST",
            path: format!("/v1/versions/{v3}/approvals"),
            body: None,
            allowed: &["platform", "security"],
            success: 201,
        },
    );
    // security restricts channels, revokes and restores.
    check(
        &s,
        &Mutation {
            method: "PUT",
            path: "/v1/buckets/base/channels/production/restricted".into(),
            body: Some(json!({"restricted": true})),
            allowed: &["security"],
            success: 200,
        },
    );
    check(
        &s,
        &Mutation {
            method: "POST",
            path: format!("/v1/versions/{v1}/revoke"),
            body: Some(json!({"reason": "CVE-2099-0002"})),
            allowed: &["security"],
            success: 200,
        },
    );
    check(
        &s,
        &Mutation {
            method: "POST",
            path: format!("/v1/versions/{v2}/restore"),
            body: None,
            allowed: &["security"],
            success: 200,
        },
    );
    // admin manages tokens.
    check(
        &s,
        &Mutation {
            method: "POST",
            path: "/v1/tokens".into(),
            body: Some(json!({"name": "deploy-bot", "role": "consumer"})),
            allowed: &["admin"],
            success: 201,
        },
    );
    check(
        &s,
        &Mutation {
            method: "DELETE",
            path: "/v1/tokens/deploy-bot".into(),
            body: None,
            allowed: &["admin"],
            success: 204,
        },
    );

    // A restricted channel refuses platform even though platform may assign channels.
    let (st, b) = s.call(
        "PUT",
        "/v1/buckets/base/channels/production",
        Some(s.token("platform")),
        Some(&json!({"version": v3})),
    );
    assert_eq!(st, 403, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("restricted"),
        "{b}"
    );

    // Every mutation is in the audit log under the token's name.
    let (_, audit) = s.call(
        "GET",
        "/v1/audit?limit=1000",
        Some(s.token("consumer")),
        None,
    );
    let by: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (actor, action) in [
        ("ci-token", "version.start"),
        ("ci-token", "version.complete"),
        ("platform-token", "channel.assign"),
        ("platform-token", "version.approve"),
        ("security-token", "channel.restrict"),
        ("security-token", "version.revoke"),
        ("security-token", "version.restore"),
        ("admin-token", "token.create"),
        ("admin-token", "token.revoke"),
    ] {
        assert!(
            by.contains(&(actor.to_string(), action.to_string())),
            "{actor} {action} not audited: {by:?}"
        );
    }
}

#[test]
fn a_token_made_through_the_api_works_until_deleted() {
    let s = Server::start(Config::default());
    let admin = Some(s.token("admin"));
    let (st, b) = s.call(
        "POST",
        "/v1/tokens",
        admin,
        Some(&json!({"name": "tf-reader", "role": "consumer"})),
    );
    assert_eq!(st, 201, "{b}");
    let secret = b["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kiln_"));
    assert_eq!(s.call("GET", "/v1/buckets", Some(&secret), None).0, 200);
    assert_eq!(
        s.call(
            "POST",
            "/v1/versions/x/revoke",
            Some(&secret),
            Some(&json!({"reason": "r"}))
        )
        .0,
        403
    );
    assert_eq!(s.call("DELETE", "/v1/tokens/tf-reader", admin, None).0, 204);
    let (st, b) = s.call("GET", "/v1/buckets", Some(&secret), None);
    assert_eq!(st, 401, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("revoked"),
        "{b}"
    );
    // Deleting it again says what is wrong.
    let (st, b) = s.call("DELETE", "/v1/tokens/tf-reader", admin, None);
    assert_eq!(st, 404, "{b}");
}

#[test]
fn versions_page_with_tokens_and_filter() {
    let s = Server::start(Config::default());
    for i in 0..23 {
        let (st, b) = s.call(
            "POST",
            "/v1/buckets/many/versions",
            Some(s.token("ci")),
            Some(&json!({"fingerprint": format!("f{i}")})),
        );
        assert_eq!(st, 201, "{b}");
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &token {
            Some(t) => format!("/v1/buckets/many/versions?page_size=10&page_token={t}"),
            None => "/v1/buckets/many/versions?page_size=10".to_string(),
        };
        let (st, b) = s.call("GET", &q, Some(s.token("consumer")), None);
        assert_eq!(st, 200, "{b}");
        pages += 1;
        seen.extend(
            b["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_string()),
        );
        match b["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 23);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 23, "no version twice");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");

    let (_, b) = s.call(
        "GET",
        "/v1/buckets/base/versions?status=revoked",
        Some(s.token("consumer")),
        None,
    );
    let ids: Vec<&str> = b["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [s.seeded.base[1].as_str()]);
    let (_, b) = s.call(
        "GET",
        "/v1/buckets/base/versions?channel=production",
        Some(s.token("consumer")),
        None,
    );
    let ids: Vec<&str> = b["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [s.seeded.base[2].as_str()]);
}

#[test]
fn errors_say_what_to_fix() {
    let s = Server::start(Config::default());
    let t = Some(s.token("admin"));
    let cases: Vec<(&str, String, Option<Value>, u16, &str)> = vec![
        (
            "GET",
            "/v1/buckets/nope".into(),
            None,
            404,
            "GET /v1/buckets",
        ),
        (
            "GET",
            "/v1/buckets/nope/versions".into(),
            None,
            404,
            "GET /v1/buckets",
        ),
        (
            "GET",
            "/v1/buckets/base/versions?page_size=0".into(),
            None,
            400,
            "1 to 100",
        ),
        (
            "GET",
            "/v1/buckets/base/versions?status=gone".into(),
            None,
            400,
            "revocation_scheduled",
        ),
        ("GET", "/v1/versions/01NOPE".into(), None, 404, "versions"),
        (
            "GET",
            "/v1/buckets/base/channels/nope".into(),
            None,
            404,
            "GET /v1/buckets/base/channels",
        ),
        (
            "GET",
            "/v1/buckets/base/channels/dev/artifact".into(),
            None,
            400,
            "platform=",
        ),
        (
            "GET",
            "/v1/buckets/base/channels/dev/artifact?platform=azure&region=x".into(),
            None,
            404,
            "/v1/versions/",
        ),
        (
            "POST",
            "/v1/buckets/base/versions".into(),
            Some(json!({"nope": 1})),
            400,
            "openapi",
        ),
        (
            "POST",
            "/v1/tokens".into(),
            Some(json!({"name": "x", "role": "root"})),
            400,
            "consumer",
        ),
        ("GET", "/v1/nothing-here".into(), None, 404, "openapi"),
    ];
    for (m, path, body, status, hint) in cases {
        let (st, b) = s.call(m, &path, t, body.as_ref());
        assert_eq!(st, status, "{m} {path}: {b}");
        let text = format!("{} {}", b["error"]["message"], b["error"]["hint"]);
        assert!(text.contains(hint), "{m} {path}: `{hint}` not in {text}");
        assert_eq!(b["error"]["status"], status);
    }
    // A revocation needs a reason, and a version belongs to its own bucket.
    let v = &s.seeded.base[0];
    let (st, b) = s.call(
        "POST",
        &format!("/v1/versions/{v}/revoke"),
        t,
        Some(&json!({"reason": " "})),
    );
    assert_eq!(st, 400, "{b}");
    let (st, b) = s.call(
        "PUT",
        "/v1/buckets/app/channels/dev",
        t,
        Some(&json!({"version": v})),
    );
    assert_eq!(st, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to base"),
        "{b}"
    );
}

#[test]
fn artifact_lookup_in_hcp_packer_shape() {
    let s = Server::start(Config::default());
    let (st, b) = s.call(
        "GET",
        "/v1/buckets/base/channels/production/artifact?platform=aws&region=us-east-1",
        Some(s.token("consumer")),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(b["external_identifier"], WEB_AMI);
    assert_eq!(b["version_id"], s.seeded.base[2]);
    // dev had v1, v2, v3 in turn; v2's revocation left it on v3.
    let (_, b) = s.call(
        "GET",
        "/v1/buckets/base/channels/dev/artifact?platform=aws&region=us-east-1",
        Some(s.token("consumer")),
        None,
    );
    assert_eq!(b["version_id"], s.seeded.base[2]);
}

#[test]
fn metrics_count_routes_versions_builds_and_revocations() {
    let s = Server::start(Config::default());
    let t = Some(s.token("consumer"));
    for _ in 0..3 {
        s.call(
            "GET",
            "/v1/buckets/base/channels/production/artifact?platform=aws&region=us-east-1",
            t,
            None,
        );
    }
    s.call("GET", "/v1/buckets/nope", t, None);
    let resp = ureq::get(&format!("{}/metrics", s.url))
        .set("Authorization", &format!("Bearer {}", s.token("consumer")))
        .call()
        .unwrap();
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let text = resp.into_string().unwrap();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    has(
        r#"kiln_http_requests_total{method="GET",route="/v1/buckets/{bucket}/channels/{channel}/artifact",status="200"} 3"#,
    );
    has(r#"kiln_http_requests_total{method="GET",route="/v1/buckets/{bucket}",status="404"} 1"#);
    has(
        r#"kiln_http_request_duration_seconds_count{method="GET",route="/v1/buckets/{bucket}/channels/{channel}/artifact"} 3"#,
    );
    has(
        r#"kiln_http_request_duration_seconds_bucket{method="GET",route="/v1/buckets/{bucket}/channels/{channel}/artifact",le="+Inf"} 3"#,
    );
    has(r#"kiln_versions{bucket="base",status="active"} 2"#);
    has(r#"kiln_versions{bucket="base",status="revoked"} 1"#);
    has(r#"kiln_versions{bucket="app",status="active"} 1"#);
    has(r#"kiln_builds_total{bucket="base"} 3"#);
    has("kiln_revocations_total 1");
    assert!(text.contains("# TYPE kiln_http_request_duration_seconds histogram"));
    assert!(text.ends_with('\n'));
}
