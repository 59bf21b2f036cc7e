//! The local stand-ins the publish tests run against, each on a free loopback port and killed
//! when dropped: moto (AWS), Azurite (Azure Blob storage), gcp-storage-emulator (Cloud Storage),
//! and [`Recorder`] for Azure Resource Manager and Google's Compute and Resource Manager APIs,
//! which have no emulator. `scripts/host-deps.sh publish` installs them. [`postgres::Postgres`]
//! is a throwaway PostgreSQL server for the registry tests (`scripts/host-deps.sh postgres`).

pub mod postgres;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python venv holding moto, gcp-storage-emulator and boto3.
pub const PUBLISH_VENV: &str = "/var/cache/kiln/venv-publish/bin";
/// Azurite's blob service, from npm.
pub const AZURITE: &str = "/var/cache/kiln/npm-azurite/node_modules/.bin/azurite-blob";
/// Azurite's documented development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A loopback port nobody listens on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for(port: u16, what: &str) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{what} did not start (run scripts/host-deps.sh publish)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(cmd: &mut Command, what: &str) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e} (run scripts/host-deps.sh publish)"))
}

/// A child process killed on drop.
#[derive(Debug)]
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's server (AWS's stand-in), in memory; [`Moto::kill`] stops it mid-test (fault tests).
#[derive(Debug)]
pub struct Moto {
    child: Option<Killed>,
    pub port: u16,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_on(free_port())
    }

    /// Starts (or restarts, empty) on `port`.
    pub fn start_on(port: u16) -> Moto {
        let child = spawn(
            Command::new(format!("{PUBLISH_VENV}/moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false"),
            "moto_server",
        );
        wait_for(port, "moto");
        Moto {
            child: Some(Killed(child)),
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Runs a boto3 snippet (with `ec2(region)`, `ssm(region)` and `ebs(region)` defined) and
    /// parses what it prints as JSON: the other side's view, through a different client.
    pub fn query(&self, code: &str) -> serde_json::Value {
        let script = format!(
            "import boto3, json\nkw = dict(endpoint_url='{}', aws_access_key_id='testing', aws_secret_access_key='testing')\nec2 = lambda r: boto3.client('ec2', region_name=r, **kw)\nssm = lambda r: boto3.client('ssm', region_name=r, **kw)\nebs = lambda r: boto3.client('ebs', region_name=r, **kw)\n{code}",
            self.url
        );
        python_json(&script)
    }
}

/// Runs a script with the publish venv's Python and parses its output as JSON.
pub fn python_json(script: &str) -> serde_json::Value {
    let o = Command::new(format!("{PUBLISH_VENV}/python"))
        .args(["-c", script])
        .output()
        .expect("the publish venv's python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON from the script")
}

/// Azurite's blob service, with its data in a temporary directory.
#[derive(Debug)]
pub struct Azurite {
    _child: Killed,
    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = spawn(
            Command::new(AZURITE)
                .args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--skipApiVersionCheck",
                    "--disableTelemetry",
                    "--silent",
                    "--location",
                ])
                .arg(dir.path()),
            "azurite",
        );
        wait_for(port, "azurite");
        Azurite {
            _child: Killed(child),
            endpoint: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
            _dir: dir,
        }
    }
}

