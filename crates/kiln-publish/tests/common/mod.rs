//! moto on loopback and test disks, for the publish tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_publish::aws::Conn;
use kiln_publish::aws::ebs::BLOCK;
use sha2::{Digest, Sha256};

const MOTO: &str = "/var/cache/kiln/venv-publish/bin/moto_server";

/// moto on a free loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(MOTO)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server: run scripts/host-deps.sh publish");
        let url = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto { child, url }
    }

    /// A connection to moto in `region`.
    pub fn conn_in(&self, region: &str) -> Conn {
        Conn {
            region: region.into(),
            endpoint: Some(self.url.clone()),
            static_credentials: Some(("testing".into(), "testing".into())),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sparse disk of `mib` MiB (plus a partial tail) with data in a few places: first blocks
/// (boot), a run in the middle, one byte near the end.
pub fn disk(dir: &Path, mib: u64) -> (PathBuf, String, u64) {
    let path = dir.join("disk.raw");
    let size = mib * 1024 * 1024 + 4096;
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    let mut seed = 0x6b69_6c6eu64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    f.write_all_at(&noise(3 * BLOCK as usize / 2), 0).unwrap();
    f.write_all_at(&noise(5 * BLOCK as usize), 20 * BLOCK + 100)
        .unwrap();
    f.write_all_at(b"end", size - 10).unwrap();
    drop(f);
    let sha = hex(&Sha256::digest(std::fs::read(&path).unwrap()));
    (path, sha, size)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
