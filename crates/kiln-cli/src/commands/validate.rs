use std::path::Path;
use std::process::ExitCode;

use kiln_spec::Factory;
use serde_json::json;

use crate::cli::ValidateFormat;
use crate::factory_dir;

pub fn run(factory: Option<&Path>, format: ValidateFormat) -> anyhow::Result<ExitCode> {
    match format {
        ValidateFormat::Text => {
            let (_, f) = factory_dir::open(factory)?;
            println!("{}", summary(&f));
            Ok(ExitCode::SUCCESS)
        }
        ValidateFormat::Json => {
            // Diagnostics go to stdout as data, so a CI step can annotate each one.
            let dir = factory_dir::locate(factory)?;
            let loaded = kiln_spec::load_factory(&dir);
            let diags = loaded.diagnostics.sorted();
            let doc = match &loaded.factory {
                Some(f) => json!({
                    "valid": true,
                    "factory": f.settings.name,
                    "images": f.images.len(),
                    "sources": f.sources.len(),
                    "channels": f.settings.channels,
                    "policies": f.policies.len(),
                    "checks": f.check_count(),
                    "diagnostics": diags,
                }),
                None => json!({ "valid": false, "diagnostics": diags }),
            };
            println!("{doc}");
            Ok(if loaded.factory.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn summary(f: &Factory) -> String {
    let images = f.images.len();
    let children = f
        .images
        .values()
        .filter(|i| i.parent_image().is_some())
        .count();
    format!(
        "factory {} is valid: {images} image{} ({children} built on another image), {} source{}, {} channel{}, {} polic{}, {} check{}",
        f.settings.name,
        plural(images),
        f.sources.len(),
        plural(f.sources.len()),
        f.settings.channels.len(),
        plural(f.settings.channels.len()),
        f.policies.len(),
        if f.policies.len() == 1 { "y" } else { "ies" },
        f.check_count(),
        plural(f.check_count()),
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
