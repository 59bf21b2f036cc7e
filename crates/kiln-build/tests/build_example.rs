//! The example factory's base image, built from the mirror, checked with tools nobody here wrote
//! (sgdisk, e2fsck, qemu-img, tar, sha256sum), and booted once under QEMU/OVMF until its guest
//! agent answers. Then its child builds on the cached parent tree without a bootstrap.

mod common;

use std::process::Command;

use common::*;
use kiln_spec::Format;

#[test]
fn the_example_base_builds_passes_foreign_tools_and_boots() {
    let _one_at_a_time = exclusive();
    require_root();
    let factory = example_factory(|root| {
        // Every export format, and a child that only needs a raw disk.
        replace_in(
            &root.join("images/base-debian12/image.kiln.hcl"),
            r#"formats = ["raw", "qcow2", "vhd", "vmdk"]"#,
            r#"formats = ["raw", "qcow2", "vhd", "vmdk", "gce"]"#,
        );
        // The child exercises environment variables and a recursive file copy with owner/mode.
        replace_in(
            &root.join("images/app-web/image.kiln.hcl"),
            r#"labels = { owner = "web-team" }"#,
            concat!(
                "labels = { owner = \"web-team\" }\n  formats = [\"raw\"]\n",
                "  provisioner \"shell\" {\n",
                "    environment_vars = [\"GREETING=hello from kiln\", \"QUOTED=it's\"]\n",
                "    inline = [\"printf '%s|%s' \\\"$GREETING\\\" \\\"$QUOTED\\\" > /etc/greeting\"]\n",
                "  }\n",
                "  provisioner \"file\" {\n",
                "    source      = \"site\"\n",
                "    destination = \"/var/www/site\"\n",
                "    owner       = \"www-data\"\n",
                "    group       = \"www-data\"\n",
                "    mode        = \"0640\"\n",
                "  }"
            ),
        );
        std::fs::create_dir_all(root.join("images/app-web/site/css")).unwrap();
        std::fs::write(
            root.join("images/app-web/site/index.html"),
            "<h1>kiln</h1>\n",
        )
        .unwrap();
        std::fs::write(root.join("images/app-web/site/css/site.css"), "h1 {}\n").unwrap();
    });
    let out = build(factory.path(), "base-debian12").expect("the base image builds");
    let m = &out.manifest;

    // The manifest: every artifact's digest and size match the file in the store.
    assert_eq!(m.artifacts.len(), 5);
    for a in &m.artifacts {
        let p = out.dir.join(&a.file);
        assert_eq!(sha256sum(&p), a.sha256, "{}", a.file);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), a.size, "{}", a.file);
    }
    let pkg = |n: &str| {
        m.packages
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    for n in [
        "linux-image-cloud-amd64",
        "openssh-server",
        "qemu-guest-agent",
        "auditd",
        "grub-efi-amd64-bin",
        "systemd",
    ] {
        assert!(!pkg(n).version.is_empty());
    }
    assert!(m.packages.len() > 100);
    assert!(
        m.seal
            .items
            .iter()
            .any(|i| i.path == "/etc/ssh/ssh_host_ed25519_key")
    );
    let stages: Vec<&str> = m.stages.iter().map(|s| s.stage.as_str()).collect();
    for s in [
        "bootstrap",
        "tree",
        "disk",
        "export qcow2",
        "export vhd",
        "export vmdk",
        "export gce",
    ] {
        assert!(stages.contains(&s), "{stages:?}");
    }

    let raw = out.artifact_path(Format::Raw).unwrap();
    let size = 4u64 << 30;

    // GPT: valid, an ESP and an x86-64 root partition, MiB-aligned.
    let verify = run(Command::new("sgdisk").arg("-v").arg(&raw));
    assert!(verify.contains("No problems found"), "{verify}");
    let table = run(Command::new("sgdisk").arg("-p").arg(&raw));
    assert!(table.contains("EF00") && table.contains("8304"), "{table}");
    let layout = &m.disk.layout;
    assert_eq!(layout.root.start % 2048, 0);

    // The root filesystem is clean by e2fsck's account (extracted without mounting).
    let tmp = tempfile::tempdir().unwrap();
    let root_img = tmp.path().join("root.ext4");
    run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", root_img.display()))
        .args(["bs=1M", "conv=sparse", "status=none"])
        .arg(format!("skip={}", layout.root.offset_bytes() >> 20))
        .arg(format!("count={}", layout.root.size_bytes() >> 20)));
    run(Command::new("e2fsck").args(["-f", "-n"]).arg(&root_img));
    let dumpe2fs = run(Command::new("dumpe2fs").arg("-h").arg(&root_img));
    assert!(
        dumpe2fs.contains(&layout.root_fs_uuid),
        "root fs UUID differs from the layout"
    );

    // Every export holds exactly the raw disk, by qemu-img's own reading of each format.
    for (format, qfmt) in [
        (Format::Qcow2, "qcow2"),
        (Format::Vhd, "vpc"),
        (Format::Vmdk, "vmdk"),
    ] {
        let p = out.artifact_path(format).unwrap();
        let info: serde_json::Value = serde_json::from_str(&run(Command::new("qemu-img")
            .args(["info", "--output=json", "-f", qfmt])
            .arg(&p)))
        .unwrap();
        assert_eq!(info["virtual-size"].as_u64(), Some(size), "{qfmt}: {info}");
        if qfmt != "vpc" {
            run(Command::new("qemu-img").args(["check", "-f", qfmt]).arg(&p));
        }
        let cmp = run(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", qfmt])
            .arg(&raw)
            .arg(&p));
        assert!(cmp.contains("Images are identical"), "{qfmt}: {cmp}");
        match qfmt {
            "qcow2" => assert_eq!(info["format-specific"]["data"]["compression-type"], "zstd"),
            "vmdk" => assert_eq!(
                info["format-specific"]["data"]["create-type"],
                "streamOptimized"
            ),
            _ => assert_eq!(
                std::fs::metadata(&p).unwrap().len(),
                size + 512,
                "fixed VHD = disk + footer"
            ),
        }
    }
    // GCE: a tar.gz holding just disk.raw, whose bytes are the raw disk's.
    let gce = out.artifact_path(Format::Gce).unwrap();
    let listing = run(Command::new("tar").arg("-tzf").arg(&gce));
    assert_eq!(listing.trim(), "disk.raw");
    let piped = run(Command::new("sh")
        .arg("-c")
        .arg("tar -xzOf \"$1\" disk.raw | sha256sum")
        .arg("sh")
        .arg(&gce));
    assert!(
        piped.starts_with(&m.artifacts[0].sha256),
        "gce disk.raw differs from the raw disk"
    );

    // Boot the raw disk once (UEFI via OVMF) until the guest agent answers.
    let raw_sha_before = sha256sum(&raw);
    let serial = tmp.path().join("serial.log");
    let mut cfg = kiln_test::VmConfig::new(
        &raw,
        kiln_test::DiskFormat::Raw,
        kiln_test::BootFirmware::Uefi,
    );
    cfg.keep_serial_log = Some(serial.clone());
    let probe = kiln_test::boot_probe(&cfg).unwrap_or_else(|e| panic!("boot failed: {e}"));
    let kernel_pkg = m
        .packages
        .iter()
        .find(|p| p.name.starts_with("linux-image-6"))
        .expect("a kernel package");
    assert_eq!(
        format!("linux-image-{}", probe.kernel),
        kernel_pkg.name,
        "booted kernel is the installed one"
    );
    println!(
        "booted under {} in {:.1}s",
        probe.accel, probe.seconds_to_agent
    );
    let log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap()).into_owned();
    assert!(
        log.contains("Debian GNU/Linux 12") || log.contains("Linux version"),
        "serial log: {log}"
    );
    assert_eq!(
        sha256sum(&raw),
        raw_sha_before,
        "booting must not change the image"
    );

    // The child starts from the parent's tree: no bootstrap of its own.
    let child = build(factory.path(), "app-web").expect("the child image builds");
    let cm = &child.manifest;
    assert!(
        !cm.stages.iter().any(|s| s.stage == "bootstrap"),
        "{:?}",
        cm.stages
    );
    assert!(cm.stages.iter().any(|s| s.stage == "packages"));
    assert_eq!(cm.parents[0].image, "base-debian12");
    assert_eq!(cm.parents[0].fingerprint, m.fingerprint);
    assert!(cm.packages.iter().any(|p| p.name == "nginx"));
    assert!(
        cm.packages.iter().any(|p| p.name == "auditd"),
        "the parent's packages are inherited"
    );
    let tree = cache_dir()
        .join("stages")
        .join(&cm.stages.iter().find(|s| s.stage == "tree").unwrap().key)
        .join("out/tree");
    assert_eq!(
        std::fs::read_to_string(tree.join("etc/greeting")).unwrap(),
        "hello from kiln|it's"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let www = std::fs::metadata(tree.join("var/www/site/css/site.css")).unwrap();
        assert_eq!(
            (www.uid(), www.gid(), www.mode() & 0o7777),
            (33, 33, 0o640),
            "www-data:www-data 0640"
        );
        assert_eq!(
            std::fs::read_to_string(tree.join("var/www/site/index.html")).unwrap(),
            "<h1>kiln</h1>\n"
        );
    }
    // What the build lent the tree is gone again.
    for leftover in ["usr/sbin/policy-rc.d", "etc/apt/apt.conf.d/00kiln-build"] {
        assert!(
            std::fs::symlink_metadata(tree.join(leftover)).is_err(),
            "/{leftover} left in the image"
        );
    }
    assert!(
        !tree.join("run/kiln").exists(),
        "the staging mount point was left in the image"
    );
    assert_eq!(
        std::fs::read_to_string(tree.join("etc/machine-id")).unwrap(),
        ""
    );
    let lists: Vec<_> = std::fs::read_dir(tree.join("var/lib/apt/lists"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file() && e.file_name() != "lock")
        .collect();
    assert!(lists.is_empty(), "apt lists left in the image: {lists:?}");

    // The same base as a hybrid disk: the bootstrap is shared, and it boots with SeaBIOS and OVMF.
    replace_in(
        &factory.path().join("images/base-debian12/image.kiln.hcl"),
        r#"boot = "uefi""#,
        r#"boot = "hybrid""#,
    );
    let hybrid = build(factory.path(), "base-debian12").expect("the hybrid variant builds");
    let bootstrap = |m: &kiln_build::Manifest| {
        m.stages
            .iter()
            .find(|s| s.stage == "bootstrap")
            .unwrap()
            .key
            .clone()
    };
    assert_eq!(
        bootstrap(&hybrid.manifest),
        bootstrap(m),
        "one bootstrap serves every boot mode"
    );
    let hraw = hybrid.artifact_path(Format::Raw).unwrap();
    let table = run(Command::new("sgdisk").arg("-p").arg(&hraw));
    assert!(
        table.contains("EF02") && table.contains("EF00") && table.contains("8304"),
        "{table}"
    );
    assert!(run(Command::new("sgdisk").arg("-v").arg(&hraw)).contains("No problems found"));
    for fw in [kiln_test::BootFirmware::Bios, kiln_test::BootFirmware::Uefi] {
        let cfg = kiln_test::VmConfig::new(&hraw, kiln_test::DiskFormat::Raw, fw);
        let probe = kiln_test::boot_probe(&cfg)
            .unwrap_or_else(|e| panic!("hybrid image did not boot with {fw:?}: {e}"));
        println!(
            "hybrid image booted with {fw:?} in {:.1}s",
            probe.seconds_to_agent
        );
    }

    assert_nothing_left_behind();
}
