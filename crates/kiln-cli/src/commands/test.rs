use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use kiln_test::{BootFirmware, DiskFormat, SourcedCheck, VmConfig};

use crate::cli::{Firmware, ReportFormat, TestArgs};

pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let format = format_of(&args.artifact)?;
    let checks = load_check_files(&args.checks)?;
    let mut cfg = VmConfig::new(
        &args.artifact,
        format,
        match args.firmware {
            Firmware::Uefi => BootFirmware::Uefi,
            Firmware::Bios => BootFirmware::Bios,
        },
    );
    cfg.memory_mib = args.memory;
    cfg.cpus = args.cpus;
    cfg.boot_timeout = Duration::from_secs(args.boot_timeout);
    cfg.keep_serial_log = args.serial_log.clone();
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "==> booting {} under {} and running {} checks",
            args.artifact.display(),
            kiln_test::Accel::detect(),
            checks.len()
        );
    }
    let subject = args
        .artifact
        .file_name()
        .map_or_else(|| "image".to_string(), |n| n.to_string_lossy().into_owned());
    let report = kiln_test::test_image(&subject, &cfg, &checks, args.tree.as_deref())
        .with_context(|| format!("testing {}", args.artifact.display()))?;
    if let Some(p) = &args.junit {
        std::fs::write(p, report.to_junit()).with_context(|| format!("writing {}", p.display()))?;
    }
    match args.format {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", report.to_json()),
        ReportFormat::Junit => print!("{}", report.to_junit()),
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn format_of(p: &Path) -> anyhow::Result<DiskFormat> {
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    Ok(match ext {
        "raw" | "img" => DiskFormat::Raw,
        "qcow2" => DiskFormat::Qcow2,
        "vhd" => DiskFormat::Vpc,
        "vmdk" => DiskFormat::Vmdk,
        _ => bail!(
            "cannot tell the format of {} from its name: use .raw, .img, .qcow2, .vhd or .vmdk",
            p.display()
        ),
    })
}

/// Parses check files, printing every problem as PATH:LINE:COL; fails if any.
pub fn load_check_files(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<SourcedCheck>> {
    let mut out = Vec::new();
    let mut errors = 0;
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        match kiln_spec::parse_checks(p, &text) {
            Ok(checks) => out.extend(checks.into_iter().map(|check| SourcedCheck {
                file: p.display().to_string(),
                check,
            })),
            Err(diags) => {
                for d in &diags {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!(
                            "{}:{}:{}: error: {}",
                            p.display(),
                            d.loc.line,
                            d.loc.col,
                            d.message
                        );
                    }
                }
                errors += diags.len();
            }
        }
    }
    if errors > 0 {
        bail!(
            "the check files have {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(out)
}
