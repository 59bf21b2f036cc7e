//! Build errors carry what a person needs to act: the image, the step, the command line and the
//! tail of its output.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BuildError {
    #[error("{what}: cannot run `{cmd}`: {source}")]
    Spawn {
        what: String,
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): `{cmd}`\n{output}")]
    Command {
        what: String,
        cmd: String,
        status: String,
        output: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "provisioner {index} ({description}) failed{}: {detail}\n{output}",
        .line.as_ref().map(|(n, text)| format!(" at line {n}: `{text}`")).unwrap_or_default()
    )]
    Provisioner {
        index: usize,
        description: String,
        /// Line number and text of the failing line, when the shell could tell.
        line: Option<(usize, String)>,
        detail: String,
        output: String,
    },
    #[error("host apt sources: {0}")]
    HostSources(String),
    #[error("image `{image}`: {message}")]
    Image { image: String, message: String },
    #[error("stage cache at {dir}: {message}")]
    Cache { dir: String, message: String },
    #[error("interrupted")]
    Interrupted,
}

impl BuildError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let what = what.into();
        move |source| BuildError::Io { what, source }
    }
}

pub type Result<T> = std::result::Result<T, BuildError>;
