//! The apk `lib/apk/db/installed` reader and apk version ordering on arbitrary text: no panic on
//! any image, and the versions it yields order consistently (reflexive, antisymmetric).
#![no_main]

use std::cmp::Ordering;

use kiln_scan::version::apk::compare;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let packages = kiln_scan::sbom::apk::parse(&text);
    for pair in packages.windows(2) {
        let (a, b) = (pair[0].version.as_str(), pair[1].version.as_str());
        assert_eq!(compare(a, a), Ordering::Equal, "{a:?}");
        assert_eq!(compare(b, a), compare(a, b).reverse(), "{a:?} {b:?}");
    }
});
