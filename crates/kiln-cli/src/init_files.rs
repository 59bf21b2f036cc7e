//! The example factory (`examples/factory/`), embedded so `kiln init` writes exactly what the
//! repository ships. A test compares the two, so they cannot drift.

/// (path relative to the factory, contents, executable)
pub const FILES: &[(&str, &str, bool)] = &[
    (
        "accounts.yaml",
        include_str!("../../../examples/factory/accounts.yaml"),
        false,
    ),
    (
        "images/app-web/checks/web.yaml",
        include_str!("../../../examples/factory/images/app-web/checks/web.yaml"),
        false,
    ),
    (
        "images/app-web/image.kiln.hcl",
        include_str!("../../../examples/factory/images/app-web/image.kiln.hcl"),
        false,
    ),
    (
        "images/base-debian12/checks/cis-level1.yaml",
        include_str!("../../../examples/factory/images/base-debian12/checks/cis-level1.yaml"),
        false,
    ),
    (
        "images/base-debian12/files/sshd-hardening.conf",
        include_str!("../../../examples/factory/images/base-debian12/files/sshd-hardening.conf"),
        false,
    ),
    (
        "images/base-debian12/harden.sh",
        include_str!("../../../examples/factory/images/base-debian12/harden.sh"),
        true,
    ),
    (
        "images/base-debian12/image.kiln.hcl",
        include_str!("../../../examples/factory/images/base-debian12/image.kiln.hcl"),
        false,
    ),
    (
        "kiln.hcl",
        include_str!("../../../examples/factory/kiln.hcl"),
        false,
    ),
];
