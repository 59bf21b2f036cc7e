//! The dpkg status reader and dpkg version ordering on arbitrary text. A scanned image is
//! untrusted input: whatever its `var/lib/dpkg/status` holds, reading it must not panic, and the
//! versions it yields must order consistently (reflexive, antisymmetric).
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries = kiln_build::dpkg::parse_entries(&text);
    let versions: Vec<&str> = entries
        .iter()
        .flat_map(|e| [e.version.as_str(), e.source_version.as_str()])
        .collect();
    for pair in versions.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if let Some(ab) = kiln_scan::version::dpkg::compare(a, b) {
            assert_eq!(kiln_scan::version::dpkg::compare(a, a), Some(Ordering::Equal));
            assert_eq!(kiln_scan::version::dpkg::compare(b, a), Some(ab.reverse()), "{a:?} {b:?}");
        }
    }
});
