use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kiln_build::seal::human_bytes;
use kiln_build::{BuildOptions, Builder};
use kiln_plan::{ImageGraph, PlanOptions, Reason};

use crate::cli::{BuildArgs, ValidateFormat};
use crate::factory_dir;
use crate::progress::Terminal;

pub fn run(factory: Option<&Path>, args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    if !is_root() {
        bail!(
            "kiln build needs root: it bootstraps with mmdebstrap and provisions in mount namespaces"
        );
    }
    // Ctrl-C: running commands are stopped and every guard cleans up before exit.
    let _ = ctrlc::set_handler(|| {
        kiln_build::cmd::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    });

    // Order the requested images so that parents come first.
    let graph = ImageGraph::from_factory(&f)?;
    let seeds: Vec<(usize, Reason)> = if args.all {
        (0..graph.len()).map(|i| (i, Reason::Requested)).collect()
    } else {
        let mut s = Vec::new();
        for name in &args.images {
            let i = graph
                .index_of(name)
                .with_context(|| format!("unknown image `{name}`"))?;
            s.push((i, Reason::Requested));
        }
        s
    };
    let plan = kiln_plan::plan(
        &graph,
        &seeds,
        PlanOptions {
            cascade: false,
            max_parallel: None,
        },
    );

    let progress = Terminal::new(false);
    let opts = BuildOptions {
        cache_dir: args.cache.cache_dir.clone(),
        etc_apt: "/etc/apt".into(),
    };
    let mut builder = Builder::new(&f, &opts, &progress)?;
    let mut outputs = Vec::new();
    for (_, p) in plan.iter() {
        let out = builder
            .build(&p.image)
            .with_context(|| format!("building image `{}`", p.image))?;
        if args.format == ValidateFormat::Text {
            print_summary(&out);
        }
        if !args.no_test {
            boot_test(&f, &out, &progress)?;
        }
        outputs.push(out);
    }
    if args.format == ValidateFormat::Json {
        let manifests: Vec<_> = outputs.iter().map(|o| &o.manifest).collect();
        println!("{}", serde_json::to_string(&manifests)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The test stage: the image's file checks on the built tree, then one boot (UEFI first for hybrid
/// images) in which every check runs through the guest agent; a hybrid image also proves it boots
/// with BIOS. Reports go next to the artifacts (test-report.json, junit.xml, test-report.txt).
fn boot_test(
    f: &kiln_spec::Factory,
    out: &kiln_build::BuildOutput,
    progress: &Terminal,
) -> anyhow::Result<()> {
    use kiln_build::{Progress, StageEvent};
    use kiln_test::{BootFirmware, DiskFormat, SourcedCheck, VmConfig};
    let image = &out.manifest.image;
    let img = f.image(image).context("image vanished from the factory")?;
    let checks: Vec<SourcedCheck> = img
        .check_files
        .iter()
        .flat_map(|cf| {
            let file = img.dir.join(cf.path.as_path()).display().to_string();
            cf.checks.iter().map(move |c| SourcedCheck {
                file: file.clone(),
                check: c.clone(),
            })
        })
        .collect();
    let firmwares: &[BootFirmware] = match img.disk.boot {
        kiln_spec::BootMode::Uefi => &[BootFirmware::Uefi],
        kiln_spec::BootMode::Bios => &[BootFirmware::Bios],
        kiln_spec::BootMode::Hybrid => &[BootFirmware::Uefi, BootFirmware::Bios],
    };
    let (disk, format) = if out.dir.join("disk.raw").exists() {
        (out.dir.join("disk.raw"), DiskFormat::Raw)
    } else {
        (out.dir.join("disk.qcow2"), DiskFormat::Qcow2)
    };
    let accel = kiln_test::Accel::detect();
    let first = firmwares[0];
    let fw_name = |fw: BootFirmware| {
        if fw == BootFirmware::Uefi {
            "UEFI"
        } else {
            "BIOS"
        }
    };
    let stage = format!("test ({})", fw_name(first));
    progress.event(
        image,
        &stage,
        StageEvent::Start(&format!("{} checks, one boot under {accel}", checks.len())),
    );
    let started = std::time::Instant::now();
    let report = match kiln_test::test_image(
        image,
        &VmConfig::new(&disk, format, first),
        &checks,
        Some(&out.tree),
    ) {
        Ok(r) => r,
        Err(e) => {
            progress.event(image, &stage, StageEvent::Failed);
            return Err(anyhow::Error::new(e).context(format!("image `{image}` did not boot")));
        }
    };
    std::fs::write(out.dir.join("test-report.json"), report.to_json())?;
    std::fs::write(out.dir.join("junit.xml"), report.to_junit())?;
    std::fs::write(out.dir.join("test-report.txt"), report.to_text())?;
    if !report.passed() {
        progress.event(image, &stage, StageEvent::Failed);
        print!("{}", report.to_text());
        bail!(
            "image `{image}` failed {} check{}: {}",
            report.failed_ids().len(),
            if report.failed_ids().len() == 1 {
                ""
            } else {
                "s"
            },
            report.failed_ids().join(", ")
        );
    }
    progress.event(image, &stage, StageEvent::Done(started.elapsed()));
    progress.event(
        image,
        &stage,
        StageEvent::Note(&format!(
            "{} checks passed; booted in {:.1}s; report {}",
            report.results.len(),
            report.boot_seconds.unwrap_or_default(),
            out.dir.join("test-report.txt").display()
        )),
    );
    for fw in &firmwares[1..] {
        let stage = format!("boot test ({})", fw_name(*fw));
        progress.event(
            image,
            &stage,
            StageEvent::Start("until the guest agent answers"),
        );
        match kiln_test::boot_probe(&VmConfig::new(&disk, format, *fw)) {
            Ok(r) => progress.event(
                image,
                &stage,
                StageEvent::Done(std::time::Duration::from_secs_f64(r.seconds_to_agent)),
            ),
            Err(e) => {
                progress.event(image, &stage, StageEvent::Failed);
                return Err(anyhow::Error::new(e).context(format!(
                    "image `{image}` did not boot with {}",
                    fw_name(*fw)
                )));
            }
        }
    }
    Ok(())
}

fn print_summary(out: &kiln_build::BuildOutput) {
    let m = &out.manifest;
    let built = m.stages.iter().filter(|s| !s.cached).count();
    println!(
        "{}  fingerprint {}  {} packages  {:.1}s ({} stage{} built, {} cached)",
        m.image,
        &m.fingerprint[..16],
        m.packages.len(),
        m.total_seconds,
        built,
        if built == 1 { "" } else { "s" },
        m.stages.len() - built
    );
    for a in &m.artifacts {
        println!(
            "  {:<6} {:>10}  sha256:{}  {}",
            a.format.as_str(),
            human_bytes(a.size),
            &a.sha256[..16],
            out.dir.join(&a.file).display()
        );
    }
    println!("  manifest {}", out.dir.join("manifest.json").display());
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
