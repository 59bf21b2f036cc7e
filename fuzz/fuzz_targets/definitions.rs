//! Every definition parser on arbitrary text: kiln.hcl, image.kiln.hcl, check files and
//! accounts.yaml. Definitions arrive in pull requests, so none of these may panic, hang or
//! overflow the stack, whatever the input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = kiln_spec::parse_factory_file(Path::new("kiln.hcl"), text);
    let _ = kiln_spec::parse_image_file(Path::new("images/x/image.kiln.hcl"), text);
    let _ = kiln_spec::parse_checks(Path::new("checks.yaml"), text);
    let _ = kiln_spec::parse_accounts(Path::new("accounts.yaml"), text);
});
