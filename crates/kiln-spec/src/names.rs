//! Names that travel far (bucket names, cloud image names, channel names in URLs): their rules are
//! enforced once, in the constructors, so nothing downstream ever sees an invalid one.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "invalid {kind} name `{name}`: use 1 to {max} lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen"
    )]
    Invalid {
        kind: &'static str,
        name: String,
        max: usize,
    },
    #[error("`{0}` is managed by Kiln and cannot be declared")]
    Reserved(String),
}

fn check(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes.last() != Some(&b'-')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::Invalid {
            kind,
            name: name.to_string(),
            max,
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// An image (and registry bucket) name. 63 characters keeps it valid as a DNS label and inside
    /// every cloud's image-name limits once a version suffix is added.
    ImageName, "image", 63
);
name_type!(
    /// A channel name (`dev`, `production`, …). `latest` is reserved: Kiln moves it itself.
    ChannelName, "channel", 32
);
name_type!(
    /// The factory's name, used in tags and audit entries.
    FactoryName, "factory", 63
);

impl ImageName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        check("image", name, 63)?;
        Ok(ImageName(name.to_string()))
    }
}

impl FactoryName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        check("factory", name, 63)?;
        Ok(FactoryName(name.to_string()))
    }
}

impl ChannelName {
    /// The channel Kiln points at the newest active version of every bucket.
    pub const LATEST: &'static str = "latest";

    pub fn new(name: &str) -> Result<Self, NameError> {
        check("channel", name, 32)?;
        if name == Self::LATEST {
            return Err(NameError::Reserved(name.to_string()));
        }
        Ok(ChannelName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_follow_dns_label_rules() {
        assert!(ImageName::new("base-debian12").is_ok());
        for bad in [
            "",
            "Base",
            "1base",
            "base-",
            "base_debian",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(ImageName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn latest_is_reserved() {
        assert_eq!(
            ChannelName::new("latest"),
            Err(NameError::Reserved("latest".into()))
        );
        assert!(ChannelName::new("production").is_ok());
    }
}
