use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::init_files::FILES;

/// Writes the example factory. Refuses to touch a directory that already holds a factory, and
/// never overwrites a file: scaffolding must not lose anyone's work.
pub fn run(dir: &Path) -> anyhow::Result<ExitCode> {
    if dir.join(kiln_spec::FACTORY_FILE).exists() {
        bail!(
            "{} already holds a factory (kiln.hcl exists)",
            dir.display()
        );
    }
    for (rel, _, _) in FILES {
        let p = dir.join(rel);
        if p.exists() {
            bail!("{} already exists; refusing to overwrite it", p.display());
        }
    }
    for (rel, contents, executable) in FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&p, contents).with_context(|| format!("writing {}", p.display()))?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", p.display()))?;
        }
    }
    println!(
        "created a factory in {} ({} files): base-debian12 and its child app-web",
        dir.display(),
        FILES.len()
    );
    println!(
        "next: kiln validate --factory {0} && kiln plan --all --factory {0}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
