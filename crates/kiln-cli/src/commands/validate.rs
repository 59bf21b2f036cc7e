use std::path::Path;
use std::process::ExitCode;

use crate::cli::ValidateFormat;
use crate::factory_dir;

pub fn run(factory: Option<&Path>, format: ValidateFormat) -> anyhow::Result<ExitCode> {
    let (_, f) = factory_dir::open(factory)?;
    let images = f.images.len();
    let children = f
        .images
        .values()
        .filter(|i| i.parent_image().is_some())
        .count();
    match format {
        ValidateFormat::Json => println!(
            "{{\"valid\":true,\"factory\":\"{}\",\"images\":{images},\"sources\":{},\"channels\":{},\"policies\":{},\"checks\":{}}}",
            f.settings.name,
            f.sources.len(),
            f.settings.channels.len(),
            f.policies.len(),
            f.check_count()
        ),
        ValidateFormat::Text => println!(
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
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
