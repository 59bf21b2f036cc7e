//! Webhook notifications through the CLI against a real HTTP receiver on 127.0.0.1: events for
//! a created, completed and promoted version and the child the promotion left out of date,
//! signed with HMAC-SHA256 (checked with openssl, not with Kiln's code), a failed delivery
//! retried under the same id, a dead receiver and a missing secret recorded and shown by
//! `kiln notify status` while the commands themselves succeed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{kiln_in, ok};
use kiln_registry::{Actor, Registry, Role};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver that answers 500 to the first request and 200 to the rest.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut all = g.lock().unwrap();
            let status = if all.is_empty() {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            all.push(Received { headers, body });
            drop(all);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
            );
        }
    });
    (url, got)
}

/// HMAC-SHA256 by openssl: an implementation Kiln did not write.
fn openssl_hmac(key: &str, body: &[u8]) -> String {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl is needed for this test");
    c.stdin.take().unwrap().write_all(body).unwrap();
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256={}", text.split_whitespace().next().unwrap())
}

#[test]
fn events_are_signed_retried_and_failures_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let f = common::init_factory(tmp.path());
    let (url, got) = receiver();
    // A port nobody listens on: bind, note it, close.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let mut hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    hcl.push_str(&format!(
        "\nnotify \"webhook\" \"chat\" {{\n  url        = \"{url}\"\n  secret_env = \"KILN_TEST_HOOK_SECRET\"\n}}\n\
         notify \"webhook\" \"down\" {{\n  url    = \"{dead}\"\n  events = [\"version.promoted\"]\n}}\n\
         notify \"webhook\" \"nosecret\" {{\n  url        = \"{url}\"\n  secret_env = \"KILN_TEST_UNSET_SECRET\"\n  events     = [\"version.promoted\"]\n}}\n"
    ));
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    let kiln = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.arg("--factory")
            .arg(&f)
            .args(args)
            .env("KILN_ACTOR", "tester")
            .env("KILN_TEST_HOOK_SECRET", "s3cret")
            .env_remove("KILN_TEST_UNSET_SECRET")
            .env_remove("KILN_ROLE");
        c.output().unwrap()
    };
    ok(&kiln_in(&f, &["validate"]));

    let ci = Actor::new("ci", Role::Ci);
    let (v1, w1) = {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        r.create_bucket(&ci, "base-debian12", "").unwrap();
        r.create_bucket(&ci, "app-web", "").unwrap();
        let v1 = r
            .start_version(&ci, "base-debian12", "fp1", &[], json!({}))
            .unwrap();
        r.complete(&ci, &v1).unwrap();
        r.promote(&ci, "base-debian12", &v1, "dev", "first")
            .unwrap();
        let w1 = r
            .start_version(
                &ci,
                "app-web",
                "fpw",
                std::slice::from_ref(&v1),
                json!({"parent_channel": "dev"}),
            )
            .unwrap();
        r.complete(&ci, &w1).unwrap();
        (v1, w1)
    };
    // Webhooks start at the end of the log: history from before they existed is not sent.
    ok(&kiln(&["notify", "deliver", "--wait-secs", "0"]));
    assert!(got.lock().unwrap().is_empty());

    let v2 = {
        let mut r = Registry::open(&f.join(".kiln/registry.db")).unwrap();
        let v2 = r
            .start_version(&ci, "base-debian12", "fp2", &[], json!({}))
            .unwrap();
        r.complete(&ci, &v2).unwrap();
        v2
    };
    // The promotion succeeds whatever the receivers do.
    ok(&kiln(&["promote", "base-debian12", &v2, "--to", "dev"]));

    let got = got.lock().unwrap().clone();
    // chat: created, completed, promoted, outdated (+1 retry of the first); nosecret: nothing sent.
    assert_eq!(got.len(), 5, "{got:#?}");
    // The refused first delivery comes again later under the same id (the others do not wait
    // for it: order is by the payload's audit seq, not by arrival).
    let first_id = got[0].header("X-Kiln-Delivery").unwrap();
    assert_eq!(
        got.iter()
            .filter(|r| r.header("X-Kiln-Delivery") == Some(first_id))
            .count(),
        2,
        "a retry keeps its id"
    );
    let mut accepted: Vec<(i64, Value)> = Vec::new();
    for r in &got[1..] {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.header("X-Kiln-Event"), body["type"].as_str());
        assert_eq!(r.header("X-Kiln-Delivery"), body["id"].as_str());
        assert_eq!(
            r.header("X-Kiln-Signature-256").unwrap(),
            openssl_hmac("s3cret", &r.body),
            "signature of {body}"
        );
        assert_eq!(body["factory"], "acme");
        accepted.push((body["audit"]["seq"].as_i64().unwrap(), body));
    }
    accepted.sort_by_key(|(seq, b)| (*seq, b["id"].as_str().unwrap().to_string()));
    let types: Vec<(String, String)> = accepted
        .iter()
        .map(|(_, b)| {
            (
                b["type"].as_str().unwrap().to_string(),
                b["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("version.created".to_string(), v2.clone()),
            ("version.completed".into(), v2.clone()),
            ("version.promoted".into(), v2.clone()),
            ("version.outdated".into(), w1.clone()),
        ]
    );
    let outdated = &accepted[3].1;
    assert_eq!(outdated["data"]["built_on"], v1.as_str());
    assert_eq!(outdated["bucket"], "app-web");

    // The failures are recorded, with why, and shown.
    let status: Value =
        serde_json::from_str(&ok(&kiln(&["notify", "status", "--format", "json"]))).unwrap();
    let open = status["undelivered"].as_array().unwrap();
    let down = open
        .iter()
        .find(|d| d["target"] == "down")
        .expect("down's delivery is pending");
    assert_eq!(down["status"], "pending");
    assert!(down["attempts"].as_i64().unwrap() >= 1);
    assert!(!down["last_error"].as_str().unwrap().is_empty());
    let nosecret = open.iter().find(|d| d["target"] == "nosecret").unwrap();
    assert!(
        nosecret["last_error"]
            .as_str()
            .unwrap()
            .contains("KILN_TEST_UNSET_SECRET is not set"),
        "{nosecret}"
    );
    let text = ok(&kiln(&["notify", "status"]));
    assert!(text.contains("delivered 4, pending 0, dead 0"), "{text}");
}
