//! Upload throughput of the EBS direct upload against moto's server on loopback: one block at a
//! time against 16 in flight, and what skipping all-zero blocks saves. The disk is
//! `KILN_BENCH_DISK` (`scripts/bench-publish.sh` passes the example base image's raw disk), else
//! a 1 GiB sparse file with 12.5 % data.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_publish::aws::ebs::{self, BLOCK, Upload};
use kiln_publish::aws::{Clients, Conn};

fn main() {
    let moto = std::env::var("KILN_MOTO_SERVER")
        .unwrap_or_else(|_| "/var/cache/kiln/venv-publish/bin/moto_server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server: run scripts/host-deps.sh publish");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tmp = tempfile::tempdir().unwrap();
    let disk = match std::env::var_os("KILN_BENCH_DISK") {
        Some(p) => PathBuf::from(p),
        None => {
            let p = tmp.path().join("disk.raw");
            let f = std::fs::File::create(&p).unwrap();
            f.set_len(1 << 30).unwrap();
            let data: Vec<u8> = (0..BLOCK as usize)
                .map(|i| (i * 7 % 251) as u8 | 1)
                .collect();
            for i in (0..2048u64).step_by(8) {
                f.write_all_at(&data, i * BLOCK).unwrap();
            }
            p
        }
    };
    let size = std::fs::metadata(&disk).unwrap().len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<(usize, ebs::UploadReport)> = rt.block_on(async {
        let c = Clients::new(&Conn {
            region: "us-east-1".into(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            static_credentials: Some(("bench".into(), "bench".into())),
        })
        .await;
        let mut out = Vec::new();
        for parallel in [1usize, 16] {
            // A distinct identity per run, so the second does not find the first's snapshot.
            let id = format!("bench-{parallel}");
            let r = ebs::upload(
                &c,
                &Upload {
                    disk: &disk,
                    sha256: &id,
                    version: &id,
                    description: "kiln upload bench".into(),
                    tags: vec![],
                    parallel,
                },
                Arc::new(|_, _| {}),
            )
            .await
            .unwrap();
            out.push((parallel, r));
        }
        out
    });
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "\nEBS direct upload to moto on loopback ({}, {:.0} MB disk)",
        disk.display(),
        size as f64 / 1e6
    );
    println!(
        "| blocks in flight | blocks sent | all-zero skipped | MB sent | seconds | MB/s sent | disk MB/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (p, r) in &results {
        let mb = r.bytes_sent as f64 / 1e6;
        println!(
            "| {p} | {} | {} | {mb:.0} | {:.1} | {:.1} | {:.1} |",
            r.blocks_sent,
            r.blocks_zero,
            r.seconds,
            mb / r.seconds,
            size as f64 / 1e6 / r.seconds
        );
    }
    let r = &results[1].1;
    let total = r.blocks_sent + r.blocks_zero;
    println!(
        "zero-block skipping: {} of {} blocks not sent ({:.0} % of the disk); parallel/serial speed-up {:.1}x",
        r.blocks_zero,
        total,
        100.0 * r.blocks_zero as f64 / total.max(1) as f64,
        results[0].1.seconds / r.seconds
    );
}
