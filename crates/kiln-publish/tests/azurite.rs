//! The page-blob upload against Azurite (Microsoft's storage emulator): the blob downloads
//! bit-identical to the VHD, all-zero 4 MiB ranges are not sent, a re-run uploads nothing, and a
//! wrong account key is refused with the service's reason.

mod common;

use std::os::unix::fs::FileExt;

use common::hex;
use kiln_emulators::Azurite;
use kiln_publish::azure::blob::{Account, RANGE};
use sha2::{Digest, Sha256};

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
        .upload_page_blob("images", "base-01v.vhd", &vhd, &sha, 4, &|_, _| {})
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
        .upload_page_blob("images", "base-01v.vhd", &vhd, &sha, 4, &|_, _| {})
        .unwrap();
    assert!(again.reused && again.ranges_sent == 0);

    let wrong = Account {
        key: "d3JvbmcgYWNjb3VudCBrZXk=".into(),
        ..acct.clone()
    };
    let e = wrong
        .upload_page_blob("images", "other.vhd", &vhd, &sha, 1, &|_, _| {})
        .unwrap_err();
    assert!(
        e.to_string().contains("403") && e.to_string().contains("AuthorizationFailure"),
        "{e}"
    );
}
