//! The web UI in headless Chromium, driven through chromedriver's WebDriver protocol: the pages
//! render the seeded registry, a revoked version is visibly marked (its badge's computed colour
//! is the alarm red), and every page is screenshotted at a laptop's 1366 px width into
//! `$CARGO_TARGET_TMPDIR/ui-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Server, WEB_AMI};
use kiln_registry::{Actor, Registry, Role};
use kiln_server::Config;
use serde_json::{Value, json};

/// The W3C web element identifier key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session; both are gone when this is dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (package chromium-driver): run scripts/host-deps.sh server");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1366,900", format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            _profile: profile,
        };
        let v = b.send("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("a session").to_string();
        b
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let v: Value = resp.into_json().unwrap();
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn go(&self, url: &str) {
        self.send("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    fn find(&self, css: &str) -> String {
        let v = self.send(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{css}`: {v}"))
            .to_string()
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.send("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn css(&self, selector: &str, property: &str) -> String {
        let e = self.find(selector);
        self.send(
            "GET",
            &self.s(&format!("/element/{e}/css/{property}")),
            None,
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    fn displayed(&self, css: &str) -> bool {
        let e = self.find(css);
        self.send("GET", &self.s(&format!("/element/{e}/displayed")), None) == json!(true)
    }

    /// Saves a PNG screenshot; returns its width.
    fn screenshot(&self, name: &str) -> u32 {
        let b64 = self.send("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        println!("screenshot: {}", path.display());
        u32::from_be_bytes(png[16..20].try_into().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn pages_render_the_registry_and_mark_revocations() {
    let s = Server::start(Config {
        anonymous_read: true,
        ..Config::default()
    });
    let [v1, v2, v3] = [&s.seeded.base[0], &s.seeded.base[1], &s.seeded.base[2]];
    // production moves back to v1: the app version built on v3 is now out of date.
    Registry::open(&s.registry_path())
        .unwrap()
        .promote(
            &Actor::new("ops", Role::Admin),
            "base",
            v1,
            "production",
            "back",
        )
        .unwrap();
    let b = Browser::start();

    b.go(&format!("{}/", s.url));
    let buckets = b.text("#buckets");
    assert!(
        buckets.contains("base") && buckets.contains("app"),
        "{buckets}"
    );
    assert!(buckets.contains(v1.as_str()), "{buckets}");
    assert!(b.screenshot("buckets") >= 1300);

    b.go(&format!("{}/ui/buckets/base", s.url));
    let revoked_row = format!("tr[data-version=\"{v2}\"]");
    assert!(b.find(&format!("{revoked_row}.revoked")).len() > 1);
    assert_eq!(b.text(&format!("{revoked_row} .badge")), "REVOKED");
    assert_eq!(
        b.css(&format!("{revoked_row} .badge"), "background-color"),
        "rgba(180, 35, 24, 1)",
        "the revoked badge is alarm red"
    );
    assert_eq!(
        b.text(&format!("tr[data-version=\"{v3}\"] .badge")),
        "ACTIVE"
    );
    b.screenshot("bucket-base");

    b.go(&format!("{}/ui/versions/{v2}", s.url));
    assert!(b.displayed("#revocation"));
    let banner = b.text("#revocation");
    assert!(
        banner.starts_with("Revoked") && banner.contains("CVE-2099-0001 in openssl"),
        "{banner}"
    );
    b.screenshot("version-revoked");

    b.go(&format!("{}/ui/versions/{v3}", s.url));
    assert_eq!(b.text("#tests .n"), "86 passed · 0 failed");
    assert_eq!(b.text("#sbom .n"), "174 packages");
    assert_eq!(b.text("#findings .n"), "0 vulnerable · 1 open · 0 secrets");
    assert!(b.text("body").contains("CVE-2011-3374"));
    assert!(b.text("#artifacts").contains(WEB_AMI));
    assert!(b.text("#ancestry").contains(s.seeded.app.as_str()));
    let audit = b.text("#audit");
    assert!(
        audit.contains("version.start") && audit.contains("channel.assign"),
        "{audit}"
    );
    b.screenshot("version");

    b.go(&format!("{}/ui/ancestry", s.url));
    let outdated = b.text("#outdated");
    assert!(
        outdated.contains(s.seeded.app.as_str()) && outdated.contains(v1.as_str()),
        "{outdated}"
    );
    b.screenshot("ancestry");

    b.go(&format!("{}/ui/revocations", s.url));
    assert!(b.text("#revocations").contains(v2.as_str()));
    assert_eq!(
        b.css(&format!("{revoked_row} td:first-child"), "box-shadow"),
        "rgb(180, 35, 24) 4px 0px 0px 0px inset"
    );
    b.screenshot("revocations");
}

#[test]
fn pages_ask_for_credentials_when_reads_are_closed() {
    let s = Server::start(Config::default());
    let err = ureq::get(&format!("{}/", s.url)).call().unwrap_err();
    let ureq::Error::Status(401, resp) = err else {
        panic!("{err}")
    };
    assert!(resp.header("www-authenticate").unwrap().contains("Basic"));
    // A browser's basic-auth answer (token as password) opens the page.
    let page = ureq::get(&format!("{}/ui/revocations", s.url))
        .set(
            "Authorization",
            &format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("me:{}", s.token("consumer")))
            ),
        )
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains(&s.seeded.base[1]));
    assert!(!page.contains("<script"), "no scripts needed");
}
