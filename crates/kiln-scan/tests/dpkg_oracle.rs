//! dpkg itself is the oracle: ≥ 10,000 version pairs (real ones from this machine's package
//! database and archive lists, their near neighbours, and random ones) compared by
//! `dpkg --compare-versions` and by `DebVersion`, which must agree on every pair.

mod common;

use std::cmp::Ordering;
use std::process::Command;

use common::{Grammar, Rng, host_versions, pipe_through, random_version, version_pairs};
use kiln_scan::DebVersion;

const GRAMMAR: Grammar = Grammar {
    epochs: &["0:", "1:", "2:", "10:", "00:"],
    starts: &["0", "1", "2", "10", "3", "a"],
    parts: &[
        "0", "1", "2", "9", "10", "01", "00", "a", "b", "z", "A", ".", "+", "~", "~~", "rc",
        "deb12u", "+b",
    ],
    max_parts: 6,
};

/// A version close to `v`: the pairs where ordering bugs hide.
fn neighbour(r: &mut Rng, v: &str) -> String {
    match r.below(6) {
        0 => format!("{v}~1"),
        1 => format!("{v}+b1"),
        2 => format!("{v}.0"),
        3 => v.replacen(
            |c: char| c.is_ascii_digit(),
            r.pick(&["0", "1", "9", "10"]),
            1,
        ),
        4 => format!("1:{v}"),
        _ => v.replace("deb12u", "deb12u1"),
    }
}

#[test]
fn agrees_with_dpkg_on_10000_pairs() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        panic!("dpkg is required for this test (Debian build host)");
    }
    let real = host_versions();
    assert!(
        real.len() > 100,
        "expected the host's package versions, found {}",
        real.len()
    );
    let mut r = Rng(0x6b69_6c6e_2024);
    let pairs = version_pairs(
        &mut r,
        &real,
        10_500,
        |r| random_version(r, &GRAMMAR),
        neighbour,
        |a, b| DebVersion::parse(a).is_ok() && DebVersion::parse(b).is_ok(),
    );

    // One shell reads every pair, so 10,000 comparisons cost one spawn of sh and dpkg per pair.
    let mut input = String::new();
    for (a, b) in &pairs {
        input.push_str(&format!("{a} {b}\n"));
    }
    let answers = pipe_through(
        Command::new("sh").arg("-c").arg(r#"while read -r a b; do if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo lt; elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo eq; else echo gt; fi; done"#),
        input,
    );
    assert_eq!(answers.len(), pairs.len());

    let mut disagreements = Vec::new();
    let mut seen = [0usize; 3];
    for ((a, b), want) in pairs.iter().zip(&answers) {
        let ours = DebVersion::parse(a)
            .unwrap()
            .cmp(&DebVersion::parse(b).unwrap());
        seen[(ours as i8 + 1) as usize] += 1;
        let theirs = match want.as_str() {
            "lt" => Ordering::Less,
            "eq" => Ordering::Equal,
            _ => Ordering::Greater,
        };
        if ours != theirs {
            disagreements.push(format!("{a} vs {b}: dpkg {theirs:?}, kiln {ours:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(20)]
    );
    // The pairs exercise all three answers, not just one.
    assert!(seen.iter().all(|&n| n > 500), "lt/eq/gt counts {seen:?}");
    println!("{} pairs agree with dpkg (lt/eq/gt {seen:?})", pairs.len());
}
