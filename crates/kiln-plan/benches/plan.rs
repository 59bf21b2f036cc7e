//! Planning a generated factory of 10,000 images (random single-parent DAG, depth ≤ 6).
//!
//! Prints, as medians over repeated runs:
//! - parse-free planning: building the graph and planning `--all`, a 1% change with cascade, and
//!   the same with `--max-parallel 16` (target: ≤ 200 ms);
//! - parse + validate of the same factory written to disk as 10,000 image directories, and
//!   planning from the loaded factory.
//!
//! `cargo bench -p kiln-plan --bench plan` or `make bench`.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use kiln_plan::{ImageGraph, PlanOptions, Reason, plan};

const IMAGES: usize = 10_000;
const MAX_DEPTH: usize = 6;
const SOURCES: usize = 4;
const TARGET: Duration = Duration::from_millis(200);

/// xorshift64*: deterministic, so every run plans the same factory.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// (name, parent index or source index, depth)
fn generate() -> Vec<(String, Result<usize, usize>)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out: Vec<(String, Result<usize, usize>)> = Vec::with_capacity(IMAGES);
    let mut depth = Vec::with_capacity(IMAGES);
    for i in 0..IMAGES {
        let name = format!("img-{i:05}");
        // 5% roots; others pick an earlier image that is not yet at the maximum depth.
        if i < 20 || rng.below(100) < 5 {
            out.push((name, Err(rng.below(SOURCES))));
            depth.push(1);
            continue;
        }
        let parent = loop {
            let p = rng.below(i);
            if depth[p] < MAX_DEPTH {
                break p;
            }
        };
        depth.push(depth[parent] + 1);
        out.push((name, Ok(parent)));
    }
    assert!(depth.iter().all(|&d| d <= MAX_DEPTH));
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        times.push(t.elapsed());
        last = Some(r);
    }
    (median(times), last.expect("runs > 0"))
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn write_factory(root: &Path, images: &[(String, Result<usize, usize>)]) {
    let mut kiln =
        String::from("factory {\n  name = \"bench\"\n  channels = [\"dev\", \"production\"]\n}\n");
    for s in 0..SOURCES {
        kiln.push_str(&format!(
            "source \"debian\" \"s{s}\" {{\n  suite = \"bookworm\"\n}}\n"
        ));
    }
    std::fs::write(root.join("kiln.hcl"), kiln).unwrap();
    for (name, from) in images {
        let dir = root.join("images").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let from = match from {
            Ok(p) => format!("image.{}", images[*p].0),
            Err(s) => format!("source.debian.s{s}"),
        };
        std::fs::write(
            dir.join("image.kiln.hcl"),
            format!(
                "image \"{name}\" {{\n  from     = {from}\n  packages = [\"curl\", \"jq\"]\n  labels   = {{ team = \"t{}\" }}\n  provisioner \"shell\" {{ inline = [\"echo {name}\"] }}\n}}\n",
                name.len()
            ),
        )
        .unwrap();
    }
}

fn main() {
    let images = generate();
    let nodes: Vec<(String, Vec<String>)> = images
        .iter()
        .map(|(n, from)| {
            let parents = match from {
                Ok(p) => vec![images[*p].0.clone()],
                Err(_) => vec![],
            };
            (n.clone(), parents)
        })
        .collect();
    println!(
        "kiln plan benchmark: {IMAGES} images, depth ≤ {MAX_DEPTH}, {SOURCES} sources (median of runs)"
    );

    let (t_graph, graph) = time(21, || ImageGraph::new(nodes.clone()).unwrap());
    let all: Vec<(usize, Reason)> = (0..graph.len()).map(|i| (i, Reason::Requested)).collect();
    let mut rng = Rng(42);
    let changed: Vec<(usize, Reason)> = (0..IMAGES / 100)
        .map(|_| (rng.below(IMAGES), Reason::Changed))
        .collect();
    let (t_all, p_all) = time(21, || plan(&graph, &all, PlanOptions::default()));
    let (t_changed, p_changed) = time(21, || plan(&graph, &changed, PlanOptions::default()));
    let batched = PlanOptions {
        cascade: true,
        max_parallel: NonZeroUsize::new(16),
    };
    let (t_batched, p_batched) = time(21, || plan(&graph, &changed, batched));
    let (t_total, _) = time(21, || {
        let g = ImageGraph::new(nodes.clone()).unwrap();
        plan(&g, &changed, batched)
    });

    println!("  build graph                          {}", ms(t_graph));
    println!(
        "  plan --all                           {}   ({} images, {} waves)",
        ms(t_all),
        p_all.image_count(),
        p_all.wave_count()
    );
    println!(
        "  plan 1% changed + cascade            {}   ({} images, {} waves)",
        ms(t_changed),
        p_changed.image_count(),
        p_changed.wave_count()
    );
    println!(
        "  plan 1% changed, --max-parallel 16   {}   ({} batches)",
        ms(t_batched),
        p_batched.batches.len()
    );
    println!(
        "  graph + plan (parse-free total)      {}   target ≤ {} ms: {}",
        ms(t_total),
        TARGET.as_millis(),
        if t_total <= TARGET { "met" } else { "MISSED" }
    );

    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    write_factory(tmp.path(), &images);
    println!(
        "  (wrote the factory to disk in {})",
        ms(t.elapsed()).trim()
    );
    let (t_load, loaded) = time(5, || kiln_spec::load_factory(tmp.path()));
    let f = loaded
        .factory
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(tmp.path())));
    let (t_from, p) = time(5, || {
        let g = ImageGraph::from_factory(&f).unwrap();
        plan(&g, &all, PlanOptions::default())
    });
    println!(
        "  parse + validate 10,000 files        {}   ({:.1} µs per image)",
        ms(t_load),
        t_load.as_secs_f64() * 1e6 / IMAGES as f64
    );
    println!(
        "  graph + plan --all from the factory  {}   ({} images)",
        ms(t_from),
        p.image_count()
    );
}
