//! Why a publish did not happen, in words an operator can act on.

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Publishing refused on purpose (empty map, untested version, wrong branch…).
    #[error("not published: {0}")]
    Refused(String),
    #[error("cloud call failed: {0}")]
    Cloud(String),
    #[error("{0}")]
    Io(String),
}
