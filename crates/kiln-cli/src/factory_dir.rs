//! Finding the factory and loading it, with diagnostics printed the way editors expect.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use kiln_spec::{FACTORY_FILE, Factory, Loaded};

/// `--factory DIR`, else the nearest parent of the working directory holding kiln.hcl.
pub fn locate(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = explicit {
        if !dir.join(FACTORY_FILE).is_file() {
            bail!(
                "{} has no {FACTORY_FILE}: pass the directory that holds it, or create one with `kiln init DIR`",
                dir.display()
            );
        }
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    for dir in cwd.ancestors() {
        if dir.join(FACTORY_FILE).is_file() {
            // Show paths relative to where the user stands when we can.
            return Ok(dir
                .strip_prefix(&cwd)
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        p.to_path_buf()
                    }
                })
                .unwrap_or_else(|_| dir.to_path_buf()));
        }
    }
    bail!(
        "no {FACTORY_FILE} in {} or any parent: pass --factory DIR, or create a factory with `kiln init DIR`",
        cwd.display()
    )
}

/// Finds and loads the factory: the start of every command that reads one.
pub fn open(explicit: Option<&Path>) -> anyhow::Result<(PathBuf, Factory)> {
    let dir = locate(explicit)?;
    let f = load(&dir)?;
    Ok((dir, f))
}

/// Loads the factory; prints warnings, and on errors prints them all and fails.
pub fn load(dir: &Path) -> Result<Factory, LoadFailed> {
    let Loaded {
        factory,
        diagnostics,
    } = kiln_spec::load_factory(dir);
    let display_root = if dir == Path::new(".") {
        Path::new("")
    } else {
        dir
    };
    if !diagnostics.is_empty() {
        #[allow(clippy::print_stderr)]
        {
            eprint!("{}", diagnostics.render(display_root));
        }
    }
    factory.ok_or(LoadFailed {
        errors: diagnostics.error_count(),
    })
}

/// The factory has definition errors (already printed).
#[derive(Debug)]
pub struct LoadFailed {
    pub errors: usize,
}

impl std::fmt::Display for LoadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the factory has {} error{}",
            self.errors,
            if self.errors == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for LoadFailed {}
