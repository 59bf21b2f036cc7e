//! Vulnerability data import on arbitrary JSON: OSV records, OSV lists and the Debian security
//! tracker's document all go through `records_of`, then every range bound and severity vector
//! is used as matching uses them. Imported files come from outside; none may panic the import.
#![no_main]

use kiln_scan::sbom::Kind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok((records, _skipped)) = kiln_scan::vuln::db::records_of(&value) else {
        return;
    };
    for a in &records {
        for r in &a.ranges {
            for bound in [Some(&r.introduced), r.fixed.as_ref(), r.last_affected.as_ref()]
                .into_iter()
                .flatten()
            {
                for kind in [Kind::Deb, Kind::Rpm, Kind::Apk] {
                    let _ = kiln_scan::version::compare(kind, bound, &r.introduced);
                }
            }
        }
    }
    if let Some(list) = value.get("severity").and_then(|s| s.as_array()) {
        for s in list {
            if let Some(score) = s.get("score").and_then(|s| s.as_str()) {
                let _ = kiln_scan::vuln::severity::cvss3_base_score(score);
            }
        }
    }
});
