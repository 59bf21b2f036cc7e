//! Small value types of definitions (sizes, modes, formats, boot modes, paths) whose parsing rules
//! live in their constructors.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(
        "invalid size `{0}`: write a whole number with a binary unit, e.g. \"4GiB\", \"512MiB\""
    )]
    Size(String),
    #[error(
        "size `{given}` uses a decimal unit; Kiln sizes are binary: did you mean \"{suggest}\"?"
    )]
    DecimalUnit { given: String, suggest: String },
    #[error("invalid file mode `{0}`: write an octal string such as \"0644\"")]
    Mode(String),
    #[error("unknown format `{0}`: expected one of raw, qcow2, vhd, vmdk, gce")]
    Format(String),
    #[error("unknown boot mode `{0}`: expected one of uefi, bios, hybrid")]
    Boot(String),
    #[error("path `{0}` must be relative to the image directory")]
    AbsolutePath(String),
    #[error("path `{0}` escapes the image directory")]
    EscapingPath(String),
    #[error("path `{0}` is empty")]
    EmptyPath(String),
    #[error("destination `{0}` must be an absolute path inside the image, without `..`")]
    GuestPath(String),
}

/// A size in bytes, written with a binary unit. Decimal units ("GB") are refused rather than
/// guessed: a disk that is 7% smaller than intended fails late, inside a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ByteSize(u64);

impl ByteSize {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;
    pub const TIB: u64 = 1 << 40;

    pub fn from_bytes(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let unit = unit.trim_start();
        let mult = match unit {
            "B" => 1,
            "KiB" => Self::KIB,
            "MiB" => Self::MIB,
            "GiB" => Self::GIB,
            "TiB" => Self::TIB,
            "KB" | "kB" | "K" | "k" | "MB" | "M" | "GB" | "G" | "TB" | "T" => {
                let binary = match unit.to_ascii_uppercase().chars().next() {
                    Some('K') => "KiB",
                    Some('M') => "MiB",
                    Some('G') => "GiB",
                    _ => "TiB",
                };
                return Err(ValueError::DecimalUnit {
                    given: s.to_string(),
                    suggest: format!("{num}{binary}"),
                });
            }
            _ => return Err(ValueError::Size(s.to_string())),
        };
        let n: u64 = num.parse().map_err(|_| ValueError::Size(s.to_string()))?;
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| ValueError::Size(s.to_string()))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, m) in [
            ("TiB", Self::TIB),
            ("GiB", Self::GIB),
            ("MiB", Self::MIB),
            ("KiB", Self::KIB),
        ] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

/// Unix permission bits, written as an octal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Mode(u32);

impl Mode {
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl FromStr for Mode {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (3..=4).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !ok {
            return Err(ValueError::Mode(s.to_string()));
        }
        u32::from_str_radix(s, 8)
            .map(Mode)
            .map_err(|_| ValueError::Mode(s.to_string()))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// A disk export format. One build produces identical bits; each format is a container for them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Raw,
    Qcow2,
    /// Fixed VHD, MiB-aligned (Azure).
    Vhd,
    /// streamOptimized VMDK (AWS, vSphere).
    Vmdk,
    /// `disk.raw` in a sparse tar.gz (GCE).
    Gce,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Raw,
        Format::Qcow2,
        Format::Vhd,
        Format::Vmdk,
        Format::Gce,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Vhd => "vhd",
            Format::Vmdk => "vmdk",
            Format::Gce => "gce",
        }
    }
}

impl FromStr for Format {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| ValueError::Format(s.to_string()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the disk boots. AWS and Azure Gen1 still boot BIOS, hence `hybrid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    #[default]
    Uefi,
    Bios,
    Hybrid,
}

impl FromStr for BootMode {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uefi" => Ok(BootMode::Uefi),
            "bios" => Ok(BootMode::Bios),
            "hybrid" => Ok(BootMode::Hybrid),
            _ => Err(ValueError::Boot(s.to_string())),
        }
    }
}

impl fmt::Display for BootMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BootMode::Uefi => "uefi",
            BootMode::Bios => "bios",
            BootMode::Hybrid => "hybrid",
        })
    }
}

/// A path inside an image directory, normalised lexically. Whether it exists (and whether a
/// symlink leads out) is checked by the loader, which knows the directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ImagePath(PathBuf);

impl ImagePath {
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        if raw.trim().is_empty() {
            return Err(ValueError::EmptyPath(raw.to_string()));
        }
        let p = Path::new(raw);
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return Err(ValueError::EscapingPath(raw.to_string()));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(ValueError::AbsolutePath(raw.to_string()));
                }
            }
        }
        if out.as_os_str().is_empty() {
            return Err(ValueError::EmptyPath(raw.to_string()));
        }
        Ok(ImagePath(out))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// An absolute path inside the built image (a provisioner's destination).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct GuestPath(PathBuf);

impl GuestPath {
    pub fn new(raw: &str) -> Result<Self, ValueError> {
        let p = Path::new(raw);
        let ok = p.is_absolute()
            && !p
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
            && !raw.contains('\0');
        if ok {
            Ok(GuestPath(p.to_path_buf()))
        } else {
            Err(ValueError::GuestPath(raw.to_string()))
        }
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_need_binary_units() {
        assert_eq!("4GiB".parse::<ByteSize>().unwrap().bytes(), 4 << 30);
        assert_eq!("512 MiB".parse::<ByteSize>().unwrap().bytes(), 512 << 20);
        assert_eq!(
            "4GB".parse::<ByteSize>(),
            Err(ValueError::DecimalUnit {
                given: "4GB".into(),
                suggest: "4GiB".into()
            })
        );
        for bad in [
            "",
            "GiB",
            "4",
            "4 gib",
            "1.5GiB",
            "-1GiB",
            "99999999999999TiB",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(ByteSize::from_bytes(3 << 30).to_string(), "3GiB");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!("0640".parse::<Mode>().unwrap().bits(), 0o640);
        assert_eq!("755".parse::<Mode>().unwrap().bits(), 0o755);
        for bad in ["0999", "64", "rw-r--r--", "01777x", "17777"] {
            assert!(bad.parse::<Mode>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn image_paths_stay_inside() {
        assert_eq!(
            ImagePath::new("./files/../files/a.conf").unwrap().as_path(),
            Path::new("files/a.conf")
        );
        assert!(matches!(
            ImagePath::new("../secret"),
            Err(ValueError::EscapingPath(_))
        ));
        assert!(matches!(
            ImagePath::new("files/../../x"),
            Err(ValueError::EscapingPath(_))
        ));
        assert!(matches!(
            ImagePath::new("/etc/passwd"),
            Err(ValueError::AbsolutePath(_))
        ));
        assert!(ImagePath::new(".").is_err());
    }

    #[test]
    fn guest_paths_are_absolute_and_plain() {
        assert!(GuestPath::new("/etc/ssh/sshd_config.d/10.conf").is_ok());
        assert!(GuestPath::new("etc/x").is_err());
        assert!(GuestPath::new("/etc/../root").is_err());
    }
}
