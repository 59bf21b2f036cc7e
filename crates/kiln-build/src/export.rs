//! Export formats: the same raw disk in the containers each platform takes.

use std::path::Path;

use kiln_spec::Format;

use crate::cmd::Task;
use crate::error::Result;
use crate::vhd;

/// The file name an export is written as.
pub fn file_name(format: Format) -> &'static str {
    match format {
        Format::Raw => "disk.raw",
        Format::Qcow2 => "disk.qcow2",
        Format::Vhd => "disk.vhd",
        Format::Vmdk => "disk.vmdk",
        Format::Gce => "disk.tar.gz",
    }
}

/// Converts `raw` into `format` under `out_dir`. Raw itself is the disk stage's output; the VHD
/// footer comes from the disk stage too (see [`crate::vhd`]).
pub fn convert(
    raw: &Path,
    format: Format,
    out_dir: &Path,
    vhd_footer: &[u8; vhd::FOOTER_LEN],
) -> Result<()> {
    let out = out_dir.join(file_name(format));
    let qemu_img = |what: &str, opts: &[&str]| {
        Task::new(what.to_string(), "qemu-img")
            .args(["convert", "-f", "raw"])
            .args(opts)
            .arg(raw)
            .arg(&out)
            .run()
    };
    match format {
        Format::Raw => {}
        Format::Qcow2 => {
            qemu_img(
                "exporting qcow2 (zstd)",
                &["-O", "qcow2", "-c", "-o", "compression_type=zstd"],
            )?;
        }
        // Azure wants a fixed VHD whose size is exactly the (MiB-aligned) disk size.
        Format::Vhd => vhd::write_fixed(raw, &out, vhd_footer)?,
        Format::Vmdk => {
            qemu_img(
                "exporting VMDK (streamOptimized)",
                &["-O", "vmdk", "-o", "subformat=streamOptimized"],
            )?;
        }
        // GCE: a file named disk.raw in a sparse, old-GNU tar, gzipped.
        Format::Gce => {
            let dir = raw.parent().unwrap_or(Path::new("."));
            Task::new("exporting GCE tar.gz", "tar")
                .args([
                    "--format=oldgnu",
                    "--sparse",
                    "--numeric-owner",
                    "--owner=0",
                    "--group=0",
                    "--mtime=@0",
                ])
                .args(["--use-compress-program=gzip -n", "-cf"])
                .arg(&out)
                .arg("-C")
                .arg(dir)
                .arg("disk.raw")
                .run()?;
        }
    }
    Ok(())
}
