//! Two `kiln serve` processes on one PostgreSQL registry behave as one registry: promotions,
//! revocations and restores sent to both at once keep every invariant, and a scheduled
//! revocation takes effect exactly once however many requests on either server see it come due.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{init_factory, kiln_in, ok};
use kiln_emulators::postgres::Postgres;
use kiln_registry::{Actor, Location, Registry, Role, Status};
use serde_json::{Value, json};

/// A `kiln serve` killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(f: &Path) -> Server {
    let (child, line, url) = common::spawn_serve(f);
    assert!(
        line.contains("(registry postgres://"),
        "serving the PostgreSQL registry: {line}"
    );
    Server { child, url }
}

fn token(f: &Path, name: &str, role: &str) -> String {
    ok(&kiln_in(f, &["token", "create", name, "--role", role]))
        .trim()
        .to_string()
}

/// A request's status and body; errors are answers too.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = agent
        .request(method, url)
        .set("Authorization", &format!("Bearer {token}"));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    (status, resp.into_json().unwrap_or(Value::Null))
}

#[test]
fn two_servers_on_one_postgres_registry_are_one_registry() {
    let dir = tempfile::tempdir().unwrap();
    let f = init_factory(dir.path());
    let url = Postgres::shared().fresh_database();
    let hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    let hcl = hcl.replace(
        "registry { url = \"sqlite://.kiln/registry.db\" }",
        &format!("registry {{ url = \"{url}\" }}"),
    );
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();

    // History to work on: six base versions, each with a child on it.
    let mut r = Registry::open_at(&Location::Postgres(url.clone())).unwrap();
    let ci = Actor::new("ci", Role::Ci);
    r.ensure_bucket(&ci, "base").unwrap();
    r.ensure_bucket(&ci, "web").unwrap();
    let mut pairs = Vec::new();
    for _ in 0..6 {
        let b = r.start_version(&ci, "base", "fp", &[], json!({})).unwrap();
        r.complete(&ci, &b).unwrap();
        let w = r
            .start_version(&ci, "web", "fp", std::slice::from_ref(&b), json!({}))
            .unwrap();
        r.complete(&ci, &w).unwrap();
        pairs.push((b, w));
    }
    // Tokens made by the CLI land in the same database the servers read.
    let platform = token(&f, "pat", "platform");
    let security = token(&f, "sam", "security");
    let servers = [serve(&f), serve(&f)];

    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (agent, pairs, servers) = (&agent, &pairs, &servers);
            let (platform, security) = (&platform, &security);
            s.spawn(move || {
                for i in 0..15 {
                    let base = &servers[(t + i) % 2].url;
                    let (b, w) = &pairs[(t * 7 + i) % pairs.len()];
                    let (status, body) = match (t + i) % 4 {
                        0 => call(
                            agent,
                            "PUT",
                            &format!("{base}/v1/buckets/base/channels/dev"),
                            platform,
                            Some(json!({"version": b, "reason": "load"})),
                        ),
                        1 => call(
                            agent,
                            "PUT",
                            &format!("{base}/v1/buckets/web/channels/dev"),
                            platform,
                            Some(json!({"version": w, "reason": "load"})),
                        ),
                        2 => call(
                            agent,
                            "POST",
                            &format!("{base}/v1/versions/{b}/revoke"),
                            security,
                            Some(json!({"reason": "load"})),
                        ),
                        _ => call(
                            agent,
                            "POST",
                            &format!("{base}/v1/versions/{b}/restore"),
                            security,
                            None,
                        ),
                    };
                    // Refusals (promoting a revoked version, restoring a live one) are fine;
                    // a database error or a busy registry is not.
                    assert!(status < 500, "{status}: {body}");
                }
            });
        }
    });

    let mut r = Registry::open_at(&Location::Postgres(url.clone())).unwrap();
    assert!(r.verify_audit().unwrap() > 50);
    for bucket in ["base", "web"] {
        for c in r.channels(bucket).unwrap() {
            if let Some(v) = c.version {
                assert_eq!(
                    r.version(&v).unwrap().status,
                    Status::Active,
                    "{bucket}/{} points at {v}",
                    c.name
                );
            }
        }
    }
    for (b, w) in &pairs {
        if r.version(b).unwrap().status == Status::Revoked {
            assert_eq!(
                r.version(w).unwrap().status,
                Status::Revoked,
                "the revocation of {b} did not reach {w}"
            );
        }
    }

    // A revocation scheduled through one server comes due while both are being read.
    let (target, child) = pairs
        .iter()
        .find(|(b, _)| r.version(b).unwrap().status == Status::Active)
        .cloned()
        .expect("an active base version");
    let at = kiln_registry::clock::format_millis(kiln_registry::clock::system_clock()() + 1500);
    let (status, body) = call(
        &agent,
        "POST",
        &format!("{}/v1/versions/{target}/revoke", servers[0].url),
        &security,
        Some(json!({"reason": "scheduled", "at": at})),
    );
    assert_eq!(status, 200, "{body}");
    let until = Instant::now() + Duration::from_secs(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (agent, servers, platform, target) = (&agent, &servers, &platform, &target);
            s.spawn(move || {
                while Instant::now() < until {
                    let (status, body) = call(
                        agent,
                        "GET",
                        &format!("{}/v1/versions/{target}", servers[t % 2].url),
                        platform,
                        None,
                    );
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let effective: Vec<_> = r
        .audit_entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "version.revoke.effective" && e.subject.ends_with(&target))
        .collect();
    assert_eq!(effective.len(), 1, "took effect once: {effective:?}");
    assert_eq!(r.version(&target).unwrap().status, Status::Revoked);
    assert_eq!(
        r.version(&child).unwrap().status,
        Status::Revoked,
        "and reached its child"
    );
    r.verify_audit().unwrap();
}
