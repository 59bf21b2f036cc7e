//! The page-blob upload against Azurite (Microsoft's storage emulator): the blob downloads
//! bit-identical to the VHD, all-zero 4 MiB ranges are not sent, a re-run uploads nothing, and a
//! wrong account key is refused with the service's reason.

mod common;

use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hex;
use kiln_publish::azure::blob::{Account, RANGE};
use sha2::{Digest, Sha256};

const AZURITE: &str = "/var/cache/kiln/npm-azurite/node_modules/.bin/azurite-blob";

struct Azurite {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Azurite {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(AZURITE)
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
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite: run scripts/host-deps.sh publish");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "azurite did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Azurite {
            child,
            endpoint: format!("http://127.0.0.1:{port}/devstoreaccount1"),
            _dir: dir,
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn page_blob_downloads_bit_identical_and_reruns_send_nothing() {
    let az = Azurite::start();
    let dir = tempfile::tempdir().unwrap();
    // A fixed VHD's shape: 40 MiB of disk (data in ranges 0 and 7) plus the 512-byte footer.
    let vhd = dir.path().join("disk.vhd");
    let f = std::fs::File::create(&vhd).unwrap();
    let size = 40 * 1024 * 1024 + 512;
    f.set_len(size).unwrap();
    f.write_all_at(&[0x55; 8192], 0).unwrap();
    f.write_all_at(b"kiln", 7 * RANGE + 10).unwrap();
    f.write_all_at(b"conectix", size - 512).unwrap();
    drop(f);
    let bytes = std::fs::read(&vhd).unwrap();
    let sha = hex(&Sha256::digest(&bytes));

    let acct = Account::azurite(&az.endpoint);
    let r = acct
        .upload_page_blob("images", "base-01v.vhd", &vhd, &sha, 4)
        .unwrap();
    // Ranges 0, 7 and the last (the footer) hold data; the other 8 of 11 are zeros.
    assert_eq!((r.ranges_sent, r.ranges_zero), (3, 8), "{r:?}");
    assert!(!r.reused);

    let got = ureq::get(&r.url).call();
    // Anonymous reads are off: the download goes through a signed request, checked by the
    // service's own answer.
    assert!(matches!(got, Err(ureq::Error::Status(403 | 404, _))));
    let downloaded = acct.download("images", "base-01v.vhd").unwrap();
    assert_eq!(downloaded.len() as u64, size);
    assert_eq!(
        hex(&Sha256::digest(&downloaded)),
        sha,
        "bit-identical to the VHD"
    );

    let again = acct
        .upload_page_blob("images", "base-01v.vhd", &vhd, &sha, 4)
        .unwrap();
    assert!(again.reused && again.ranges_sent == 0);

    let wrong = Account {
        key: "d3JvbmcgYWNjb3VudCBrZXk=".into(),
        ..acct.clone()
    };
    let e = wrong
        .upload_page_blob("images", "other.vhd", &vhd, &sha, 1)
        .unwrap_err();
    assert!(
        e.to_string().contains("403") && e.to_string().contains("AuthorizationFailure"),
        "{e}"
    );
}
