//! Planning on a real git repository: a fixture factory with four levels of ancestry and two
//! sources, committed to a temporary repo, then edited the way users edit factories.
//!
//! ```text
//! source.debian.bookworm → os → base → mid → leaf-a, leaf-b
//!                           └→ sibling
//! source.debian.trixie   → other → other-child
//! ```

use std::path::Path;
use std::process::Command;

use kiln_plan::{ImageGraph, Plan, PlanOptions, changes, plan, render};

const KILN_HCL: &str = r#"factory {
  name     = "plan-fixture"
  channels = ["dev", "production"]
}

source "debian" "bookworm" {
  suite = "bookworm"
}

source "debian" "trixie" {
  suite = "trixie"
}

policy "production" {
  require_tests = true
}
"#;

const IMAGES: &[(&str, &str)] = &[
    ("os", "source.debian.bookworm"),
    ("base", "image.os"),
    ("mid", "image.base"),
    ("leaf-a", "image.mid"),
    ("leaf-b", "image.mid"),
    ("sibling", "image.os"),
    ("other", "source.debian.trixie"),
    ("other-child", "image.other"),
];

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=kiln-test",
            "-c",
            "user.email=kiln@test.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn image_hcl(name: &str, from: &str) -> String {
    format!(
        "image \"{name}\" {{\n  from = {from}\n  provisioner \"shell\" {{ script = \"setup.sh\" }}\n}}\n"
    )
}

/// A committed fixture factory; returns the repo dir (factory in `factory/`, to prove paths are
/// taken relative to the factory, not the repo).
fn fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("factory");
    write(&root.join("kiln.hcl"), KILN_HCL);
    for (name, from) in IMAGES {
        let dir = root.join("images").join(name);
        write(&dir.join("image.kiln.hcl"), &image_hcl(name, from));
        write(&dir.join("setup.sh"), "echo provisioning\n");
    }
    write(&tmp.path().join("README.md"), "fixture\n");
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-q", "-m", "fixture"]);
    tmp
}

fn plan_since(repo: &Path, rev: &str, opts: PlanOptions) -> Plan {
    let root = repo.join("factory");
    let loaded = kiln_spec::load_factory(&root);
    let f = loaded
        .factory
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics.render(&root)));
    let graph = ImageGraph::from_factory(&f).unwrap();
    let ch = kiln_plan::changes_since(&root, rev).unwrap();
    let seeds = changes::seeds(&f, &graph, &ch);
    plan(&graph, &seeds, opts)
}

/// `[[("os","changed")],[…]]` for compact assertions.
fn waves(p: &Plan) -> Vec<Vec<(String, String)>> {
    p.batches
        .iter()
        .map(|b| {
            b.images
                .iter()
                .map(|i| (i.image.clone(), i.reason.to_string()))
                .collect()
        })
        .collect()
}

