//! Why a publish did not happen, in words an operator can act on.

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Publishing refused on purpose because something around the version is wrong (no or an
    /// empty account map, no credentials, a file that is not what it should be): fail closed.
    #[error("not published: {0}")]
    Refused(String),
    /// This version is not one to publish (untested, revoked, on no channel, built from another
    /// branch, or on channels the map shares with nobody on this cloud). `kiln publish` fails on
    /// it; the publish stage of `kiln build` reports it and goes on.
    #[error("not published: {0}")]
    Ineligible(String),
    #[error("cloud call failed: {0}")]
    Cloud(String),
    #[error("{0}")]
    Io(String),
}
