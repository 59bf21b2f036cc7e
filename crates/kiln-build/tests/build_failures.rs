//! A failing provisioner: a clear error naming the provisioner, the line and its output, and
//! nothing left mounted, running or half-written.

mod common;

use common::*;
use kiln_build::BuildError;

#[test]
fn a_failing_inline_provisioner_names_its_line_and_leaves_nothing_behind() {
    let _one_at_a_time = exclusive();
    require_root();
    let factory = example_factory(|root| {
        replace_in(
            &root.join("images/base-debian12/image.kiln.hcl"),
            "  checks  = [",
            "  provisioner \"shell\" {\n    inline = [\"echo preparing\", \"chmod 0640 /etc/does-not-exist\", \"echo never\"]\n  }\n\n  checks  = [",
        );
    });
    let err = build(factory.path(), "base-debian12").expect_err("the provisioner fails");
    let msg = err.to_string();
    let BuildError::Provisioner {
        index,
        line,
        output,
        ..
    } = &err
    else {
        panic!("expected a provisioner error, got: {msg}")
    };
    assert_eq!(*index, 3);
    assert_eq!(
        line.as_ref(),
        Some(&(2, "chmod 0640 /etc/does-not-exist".to_string()))
    );
    assert!(output.contains("preparing"), "{output}");
    assert!(output.contains("No such file or directory"), "{output}");
    assert!(
        !output.contains("never"),
        "the script went on after the failure: {output}"
    );
    assert!(
        msg.starts_with("provisioner 3 (shell inline, 3 lines) failed at line 2: `chmod 0640 /etc/does-not-exist`: exit status 1"),
        "{msg}"
    );
    assert_nothing_left_behind();
}

#[test]
fn a_failing_script_reports_the_script_line() {
    let _one_at_a_time = exclusive();
    require_root();
    let factory = example_factory(|root| {
        let script = root.join("images/base-debian12/harden.sh");
        let mut text = std::fs::read_to_string(&script).unwrap();
        text.push_str("test -e /etc/kiln-expected-file\n");
        std::fs::write(&script, text).unwrap();
    });
    let script_lines =
        std::fs::read_to_string(factory.path().join("images/base-debian12/harden.sh"))
            .unwrap()
            .lines()
            .count();
    let err = build(factory.path(), "base-debian12").expect_err("the script fails");
    let BuildError::Provisioner { index, line, .. } = &err else {
        panic!("expected a provisioner error, got: {err}")
    };
    assert_eq!(*index, 1);
    assert_eq!(
        line.as_ref(),
        Some(&(script_lines, "test -e /etc/kiln-expected-file".to_string()))
    );
    assert_nothing_left_behind();
}