/// gcp-storage-emulator, in memory; [`Gcs::kill`] stops it mid-test (fault tests).
#[derive(Debug)]
pub struct Gcs {
    child: Option<Killed>,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl Gcs {
    pub fn start() -> Gcs {
        Gcs::start_on(free_port())
    }

    /// Starts (or restarts) on `port`.
    pub fn start_on(port: u16) -> Gcs {
        let child = spawn(
            Command::new(format!("{PUBLISH_VENV}/gcp-storage-emulator")).args([
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--in-memory",
            ]),
            "gcp-storage-emulator",
        );
        wait_for(port, "gcp-storage-emulator");
        Gcs {
            child: Some(Killed(child)),
            port,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn kill(&mut self) {
        self.child = None;
    }

    /// Creates a bucket through the JSON API.
    pub fn create_bucket(&self, name: &str) {
        let script = format!(
            "import json, urllib.request\nreq = urllib.request.Request('{}/storage/v1/b?project=test', data=json.dumps({{'name': '{name}'}}).encode(), headers={{'Content-Type': 'application/json'}})\nprint(json.dumps(json.load(urllib.request.urlopen(req))['name']))",
            self.url
        );
        assert_eq!(python_json(&script), serde_json::json!(name));
    }

    /// The object's bytes over the JSON API, read by Python's urllib (not Kiln's client).
    pub fn download(&self, bucket: &str, object: &str) -> Vec<u8> {
        let o = Command::new(format!("{PUBLISH_VENV}/python"))
            .args([
                "-c",
                "import sys, urllib.parse, urllib.request\nu = sys.argv[1] + '/storage/v1/b/' + sys.argv[2] + '/o/' + urllib.parse.quote(sys.argv[3], safe='') + '?alt=media'\nsys.stdout.buffer.write(urllib.request.urlopen(u).read())",
                &self.url,
                bucket,
                object,
            ])
            .output()
            .expect("the publish venv's python");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }
}

/// The recording stand-in for Azure Resource Manager and Google's Compute Engine and Resource
/// Manager APIs (`recorder.py`): keeps enough state to answer reads after writes and records
/// every request.
#[derive(Debug)]
pub struct Recorder {
    _child: Killed,
    pub url: String,
}

impl Recorder {
    pub fn start() -> Recorder {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("recorder.py");
        let mut child = Command::new(format!("{PUBLISH_VENV}/python"))
            .arg(&script)
            .arg(AZURITE_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the publish venv's python");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("the recorder's port");
        let port: u16 = line.trim().parse().expect("a port number");
        Recorder {
            _child: Killed(child),
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every request so far: `{method, path, query, body, authorization}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let script = format!(
            "import json, urllib.request\nprint(urllib.request.urlopen('{}/_requests').read().decode())",
            self.url
        );
        python_json(&script).as_array().cloned().unwrap_or_default()
    }

    /// The requests with `method` whose path ends with `suffix`.
    pub fn matching(&self, method: &str, suffix: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r["method"] == method && r["path"].as_str().is_some_and(|p| p.ends_with(suffix))
            })
            .collect()
    }
}

/// A TCP proxy to a local port that forwards what the client sends at a limited rate and counts
/// it: an upload through it takes long enough to be interrupted at a chosen point (fault tests).
#[derive(Debug)]
pub struct Throttle {
    pub url: String,
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Set by [`Throttle::cut`]: the endpoint is gone.
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Throttle {
    /// Listens on a free port, forwarding to `127.0.0.1:to` at about `bytes_per_sec`.
    pub fn start(to: u16, bytes_per_sec: u64) -> Throttle {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = forwarded.clone();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (is_cut, sockets) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if is_cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                    // Dropping the only handle closes it: the client sees the service gone.
                    continue;
                };
                if let Ok(c) = client.try_clone() {
                    sockets.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                }
                let (mut c_in, mut s_out) = (
                    client.try_clone().expect("a socket"),
                    server.try_clone().expect("a socket"),
                );
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let started = Instant::now();
                    let mut sent = 0u64;
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n as u64;
                        count.fetch_add(n as u64, Ordering::Relaxed);
                        let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Throttle {
            url: format!("http://127.0.0.1:{port}"),
            forwarded,
            cut,
            open,
        }
    }

    /// The endpoint dies: every open connection is reset and new ones are closed at once. The
    /// service behind keeps its state, as a store behind a failed load balancer would.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Waits until `bytes` more than `from` were forwarded and `ready()` holds: the moment to
    /// interrupt an upload. Panics after a minute.
    pub fn wait_past(&self, from: u64, bytes: u64, ready: impl Fn() -> bool) {
        let t = Instant::now();
        while self.forwarded() - from < bytes || !ready() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the upload never got going"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Bytes forwarded from clients so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }
}
