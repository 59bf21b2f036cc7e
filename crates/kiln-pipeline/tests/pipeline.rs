//! The pipeline on a real factory: a failing child does not fail its siblings, its descendants are
//! skipped (not failed), and a re-run after the fix resumes — finished images are reused, not
//! rebuilt. Built without boot tests and as raw disks only, to keep the test about the pipeline.

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_pipeline::{Outcome, RunOptions, Selection};
use kiln_registry::{Actor, Registry, Role, Status};

fn cache_dir() -> PathBuf {
    std::env::var_os("KILN_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/kiln/test-stages"))
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn image(root: &Path, name: &str, from: &str, inline: &str) {
    write(
        &root.join(format!("images/{name}/image.kiln.hcl")),
        &format!(
            "image \"{name}\" {{\n  from    = image.{from}\n  channel = \"dev\"\n  provisioner \"shell\" {{ inline = [\"{inline}\"] }}\n}}\n"
        ),
    );
}

fn results_of(root: &Path) -> Vec<(String, &'static str)> {
    run_with(root, Selection::All, true)
}

fn run_with(root: &Path, selection: Selection, cascade: bool) -> Vec<(String, &'static str)> {
    let loaded = kiln_spec::load_factory(root);
    let f = loaded
        .factory
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(root)));
    let mut reg = Registry::open(&root.join(".kiln/registry.db")).unwrap();
    let opts = RunOptions {
        selection,
        cascade,
        max_parallel: None,
        test: false,
        fail_fast: false,
        cache_dir: cache_dir(),
        actor: Actor::new("ci", Role::Ci),
    };
    kiln_pipeline::run(&f, &mut reg, &opts, &kiln_build::Silent)
        .unwrap()
        .into_iter()
        .map(|r| {
            let word = match r.outcome {
                Outcome::Built { .. } => "built",
                Outcome::Reused { .. } => "reused",
                Outcome::Failed { .. } => "failed",
                Outcome::Skipped { .. } => "skipped",
            };
            (r.image, word)
        })
        .collect()
}

#[test]
fn a_failing_child_spares_its_siblings_skips_its_descendants_and_the_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!(
            "{}/../../examples/factory/.",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(root)
        .status()
        .unwrap();
    assert!(st.success());
    let base = root.join("images/base-debian12/image.kiln.hcl");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &base,
        text.replace(
            r#"formats = ["raw", "qcow2", "vhd", "vmdk"]"#,
            r#"formats = ["raw"]"#,
        ),
    )
    .unwrap();
    // Children track `dev`, where the pipeline promotes automatically (no policy on dev).
    let web = root.join("images/app-web/image.kiln.hcl");
    let text = std::fs::read_to_string(&web).unwrap();
    std::fs::write(
        &web,
        text.replace(r#"channel     = "production""#, r#"channel     = "dev""#),
    )
    .unwrap();
    image(root, "app-db", "base-debian12", "echo db; false");
    image(root, "app-db-tools", "app-db", "echo tools");

    let first = results_of(root);
    let got: std::collections::BTreeMap<_, _> = first.iter().cloned().collect();
    assert_eq!(got["base-debian12"], "built", "{first:?}");
    assert_eq!(
        got["app-web"], "built",
        "a sibling of the failing image still builds: {first:?}"
    );
    assert_eq!(got["app-db"], "failed", "{first:?}");
    assert_eq!(
        got["app-db-tools"], "skipped",
        "descendants of a failure are skipped, not failed: {first:?}"
    );
    let mut reg = Registry::open(&root.join(".kiln/registry.db")).unwrap();
    let db = reg.versions("app-db").unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(db[0].status, Status::Failed);
    assert!(
        reg.versions("app-db-tools").unwrap_or_default().is_empty(),
        "a skipped image records nothing"
    );
    drop(reg);

    // Fix the failing provisioner and run again: the finished images are reused.
    image(root, "app-db", "base-debian12", "echo db fixed");
    let second = results_of(root);
    let got: std::collections::BTreeMap<_, _> = second.iter().cloned().collect();
    assert_eq!(got["base-debian12"], "reused", "{second:?}");
    assert_eq!(got["app-web"], "reused", "{second:?}");
    assert_eq!(got["app-db"], "built", "{second:?}");
    assert_eq!(got["app-db-tools"], "built", "{second:?}");
    let mut reg = Registry::open(&root.join(".kiln/registry.db")).unwrap();
    let tools = reg.versions("app-db-tools").unwrap();
    let db = reg.versions("app-db").unwrap();
    assert_eq!(
        tools[0].parents,
        [db[0].id.clone()],
        "the grandchild is built on the version made in this run"
    );
    assert_eq!(
        reg.channel("app-db-tools", "dev").unwrap(),
        Some(tools[0].id.clone()),
        "promoted to the first channel"
    );
    assert!(reg.verify_audit().unwrap() > 20);
    let old_base = reg.channel("base-debian12", "dev").unwrap().unwrap();
    drop(reg);

    // Cascade: a new base reaches dev, so the children built on the old one are out of date;
    // --outdated rebuilds them, and their descendants, on the new base.
    let script = root.join("images/base-debian12/harden.sh");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("echo cascade-test > /etc/kiln-cascade\n");
    std::fs::write(&script, text).unwrap();
    let only_base = run_with(root, Selection::Images(vec!["base-debian12".into()]), false);
    assert_eq!(only_base, [("base-debian12".to_string(), "built")]);
    let mut reg = Registry::open(&root.join(".kiln/registry.db")).unwrap();
    let new_base = reg.channel("base-debian12", "dev").unwrap().unwrap();
    assert_ne!(new_base, old_base);
    let stale: Vec<String> = reg
        .out_of_date()
        .unwrap()
        .into_iter()
        .map(|o| o.child_bucket)
        .collect();
    assert!(
        stale.contains(&"app-web".to_string()) && stale.contains(&"app-db".to_string()),
        "{stale:?}"
    );
    drop(reg);
    let cascade = run_with(root, Selection::Outdated, true);
    let got: std::collections::BTreeMap<_, _> = cascade.iter().cloned().collect();
    assert_eq!(
        got,
        [
            ("app-db", "built"),
            ("app-db-tools", "built"),
            ("app-web", "built")
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .collect(),
        "{cascade:?}"
    );
    let mut reg = Registry::open(&root.join(".kiln/registry.db")).unwrap();
    assert_eq!(
        reg.versions("app-web").unwrap()[0].parents,
        std::slice::from_ref(&new_base)
    );
    assert!(
        reg.out_of_date()
            .unwrap()
            .iter()
            .all(|o| reg.versions(&o.child_bucket).unwrap()[0].id != o.child),
        "nothing current is stale"
    );
}
