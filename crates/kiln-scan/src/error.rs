use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("vulnerability database {path}: {message}")]
    VulnDb { path: PathBuf, message: String },
}

impl ScanError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ScanError {
        let what = what.into();
        move |source| ScanError::Io { what, source }
    }
}
