//! The repository's example factory (also what `kiln init` writes) must always validate.

use std::path::Path;

use kiln_spec::{BootMode, CheckKind, Format, Parent};

#[test]
fn the_example_factory_validates_and_resolves_inheritance() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/factory");
    let loaded = kiln_spec::load_factory(&root);
    let rendered = loaded.diagnostics.render(Path::new(""));
    let f = loaded.factory.expect(&rendered);
    assert!(
        loaded.diagnostics.is_empty(),
        "unexpected warnings:\n{rendered}"
    );

    assert_eq!(f.settings.name.as_str(), "acme");
    let channels: Vec<&str> = f.settings.channels.iter().map(|c| c.as_str()).collect();
    assert_eq!(channels, ["dev", "test", "production"]);

    let base = f.image("base-debian12").unwrap();
    assert!(matches!(&base.from, Parent::Source(s) if s.to_string() == "debian.bookworm"));
    assert_eq!(base.disk.size.bytes(), 4 << 30);
    assert_eq!(base.disk.boot, BootMode::Uefi);
    assert_eq!(base.provisioners.len(), 2);

    let web = f.image("app-web").unwrap();
    assert_eq!(
        web.parent_image().map(|n| n.as_str()),
        Some("base-debian12")
    );
    assert_eq!(web.channel.as_ref().map(|c| c.as_str()), Some("production"));
    // Inherited from the parent: the child sets neither.
    assert_eq!(web.disk, base.disk);
    assert_eq!(
        web.formats,
        [Format::Raw, Format::Qcow2, Format::Vhd, Format::Vmdk]
    );

    let commands = web.check_files[0]
        .checks
        .iter()
        .filter(|c| matches!(c.kind, CheckKind::Command { .. }))
        .count();
    assert_eq!(commands, 2);
    let accounts = f.accounts.as_ref().expect("accounts.yaml is loaded");
    assert!(!accounts.is_empty());
    assert!(f.policies["production"].require_approval.is_some());
}

/// Copies the factory's definitions (not a demo run's `.kiln` state).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (dest, kind) = (to.join(entry.file_name()), entry.file_type().unwrap());
        if kind.is_dir() && entry.file_name() != ".kiln" {
            copy_tree(&entry.path(), &dest);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The commented-out `publish` blocks of the example are what a user uncomments: they must
/// validate as written, channel blocks included.
#[test]
fn the_examples_commented_publish_blocks_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/factory");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&root, tmp.path());
    let hcl = std::fs::read_to_string(root.join("kiln.hcl")).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in hcl.lines() {
        inside |= line.starts_with("# publish ");
        if inside {
            let l = line.strip_prefix("# ").unwrap_or(line);
            out.push_str(l);
            inside = l != "}";
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::fs::write(tmp.path().join("kiln.hcl"), out).unwrap();
    let loaded = kiln_spec::load_factory(tmp.path());
    let rendered = loaded.diagnostics.render(Path::new(""));
    let f = loaded.factory.expect(&rendered);
    let clouds: Vec<&str> = f
        .settings
        .publish
        .iter()
        .map(|t| t.cloud.as_str())
        .collect();
    assert_eq!(clouds, ["aws", "azure", "gcp"]);
    let aws = &f.settings.publish[0];
    let prod = aws.for_channels(&["production".to_string()]);
    assert_eq!(prod.regions, ["us-east-1", "eu-west-1", "ap-southeast-2"]);
    assert_eq!(prod.tags["tier"], "prod");
    assert_eq!(prod.tags["team"], "platform");
    assert_eq!(aws.for_channels(&["dev".to_string()]).regions, aws.regions);
}
