//! Shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The stage cache the builder's tests share (see crates/kiln-build/tests/common).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kiln/test-stages"))
}

/// `kiln init DIR/f`: a fresh copy of the example factory; returns its path.
pub fn init_factory(dir: &Path) -> PathBuf {
    let ok = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(dir)
        .args(["init", "f"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kiln init failed");
    dir.join("f")
}

/// `kiln --factory FACTORY ARGS…` as actor `tester` (no role from the environment).
pub fn kiln_in(factory: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(factory)
        .args(args)
        .env("KILN_ACTOR", "tester")
        .env_remove("KILN_ROLE")
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded (else both streams in the panic).
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The waves of a `kiln plan --format json`: `(image, reason)` per image.
pub fn plan_waves(plan: &serde_json::Value) -> Vec<Vec<(String, String)>> {
    plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["image"].as_str().unwrap().to_string(),
                        i["reason"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

pub const PUBLISH_VENV: &str = "/var/cache/kiln/venv-publish/bin";

/// moto's server on a free loopback port (AWS's stand-in); killed when dropped.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(format!("{PUBLISH_VENV}/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server: run scripts/host-deps.sh publish");
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(30),
                "moto did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Runs a boto3 snippet (with `ec2(region)` and `ssm(region)` defined) and parses its JSON.
    pub fn query(&self, code: &str) -> serde_json::Value {
        let script = format!(
            "import boto3, json\nkw = dict(endpoint_url='{}', aws_access_key_id='testing', aws_secret_access_key='testing')\nec2 = lambda r: boto3.client('ec2', region_name=r, **kw)\nssm = lambda r: boto3.client('ssm', region_name=r, **kw)\n{code}",
            self.url
        );
        let o = std::process::Command::new(format!("{PUBLISH_VENV}/python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
