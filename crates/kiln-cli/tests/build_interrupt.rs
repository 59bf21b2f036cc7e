//! Ctrl-C during a build: kiln stops its commands, removes its work and exits 130, leaving no
//! mount, process or work directory behind. Needs root (it really builds).

mod common;

use common::cache_dir;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_during_provisioning_cleans_up() {
    let uid = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        uid.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "needs root"
    );

    let tmp = tempfile::tempdir().unwrap();
    let kiln = env!("CARGO_BIN_EXE_kiln");
    let factory = common::init_factory(tmp.path());
    let script = factory.join("images/base-debian12/harden.sh");
    let marker = format!("{:?}", std::time::SystemTime::now());
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str(&format!("# {marker}\nsleep 300\n"));
    std::fs::write(&script, text).unwrap();

    let mut child = Command::new(kiln)
        .args(["build", "base-debian12", "--no-test", "--factory"])
        .arg(&factory)
        .env("KILN_CACHE_DIR", cache_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("provisioner 1") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(600))
        .expect("provisioning started");
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let cache = cache_dir();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(cache.to_str().unwrap()))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "{mounts:?}");
    let work: Vec<_> = std::fs::read_dir(cache.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(work.is_empty(), "{work:?}");
    let sleeping = Command::new("pgrep")
        .args(["-f", "sleep 300"])
        .output()
        .unwrap();
    assert!(
        sleeping.stdout.is_empty(),
        "a provisioner process survived: {}",
        String::from_utf8_lossy(&sleeping.stdout)
    );
    assert!(
        !Path::new(&factory)
            .join(".kiln/artifacts/base-debian12/latest")
            .exists(),
        "nothing was published"
    );
}
