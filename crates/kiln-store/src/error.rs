use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// What S3 (or the S3-compatible store) answered, with the SDK's whole error chain.
    #[error("{context}: {message}")]
    S3 { context: String, message: String },
    #[error("checksum mismatch for {url}: its bytes hash to sha256 {got}, the key says {expected}")]
    Mismatch {
        url: String,
        expected: String,
        got: String,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// Maps an SDK error to [`StoreError::S3`] with its full chain of causes.
pub(crate) fn s3<E: std::error::Error>(context: impl Into<String>) -> impl FnOnce(E) -> StoreError {
    let context = context.into();
    move |e| StoreError::S3 {
        context,
        message: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
    }
}
