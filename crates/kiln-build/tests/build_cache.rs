//! The stage cache: an unchanged rebuild does no stage work, and a provisioner edit re-runs only
//! the stages after the bootstrap.

mod common;

use common::*;

#[test]
fn unchanged_rebuilds_nothing_and_an_edit_reruns_only_later_stages() {
    let _one_at_a_time = exclusive();
    require_root();
    // Cheap formats keep this test about the cache, not about compression.
    let factory = example_factory(|root| {
        replace_in(
            &root.join("images/base-debian12/image.kiln.hcl"),
            r#"formats = ["raw", "qcow2", "vhd", "vmdk"]"#,
            r#"formats = ["raw", "vhd"]"#,
        );
    });
    let first = build(factory.path(), "base-debian12").expect("build");

    let again = build(factory.path(), "base-debian12").expect("rebuild");
    let built: Vec<&str> = again
        .manifest
        .stages
        .iter()
        .filter(|s| !s.cached)
        .map(|s| s.stage.as_str())
        .collect();
    assert!(built.is_empty(), "an unchanged rebuild ran {built:?}");
    assert_eq!(again.manifest.fingerprint, first.manifest.fingerprint);
    assert_eq!(
        again.manifest.artifacts, first.manifest.artifacts,
        "same cached bits"
    );

    // A unique edit, so this run's stages cannot already be cached from an earlier run.
    let marker = format!(
        "kiln-cache-test-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let script = factory.path().join("images/base-debian12/harden.sh");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str(&format!("echo {marker} > /etc/kiln-cache-test\n"));
    std::fs::write(&script, text).unwrap();

    let edited = build(factory.path(), "base-debian12").expect("build after an edit");
    let state: Vec<(&str, bool)> = edited
        .manifest
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.cached))
        .collect();
    assert_eq!(
        state,
        [
            ("bootstrap", true),
            ("tree", false),
            ("disk", false),
            ("export vhd", false)
        ],
        "only the stages after the edited provisioner run again"
    );
    assert_ne!(edited.manifest.fingerprint, first.manifest.fingerprint);
    let tree_key = &edited.manifest.stages[1].key;
    let tree = cache_dir().join("stages").join(tree_key).join("out/tree");
    assert_eq!(
        std::fs::read_to_string(tree.join("etc/kiln-cache-test"))
            .unwrap()
            .trim(),
        marker
    );

    // Leave the shared cache as we found it: these entries are unique to this run.
    for s in edited.manifest.stages.iter().filter(|s| !s.cached) {
        let dir = cache_dir().join("stages").join(&s.key);
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&dir)
            .status();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert_nothing_left_behind();
}

use std::process::Command;
