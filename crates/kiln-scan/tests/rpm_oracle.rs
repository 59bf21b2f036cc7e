//! rpm itself is the oracle: ≥ 10,000 version pairs (real RHEL-family EVRs, this machine's
//! package versions, their near neighbours, and random strings over rpm's alphabet with `~`,
//! `^`, epochs and releases) compared by `rpm.vercmp` (full `E:V-R` in rpm ≥ 4.16) and by
//! `kiln_scan::version::rpm::compare`, which must agree on every pair.

mod common;

use std::cmp::Ordering;
use std::process::Command;

use common::{Grammar, Rng, host_versions, pipe_through, random_version, version_pairs};
use kiln_scan::version::rpm;

/// EVRs as RHEL 9, its clones and Fedora ship them (module builds, `el9_4.1` z-stream
/// releases, explicit `0:` epochs as Red Hat's OSV data writes them).
const RPM_REAL: &[&str] = &[
    "1:3.0.7-27.el9",
    "3.0.7-28.el9",
    "1:3.0.7-16.el9_2",
    "2.34-100.el9_4.2",
    "2.34-83.el9.7",
    "252-32.el9_4",
    "252-18.el9",
    "0:1.9.5p2-10.el9_6.1",
    "1.9.5p2-10.el9_6",
    "1:22.23.2-2.module+el9.8.0+24958+80b2ac6e",
    "1:22.23.2-2.module+el9.8.0+24958+80b2ac6f",
    "8.7.1-3.el9_4.1",
    "7.76.1-29.el9_4",
    "5.14.0-427.13.1.el9_4",
    "5.14.0-70.13.1.el9_0",
    "2:9.0.2081-1.el9",
    "2:8.2.2637-20.el9_1",
    "1.1.1k-12.el8_9",
    "1:1.1.1k-7.el8_6",
    "4.18.0-513.5.1.el8_9",
    "2.9.13-6.el9_4",
    "2.9.14-9.el9_4",
    "2.9.14-9.el9_4.1",
    "0.9.8~rc1-1.fc39",
    "6.6.2^20231103git1-1.fc40",
    "6.6.2-1.fc40",
    "1.2.3~beta^post1-1",
    "12:1.1.1-1",
    "1.36.1-8.el9",
    "3.9.18-3.el9_4.5",
    "3.11.7-1.el9_4",
    "17.0.11.0.9-2.el9",
    "1:17.0.11.0.9-2.el9",
    "1.8.0.412.b08-2.el9",
    "2.02-150.el8",
    "1:2.06-77.el9",
    "4.16.1.3-29.el9",
    "4.18.2-1.el9",
    "0.185-3.el9",
    "20230731-1.git94c3fc1b.el9",
];

const GRAMMAR: Grammar = Grammar {
    epochs: &["0:", "1:", "2:", "10:", "00:", ":", "a:"],
    starts: &["0", "1", "2", "10", "3", "a"],
    parts: &[
        "0", "1", "2", "9", "10", "01", "00", "007", "a", "b", "z", "A", "Z", ".", "_", "+", "~",
        "~~", "^", "^^", "rc", "el9", "el9_4", "fc40", "git", "α", "..", "-",
    ],
    max_parts: 7,
};

/// A version close to `v`: the pairs where ordering bugs hide.
fn neighbour(r: &mut Rng, v: &str) -> String {
    match r.below(9) {
        0 => format!("{v}~rc1"),
        1 => format!("{v}^git1"),
        2 => format!("{v}.1"),
        3 => v.replacen(
            |c: char| c.is_ascii_digit(),
            r.pick(&["0", "1", "9", "10", "01"]),
            1,
        ),
        4 => format!("0:{v}"),
        5 => format!("{v}_1"),
        6 => v.replacen('.', "_", 1),
        7 => match v.rsplit_once('-') {
            Some((a, _)) => a.to_string(),
            None => format!("{v}-1"),
        },
        _ => format!("{v}a"),
    }
}

/// Reads TSV pairs, prints rpm's verdict (-1/0/1) or ERR where rpm refuses a version.
const ORACLE: &str = r#"
for line in io.lines(arg[2]) do
  local a, b = line:match("^([^\t]*)\t([^\t]*)$")
  local ok, r = pcall(rpm.vercmp, a, b)
  io.write(ok and tostring(r) or "ERR", "\n")
end
"#;

#[test]
fn agrees_with_rpm_on_10000_pairs() {
    if Command::new("rpmlua").arg("-e").arg("").output().is_err() {
        panic!("rpmlua (package rpm) is required: run scripts/host-deps.sh scanner");
    }
    let mut real: Vec<String> = RPM_REAL.iter().map(|s| s.to_string()).collect();
    // Debian versions are real version strings from another ecosystem: rpm orders them too.
    let host = host_versions();
    assert!(host.len() > 100, "expected the host's package versions");
    let mut r = Rng(0x72_706d_2024);
    for _ in 0..400 {
        real.push(host[r.below(host.len())].clone());
    }
    let pairs = version_pairs(
        &mut r,
        &real,
        10_500,
        |r| random_version(r, &GRAMMAR),
        neighbour,
        |_, _| true,
    );

    let dir = tempfile::tempdir().unwrap();
    let (script, input) = (dir.path().join("oracle.lua"), dir.path().join("pairs.tsv"));
    std::fs::write(&script, ORACLE).unwrap();
    let tsv: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    std::fs::write(&input, tsv).unwrap();
    let answers = pipe_through(
        Command::new("rpmlua").arg(&script).arg(&input),
        String::new(),
    );
    assert_eq!(answers.len(), pairs.len(), "one answer per pair");

    let mut disagreements = Vec::new();
    let mut seen = [0usize; 3];
    let mut refused = 0;
    for ((a, b), want) in pairs.iter().zip(&answers) {
        let theirs = match want.as_str() {
            "-1" => Ordering::Less,
            "0" => Ordering::Equal,
            "1" => Ordering::Greater,
            _ => {
                refused += 1;
                continue;
            }
        };
        let ours = rpm::compare(a, b);
        seen[(ours as i8 + 1) as usize] += 1;
        if ours != theirs {
            disagreements.push(format!("{a:?} vs {b:?}: rpm {theirs:?}, kiln {ours:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    let compared = pairs.len() - refused;
    assert!(
        compared >= 10_000,
        "only {compared} pairs compared ({refused} refused by rpm)"
    );
    assert!(seen.iter().all(|&n| n > 500), "lt/eq/gt counts {seen:?}");
    println!("{compared} pairs agree with rpm (lt/eq/gt {seen:?}; {refused} refused by rpm)");
}