fn w(items: &[&[(&str, &str)]]) -> Vec<Vec<(String, String)>> {
    items
        .iter()
        .map(|b| {
            b.iter()
                .map(|(a, r)| (a.to_string(), r.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn changing_the_grandparent_rebuilds_every_descendant_in_waves() {
    let repo = fixture();
    write(
        &repo.path().join("factory/images/os/setup.sh"),
        "echo provisioning\necho hardened\n",
    );
    let p = plan_since(repo.path(), "HEAD", PlanOptions::default());
    assert_eq!(
        waves(&p),
        w(&[
            &[("os", "changed")],
            &[("base", "parent os"), ("sibling", "parent os")],
            &[("mid", "parent base")],
            &[("leaf-a", "parent mid"), ("leaf-b", "parent mid")],
        ])
    );
    insta::assert_snapshot!("grandparent_json", render::json(&p));
    insta::assert_snapshot!("grandparent_text", render::text(&p));
}

#[test]
fn changing_a_leaf_rebuilds_only_it() {
    let repo = fixture();
    write(
        &repo.path().join("factory/images/leaf-b/setup.sh"),
        "echo changed\n",
    );
    let p = plan_since(repo.path(), "HEAD", PlanOptions::default());
    assert_eq!(waves(&p), w(&[&[("leaf-b", "changed")]]));
}

#[test]
fn changing_a_source_replans_its_images_and_their_descendants() {
    let repo = fixture();
    let edited = KILN_HCL.replace(
        "suite = \"trixie\"",
        "suite    = \"trixie\"\n  snapshot = \"20250520T000000Z\"",
    );
    write(&repo.path().join("factory/kiln.hcl"), &edited);
    git(repo.path(), &["commit", "-q", "-am", "pin trixie"]);
    let p = plan_since(repo.path(), "HEAD~1", PlanOptions::default());
    assert_eq!(
        waves(&p),
        w(&[
            &[("other", "source debian.trixie")],
            &[("other-child", "parent other")]
        ])
    );
}

#[test]
fn kiln_hcl_edits_that_touch_no_source_plan_nothing() {
    let repo = fixture();
    let edited = KILN_HCL.replace(
        "require_tests = true",
        "require_tests  = true\n  forbid_secrets = true",
    );
    write(&repo.path().join("factory/kiln.hcl"), &edited);
    let p = plan_since(repo.path(), "HEAD", PlanOptions::default());
    assert!(p.is_empty(), "{:?}", waves(&p));
}

#[test]
fn a_new_untracked_image_and_a_combined_change_are_planned() {
    let repo = fixture();
    let dir = repo.path().join("factory/images/new-app");
    write(
        &dir.join("image.kiln.hcl"),
        &image_hcl("new-app", "image.mid"),
    );
    write(&dir.join("setup.sh"), "true\n");
    write(
        &repo.path().join("factory/images/base/setup.sh"),
        "echo base changed\n",
    );
    // A change outside the factory plans nothing by itself.
    write(&repo.path().join("README.md"), "edited\n");
    let p = plan_since(repo.path(), "HEAD", PlanOptions::default());
    assert_eq!(
        waves(&p),
        w(&[
            &[("base", "changed")],
            &[("mid", "parent base")],
            &[
                ("leaf-a", "parent mid"),
                ("leaf-b", "parent mid"),
                ("new-app", "changed")
            ],
        ])
    );
}

#[test]
fn batching_respects_max_parallel_and_keeps_order() {
    let repo = fixture();
    write(&repo.path().join("factory/images/os/setup.sh"), "echo x\n");
    write(
        &repo.path().join("factory/images/other/setup.sh"),
        "echo x\n",
    );
    let opts = PlanOptions {
        cascade: true,
        max_parallel: std::num::NonZeroUsize::new(1),
    };
    let p = plan_since(repo.path(), "HEAD", opts);
    assert!(p.batches.iter().all(|b| b.images.len() == 1));
    assert_eq!(p.image_count(), 8);
    assert_eq!(p.wave_count(), 4);
    let order: Vec<&str> = p.iter().map(|(_, i)| i.image.as_str()).collect();
    assert_eq!(
        order,
        [
            "os",
            "other",
            "base",
            "other-child",
            "sibling",
            "mid",
            "leaf-a",
            "leaf-b"
        ]
    );
    insta::assert_snapshot!("batched_gitlab", render::gitlab_pipeline(&p));
    insta::assert_snapshot!("batched_github", render::github_matrix(&p));
}

#[test]
fn generated_ci_documents_parse() {
    let repo = fixture();
    write(&repo.path().join("factory/images/os/setup.sh"), "echo x\n");
    let p = plan_since(repo.path(), "HEAD", PlanOptions::default());

    let yaml = render::gitlab_pipeline(&p);
    let doc = marked_yaml::parse_yaml(0, &yaml).expect("valid YAML");
    let map = doc.as_mapping().unwrap();
    let stages = map.get_sequence("stages").unwrap();
    assert_eq!(stages.len(), 4);
    let job = map.get_mapping("build:leaf-a").unwrap();
    assert_eq!(job.get_scalar("stage").unwrap().as_str(), "wave-4");

    let gh = render::github_matrix(&p);
    let mut lines = gh.lines();
    assert_eq!(lines.next(), Some("batches=4"));
    let matrix: serde_json::Value =
        serde_json::from_str(lines.next().unwrap().strip_prefix("matrix=").unwrap()).unwrap();
    assert_eq!(matrix["include"].as_array().unwrap().len(), 6);
    let last: serde_json::Value =
        serde_json::from_str(lines.next_back().unwrap().strip_prefix("batch_4=").unwrap()).unwrap();
    assert_eq!(last["include"][0]["image"], "leaf-a");
    assert_eq!(last["include"][0]["wave"], 4);
}

#[test]
fn unknown_revisions_and_non_repos_are_clear_errors() {
    let repo = fixture();
    let err = kiln_plan::changes_since(&repo.path().join("factory"), "no-such-rev").unwrap_err();
    assert_eq!(err.to_string(), "unknown git revision `no-such-rev`");
    let plain = tempfile::tempdir().unwrap();
    let err = kiln_plan::changes_since(plain.path(), "HEAD").unwrap_err();
    assert!(
        err.to_string().contains("not inside a git work tree"),
        "{err}"
    );
}
