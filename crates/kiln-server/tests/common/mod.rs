//! A seeded registry and a real `kiln-server` on 127.0.0.1, for the server's tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_registry::{Actor, Artifact, Registry, Role};
use kiln_server::{AppState, Config};
use serde_json::Value;

/// The AMIs the Terraform fixtures use: web's and worker's first image are live, worker's new
/// image (the update plan) is revoked, and `ami-00000000000000bad` is unknown.
pub const WEB_AMI: &str = "ami-0a1b2c3d4e5f60718";
pub const WORKER_AMI: &str = "ami-0fedcba9876543210";
pub const REVOKED_AMI: &str = "ami-0fedcba9876543299";
pub const UNTRACKED_AMI: &str = "ami-00000000000000bad";

pub struct Seeded {
    /// base: v1 (worker AMI, on `dev`), v2 (revoked), v3 (web AMI, on `dev` and `production`).
    pub base: Vec<String>,
    /// app: one version built on base v3.
    pub app: String,
    /// Token secrets by role name.
    pub tokens: BTreeMap<&'static str, String>,
}

fn artifact(platform: &str, region: &str, id: &str) -> Artifact {
    Artifact {
        platform: platform.into(),
        region: region.into(),
        external_id: id.into(),
        format: String::new(),
        size: 0,
        sha256: String::new(),
    }
}

pub fn seed(r: &mut Registry) -> Seeded {
    let admin = Actor::new("seed", Role::Admin);
    r.ensure_bucket(&admin, "base").unwrap();
    let mut base = Vec::new();
    for (i, ami) in [WORKER_AMI, REVOKED_AMI, WEB_AMI].iter().enumerate() {
        let id = r
            .start_version(
                &admin,
                "base",
                &format!("fp{i}"),
                &[],
                serde_json::json!({"labels": {"os": "debian-12"}}),
            )
            .unwrap();
        r.add_artifact(&admin, &id, &artifact("aws", "us-east-1", ami))
            .unwrap();
        r.add_artifact(
            &admin,
            &id,
            &artifact("file", "", &format!("/store/base/{i}/disk.qcow2")),
        )
        .unwrap();
        r.complete(&admin, &id).unwrap();
        r.promote(&admin, "base", &id, "dev", "seed").unwrap();
        base.push(id);
    }
    r.promote(&admin, "base", &base[2], "production", "seed")
        .unwrap();
    // Reports in the shapes the pipeline stores: kiln-test's report, the scan stage's report,
    // the CycloneDX document.
    let results: Vec<_> = (0..86)
        .map(|i| serde_json::json!({"id": format!("cis-{i}"), "status": "pass"}))
        .collect();
    let components: Vec<_> = (0..174)
        .map(|i| serde_json::json!({"type": "library", "name": format!("p{i}"), "purl": format!("pkg:deb/debian/p{i}@1")}))
        .collect();
    for (kind, body) in [
        (
            "sbom",
            serde_json::json!({"bomFormat": "CycloneDX", "components": components}),
        ),
        (
            "scan",
            serde_json::json!({"summary": {"vulnerable": 0, "open": 1, "secrets": 0},
                "vulnerabilities": [{"vulnerability": "CVE-2011-3374", "package": "apt", "verdict": "open", "severity": "negligible"}]}),
        ),
        (
            "test",
            serde_json::json!({"subject": "base", "accel": "tcg", "results": results}),
        ),
    ] {
        r.attach_report(&admin, &base[2], kind, &body).unwrap();
    }
    r.revoke(&admin, &base[1], "CVE-2099-0001 in openssl", None, false)
        .unwrap();
    r.ensure_bucket(&admin, "app").unwrap();
    let app = r
        .start_version(
            &admin,
            "app",
            "fpa",
            &[base[2].clone()],
            serde_json::json!({}),
        )
        .unwrap();
    r.add_artifact(
        &admin,
        &app,
        &artifact("aws", "us-east-1", "ami-0aaaaaaaaaaaaaaa1"),
    )
    .unwrap();
    r.complete(&admin, &app).unwrap();
    r.promote(&admin, "app", &app, "dev", "seed").unwrap();
    let mut tokens = BTreeMap::new();
    for role in [
        Role::Admin,
        Role::Platform,
        Role::Security,
        Role::Ci,
        Role::Consumer,
    ] {
        let secret = r
            .create_token(&admin, &format!("{}-token", role.as_str()), role, None)
            .unwrap();
        tokens.insert(role.as_str(), secret);
    }
    Seeded { base, app, tokens }
}

/// A running server; stops when dropped.
pub struct Server {
    pub url: String,
    pub state: Arc<AppState>,
    pub seeded: Seeded,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(config: Config) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let seeded = seed(&mut Registry::open(&path).unwrap());
        let state = AppState::new(&path, config).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                kiln_server::serve(listener, st, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Server {
            url: format!("http://{addr}"),
            state,
            seeded,
            dir,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn token(&self, role: &str) -> &str {
        &self.seeded.tokens[role]
    }

    pub fn registry_path(&self) -> PathBuf {
        self.dir.path().join("registry.db")
    }

    /// (status, JSON body or Null) of one request; `token` None sends no Authorization.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = ureq::request(method, &format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.send_string(&b.to_string()),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Terraform fixtures beside the project, else the vendored copy.
pub fn terraform_fixtures() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../../shared/fixtures/terraform");
    if shared.join("plan-create.json").is_file() {
        return shared;
    }
    manifest.join("tests/data/terraform")
}
