//! Helpers shared by the oracle tests (each test file includes this module).

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::Write;
use std::process::{Command, Stdio};

/// xorshift64*: deterministic, so a disagreement reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, s: &'a [&'a str]) -> &'a str {
        s[self.below(s.len())]
    }
}

/// Version strings from this machine's package database and apt lists: real-world shapes.
pub fn host_versions() -> Vec<String> {
    let mut out = Vec::new();
    let mut files = vec![std::path::PathBuf::from("/var/lib/dpkg/status")];
    if let Ok(rd) = std::fs::read_dir("/var/lib/apt/lists") {
        files.extend(
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with("_Packages")),
        );
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        out.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("Version: "))
                .map(|v| v.trim().to_string()),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Runs `cmd` with `input` on stdin (written from a thread, so a large input cannot deadlock
/// against the child's output) and returns its stdout lines.
pub fn pipe_through(cmd: &mut Command, input: String) -> Vec<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What a package manager's version strings are made of, for generating random ones.
pub struct Grammar<'a> {
    /// Epoch prefixes (one version in four gets one).
    pub epochs: &'a [&'a str],
    /// What a version (and a revision) starts with.
    pub starts: &'a [&'a str],
    /// Pieces appended after the start.
    pub parts: &'a [&'a str],
    /// At most this many pieces in the upstream part.
    pub max_parts: usize,
}

/// A random `[epoch]start{parts}[-start{parts}]` string of the grammar.
pub fn random_version(r: &mut Rng, g: &Grammar) -> String {
    let mut s = String::new();
    if r.below(4) == 0 {
        s.push_str(r.pick(g.epochs));
    }
    s.push_str(r.pick(g.starts));
    for _ in 0..r.below(g.max_parts) {
        s.push_str(r.pick(g.parts));
    }
    if r.below(2) == 0 {
        s.push('-');
        s.push_str(r.pick(g.starts));
        for _ in 0..r.below(4) {
            s.push_str(r.pick(g.parts));
        }
    }
    s
}

/// `n` pairs, a quarter each: two real versions, a real one and a near neighbour, a random one
/// and a neighbour, two random ones. Pairs `accept` refuses are drawn again.
pub fn version_pairs(
    r: &mut Rng,
    real: &[String],
    n: usize,
    random: impl Fn(&mut Rng) -> String,
    neighbour: impl Fn(&mut Rng, &str) -> String,
    accept: impl Fn(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(n);
    while pairs.len() < n {
        let (a, b) = match r.below(4) {
            0 => (
                real[r.below(real.len())].clone(),
                real[r.below(real.len())].clone(),
            ),
            1 => {
                let a = real[r.below(real.len())].clone();
                let b = neighbour(r, &a);
                (a, b)
            }
            2 => {
                let a = random(r);
                let b = neighbour(r, &a);
                (a, b)
            }
            _ => (random(r), random(r)),
        };
        if accept(&a, &b) {
            pairs.push((a, b));
        }
    }
    pairs
}
