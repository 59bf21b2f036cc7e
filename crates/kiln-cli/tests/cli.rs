//! The `kiln` binary as a user runs it: exit codes, stdout/stderr, files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kiln(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .current_dir(cwd)
        .env_remove("KILN_FACTORY")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/factory")
}

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                if e.file_name() != ".kiln" {
                    stack.push(p);
                }
            } else {
                let exec = e.metadata().unwrap().permissions().mode() & 0o111 != 0;
                out.push((
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                    exec,
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn init_writes_the_example_factory_which_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let o = kiln(tmp.path(), &["init", "acme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tmp.path().join("acme");
    assert_eq!(
        files(&dir),
        files(&example()),
        "kiln init differs from examples/factory"
    );

    let o = kiln(tmp.path(), &["validate", "--factory", "acme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "factory acme is valid: 2 images (1 built on another image), 1 source, 3 channels, 2 policies, 89 checks\n"
    );
    assert_eq!(stderr(&o), "");

    // A second init must not overwrite anything.
    std::fs::write(dir.join("kiln.hcl"), "# mine\n").unwrap();
    let o = kiln(tmp.path(), &["init", "acme"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already holds a factory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("kiln.hcl")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn validate_reports_every_error_with_its_position_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(kiln(tmp.path(), &["init", "f"]).status.success());
    let img = tmp.path().join("f/images/app-web/image.kiln.hcl");
    let text = std::fs::read_to_string(&img).unwrap();
    std::fs::write(
        &img,
        text.replace("image.base-debian12", "image.base-debian13"),
    )
    .unwrap();
    let base = tmp.path().join("f/images/base-debian12/image.kiln.hcl");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(&base, text.replace("\"4GiB\"", "\"4GB\"")).unwrap();

    let o = kiln(tmp.path(), &["validate", "--factory", "f"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.contains(
            "f/images/app-web/image.kiln.hcl:3:17: error: image `base-debian13` does not exist"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "f/images/base-debian12/image.kiln.hcl:7:12: error: size `4GB` uses a decimal unit"
        ),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with("error: the factory has 2 errors"),
        "{err}"
    );

    let o = kiln(
        tmp.path(),
        &["validate", "--factory", "f", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(
        v["diagnostics"][0],
        serde_json::json!({
            "severity": "error",
            "path": "images/app-web/image.kiln.hcl",
            "line": 3,
            "column": 17,
            "message": "image `base-debian13` does not exist; known: image.base-debian12",
        })
    );
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 2);
}

#[test]
fn plan_all_and_named_images_in_json() {
    let ex = example();
    let o = kiln(&ex, &["plan", "--all", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"waves\":[[{\"image\":\"base-debian12\",\"reason\":\"requested\"}],[{\"image\":\"app-web\",\"reason\":\"requested\"}]]}\n"
    );

    let o = kiln(&ex, &["plan", "base-debian12", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["waves"][1][0]["reason"], "parent base-debian12");

    let o = kiln(
        &ex,
        &["plan", "base-debian12", "--no-cascade", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["waves"].as_array().unwrap().len(), 1);

    // Found from a subdirectory, like git.
    let o = kiln(&ex.join("images/app-web"), &["plan", "app-web"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("app-web  requested"), "{}", stdout(&o));
}

#[test]
fn plan_refuses_bad_selections_and_cycles() {
    let ex = example();
    let o = kiln(&ex, &["plan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing selected"), "{}", stderr(&o));

    let o = kiln(&ex, &["plan", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown image nope; the factory has: "),
        "{}",
        stderr(&o)
    );

    let tmp = tempfile::tempdir().unwrap();
    assert!(kiln(tmp.path(), &["init", "f"]).status.success());
    let base = tmp.path().join("f/images/base-debian12/image.kiln.hcl");
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &base,
        text.replace("source.debian.bookworm", "image.app-web"),
    )
    .unwrap();
    let o = kiln(tmp.path(), &["plan", "--all", "--factory", "f"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: dependency cycle: app-web → base-debian12 → app-web"),
        "{}",
        stderr(&o)
    );

    let o = kiln(tmp.path(), &["validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no kiln.hcl in"), "{}", stderr(&o));
}

#[test]
fn plan_since_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(kiln(tmp.path(), &["init", "f"]).status.success());
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .current_dir(tmp.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@test.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "init"]);
    let f = tmp.path().join("f");
    std::fs::write(
        f.join("images/base-debian12/harden.sh"),
        "#!/bin/sh\necho more\n",
    )
    .unwrap();
    let o = kiln(&f, &["plan", "--since", "HEAD", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"waves\":[[{\"image\":\"base-debian12\",\"reason\":\"changed\"}],[{\"image\":\"app-web\",\"reason\":\"parent base-debian12\"}]]}\n"
    );
    let o = kiln(&f, &["plan", "--since", "v9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown git revision `v9`"),
        "{}",
        stderr(&o)
    );
}

/// docs/cli.md is generated from the clap definitions (`KILN_UPDATE_DOCS=1 cargo test -p
/// kiln-cli cli_reference`), so help text and documentation cannot drift apart.
#[test]
fn cli_reference_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut doc = String::from(
        "# kiln command-line reference\n\nGenerated from `kiln --help`; do not edit by hand \
         (`KILN_UPDATE_DOCS=1 cargo test -p kiln-cli cli_reference`).\n",
    );
    // Every command and subcommand, found by walking the help output's "Commands:" lists.
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    while let Some(words) = queue.pop() {
        let mut args = words.clone();
        args.push("--help".into());
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(&args)
            .env("COLUMNS", "100")
            .env_remove("KILN_FACTORY")
            .env_remove("KILN_CACHE_DIR")
            .output()
            .unwrap();
        assert!(o.status.success());
        let help = stdout(&o);
        let title = if words.is_empty() {
            "kiln".to_string()
        } else {
            format!("kiln {}", words.join(" "))
        };
        doc.push_str(&format!("\n## {title}\n\n```text\n{help}```\n"));
        let subs: Vec<String> = help
            .lines()
            .skip_while(|l| *l != "Commands:")
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            // Command lines are indented two spaces; wrapped descriptions more.
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect();
        for s in subs.into_iter().rev() {
            let mut w = words.clone();
            w.push(s);
            queue.push(w);
        }
    }
    let path = root.join("docs/cli.md");
    if std::env::var_os("KILN_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &doc).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == doc,
        "docs/cli.md is stale: run KILN_UPDATE_DOCS=1 cargo test -p kiln-cli cli_reference"
    );
}
